//! What must hold for any input to load → normalize → paragraphs → segments. Shared by
//! the fuzz target and by `tests/fuzz_regressions.rs`, which replays the corpus.

use tarjama::document::ParagraphKind;
use tarjama::load;
use tarjama::segment::segment_paragraph;

/// Loads `bytes` as a document and segments every paragraph at several caps. Panics
/// (the fuzzer's signal) when a step panics or segmentation loses or invents text.
pub fn load_and_segment(bytes: &[u8]) {
    let doc = match load::load_bytes("fuzz.txt", bytes) {
        Ok(doc) => doc,
        // Every refusal must name the file, on one line.
        Err(e) => {
            let message = e.to_string();
            assert!(message.contains("fuzz.txt"), "{message}");
            assert!(!message.contains('\n'), "{message}");
            return;
        }
    };
    assert!(!doc.paragraphs.is_empty());
    for paragraph in &doc.paragraphs {
        assert!(!paragraph.text.trim().is_empty(), "empty paragraph");
        if paragraph.kind == ParagraphKind::Passthrough {
            continue;
        }
        let words: Vec<&str> = paragraph.text.split_whitespace().collect();
        for cap in [1, 8, 160] {
            let pieces =
                segment_paragraph(&paragraph.text, cap, &|s: &str| s.chars().count() / 3 + 1);
            assert!(pieces.iter().all(|p| !p.trim().is_empty()), "empty segment");
            let rejoined: Vec<&str> = pieces.iter().flat_map(|p| p.split_whitespace()).collect();
            assert_eq!(rejoined, words, "segmentation changed the text");
        }
    }
}
