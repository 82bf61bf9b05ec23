//! Entity recall of a run: for every glossary term (states, capitals, organizations,
//! officials, titles) found in an Arabic sentence, is it rendered correctly in that
//! sentence's English, and if not, is the sentence flagged?
//!
//!     cargo run --release --example entity_recall -- out [--paragraphs N]

use std::path::PathBuf;

use tarjama::check::CheckKind;
use tarjama::document::TranslatedDocument;
use tarjama::glossary::Glossary;

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let dir = PathBuf::from(args.next().unwrap_or_else(|| "out".into()));
    let mut first_paragraphs = usize::MAX;
    while let Some(a) = args.next() {
        if a == "--paragraphs" {
            first_paragraphs = args
                .next()
                .and_then(|n| n.parse().ok())
                .unwrap_or(usize::MAX);
        }
    }
    let glossary = Glossary::default_glossary();
    let (mut total, mut right, mut flagged) = (0, 0, 0);
    let mut paths: Vec<_> = std::fs::read_dir(&dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    paths.sort();
    for path in paths {
        let doc: TranslatedDocument = serde_json::from_str(&std::fs::read_to_string(&path)?)?;
        let (mut d_total, mut d_right, mut d_flagged) = (0, 0, 0);
        for p in doc.paragraphs.iter().take(first_paragraphs) {
            for s in &p.sentences {
                for term in glossary.find(&s.source) {
                    d_total += 1;
                    if term.is_rendered_in(&s.translation) {
                        d_right += 1;
                    } else {
                        println!(
                            "  {}: «{}» not rendered as “{}”",
                            doc.name,
                            term.arabic,
                            term.preferred()
                        );
                        if s.warnings.iter().any(|w| w.check == CheckKind::Glossary) {
                            d_flagged += 1;
                        }
                    }
                }
            }
        }
        println!(
            "{}: {d_right}/{d_total} right, {d_flagged} of the rest flagged",
            doc.name
        );
        total += d_total;
        right += d_right;
        flagged += d_flagged;
    }
    println!(
        "entity recall: {right}/{total} = {:.1}% right; right or flagged: {}/{total} = {:.1}%",
        100.0 * right as f64 / total.max(1) as f64,
        right + flagged,
        100.0 * (right + flagged) as f64 / total.max(1) as f64
    );
    Ok(())
}
