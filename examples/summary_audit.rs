//! What each summary of a run keeps of its document.
//!
//! ```sh
//! cargo run --release --example summary_audit -- out
//! ```
//!
//! For every `NAME.json` in the directory: Arabic words, summary words and sentences (the
//! model's summary, without tarjama's note on left-out sentences), the
//! document's distinct numbers and named entities (capitalized runs of its English, as the
//! unsupported-name check finds them) and how many of each the summary mentions, the
//! summary's flags as written, and its flags under today's checks (which differ when the
//! checks changed after the run).

use std::collections::BTreeSet;

use tarjama::check::{name_spans, numbers};
use tarjama::document::TranslatedDocument;
use tarjama::lexicon::Lexicon;
use tarjama::registry::FetchPolicy;
use tarjama::summarize::{check_document_summary, without_omission_note, SummaryInput};

fn main() -> anyhow::Result<()> {
    let dir = std::env::args().nth(1).unwrap_or_else(|| "out".into());
    let lexicon = Lexicon::load(FetchPolicy::Allow)?;
    let mut files: Vec<_> = std::fs::read_dir(&dir)?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .filter(|p| {
            !p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("failures"))
        })
        .collect();
    files.sort();
    println!("| document | Arabic words | summary words | sentences | numbers kept | entities kept | summary flags | summary flags now | title flags |");
    println!("|---|---|---|---|---|---|---|---|---|");
    for path in files {
        let doc: TranslatedDocument = serde_json::from_slice(&std::fs::read(&path)?)?;
        // The model's summary: the note on left-out sentences is tarjama's, with its own numbers.
        let written = doc.summary.clone().unwrap_or_default();
        let summary = without_omission_note(&written).to_string();
        let english: String = doc
            .paragraphs
            .iter()
            .map(|p| p.translation.as_str())
            .collect::<Vec<_>>()
            .join("\n");
        let doc_numbers: BTreeSet<String> = numbers(&english).into_iter().collect();
        let summary_numbers: BTreeSet<String> = numbers(&summary).into_iter().collect();
        let kept_numbers = doc_numbers.intersection(&summary_numbers).count();
        let entities: BTreeSet<String> = name_spans(&english, &lexicon)
            .into_iter()
            .map(|s| s.text)
            .collect();
        let summary_lower = summary.to_lowercase();
        let kept_entities = entities
            .iter()
            .filter(|e| summary_lower.contains(&e.to_lowercase()))
            .count();
        let sentences = summary
            .split_inclusive(['.', '!', '?'])
            .filter(|s| s.split_whitespace().count() >= 3)
            .count();
        let flags = |w: &[tarjama::check::Warning]| {
            w.iter()
                .map(|w| format!("{}: {}", w.check.name(), w.message))
                .collect::<Vec<_>>()
                .join("; ")
        };
        let now: Vec<tarjama::check::Warning> = check_document_summary(
            &SummaryInput {
                paragraphs: &doc.paragraphs,
                title: &doc.title,
                arabic_words: doc.arabic_words,
            },
            &summary,
            Some(&lexicon),
        )
        .into_iter()
        .map(|f| f.warning)
        .collect();
        println!(
            "| {} | {} | {} | {} | {}/{} | {}/{} | {} | {} | {} |",
            doc.name,
            doc.arabic_words,
            summary.split_whitespace().count(),
            sentences,
            kept_numbers,
            doc_numbers.len(),
            kept_entities,
            entities.len(),
            flags(&doc.summary_warnings),
            flags(&now),
            flags(&doc.title_warnings),
        );
    }
    Ok(())
}
