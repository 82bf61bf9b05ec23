//! Replays the fuzzing corpus (`fuzz/corpus/pipeline/`, the inputs `cargo fuzz` found
//! interesting) and every input that once crashed (`fuzz/regressions/`) through
//! load → normalize → paragraphs → segments, with the fuzz target's own checks.

#[path = "../fuzz/check.rs"]
mod check;

#[test]
fn every_corpus_and_regression_input_loads_and_segments() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
    let mut replayed = 0;
    for dir in ["corpus/pipeline", "regressions"] {
        let Ok(entries) = std::fs::read_dir(root.join(dir)) else {
            continue;
        };
        for entry in entries.flatten() {
            let bytes = std::fs::read(entry.path()).unwrap();
            let path = entry.path();
            let outcome = std::panic::catch_unwind(|| check::load_and_segment(&bytes));
            assert!(outcome.is_ok(), "{} fails", path.display());
            replayed += 1;
        }
    }
    assert!(replayed >= 5, "the corpus is missing ({replayed} inputs)");
}
