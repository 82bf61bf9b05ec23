//! One document of each format through the whole `tarjama translate` run: the fixtures
//! in `tests/fixtures/formats/` (built from sample 000: an HTML page with its furniture,
//! a Word file with a header, footer, list and table, a PDF printed by Chromium and the
//! same PDF as a scan) must come through whole, in order, with their structure.
//!
//! The model is the tiny random OPUS-MT fixture, so the English is noise: these tests
//! are about what is read and how it is laid out, `cli.rs` about the translation.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use tarjama::document::{ExtractionMethod, Role, TranslatedDocument};

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn fixture(name: &str) -> PathBuf {
    root().join("tests/fixtures/formats").join(name)
}

/// The blocks a fixture must give, in order: the last ` | `-separated field of each line
/// of `NAME.expected` (the DOCX file also lists positions and roles).
fn expected(name: &str) -> Vec<String> {
    let text = std::fs::read_to_string(fixture(&format!("{name}.expected"))).expect("expected");
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let fields: Vec<&str> = l.split(" | ").collect();
            let text = if fields.len() >= 3 { fields[2] } else { l };
            text.trim().to_string()
        })
        .collect()
}

/// Translates everything in `inputs` into `out` with the tiny model.
fn translate(inputs: &Path, out: &Path, formats: &str) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tarjama"))
        .args(["translate", inputs.to_str().expect("utf-8 path"), "--out"])
        .arg(out)
        .args(["--model"])
        .arg(root().join("tests/fixtures/marian-tiny"))
        .args(["--no-summary", "--format", formats])
        .env("TARJAMA_MEMORY", out.join("memory.sqlite"))
        .env("TARJAMA_LOG", "tarjama=info")
        .output()
        .expect("run tarjama")
}

fn record(out: &Path, name: &str) -> TranslatedDocument {
    let json = std::fs::read_to_string(out.join(format!("{name}.json")))
        .unwrap_or_else(|e| panic!("{name}.json: {e}"));
    serde_json::from_str(&json).expect("record parses")
}

fn sources(doc: &TranslatedDocument) -> Vec<String> {
    doc.paragraphs.iter().map(|p| p.source.clone()).collect()
}

