//! Nightly-run reliability through the real binary: the translation memory, two runs
//! sharing it, and a run killed with SIGKILL part-way then finished by a rerun. The model
//! is the tiny OPUS-MT fixture: a real model path, fast enough to run many times.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use tarjama::document::{ParagraphKind, TranslatedDocument};

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn tiny_model() -> String {
    root()
        .join("tests/fixtures/marian-tiny")
        .display()
        .to_string()
}

/// A copy of the bundled samples to translate (and edit).
fn inputs() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for entry in std::fs::read_dir(root().join("samples")).unwrap() {
        let path = entry.unwrap().path();
        std::fs::copy(&path, dir.path().join(path.file_name().unwrap())).unwrap();
    }
    dir
}

fn command(input: &Path, out: &Path, memory: &Path, extra: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_tarjama"));
    c.args([
        "translate",
        input.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ])
    .args(["--model", &tiny_model(), "--no-summary"])
    .args(extra)
    .env("TARJAMA_MEMORY", memory)
    .env("TARJAMA_LOG", "tarjama=info");
    c
}

fn run(input: &Path, out: &Path, memory: &Path, extra: &[&str]) -> Output {
    let o = command(input, out, memory, extra).output().unwrap();
    assert!(o.status.success(), "{}", text(&o));
    o
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// The number in "N segment(s) from the translation memory".
fn memory_hits(o: &Output) -> usize {
    let stdout = String::from_utf8_lossy(&o.stdout);
    let at = stdout
        .find(" segment(s) from the translation memory")
        .unwrap_or_else(|| panic!("no memory figure in {stdout}"));
    let digits: String = stdout[..at]
        .chars()
        .rev()
        .take_while(char::is_ascii_digit)
        .collect();
    digits.chars().rev().collect::<String>().parse().unwrap()
}

fn entries(memory: &Path) -> usize {
    let conn = rusqlite::Connection::open(memory).unwrap();
    conn.busy_timeout(Duration::from_secs(10)).unwrap();
    conn.query_row("SELECT COUNT(*) FROM translations", [], |r| {
        r.get::<_, i64>(0)
    })
    .unwrap_or(0) as usize
}

/// The document records of an output directory (not the run's failures*.json).
fn records(out: &Path) -> Vec<PathBuf> {
    let mut docs: Vec<PathBuf> = std::fs::read_dir(out)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .filter(|p| {
            !p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("failures")
        })
        .collect();
    docs.sort();
    docs
}

/// A sentence as a reader gets it: source, translation, number of warnings.
type ReadSentence = (String, String, usize);

/// Every document's sentences and warnings, by output name: what a reader gets.
fn translations(out: &Path) -> Vec<(String, Vec<ReadSentence>)> {
    records(out)
        .iter()
        .map(|p| {
            let doc: TranslatedDocument =
                serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap();
            let sentences = doc
                .paragraphs
                .iter()
                .flat_map(|p| p.sentences.iter())
                .map(|s| (s.source.clone(), s.translation.clone(), s.warnings.len()))
                .collect();
            (doc.name, sentences)
        })
        .collect()
}

/// Translated segments (passthrough text excluded), and how many are distinct.
fn segment_counts(outs: &[&Path]) -> (usize, usize) {
    let mut sources = Vec::new();
    for out in outs {
        for path in records(out) {
            let doc: TranslatedDocument =
                serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
            for p in doc
                .paragraphs
                .iter()
                .filter(|p| p.kind != ParagraphKind::Passthrough)
            {
                sources.extend(p.sentences.iter().map(|s| s.source.clone()));
            }
        }
    }
    let all = sources.len();
    sources.sort();
    sources.dedup();
    (all, sources.len())
}

fn distinct_sources(outs: &[&Path]) -> usize {
    segment_counts(outs).1
}

#[test]
fn a_second_run_takes_unchanged_segments_from_memory() {
    let input = inputs();
    let work = tempfile::tempdir().unwrap();
    let memory = work.path().join("memory.sqlite");
    let out = work.path().join("out");
    let first = run(input.path(), &out, &memory, &[]);
    assert_eq!(memory_hits(&first), 0);
    let (total, distinct) = segment_counts(&[&out]);
    assert_eq!(entries(&memory), distinct);
    let before = translations(&out);

    // One paragraph of one document is edited; everything else is as it was.
    let doc = input.path().join("002_053fa6117d3f16e6.txt");
    let original = std::fs::read_to_string(&doc).unwrap();
    let edited = original.replacen("مجلس التعاون", "مجلس التعاون الخليجي", 1);
    assert_ne!(edited, original);
    std::fs::write(&doc, edited).unwrap();
    // --force: the unchanged documents are up to date and would be skipped whole; this is
    // about the memory serving every unchanged segment of a document that is redone.
    let second = run(input.path(), &out, &memory, &["--force"]);
    let hits = memory_hits(&second);
    assert!(
        hits < total && hits >= total - 3,
        "{hits} of {total} reused"
    );
    let after = translations(&out);
    let unchanged = |name: &str| before.iter().find(|(n, _)| n == name).unwrap().1.clone();
    for (name, sentences) in &after {
        if !name.starts_with("002") {
            assert_eq!(sentences, &unchanged(name), "{name} changed");
        }
    }

    // --no-memory neither reads nor writes it.
    let third = run(input.path(), &out, &memory, &["--no-memory", "--force"]);
    assert!(
        !text(&third).contains("translation memory"),
        "{}",
        text(&third)
    );

    // Nothing changed since: every document is up to date, even with a model directory.
    let fourth = run(input.path(), &out, &memory, &[]);
    assert!(text(&fourth).contains("0 translated"), "{}", text(&fourth));
}

#[test]
fn memory_commands_report_export_and_clear() {
    let input = inputs();
    let work = tempfile::tempdir().unwrap();
    let memory = work.path().join("memory.sqlite");
    run(input.path(), &work.path().join("out"), &memory, &[]);
    let n = entries(&memory);
    let tarjama = |args: &[&str]| {
        let o = Command::new(env!("CARGO_BIN_EXE_tarjama"))
            .args(args)
            .env("TARJAMA_MEMORY", &memory)
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", text(&o));
        String::from_utf8_lossy(&o.stdout).into_owned()
    };
    let stats = tarjama(&["memory", "stats"]);
    assert!(
        stats.contains(&format!("{n} entries")) && stats.contains("marian-tiny"),
        "{stats}"
    );
    let tmx = work.path().join("memory.tmx");
    let exported = tarjama(&["memory", "export", "--tmx", tmx.to_str().unwrap()]);
    assert!(
        exported.starts_with(&format!("{n} translation units")),
        "{exported}"
    );
    let xml = std::fs::read_to_string(&tmx).unwrap();
    assert_eq!(xml.matches("<tu ").count(), n);
    assert_eq!(xml.matches("<tuv xml:lang=\"ar\">").count(), n);
    assert!(tarjama(&["memory", "clear"]).contains(&format!("{n} entries deleted")));
    assert_eq!(entries(&memory), 0);

    // What was exported imports back, as pairs offered to --memory-examples; units with
    // an empty side (the tiny model sometimes answers nothing) are not examples.
    let empty = xml
        .split("<seg>")
        .skip(1)
        .filter(|seg| {
            seg.split("</seg>")
                .next()
                .unwrap_or_default()
                .trim()
                .is_empty()
        })
        .count();
    let kept = n - empty;
    let imported = tarjama(&["memory", "import", tmx.to_str().unwrap()]);
    assert!(
        imported.starts_with(&format!("{kept} translation pairs imported")),
        "{imported} ({n} units, {empty} empty)"
    );
    assert_eq!(entries(&memory), kept);
    let (arabic, english) = (work.path().join("a.ar"), work.path().join("a.en"));
    std::fs::write(&arabic, "اجتمع المجلس الوزاري\nانتهى الاجتماع\n").unwrap();
    std::fs::write(&english, "The Ministerial Council met\nThe meeting ended\n").unwrap();
    let args = |e: &Path| {
        vec![
            "memory".to_string(),
            "import".into(),
            "--arabic".into(),
            arabic.display().to_string(),
            "--english".into(),
            e.display().to_string(),
        ]
    };
    let aligned: Vec<String> = args(&english);
    let aligned: Vec<&str> = aligned.iter().map(String::as_str).collect();
    assert!(tarjama(&aligned).starts_with("2 translation pairs imported"));
    assert_eq!(entries(&memory), kept + 2);

    // Files that cannot be imported are one line naming the file; nothing is stored.
    std::fs::write(&english, "The Ministerial Council met\n").unwrap();
    let not_tmx = work.path().join("notes.tmx");
    std::fs::write(&not_tmx, "<html><body>no</body></html>").unwrap();
    let short: Vec<String> = args(&english);
    let not_tmx_args = ["memory", "import", not_tmx.to_str().unwrap()];
    for (bad, names) in [
        (short.iter().map(String::as_str).collect::<Vec<_>>(), "a.ar"),
        (not_tmx_args.to_vec(), "notes.tmx"),
    ] {
        let o = Command::new(env!("CARGO_BIN_EXE_tarjama"))
            .args(&bad)
            .env("TARJAMA_MEMORY", &memory)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(!o.status.success());
        assert!(
            err.contains(names) && err.trim().lines().count() == 1,
            "{err}"
        );
    }
    assert_eq!(entries(&memory), kept + 2);
}

#[test]
fn two_runs_write_one_memory_at_once() {
    let work = tempfile::tempdir().unwrap();
    let memory = work.path().join("memory.sqlite");
    // Each run gets different documents, at batch size 1 so their writes interleave.
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    for (i, entry) in std::fs::read_dir(root().join("samples"))
        .unwrap()
        .enumerate()
    {
        let path = entry.unwrap().path();
        let into = if i % 2 == 0 { a.path() } else { b.path() };
        std::fs::copy(&path, into.join(path.file_name().unwrap())).unwrap();
    }
    let spawn = |input: &Path, out: &str| {
        command(
            input,
            &work.path().join(out),
            &memory,
            &["--batch-size", "1"],
        )
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
    };
    let (first, second) = (spawn(a.path(), "out-a"), spawn(b.path(), "out-b"));
    for child in [first, second] {
        let o = child.wait_with_output().unwrap();
        assert!(o.status.success(), "{}", text(&o));
    }
    let outs = [work.path().join("out-a"), work.path().join("out-b")];
    assert_eq!(entries(&memory), distinct_sources(&[&outs[0], &outs[1]]));
    let conn = rusqlite::Connection::open(&memory).unwrap();
    let check: String = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(check, "ok");
}

#[test]
fn a_killed_run_resumes_to_the_same_outputs() {
    let input = inputs();
    let work = tempfile::tempdir().unwrap();

    // The reference: one uninterrupted run.
    let reference = work.path().join("reference");
    run(
        input.path(),
        &reference,
        &work.path().join("reference.sqlite"),
        &[],
    );
    let total = distinct_sources(&[&reference]);

    // The same run, killed with SIGKILL once part of its segments are in the memory.
    let memory = work.path().join("memory.sqlite");
    let out = work.path().join("out");
    let slow = ["--batch-size", "1", "--threads", "1"];
    let mut child = command(input.path(), &out, &memory, &slow)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    while entries(&memory) < total / 4 {
        assert!(Instant::now() < deadline, "the run made no progress");
        assert!(
            child.try_wait().unwrap().is_none(),
            "the run ended before it was killed"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let kept = entries(&memory);
    assert!(
        kept < total,
        "killed after the last segment ({kept} of {total})"
    );
    // Documents are written together at the end of their group: nothing is there yet,
    // and nothing half-written is left behind.
    let leftovers: Vec<_> = std::fs::read_dir(&out)
        .map(|d| d.flatten().map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert!(
        leftovers
            .iter()
            .all(|n| !n.to_string_lossy().ends_with(".json")),
        "{leftovers:?}"
    );

    // The rerun translates only what is missing and gives the uninterrupted outputs.
    let rerun = run(input.path(), &out, &memory, &slow);
    assert!(memory_hits(&rerun) >= kept, "{}", text(&rerun));
    assert_eq!(translations(&out), translations(&reference));
    for file in ["index.html", "digest.md"] {
        assert_eq!(
            std::fs::read_to_string(out.join(file)).unwrap(),
            std::fs::read_to_string(reference.join(file)).unwrap(),
            "{file}"
        );
    }
}
