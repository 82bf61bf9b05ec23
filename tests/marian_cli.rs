//! `tarjama` with an OPUS-MT model: a local directory, the hub cache layout, and `hf:`
//! references that cannot be fetched. The model is the tiny random fixture, so the
//! English is noise; these tests check the plumbing, `marian_parity.rs` the numbers.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use tarjama::document::TranslatedDocument;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn tiny_model() -> PathBuf {
    root().join("tests/fixtures/marian-tiny")
}

fn sample() -> PathBuf {
    root().join("samples/001_16cb7a662e3fa037.txt")
}

/// Runs tarjama with its hub cache in `hf_home`, so the user's cache is never read.
fn tarjama(args: &[&str], hf_home: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tarjama"))
        .args(args)
        .env("HF_HOME", hf_home)
        .env("TARJAMA_MEMORY", hf_home.join("memory.sqlite"))
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

fn translated(out: &Path) -> TranslatedDocument {
    let json = std::fs::read_to_string(out.join("001_16cb7a662e3fa037.json")).unwrap();
    serde_json::from_str(&json).unwrap()
}

#[test]
fn a_model_directory_translates_a_document() {
    let out = tempfile::tempdir().unwrap();
    let home = tempfile::tempdir().unwrap();
    let o = tarjama(
        &[
            "translate",
            sample().to_str().unwrap(),
            "--out",
            out.path().to_str().unwrap(),
            "--model",
            tiny_model().to_str().unwrap(),
            "--no-summary",
            "--batch-size",
            "4",
        ],
        home.path(),
    );
    let log = text(&o);
    assert!(o.status.success(), "{log}");
    assert!(log.contains("1 translated"), "{log}");
    let doc = translated(out.path());
    assert_eq!(doc.model.name, "marian-tiny");
    assert!(doc.summary.is_none());
    let english: Vec<&str> = doc
        .paragraphs
        .iter()
        .flat_map(|p| p.sentences.iter().map(|s| s.translation.as_str()))
        .collect();
    assert!(!english.is_empty());
    assert!(english.iter().any(|e| !e.is_empty()), "{english:?}");
    for name in ["001_16cb7a662e3fa037.html", "index.html", "digest.md"] {
        assert!(out.path().join(name).is_file(), "{name}");
    }

    // The same document and model directory again: up to date, not retranslated.
    let o = tarjama(
        &[
            "translate",
            sample().to_str().unwrap(),
            "--out",
            out.path().to_str().unwrap(),
            "--model",
            tiny_model().to_str().unwrap(),
            "--no-summary",
            "--batch-size",
            "4",
        ],
        home.path(),
    );
    let log = text(&o);
    assert!(o.status.success(), "{log}");
    assert!(log.contains("0 translated, 1 skipped"), "{log}");
}

#[test]
fn the_hub_cache_layout_loads_offline() {
    let home = tempfile::tempdir().unwrap();
    let repo = home.path().join("hub/models--Helsinki-NLP--opus-mt-ar-en");
    let snapshot = repo.join("snapshots/0123456789abcdef");
    std::fs::create_dir_all(&snapshot).unwrap();
    std::fs::create_dir_all(repo.join("refs")).unwrap();
    std::fs::write(repo.join("refs/main"), "0123456789abcdef").unwrap();
    for entry in std::fs::read_dir(tiny_model()).unwrap() {
        let path = entry.unwrap().path();
        std::fs::copy(&path, snapshot.join(path.file_name().unwrap())).unwrap();
    }
    let out = tempfile::tempdir().unwrap();
    let o = tarjama(
        &[
            "translate",
            sample().to_str().unwrap(),
            "--out",
            out.path().to_str().unwrap(),
            "--model",
            "hf:Helsinki-NLP/opus-mt-ar-en",
            "--offline",
            "--no-summary",
        ],
        home.path(),
    );
    let log = text(&o);
    assert!(o.status.success(), "{log}");
    assert_eq!(
        translated(out.path()).model.name,
        "hf:Helsinki-NLP/opus-mt-ar-en"
    );
}

#[test]
fn an_unreachable_hub_is_a_one_line_error() {
    let home = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let o = tarjama(
        &[
            "translate",
            sample().to_str().unwrap(),
            "--out",
            out.path().to_str().unwrap(),
            "--model",
            "hf:Helsinki-NLP/opus-mt-tc-big-ar-en",
            "--no-summary",
        ],
        home.path(),
    );
    assert_eq!(o.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&o.stderr);
    let errors: Vec<&str> = stderr.lines().filter(|l| l.contains("ERROR")).collect();
    assert_eq!(errors.len(), 1, "{stderr}");
    assert!(
        errors[0].contains("cannot fetch `hf:Helsinki-NLP/opus-mt-tc-big-ar-en`")
            && errors[0].contains("--model"),
        "{stderr}"
    );
    assert!(!out.path().join("001_16cb7a662e3fa037.json").exists());

    let o = tarjama(
        &[
            "translate",
            sample().to_str().unwrap(),
            "--out",
            out.path().to_str().unwrap(),
            "--model",
            "hf:Helsinki-NLP/opus-mt-ar-en",
            "--offline",
        ],
        home.path(),
    );
    assert_eq!(o.status.code(), Some(1));
    assert!(
        text(&o).contains("--offline forbids fetching"),
        "{}",
        text(&o)
    );
}

#[test]
fn summaries_need_a_chat_model() {
    let home = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let model = tiny_model();
    let o = tarjama(
        &[
            "translate",
            sample().to_str().unwrap(),
            "--out",
            out.path().to_str().unwrap(),
            "--model",
            model.to_str().unwrap(),
            "--summary-model",
            model.to_str().unwrap(),
        ],
        home.path(),
    );
    assert_eq!(o.status.code(), Some(1));
    assert!(
        text(&o).contains("summaries need a chat LLM"),
        "{}",
        text(&o)
    );
}
