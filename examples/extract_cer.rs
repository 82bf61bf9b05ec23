//! Character error rate and speed of every candidate way of getting the text out of
//! the PDF and image fixtures (tests/fixtures/formats), against their expected text:
//! pdftotext's three modes as they come and after tarjama's repairs, the pure-Rust
//! `pdf-extract` crate, Tesseract with three page segmentation modes, and the readers
//! themselves. The table in docs/formats.md is this program's output.
//!
//! cargo run --release --example extract_cer [-- FIXTURE_DIR]
//! cargo run --release --example extract_cer -- --dump FILE   (a reader's blocks)
//!
//! Needs poppler-utils, tesseract-ocr and tesseract-ocr-ara.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result};
use tarjama::read::image::Image;
use tarjama::read::pdf::{self, Mode, Pdf};
use tarjama::read::Reader;

/// One row of the table.
struct Row {
    fixture: String,
    extractor: String,
    cer: f64,
    seconds_per_page: f64,
    blocks: Option<usize>,
}

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let [flag, file] = args.as_slice() {
        if flag == "--dump" {
            return dump(Path::new(file));
        }
    }
    let dir = args
        .first()
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/formats"));
    let mut rows = Vec::new();
    for name in ["release.pdf", "release-libreoffice.pdf"] {
        rows.extend(text_layer_rows(&dir, name)?);
    }
    rows.extend(scan_rows(&dir, "release-scan.pdf")?);
    rows.extend(image_rows(&dir, "release-scan.png")?);
    println!("| fixture | extractor | CER | s/page | blocks |");
    println!("|---|---|---:|---:|---:|");
    for r in rows {
        let blocks = r.blocks.map_or("".into(), |b| b.to_string());
        println!(
            "| {} | {} | {:.2}% | {:.2} | {} |",
            r.fixture,
            r.extractor,
            r.cer * 100.0,
            r.seconds_per_page,
            blocks
        );
    }
    Ok(())
}

/// Prints what the reader for `file` gives: the verdict, then one block per line.
fn dump(file: &Path) -> Result<()> {
    let bytes = std::fs::read(file)?;
    let shown = file.display().to_string();
    let reader: &dyn Reader = if Pdf.sniff(&bytes) {
        &Pdf
    } else if Image.sniff(&bytes) {
        &Image
    } else {
        tarjama::read::reader_for(&shown, &bytes)
    };
    let got = reader.read(&shown, &bytes)?;
    println!("{:?}", got.extraction);
    for b in got.blocks {
        println!("{:?} {:?}\t{}", b.role, b.position, b.text);
    }
    Ok(())
}

fn expected(dir: &Path, name: &str) -> Result<(String, usize)> {
    let path = dir.join(format!("{name}.expected"));
    let text = std::fs::read_to_string(&path).with_context(|| path.display().to_string())?;
    let lines = text.lines().filter(|l| !l.trim().is_empty()).count();
    Ok((text, lines))
}

/// Runs `f`, returning its result and the seconds it took.
fn timed<T>(f: impl FnOnce() -> T) -> (T, f64) {
    let start = Instant::now();
    let out = f();
    (out, start.elapsed().as_secs_f64())
}

/// The repairs and paragraphs of the reader applied to a text layer's pages.
fn repaired(pages: &[String]) -> Vec<String> {
    let mut layer = pdf::repair_text_layer(pages);
    pdf::drop_running_lines(&mut layer.pages);
    pdf::paragraphs(&layer.pages)
        .into_iter()
        .map(|p| p.text)
        .collect()
}

