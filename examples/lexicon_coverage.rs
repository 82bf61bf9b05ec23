//! The share of Arabic word tokens the lexicon has at least one analysis for.
//!
//! ```sh
//! cargo run --release --example lexicon_coverage -- eval/flores200/devtest.arb:1-200 samples/*.txt
//! ```
//!
//! Each argument is a file, optionally with `:FIRST-LAST` to take only those lines.
//! Tokens are maximal runs of Arabic letters (digits and Latin words are not counted).

use tarjama::lexicon::{arabic_words, Lexicon};
use tarjama::registry::FetchPolicy;

fn main() -> anyhow::Result<()> {
    let lexicon = Lexicon::load(FetchPolicy::Allow)?;
    let (mut all_tokens, mut all_known) = (0usize, 0usize);
    for arg in std::env::args().skip(1) {
        let (path, range) = match arg.rsplit_once(':') {
            Some((p, r)) if r.contains('-') => (p.to_string(), Some(r.to_string())),
            _ => (arg.clone(), None),
        };
        let text = std::fs::read_to_string(&path)?;
        let lines: Vec<&str> = text.lines().collect();
        let lines = match &range {
            Some(r) => {
                let (a, b) = r.split_once('-').unwrap_or((r, r));
                let (a, b): (usize, usize) = (a.parse()?, b.parse()?);
                &lines[a.saturating_sub(1)..b.min(lines.len())]
            }
            None => &lines[..],
        };
        let (mut tokens, mut known) = (0usize, 0usize);
        let mut unknown: Vec<String> = Vec::new();
        for line in lines {
            for w in arabic_words(&tarjama::load::normalize(line)) {
                tokens += 1;
                if lexicon.analyze(w).is_empty() {
                    if unknown.len() < 12 && !unknown.iter().any(|u| u == w) {
                        unknown.push(w.to_string());
                    }
                } else {
                    known += 1;
                }
            }
        }
        all_tokens += tokens;
        all_known += known;
        println!(
            "{arg}: {known}/{tokens} tokens analysed ({:.1} %); unknown e.g. {}",
            100.0 * known as f64 / tokens.max(1) as f64,
            unknown.join(" ")
        );
    }
    println!(
        "all: {all_known}/{all_tokens} ({:.1} %)",
        100.0 * all_known as f64 / all_tokens.max(1) as f64
    );
    Ok(())
}