fn log(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// The structured formats: every block exactly, in order, with its role.
#[test]
fn html_and_word_documents_come_through_whole_in_order_and_structured() {
    let inputs = tempfile::tempdir().expect("tempdir");
    let out = tempfile::tempdir().expect("tempdir");
    for name in ["release.html", "release.docx"] {
        let stem = name.replace('.', "-");
        std::fs::copy(
            fixture(name),
            inputs.path().join(format!("{stem}.{}", &name[8..])),
        )
        .expect("copy");
    }
    let o = translate(inputs.path(), out.path(), "html,json,docx");
    assert!(o.status.success(), "{}", log(&o));

    let html = record(out.path(), "release-html");
    assert_eq!(html.format, "html");
    assert_eq!(sources(&html), expected("release.html"));
    let page = std::fs::read_to_string(out.path().join("release-html.html")).expect("page");
    for furniture in ["الرئيسية", "جميع الحقوق محفوظة", "أخبار ذات صلة", "أهلا بكم"]
    {
        assert!(
            !page.contains(furniture),
            "page furniture {furniture:?} in the output"
        );
    }
    assert!(
        !page.contains("<script>alert"),
        "a script from the page reached the output"
    );
    check_structure(&html, 5, 4);

    let word = record(out.path(), "release-docx");
    assert_eq!(word.format, "docx");
    assert_eq!(sources(&word), expected("release.docx"));
    check_structure(&word, 5, 3);
    assert_eq!(word.paragraphs[0].block.position.as_deref(), Some("header"));
    assert!(out.path().join("release-docx.docx").is_file());
}

/// Character error rate of the blocks `got` against `want`, as `docs/formats.md`
/// measures it.
fn cer(got: &[String], want: &[String]) -> f64 {
    tarjama::read::pdf::character_error_rate(&want.join("\n"), &got.join("\n"))
}

/// PDFs: the text layer Chromium printed, and the same pages scanned, read by OCR. Each
/// comes through in order within the character error rate measured in docs/formats.md,
/// with its verdict in the record and on the page.
#[test]
fn printed_and_scanned_pdfs_come_through_in_order_with_their_verdict() {
    let inputs = tempfile::tempdir().expect("tempdir");
    let out = tempfile::tempdir().expect("tempdir");
    for name in ["release.pdf", "release-scan.pdf"] {
        std::fs::copy(fixture(name), inputs.path().join(name)).expect("copy");
    }
    let o = translate(inputs.path(), out.path(), "html,json");
    assert!(o.status.success(), "{}", log(&o));

    let printed = record(out.path(), "release");
    assert_eq!(printed.format, "pdf");
    let verdict = printed.extraction.as_ref().expect("a PDF has a verdict");
    assert_eq!(verdict.method, ExtractionMethod::TextLayer, "{verdict:?}");
    let want = expected("release.pdf");
    assert_eq!(printed.paragraphs.len(), want.len());
    let rate = cer(&sources(&printed), &want);
    assert!(rate < 0.005, "text layer CER {rate:.4}");
    assert_eq!(
        printed.paragraphs[3].block.position.as_deref(),
        Some("page 1")
    );

    let scanned = record(out.path(), "release-scan");
    let verdict = scanned.extraction.as_ref().expect("a PDF has a verdict");
    assert_eq!(verdict.method, ExtractionMethod::Ocr, "{verdict:?}");
    let rate = cer(&sources(&scanned), &expected("release-scan.pdf"));
    assert!(rate < 0.03, "OCR CER {rate:.4}");
    let page = std::fs::read_to_string(out.path().join("release-scan.html")).expect("page");
    assert!(page.contains("Read from PDF by OCR: check the Arabic against the original"));
    assert!(
        log(&o).contains("release-scan.pdf: read by OCR"),
        "the run warns: {}",
        log(&o)
    );
}

/// List items and table cells stay apart: `items` list items, and cells in `rows` rows,
/// each row of the same table, with the header row first.
fn check_structure(doc: &TranslatedDocument, items: usize, rows: u32) {
    let list_items = doc
        .paragraphs
        .iter()
        .filter(|p| matches!(p.block.role, Role::ListItem { .. }))
        .count();
    assert_eq!(list_items, items, "{}", doc.name);
    let cells: Vec<(u32, u32, bool)> = doc
        .paragraphs
        .iter()
        .filter_map(|p| match p.block.role {
            Role::TableCell {
                row,
                column,
                header,
                ..
            } => Some((row, column, header)),
            _ => None,
        })
        .collect();
    assert!(cells.len() >= 2 * rows as usize, "{}: {cells:?}", doc.name);
    assert_eq!(
        cells.iter().map(|c| c.0).max(),
        Some(rows - 1),
        "{}",
        doc.name
    );
    assert!(
        cells.iter().filter(|c| c.0 == 0).all(|c| c.2),
        "{}",
        doc.name
    );
    let headings = doc.paragraphs.iter().filter(|p| p.block.role.is_heading());
    assert!(headings.count() >= 1, "{}", doc.name);
}

/// A batch with broken documents: each fails alone with one line naming it and saying
/// what to do; the good one is translated; nothing of the broken ones is written.
#[test]
fn broken_documents_of_each_format_fail_alone() {
    let inputs = tempfile::tempdir().expect("tempdir");
    let out = tempfile::tempdir().expect("tempdir");
    std::fs::copy(fixture("release.html"), inputs.path().join("good.html")).expect("copy");
    std::fs::write(
        inputs.path().join("not-a-zip.docx"),
        "this is not a Word file",
    )
    .expect("w");
    std::fs::write(
        inputs.path().join("english.html"),
        "<html><body><main><p>Only English here.</p></main></body></html>",
    )
    .expect("w");
    std::fs::write(
        inputs.path().join("empty.html"),
        "<html><nav>x</nav></html>",
    )
    .expect("w");
    let mut truncated = std::fs::read(fixture("release.pdf")).expect("pdf");
    truncated.truncate(truncated.len() / 3);
    std::fs::write(inputs.path().join("truncated.pdf"), truncated).expect("w");
    std::fs::copy(fixture("encrypted.pdf"), inputs.path().join("locked.pdf")).expect("copy");
    let o = translate(inputs.path(), out.path(), "html,json");
    let log = log(&o);
    assert_eq!(o.status.code(), Some(1), "{log}");
    assert!(out.path().join("good.json").is_file(), "{log}");
    for (name, says) in [
        ("not-a-zip.docx", "is not a Word document"),
        ("empty.html", "no text found in the page's main content"),
        ("truncated.pdf", "is damaged"),
        ("locked.pdf", "is encrypted"),
    ] {
        let line = log
            .lines()
            .find(|l| l.contains(name) && l.contains(says))
            .unwrap_or_else(|| panic!("no error line for {name}: {log}"));
        assert!(line.contains("; "), "the error says what to do: {line}");
        let stem = name.split('.').next().expect("stem");
        assert!(!out.path().join(format!("{stem}.json")).exists());
        assert!(!out.path().join(format!("{stem}.html")).exists());
    }
    assert!(
        log.contains("english.html: no Arabic text found"),
        "a page without Arabic is copied through with a warning: {log}"
    );
}
