//! Replays the fuzzing corpora (`fuzz/corpus/TARGET/`, the inputs `cargo fuzz` found
//! interesting) and every input that once crashed (`fuzz/regressions/`) through
//! read → normalize → paragraphs → segments, with the fuzz targets' own checks.

use std::path::Path;

#[path = "../fuzz/check.rs"]
mod check;

/// Each fuzz target's corpus and the file name (so the reader) its inputs are read as.
const TARGETS: &[(&str, &str)] = &[
    ("pipeline", "fuzz.txt"),
    ("markdown", "fuzz.md"),
    ("html", "fuzz.html"),
    ("docx", "fuzz.docx"),
    ("pdf", "fuzz.pdf"),
];

fn replay(dir: &Path, name: &str) -> usize {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    let mut replayed = 0;
    for entry in entries.flatten() {
        let path = entry.path();
        let bytes = std::fs::read(&path).expect("corpus file");
        let outcome = std::panic::catch_unwind(|| check::read_and_segment(name, &bytes));
        assert!(outcome.is_ok(), "{} fails as {name}", path.display());
        replayed += 1;
    }
    replayed
}

#[test]
fn every_corpus_and_regression_input_reads_and_segments() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
    for (target, name) in TARGETS {
        let replayed = replay(&root.join("corpus").join(target), name);
        assert!(
            replayed >= 3,
            "the {target} corpus is missing ({replayed} inputs)"
        );
    }
    // A regression is replayed by every reader: its target is not recorded.
    for (_, name) in TARGETS {
        replay(&root.join("regressions"), name);
    }
}
