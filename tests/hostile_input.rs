//! Large and hostile documents through load → normalize → paragraphs → segments: a
//! 20 MB document, one 1 MB line, runs of punctuation, bidi controls and a word with
//! no spaces at all. Nothing may panic, lose text, or take unbounded time or memory.

use std::time::Instant;

use tarjama::document::ParagraphKind;
use tarjama::load::load_bytes;
use tarjama::segment::segment_paragraph;

fn samples_text() -> String {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("samples");
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    files
        .iter()
        .map(|p| std::fs::read_to_string(p).unwrap())
        .collect::<Vec<_>>()
        .join("\n")
}

/// Segments every translatable paragraph the way `translate` does (160-token cap, a
/// tokenizer stand-in of one token per three characters); returns the segment count.
fn segment_all(bytes: &[u8]) -> usize {
    let started = Instant::now();
    let doc = load_bytes("big.txt", bytes).unwrap();
    let count = |s: &str| s.chars().count().div_ceil(3);
    let mut segments = 0;
    for p in doc
        .paragraphs
        .iter()
        .filter(|p| p.kind != ParagraphKind::Passthrough)
    {
        let pieces = segment_paragraph(&p.text, 160, &count);
        let rejoined: String = pieces.iter().flat_map(|s| s.split_whitespace()).collect();
        let original: String = p.text.split_whitespace().collect();
        assert_eq!(rejoined, original, "text lost or invented");
        segments += pieces.len();
    }
    eprintln!(
        "{} bytes: {segments} segments in {:.2} s",
        bytes.len(),
        started.elapsed().as_secs_f64()
    );
    segments
}

#[test]
fn a_20_mb_document_segments_without_losing_text() {
    let text = samples_text();
    let mut big = String::with_capacity(21 << 20);
    while big.len() < 20 << 20 {
        big.push_str(&text);
        big.push('\n');
    }
    assert!(segment_all(big.as_bytes()) > 50_000);
}

#[test]
fn one_line_of_a_megabyte() {
    let line = samples_text().replace('\n', " ");
    let mut long = String::new();
    while long.len() < 1 << 20 {
        long.push_str(&line);
        long.push(' ');
    }
    assert!(segment_all(long.as_bytes()) > 1_000);
    // The same line without any sentence punctuation: only clause or word boundaries.
    let bare: String = long.chars().filter(|c| !".،؛؟!:".contains(*c)).collect();
    assert!(segment_all(bare.as_bytes()) > 1_000);
}

#[test]
fn runs_of_punctuation_and_bidi_controls() {
    let mut hostile = String::from("قال الوزير");
    hostile.push_str(&"!".repeat(200_000));
    hostile.push_str(" ثم ");
    hostile.push_str(&"؟ ".repeat(100_000));
    hostile.push_str(&". . . ".repeat(50_000));
    hostile.push('\n');
    for _ in 0..20_000 {
        hostile.push_str("\u{202E}مرحبا\u{202C} \u{2067}world\u{2069} \u{200F}،");
    }
    hostile.push('\n');
    assert!(segment_all(hostile.as_bytes()) > 10);
    let doc = load_bytes("hostile.txt", hostile.as_bytes()).unwrap();
    for p in &doc.paragraphs {
        assert!(!p
            .text
            .contains(['\u{202E}', '\u{202C}', '\u{2067}', '\u{2069}', '\u{200F}']));
    }
}

#[test]
fn a_word_without_spaces_is_one_segment() {
    let blob = "ب".repeat(300_000);
    let doc = format!("مقدمة قصيرة. {blob} خاتمة.");
    segment_all(doc.as_bytes());
}
