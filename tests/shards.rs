//! `--shard I/N` and `tarjama digest`: shards cover every document exactly once, and
//! their merged digest is the one a single machine writes. The model is the tiny
//! OPUS-MT fixture (a real model path, fast).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn tarjama(args: &[&str]) -> Output {
    let o = Command::new(env!("CARGO_BIN_EXE_tarjama"))
        .args(args)
        .env("TARJAMA_LOG", "tarjama=info")
        .output()
        .unwrap();
    o
}

fn translate(input: &Path, out: &Path, extra: &[&str]) -> Output {
    let model = root().join("tests/fixtures/marian-tiny");
    let mut args = vec![
        "translate",
        input.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--model",
        model.to_str().unwrap(),
        "--no-summary",
        "--no-memory",
    ];
    args.extend_from_slice(extra);
    tarjama(&args)
}

/// Ten documents in two folders (the same file names in each) and one that is not text.
fn inputs() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for folder in ["gcc", "asia"] {
        std::fs::create_dir_all(dir.path().join(folder)).unwrap();
        for entry in std::fs::read_dir(root().join("samples")).unwrap() {
            let path = entry.unwrap().path();
            std::fs::copy(
                &path,
                dir.path().join(folder).join(path.file_name().unwrap()),
            )
            .unwrap();
        }
    }
    std::fs::write(
        dir.path().join("asia/broken.txt"),
        [0u8, 159, 146, 150, 0, 1, 2],
    )
    .unwrap();
    dir
}

fn records(dir: &Path) -> BTreeSet<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".json") && !n.starts_with("failures"))
        .collect()
}

fn read(path: PathBuf) -> String {
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn three_shards_cover_every_document_once_and_merge_into_the_single_digest() {
    let input = inputs();
    let work = tempfile::tempdir().unwrap();
    let single = work.path().join("single");
    let o = translate(input.path(), &single, &[]);
    assert_eq!(o.status.code(), Some(1), "the broken document fails");
    let all = records(&single);
    assert_eq!(all.len(), 10);

    let mut seen = BTreeSet::new();
    let shared = work.path().join("shared");
    std::fs::create_dir_all(&shared).unwrap();
    let mut failures_reported = 0;
    for i in 0..3 {
        let out = work.path().join(format!("shard-{i}"));
        let o = translate(input.path(), &out, &["--shard", &format!("{i}/3")]);
        let log = format!(
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
        assert!(
            o.status.code() == Some(0) || o.status.code() == Some(1),
            "{log}"
        );
        let mine = records(&out);
        assert!(mine.is_disjoint(&seen), "shard {i} repeats a document");
        seen.extend(mine);
        let failures = read(out.join(format!("failures.shard-{i}-of-3.json")));
        let failures: Vec<serde_json::Value> = serde_json::from_str(&failures).unwrap();
        failures_reported += failures
            .iter()
            .filter(|f| {
                f["source_path"]
                    .as_str()
                    .is_some_and(|p| p.ends_with("broken.txt"))
            })
            .count();
        // What a shared volume gives: every shard's files in one directory.
        for entry in std::fs::read_dir(&out).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_owned();
            if name != "index.html" && name != "digest.md" {
                std::fs::copy(&path, shared.join(name)).unwrap();
            }
        }
    }
    assert_eq!(seen, all, "the shards together translated every document");
    assert_eq!(
        failures_reported, 1,
        "the broken document failed in exactly one shard"
    );

    let o = tarjama(&["digest", shared.to_str().unwrap()]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    for file in ["digest.md", "index.html"] {
        assert_eq!(read(shared.join(file)), read(single.join(file)), "{file}");
    }

    // Shards that kept directories of their own: one digest links into each.
    let merged = work.path().join("merged");
    let dirs: Vec<String> = (0..3)
        .map(|i| work.path().join(format!("shard-{i}")).display().to_string())
        .collect();
    let mut args = vec!["digest"];
    args.extend(dirs.iter().map(String::as_str));
    args.extend(["--out", merged.to_str().unwrap()]);
    let o = tarjama(&args);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let md = read(merged.join("digest.md"));
    assert_eq!(md.matches("](../shard-").count(), 10, "{md}");
    assert_eq!(
        md.lines()
            .filter(|l| l.starts_with("- ") && l.contains("broken.txt"))
            .count(),
        1,
        "{md}"
    );
}

#[test]
fn bad_shard_arguments_are_usage_errors() {
    for bad in ["3/3", "1", "a/b", "0/0"] {
        let o = tarjama(&[
            "translate",
            "samples",
            "--out",
            "/tmp/never",
            "--shard",
            bad,
        ]);
        assert_eq!(o.status.code(), Some(2), "{bad}");
        assert!(String::from_utf8_lossy(&o.stderr).contains("I/N"), "{bad}");
    }
}
