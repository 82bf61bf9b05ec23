//! What must hold for any input to read → normalize → paragraphs → segments, whatever
//! the reader. Shared by the fuzz targets and by `tests/fuzz_regressions.rs`, which
//! replays their corpora.

use tarjama::document::ParagraphKind;
use tarjama::load;
use tarjama::segment::segment_paragraph;

/// Loads `bytes` as the document `name` (whose extension picks the reader) and segments
/// every paragraph at several caps. Panics (the fuzzer's signal) when a step panics, a
/// refusal is not one line naming the file, or segmentation loses or invents text.
pub fn read_and_segment(name: &str, bytes: &[u8]) {
    let doc = match load::load_bytes(name, bytes) {
        Ok(doc) => doc,
        Err(e) => {
            let message = e.to_string();
            assert!(message.contains(name), "{message}");
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
