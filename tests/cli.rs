//! The `tarjama` binary end to end, on the real default model and real samples.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use tarjama::check;
use tarjama::document::{ParagraphKind, TranslatedDocument};

fn tarjama(args: &[&str]) -> Output {
    // Each run gets a memory of its own: these tests are about the model, not about what
    // an earlier run remembered.
    static RUNS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let run = RUNS.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    let memory = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("cli-memory-{}-{run}.sqlite", std::process::id()));
    Command::new(env!("CARGO_BIN_EXE_tarjama"))
        .args(args)
        .env("TARJAMA_MEMORY", memory)
        .env("TARJAMA_LOG", "tarjama=info")
        .output()
        .expect("run tarjama")
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn sample(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("samples")
        .join(name)
}

/// `tarjama translate input --out out`, then the `extra` arguments.
fn translate(input: &Path, out: &Path, extra: &[&str]) -> Output {
    let (input, out) = (input.to_str().unwrap(), out.to_str().unwrap());
    let mut args = vec!["translate", input, "--out", out];
    args.extend_from_slice(extra);
    tarjama(&args)
}

fn latin_share(s: &str) -> f64 {
    let letters: Vec<char> = s.chars().filter(|c| c.is_alphabetic()).collect();
    let latin = letters.iter().filter(|c| c.is_ascii_alphabetic()).count();
    latin as f64 / letters.len().max(1) as f64
}

