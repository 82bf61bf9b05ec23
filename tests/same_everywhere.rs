//! The same English on every machine. Sample 001 is translated and summarized by the real
//! default model as other machines would run it: each x86 kernel tier (AVX-512 VNNI,
//! AVX-VNNI, AVX2), one, two and three threads, one segment at a time or eight together,
//! prompts fed in passes of 100 tokens or 512, and another CPU's cache sizes. Every run must give exactly the pinned sentences, title
//! and summary; a failure names the setting that changed them.

use std::path::{Path, PathBuf};
use std::process::Command;

use tarjama::document::TranslatedDocument;

const SAMPLE: &str = "001_16cb7a662e3fa037";

/// One way of running the sample: what it stands for, and how it differs from a plain
/// `tarjama translate` on this machine.
struct Setting {
    name: &'static str,
    env: &'static [(&'static str, &'static str)],
    args: &'static [&'static str],
    /// `L1 L1_WAYS L2 L2_WAYS L3 L3_WAYS` reported to the process instead of this CPU's.
    caches: Option<[&'static str; 6]>,
}

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn pinned() -> serde_json::Value {
    let path = root().join(format!("tests/fixtures/outputs/{SAMPLE}.json"));
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// The sample translated under `setting`, `--no-memory`, into a fresh directory.
fn translate(setting: &Setting) -> TranslatedDocument {
    let out = tempfile::tempdir().unwrap();
    let input = root().join(format!("samples/{SAMPLE}.txt"));
    let mut command = match setting.caches {
        Some(sizes) => {
            let mut c = Command::new(root().join("scripts/with-cache-sizes.sh"));
            c.args(sizes).arg("--").arg(env!("CARGO_BIN_EXE_tarjama"));
            c
        }
        None => Command::new(env!("CARGO_BIN_EXE_tarjama")),
    };
    command
        .arg("translate")
        .arg(&input)
        .arg("--out")
        .arg(out.path())
        .args(["--no-memory", "-q"])
        .args(setting.args)
        .env_remove("MISTRALRS_FORCE_AVX2")
        .env_remove("MISTRALRS_FORCE_AVXVNNI")
        .env_remove("TARJAMA_PREFILL_TOKENS")
        .envs(setting.env.iter().copied());
    let o = command.output().expect("run tarjama");
    assert!(
        o.status.success(),
        "{}: {}{}",
        setting.name,
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    let json = std::fs::read_to_string(out.path().join(format!("{SAMPLE}.json"))).unwrap();
    serde_json::from_str(&json).unwrap()
}

/// Fails on the first part of the output that differs from the pinned one, naming the
/// setting and showing both texts.
fn assert_pinned(setting: &Setting) {
    let pinned = pinned();
    let doc = translate(setting);
    let sentences: Vec<(String, String)> = doc
        .paragraphs
        .iter()
        .flat_map(|p| &p.sentences)
        .map(|s| (s.source.clone(), s.translation.clone()))
        .collect();
    let expected: Vec<(String, String)> =
        serde_json::from_value(pinned["sentences"].clone()).unwrap();
    assert_eq!(
        sentences.len(),
        expected.len(),
        "{}: sentence count",
        setting.name
    );
    for (i, (got, want)) in sentences.iter().zip(&expected).enumerate() {
        assert_eq!(
            got, want,
            "{}: sentence {i} differs from the pinned one; this setting changes a translation",
            setting.name
        );
    }
    assert_eq!(
        doc.title,
        pinned["title"].as_str().unwrap(),
        "{}: the title differs from the pinned one",
        setting.name
    );
    assert_eq!(
        doc.summary.as_deref(),
        pinned["summary"].as_str(),
        "{}: the summary differs from the pinned one (translations equal, so the summary's \
         longer prompt reduces in an order this setting changes)",
        setting.name
    );
}

/// Whether this CPU runs the AVX-VNNI tier's kernels, in either encoding of its byte
/// products (the vendored candle-core runs it through AVX-512 VNNI's where the CPU lacks
/// AVX-VNNI).
fn runs_the_avx_vnni_tier() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::is_x86_feature_detected as has;
        has!("avx2") && has!("fma") && (has!("avxvnni") || (has!("avx512vnni") && has!("avx512vl")))
    }
    #[cfg(not(target_arch = "x86_64"))]
    false
}

#[test]
fn the_pinned_outputs_on_this_machine() {
    assert_pinned(&Setting {
        name: "this machine's kernels, all cores, batch 8",
        env: &[],
        args: &[],
        caches: None,
    });
}

#[test]
fn the_pinned_outputs_with_the_avx2_kernels() {
    assert_pinned(&Setting {
        name: "AVX2 kernels (MISTRALRS_FORCE_AVX2=1)",
        env: &[("MISTRALRS_FORCE_AVX2", "1")],
        args: &[],
        caches: None,
    });
}

#[test]
fn the_pinned_outputs_with_the_avx_vnni_kernels() {
    // A CPU with neither encoding (an AVX2-only one) cannot run this tier at all; the
    // AVX2 and this machine's tiers still run there.
    if !runs_the_avx_vnni_tier() {
        eprintln!(
            "this CPU has neither AVX-VNNI nor AVX-512 VNNI: the AVX-VNNI tier cannot run here"
        );
        return;
    }
    assert_pinned(&Setting {
        name: "AVX-VNNI kernels (MISTRALRS_FORCE_AVXVNNI=1)",
        env: &[("MISTRALRS_FORCE_AVXVNNI", "1")],
        args: &[],
        caches: None,
    });
}

#[test]
fn the_pinned_outputs_on_one_thread_one_segment_at_a_time() {
    assert_pinned(&Setting {
        name: "1 thread, batch 1",
        env: &[],
        args: &["--threads", "1", "--batch-size", "1"],
        caches: None,
    });
}

#[test]
fn the_pinned_outputs_on_three_threads_with_another_cpu_s_caches_and_short_prompt_passes() {
    // A Sapphire Rapids Xeon's caches: 48 KiB 12-way L1d, 2 MiB L2, 105 MiB L3. Before
    // prompt attention reduced in tarjama's own order, the L1d alone changed sample 001's
    // summary through candle's matrix product (the gemm crate sizes its blocking from it).
    // Prompts are fed 100 tokens a pass instead of 512, so a pass boundary falls inside
    // every prompt.
    assert_pinned(&Setting {
        name: "3 threads, 48K/12-way L1d, 2M/16-way L2, 105M/15-way L3, 100-token prompt passes",
        env: &[("TARJAMA_PREFILL_TOKENS", "100")],
        args: &["--threads", "3"],
        caches: Some(["48K", "12", "2048K", "16", "105M", "15"]),
    });
}

/// The simulation of other caches really reaches the process: sysfs shows the sizes.
#[test]
fn other_cache_sizes_reach_the_process() {
    let script = root().join("scripts/with-cache-sizes.sh");
    let o = Command::new(script)
        .args(["48K", "12", "2048K", "16", "105M", "15", "--", "cat"])
        .arg(PathBuf::from(
            "/sys/devices/system/cpu/cpu0/cache/index0/size",
        ))
        .output()
        .expect("run scripts/with-cache-sizes.sh");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(String::from_utf8_lossy(&o.stdout).trim(), "48K");
}
