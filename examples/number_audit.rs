//! Number audit of a run: re-checks every sentence of every `NAME.json` in an output
//! directory for numbers lost or invented in translation, and says whether the reader was
//! warned. Works on outputs of any version, including ones written before the checks.
//!
//!     cargo run --release --example number_audit -- out

use std::path::PathBuf;

use tarjama::check::{added_numbers, missing_numbers, CheckKind};
use tarjama::document::TranslatedDocument;

fn main() -> anyhow::Result<()> {
    let dir = PathBuf::from(std::env::args().nth(1).unwrap_or_else(|| "out".into()));
    let mut paths: Vec<_> = std::fs::read_dir(&dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    paths.sort();
    let (mut sentences, mut wrong, mut flagged) = (0, 0, 0);
    for path in paths {
        let doc: TranslatedDocument = serde_json::from_str(&std::fs::read_to_string(&path)?)?;
        for (p, paragraph) in doc.paragraphs.iter().enumerate() {
            for (s, sentence) in paragraph.sentences.iter().enumerate() {
                sentences += 1;
                let missing = missing_numbers(&sentence.source, &sentence.translation);
                let added = added_numbers(&sentence.source, &sentence.translation);
                if missing.is_empty() && added.is_empty() {
                    continue;
                }
                wrong += 1;
                let warned = sentence
                    .warnings
                    .iter()
                    .any(|w| w.check == CheckKind::Numbers);
                flagged += usize::from(warned);
                println!(
                    "{} ¶{} s{}: missing {:?}, added {:?}, {}\n  AR: {}\n  EN: {}",
                    doc.name,
                    p + 1,
                    s + 1,
                    missing,
                    added,
                    if warned { "flagged" } else { "NOT flagged" },
                    sentence.source,
                    sentence.translation
                );
            }
        }
    }
    println!(
        "{sentences} sentences, {wrong} with a number lost or added, {flagged} of them flagged"
    );
    Ok(())
}