fn text_layer_rows(dir: &Path, name: &str) -> Result<Vec<Row>> {
    let file = dir.join(name);
    let (expected, _) = expected(dir, name)?;
    let shown = file.display().to_string();
    let pages = pdf::page_count(&shown, &file)? as f64;
    let row = |extractor: String, text: &str, seconds: f64, blocks: Option<usize>| Row {
        fixture: name.to_string(),
        extractor,
        cer: pdf::character_error_rate(&expected, text),
        seconds_per_page: seconds / pages,
        blocks,
    };
    let mut rows = Vec::new();
    for mode in Mode::ALL {
        let (layer, seconds) = timed(|| pdf::text_layer(&shown, &file, mode));
        let layer = layer?;
        rows.push(row(
            format!("pdftotext {}", mode.name()),
            &layer.concat(),
            seconds,
            None,
        ));
        let (paras, more) = timed(|| repaired(&layer));
        rows.push(row(
            format!("pdftotext {} + repair", mode.name()),
            &paras.join("\n"),
            seconds + more,
            Some(paras.len()),
        ));
    }
    let (text, seconds) = timed(|| pure_rust(&file));
    rows.push(row("pdf-extract (Rust)".into(), &text, seconds, None));
    let (paras, more) = timed(|| repaired(std::slice::from_ref(&text)));
    rows.push(row(
        "pdf-extract + repair".into(),
        &paras.join("\n"),
        seconds + more,
        Some(paras.len()),
    ));
    rows.push(reader_row(&file, name, &expected, pages, &Pdf)?);
    Ok(rows)
}

/// The crate's text, or nothing when it fails (it panics on some fonts).
fn pure_rust(file: &Path) -> String {
    std::panic::catch_unwind(|| pdf_extract::extract_text(file).unwrap_or_default())
        .unwrap_or_default()
}

/// A reader as the pipeline uses it, with its verdict.
fn reader_row(
    file: &Path,
    name: &str,
    expected: &str,
    pages: f64,
    reader: &dyn Reader,
) -> Result<Row> {
    let bytes = std::fs::read(file)?;
    let (got, seconds) = timed(|| reader.read(name, &bytes));
    let got = got?;
    let text: Vec<String> = got.blocks.iter().map(|b| b.text.clone()).collect();
    let verdict = got
        .extraction
        .map_or("none".to_string(), |e| format!("{:?}", e.method));
    Ok(Row {
        fixture: name.to_string(),
        extractor: format!("**tarjama `{}` reader** ({verdict})", reader.format()),
        cer: pdf::character_error_rate(expected, &text.join("\n")),
        seconds_per_page: seconds / pages,
        blocks: Some(got.blocks.len()),
    })
}

fn scan_rows(dir: &Path, name: &str) -> Result<Vec<Row>> {
    let file = dir.join(name);
    let (expected, _) = expected(dir, name)?;
    let shown = file.display().to_string();
    let pages = pdf::page_count(&shown, &file)?;
    let mut rows = Vec::new();
    for psm in [3, 4, 6] {
        let work = tempfile::tempdir()?;
        let (texts, seconds) = timed(|| {
            (1..=pages)
                .map(|p| pdf::ocr_page(&shown, &file, work.path(), p, psm))
                .collect::<Result<Vec<_>, _>>()
        });
        let texts = texts?;
        let row = |extractor: String, text: &str, blocks| Row {
            fixture: name.to_string(),
            extractor,
            cer: pdf::character_error_rate(&expected, text),
            seconds_per_page: seconds / pages as f64,
            blocks,
        };
        rows.push(row(format!("tesseract --psm {psm}"), &texts.concat(), None));
        let mut lines: Vec<Vec<String>> = texts.iter().map(|t| pdf::ocr_lines(t)).collect();
        pdf::drop_running_lines(&mut lines);
        let paras: Vec<String> = pdf::paragraphs(&lines)
            .into_iter()
            .map(|p| p.text)
            .collect();
        rows.push(row(
            format!("tesseract --psm {psm} + repair"),
            &paras.join("\n"),
            Some(paras.len()),
        ));
    }
    rows.push(reader_row(&file, name, &expected, pages as f64, &Pdf)?);
    Ok(rows)
}

fn image_rows(dir: &Path, name: &str) -> Result<Vec<Row>> {
    let file = dir.join(name);
    let (expected, _) = expected(dir, name)?;
    Ok(vec![reader_row(&file, name, &expected, 1.0, &Image)?])
}