#[test]
fn translates_a_real_sample_end_to_end_then_skips_it() {
    let out = tempfile::tempdir().unwrap();
    let input = sample("001_16cb7a662e3fa037.txt");
    let o = translate(&input, out.path(), &[]);
    let log = text(&o);
    assert!(o.status.success(), "{log}");
    assert!(log.contains("1 translated"), "{log}");

    let name = "001_16cb7a662e3fa037";
    for f in ["html", "md", "en.txt", "json"] {
        let p = out.path().join(format!("{name}.{f}"));
        assert!(p.is_file(), "missing {}", p.display());
    }
    for f in ["index.html", "digest.md"] {
        assert!(out.path().join(f).is_file(), "missing {f}");
    }
    let json = std::fs::read_to_string(out.path().join(format!("{name}.json"))).unwrap();
    let doc: TranslatedDocument = serde_json::from_str(&json).unwrap();
    // Every flagged sentence is listed at document level and shown in the page.
    assert_eq!(
        doc.warnings.len(),
        doc.paragraphs
            .iter()
            .flat_map(|p| &p.sentences)
            .map(|s| s.warnings.len())
            .sum::<usize>()
    );

    let html = std::fs::read_to_string(out.path().join(format!("{name}.html"))).unwrap();
    assert!(html.starts_with("<!DOCTYPE html>") && html.trim_end().ends_with("</html>"));
    let table = &html[html.find("<table").unwrap()..];
    assert_eq!(
        table.matches(r#"<mark class="flag""#).count(),
        2 * doc.flagged_sentences(),
        "each flagged sentence is marked in both columns"
    );
    // A title or summary with an error carries its flag above the table; one with notes
    // only is marked as a note.
    let head = &html[..html.find("<table").unwrap()];
    let has_error = |w: &[check::Warning]| w.iter().any(check::Warning::is_error);
    assert_eq!(
        head.contains("title flagged"),
        has_error(&doc.title_warnings)
    );
    assert_eq!(
        head.matches(r#"<mark class="flag""#).count(),
        usize::from(has_error(&doc.title_warnings)) + usize::from(has_error(&doc.summary_warnings))
    );
    assert_eq!(
        html.matches(r#"<td dir="rtl" lang="ar""#).count(),
        doc.paragraphs
            .iter()
            .filter(|p| p.kind != ParagraphKind::Passthrough)
            .count()
    );
    let md = std::fs::read_to_string(out.path().join(format!("{name}.md"))).unwrap();
    assert!(md.contains("| Arabic | English |"));
    let txt = std::fs::read_to_string(out.path().join(format!("{name}.en.txt"))).unwrap();
    assert_eq!(txt.trim().split("\n\n").count(), doc.paragraphs.len());

    let english = doc.english_text();
    assert!(latin_share(&english) > 0.95, "{english}");
    for p in doc
        .paragraphs
        .iter()
        .filter(|p| p.kind == ParagraphKind::Body)
    {
        assert!(
            !check::has_arabic_script(&p.translation),
            "{}",
            p.translation
        );
        for s in &p.sentences {
            // A number the model dropped even on retry must at least be flagged to the reader.
            let missing = check::missing_numbers(&s.source, &s.translation);
            let flagged = s
                .warnings
                .iter()
                .any(|w| w.check == check::CheckKind::Numbers);
            assert!(
                missing.is_empty() || flagged,
                "numbers {missing:?} lost unflagged in {s:?}"
            );
        }
    }
    let summary = doc.summary.clone().unwrap_or_default();
    assert!(!summary.is_empty());
    assert!(summary.len() < english.len() / 2, "{summary}");
    assert!(!doc.title.is_empty());
    assert!(doc.arabic_words > 300);

    let again = translate(&input, out.path(), &["--offline"]);
    let log = text(&again);
    assert!(again.status.success(), "{log}");
    assert!(log.contains("0 translated, 1 skipped"), "{log}");
}

#[test]
fn bad_documents_fail_alone_and_good_ones_complete() {
    let dir = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.txt");
    std::fs::write(&good, "انعقد الاجتماع في الرياض يوم الثلاثاء.\n").unwrap();
    let latin = dir.path().join("latin.txt");
    std::fs::write(&latin, "Leave a Reply\n").unwrap();
    let bad = dir.path().join("bad.txt");
    std::fs::write(&bad, b"\xd8\xa7\xd9\x84\nok\n\xff\xfe broken\n").unwrap();
    let empty = dir.path().join("empty.txt");
    std::fs::write(&empty, "  \n\n").unwrap();

    let o = translate(dir.path(), out.path(), &["--no-summary"]);
    let log = text(&o);
    assert_eq!(o.status.code(), Some(1), "{log}");
    assert!(log.contains("bad.txt") && log.contains("UTF-8"), "{log}");
    assert!(log.contains("line 3"), "{log}");
    assert!(log.contains("empty.txt"), "{log}");
    assert!(
        log.contains("2 translated, 0 skipped (up to date), 2 failed"),
        "{log}"
    );
    assert!(out.path().join("good.json").is_file());
    assert!(!out.path().join("bad.json").exists());
    assert!(!out.path().join("empty.json").exists());

    let latin_doc: TranslatedDocument =
        serde_json::from_str(&std::fs::read_to_string(out.path().join("latin.json")).unwrap())
            .unwrap();
    assert_eq!(latin_doc.paragraphs[0].translation, "Leave a Reply");
    assert!(log.contains("no Arabic text"), "{log}");
    let digest = std::fs::read_to_string(out.path().join("digest.md")).unwrap();
    assert!(
        digest.contains("bad.txt") && digest.contains("empty.txt"),
        "{digest}"
    );
    // Nothing half-written: no temporary files left behind.
    for entry in std::fs::read_dir(out.path()).unwrap() {
        let name = entry.unwrap().file_name().to_string_lossy().into_owned();
        assert!(!name.starts_with(".tmp"), "{name}");
    }
}

#[test]
fn usage_errors_exit_2_and_missing_inputs_exit_1() {
    let out = tempfile::tempdir().unwrap();
    let o = tarjama(&["translate", "--out", out.path().to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    let o = tarjama(&["translate", "x.txt", "--out", "o", "--format", "pdf"]);
    assert_eq!(o.status.code(), Some(2));
    let o = tarjama(&[
        "translate",
        "/nonexistent/doc.txt",
        "--out",
        out.path().to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert!(text(&o).contains("/nonexistent/doc.txt"), "{}", text(&o));

    // An output "directory" that is a file cannot be written into.
    let file = out.path().join("not-a-dir");
    std::fs::write(&file, "x").unwrap();
    let o = tarjama(&[
        "translate",
        sample("001_16cb7a662e3fa037.txt").to_str().unwrap(),
        "--out",
        file.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(1));
    let log = text(&o);
    assert!(log.contains("not-a-dir") && log.contains("--out"), "{log}");
    assert_eq!(log.trim().lines().count(), 1, "{log}");
}

#[test]
fn corrupt_and_truncated_models_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let doc = dir.path().join("d.txt");
    std::fs::write(&doc, "انعقد الاجتماع في الرياض.\n").unwrap();
    let junk = dir.path().join("junk.gguf");
    std::fs::write(&junk, b"this is not a model").unwrap();
    let o = translate(&doc, out.path(), &["--model", junk.to_str().unwrap()]);
    let log = text(&o);
    assert_eq!(o.status.code(), Some(1), "{log}");
    assert!(
        log.contains("junk.gguf") && log.contains("not a usable GGUF"),
        "{log}"
    );

    // The real header with the tensor data cut off.
    let real = tarjama::registry::resolve(
        tarjama::registry::DEFAULT_MODEL,
        tarjama::registry::FetchPolicy::Allow,
    )
    .unwrap();
    let truncated = dir.path().join("truncated.gguf");
    let mut bytes = vec![0u8; 8 << 20];
    use std::io::Read;
    std::fs::File::open(&real.path)
        .unwrap()
        .read_exact(&mut bytes)
        .unwrap();
    std::fs::write(&truncated, &bytes).unwrap();
    let o = translate(&doc, out.path(), &["--model", truncated.to_str().unwrap()]);
    let log = text(&o);
    assert_eq!(o.status.code(), Some(1), "{log}");
    assert!(log.contains("truncated"), "{log}");
}

#[test]
fn hub_references_fail_fast_with_one_line() {
    let out = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let doc = dir.path().join("d.txt");
    std::fs::write(&doc, "انعقد الاجتماع في الرياض.\n").unwrap();
    let started = std::time::Instant::now();
    // A repository that does not exist: fails with or without network access.
    let model = "hf:tarjama-tests/no-such-model:model.gguf";
    let o = translate(&doc, out.path(), &["--model", model]);
    let log = text(&o);
    assert_eq!(o.status.code(), Some(1), "{log}");
    assert!(
        log.contains("cannot fetch `hf:tarjama-tests/no-such-model"),
        "{log}"
    );
    assert!(started.elapsed().as_secs() < 120);
}

#[test]
fn a_gpu_asked_of_a_cpu_build_is_a_clear_error() {
    if cfg!(feature = "cuda") {
        return;
    }
    let out = tempfile::tempdir().unwrap();
    let doc = sample("000_e0e78c066911b3fb.txt");
    let o = translate(&doc, out.path(), &["--device", "cuda"]);
    let log = text(&o);
    assert_eq!(o.status.code(), Some(1), "{log}");
    assert!(log.contains("built without CUDA"), "{log}");
    assert!(log.contains("--device cpu"), "{log}");
}

/// `tarjama bench` runs each batch size in its own process, prints one row each, and
/// checks the batched translations against the batch-1 ones; its exported requests are
/// the exact prompts, as token ids, that the llama.cpp script replays.
#[test]
fn bench_prints_a_row_per_batch_size_and_exports_its_requests() {
    let dir = tempfile::tempdir().unwrap();
    let doc = sample("003_1f163014fd5594f7.txt");
    let rows = dir.path().join("rows");
    let o = tarjama(&[
        "bench",
        doc.to_str().unwrap(),
        "--limit",
        "3",
        "--batch-sizes",
        "1,3",
        "--max-new-tokens",
        "48",
        "--threads",
        "2",
        "--out",
        rows.to_str().unwrap(),
    ]);
    let log = text(&o);
    assert!(o.status.success(), "{log}");
    let stdout = String::from_utf8_lossy(&o.stdout).to_string();
    let table: Vec<&str> = stdout.lines().collect();
    assert!(table[0].starts_with("engine"), "{log}");
    assert_eq!(table.len(), 3, "{log}");
    assert!(table[1].split_whitespace().nth(1) == Some("1"), "{log}");
    assert!(table[2].split_whitespace().nth(1) == Some("3"), "{log}");
    assert!(
        table[2].ends_with("3/3"),
        "batched output differs from unbatched: {log}"
    );
    let row: serde_json::Value =
        serde_json::from_slice(&std::fs::read(rows.join("batch-3.json")).unwrap()).unwrap();
    assert_eq!(row["requests"], 3);
    assert!(row["generated_tokens_per_s"].as_f64().unwrap() > 0.0);
    assert!(row["peak_rss_mb"].as_f64().unwrap() > 100.0);
    // The threads computing the model, not rayon's one.
    assert_eq!(row["threads"], 2);

    let requests = dir.path().join("requests.jsonl");
    let o = tarjama(&[
        "bench",
        doc.to_str().unwrap(),
        "--limit",
        "3",
        "--export-requests",
        requests.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let lines: Vec<serde_json::Value> = std::fs::read_to_string(&requests)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 3);
    for line in &lines {
        let prompt = line["prompt"].as_str().unwrap();
        assert!(prompt.starts_with("<|im_start|>system"), "{prompt}");
        assert!(prompt.ends_with("<|im_start|>assistant\n"), "{prompt}");
        assert!(line["prompt_tokens"].as_array().unwrap().len() > 100);
        assert!(line["max_new_tokens"].as_u64().unwrap() > 0);
        // <|im_end|> and <|endoftext|>: llama.cpp's end-of-generation set, in id order.
        let stops: Vec<u64> = line["stop_tokens"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|t| t.as_u64())
            .collect();
        assert_eq!(stops, vec![151643, 151645], "{line}");
    }
}

/// `bench --whole-job` times `translate` itself beside translation alone: a job row and a
/// line setting it beside translation, and the English it wrote is what `translate` writes.
#[test]
fn bench_whole_job_is_translate_timed_beside_translation_alone() {
    let dir = tempfile::tempdir().unwrap();
    let doc = dir.path().join("visit.txt");
    std::fs::write(
        &doc,
        "استقبل رئيس الوزراء اليوم وفدا من البنك الدولي لبحث التعاون في مجال التعليم.\n\n\
         وأكد الجانبان أهمية تعزيز الشراكة بين الطرفين.\n",
    )
    .unwrap();
    let rows = dir.path().join("rows");
    let common = ["--max-new-tokens", "48", "--threads", "2"];
    let mut args = vec![
        "bench",
        doc.to_str().unwrap(),
        "--batch-sizes",
        "2",
        "--whole-job",
        "--out",
        rows.to_str().unwrap(),
    ];
    args.extend_from_slice(&common);
    let o = tarjama(&args);
    let log = text(&o);
    assert!(o.status.success(), "{log}");
    let stdout = String::from_utf8_lossy(&o.stdout).to_string();
    let table: Vec<&str> = stdout.lines().collect();
    assert_eq!(table.len(), 4, "{log}");
    assert!(table[2].starts_with("tarjama job"), "{log}");
    assert!(
        table[3].starts_with("whole job at batch 2:") && table[3].contains("of translation only"),
        "{log}"
    );
    let row: serde_json::Value =
        serde_json::from_slice(&std::fs::read(rows.join("job-batch-2.json")).unwrap()).unwrap();
    assert_eq!(row["requests"], 1, "documents translated");
    assert!(
        row["stages"]["translate_s"].as_f64().unwrap() > 0.0,
        "{row}"
    );
    assert!(row["arabic_words"].as_u64().unwrap() >= 18, "{row}");

    let out = dir.path().join("translated");
    let mut extra = vec!["--batch-size", "2", "--no-memory"];
    extra.extend_from_slice(&common);
    let o = translate(&doc, &out, &extra);
    assert!(o.status.success(), "{}", text(&o));
    let by_translate = std::fs::read_to_string(out.join("visit.en.txt")).unwrap();
    let by_bench =
        std::fs::read_to_string(rows.join("job-batch-2-outputs").join("visit.en.txt")).unwrap();
    assert_eq!(by_bench, by_translate);
}

#[test]
fn a_close_memory_match_is_shown_to_the_model() {
    let work = tempfile::tempdir().unwrap();
    let memory = work.path().join("memory.sqlite");
    let run = |args: &[&str]| {
        let o = Command::new(env!("CARGO_BIN_EXE_tarjama"))
            .args(args)
            .env("TARJAMA_MEMORY", &memory)
            .env("TARJAMA_LOG", "tarjama=info")
            .output()
            .expect("run tarjama");
        assert!(o.status.success(), "{}", text(&o));
        text(&o)
    };
    let tmx = work.path().join("approved.tmx");
    std::fs::write(
        &tmx,
        r#"<?xml version="1.0" encoding="UTF-8"?>
<tmx version="1.4"><header srclang="ar"/><body>
<tu><tuv xml:lang="ar"><seg>عقد المجلس الوزاري لمجلس التعاون اجتماعه الثامن والأربعين بعد المائة في مدينة الرياض.</seg></tuv>
<tuv xml:lang="en"><seg>The GCC Ministerial Council held its 148th meeting in Riyadh.</seg></tuv></tu>
</body></tmx>"#,
    )
    .unwrap();
    assert!(run(&["memory", "import", tmx.to_str().unwrap()]).contains("1 translation pairs"));
    let doc = work.path().join("news.txt");
    std::fs::write(
        &doc,
        "عقد المجلس الوزاري لمجلس التعاون اجتماعه التاسع والأربعين بعد المائة في مدينة جدة.\n\n\
         وناقش الوزراء أسعار الغذاء.\n",
    )
    .unwrap();
    let out = work.path().join("out");
    let log = run(&[
        "translate",
        doc.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--no-summary",
        "--memory-examples",
    ]);
    assert!(log.contains("; 1 shown a close memory match"), "{log}");
    let json = std::fs::read_to_string(out.join("news.json")).unwrap();
    let doc: TranslatedDocument = serde_json::from_str(&json).unwrap();
    assert_eq!(doc.settings.memory_examples, Some(50));
    let first = &doc.paragraphs[0].translation;
    assert!(
        first.contains("Ministerial Council") && first.contains("Jeddah"),
        "{first}"
    );
}

/// A model given as a local `.gguf` path has an identity before it is loaded, so an
/// unchanged document is skipped on the next run instead of retranslated every night.
#[test]
fn a_local_gguf_file_skips_unchanged_documents() {
    let model = tarjama::registry::resolve(
        tarjama::registry::DEFAULT_MODEL,
        tarjama::registry::FetchPolicy::Allow,
    )
    .expect("the default model");
    let dir = tempfile::tempdir().unwrap();
    let doc = dir.path().join("short.txt");
    std::fs::write(&doc, "عقد المجلس اجتماعه الأول في الرياض.\n").unwrap();
    let out = dir.path().join("out");
    let run = || {
        translate(
            &doc,
            &out,
            &["--model", model.path.to_str().unwrap(), "--no-summary"],
        )
    };
    let first = run();
    assert!(first.status.success(), "{}", text(&first));
    assert!(text(&first).contains("1 translated"), "{}", text(&first));
    let second = run();
    assert!(second.status.success(), "{}", text(&second));
    assert!(
        text(&second).contains("0 translated, 1 skipped"),
        "{}",
        text(&second)
    );
}
