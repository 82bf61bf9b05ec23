//! Precision and recall of the lexicon checks against human references.
//!
//! ```sh
//! tarjama eval --src eval/flores200/devtest.arb --ref eval/flores200/devtest.eng \
//!     --limit 200 --no-retry --segments-out segs.jsonl
//! cargo run --release --example check_quality -- segs.jsonl eval/flores200/devtest.eng [labels.tsv]
//! ```
//!
//! Each segment's translation is checked as `translate` checks a first attempt. The labels
//! come from the reference (the same line of the human translation), decided as follows:
//! - **unsupported name**: a capitalized word, acronym or decade of the translation is an
//!   error when neither it nor a close form of it ("Asian"/"Asia") is a word of the
//!   reference. A segment is in error when it has such a word.
//! - **lost content word**: a source word of the kind the check looks at (rare noun or
//!   adjective, few glosses) is lost when the reference renders one of its glosses and
//!   the translation renders none. This label shares the
//!   glosses with the check, so it measures false alarms (the check fires, the reference
//!   renders no gloss either: the word was translated by a synonym or freely) but cannot
//!   measure misses.
//!
//! With a third argument, writes one row per segment with both labels and both verdicts,
//! for the committed labelled set.
//!
//! A set labelled by reading (`tests/fixtures/checks/samples.tsv`: source, translation,
//! `name_error`, `lost_error`) is scored with the checks as they are now:
//!
//! ```sh
//! cargo run --release --example check_quality -- --labelled tests/fixtures/checks/samples.tsv
//! ```

use std::collections::BTreeMap;
use std::sync::Arc;

use tarjama::check::{
    close, english_words as words, name_spans, Check, LostContent, Subject, UnsupportedNames,
};
use tarjama::glossary::Glossary;
use tarjama::lexicon::{arabic_words, Lexicon, Rarity};
use tarjama::registry::FetchPolicy;

#[derive(Default)]
struct Tally {
    segments: usize,
    errors: usize,
    flagged: usize,
    caught: usize,
}

impl Tally {
    fn add(&mut self, error: bool, flagged: bool) {
        self.segments += 1;
        self.errors += error as usize;
        self.flagged += flagged as usize;
        self.caught += (error && flagged) as usize;
    }

    fn row(&self, name: &str) -> String {
        let false_alarms = self.flagged - self.caught;
        let pct = |a: usize, b: usize| {
            if b == 0 {
                "–".to_string()
            } else {
                format!("{:.1} %", 100.0 * a as f64 / b as f64)
            }
        };
        format!(
            "| {name} | {} | {} | {} | {} | {} | {} | {} | {} |",
            self.segments,
            self.errors,
            self.flagged,
            self.caught,
            false_alarms,
            pct(self.caught, self.flagged),
            pct(self.caught, self.errors),
            pct(false_alarms, self.segments),
        )
    }
}

/// Scores the checks on a set labelled by reading; prints the table and each row where a
/// check and its label disagree.
fn score_labelled(path: &str) -> anyhow::Result<()> {
    let lexicon = Arc::new(Lexicon::load(FetchPolicy::Allow)?);
    let names = UnsupportedNames::new(lexicon.clone());
    let lost = LostContent::new(lexicon.clone());
    let glossary = Glossary::default_glossary();
    let (mut name_tally, mut lost_tally) = (Tally::default(), Tally::default());
    let text = std::fs::read_to_string(path)?;
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap_or_default().split('\t').collect();
    let column = |name: &str| {
        header
            .iter()
            .position(|h| *h == name)
            .ok_or_else(|| anyhow::anyhow!("{path}: no column {name}"))
    };
    let (source_at, translation_at) = (column("source")?, column("translation")?);
    let (name_at, lost_at) = (column("name_error")?, column("lost_error")?);
    for (i, line) in lines.enumerate() {
        let fields: Vec<&str> = line.split('\t').collect();
        let field = |at: usize| fields.get(at).copied().unwrap_or_default();
        let terms = glossary.find(field(source_at));
        let subject = Subject {
            source: field(source_at),
            translation: field(translation_at),
            hit_cap: false,
            terms: &terms,
        };
        for (tally, check, at) in [
            (&mut name_tally, &names as &dyn Check, name_at),
            (&mut lost_tally, &lost as &dyn Check, lost_at),
        ] {
            let found = check.run(&subject);
            let error = field(at) == "1";
            tally.add(error, !found.is_empty());
            if error == found.is_empty() {
                let why: Vec<String> = found.iter().map(|f| f.warning.message.clone()).collect();
                eprintln!(
                    "row {}: {} label {} flag {}: {}",
                    i + 2,
                    check.kind().name(),
                    error as u8,
                    !found.is_empty() as u8,
                    why.join(" | ")
                );
            }
        }
    }
    println!("| check | segments | errors (label) | flagged | caught | false alarms | precision | recall | false alarms / segments |");
    println!("|---|---|---|---|---|---|---|---|---|");
    println!("{}", name_tally.row("unsupported_name"));
    println!("{}", lost_tally.row("lost_content"));
    Ok(())
}

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let [flag, path] = &args[..] {
        if flag == "--labelled" {
            return score_labelled(path);
        }
    }
    let [segments, references, rest @ ..] = &args[..] else {
        anyhow::bail!("usage: check_quality SEGMENTS.jsonl REFERENCES.en [LABELS.tsv]");
    };
    let refs: Vec<String> = std::fs::read_to_string(references)?
        .lines()
        .map(str::to_string)
        .collect();
    let lexicon = Arc::new(Lexicon::load(FetchPolicy::Allow)?);
    let names = UnsupportedNames::new(lexicon.clone());
    let lost = LostContent::new(lexicon.clone());
    let variants: Vec<(String, LostContent)> = [
        (4.5, 4, true),
        (3.5, 3, true),
        (3.5, 3, false),
        (3.0, 2, false),
        (2.5, 2, false),
        (3.0, 1, false),
    ]
    .into_iter()
    .map(|(max_zipf, max_glosses, verbs)| {
        let rarity = Rarity {
            max_zipf,
            max_glosses,
            verbs,
        };
        (
            format!("lost_content zipf<{max_zipf} glosses<={max_glosses} verbs={verbs}"),
            LostContent::with_rarity(lexicon.clone(), rarity),
        )
    })
    .collect();
    let mut variant_tallies: Vec<Tally> = variants.iter().map(|_| Tally::default()).collect();
    let glossary = Glossary::default_glossary();

    let mut name_tally = Tally::default();
    let mut lost_tally = Tally::default();
    let mut any = Tally::default();
    let mut rows =
        vec!["line\tname_error\tname_flag\tlost_error\tlost_flag\ttranslation\tdetail".to_string()];
    let mut unsupported_words: BTreeMap<String, usize> = BTreeMap::new();
    for line in std::fs::read_to_string(segments)?.lines() {
        let record: serde_json::Value = serde_json::from_str(line)?;
        let n = record["line"].as_u64().unwrap_or(0) as usize;
        let source = record["source"].as_str().unwrap_or("");
        let translation = record["translation"].as_str().unwrap_or("");
        let reference = refs
            .get(n.saturating_sub(1))
            .map(String::as_str)
            .unwrap_or("");
        let ref_words = words(reference);
        let terms = glossary.find(source);
        let subject = Subject {
            source,
            translation,
            hit_cap: false,
            terms: &terms,
        };

        let name_errors: Vec<String> = name_spans(translation, &lexicon)
            .into_iter()
            .flat_map(|s| s.words)
            .filter(|w| !ref_words.iter().any(|r| close(r, &w.to_lowercase())))
            .collect();
        let name_found = names.run(&subject);
        for w in &name_errors {
            *unsupported_words.entry(w.clone()).or_default() += 1;
        }
        name_tally.add(!name_errors.is_empty(), !name_found.is_empty());

        let hyp_words = words(translation);
        let renders = |glosses: &[String], text: &[String]| {
            glosses
                .iter()
                .flat_map(|g| words(g))
                .filter(|g| g.len() > 2)
                .any(|g| text.iter().any(|t| close(&g, t)))
        };
        let lost_errors: Vec<String> = arabic_words(source)
            .into_iter()
            .filter_map(|w| lexicon.rare_content_word(w))
            .filter(|g| lexicon.rare_word(&g.arabic, lost.rarity()).is_some())
            .filter(|g| renders(&g.glosses, &ref_words) && !renders(&g.glosses, &hyp_words))
            .map(|g| g.arabic)
            .collect();
        let lost_found = lost.run(&subject);
        for ((_, check), tally) in variants.iter().zip(&mut variant_tallies) {
            let lost_here: Vec<String> = lost_errors
                .iter()
                .filter(|w| lexicon.rare_word(w, check.rarity()).is_some())
                .cloned()
                .collect();
            tally.add(!lost_here.is_empty(), !check.run(&subject).is_empty());
        }
        lost_tally.add(!lost_errors.is_empty(), !lost_found.is_empty());
        any.add(
            !name_errors.is_empty() || !lost_errors.is_empty(),
            !name_found.is_empty() || !lost_found.is_empty(),
        );

        let detail: Vec<String> = name_found
            .iter()
            .chain(&lost_found)
            .map(|f| f.warning.message.clone())
            .chain(
                name_errors
                    .iter()
                    .map(|w| format!("label: unsupported {w}")),
            )
            .chain(lost_errors.iter().map(|w| format!("label: lost {w}")))
            .collect();
        rows.push(format!(
            "{n}\t{}\t{}\t{}\t{}\t{}\t{}",
            !name_errors.is_empty() as u8,
            !name_found.is_empty() as u8,
            !lost_errors.is_empty() as u8,
            !lost_found.is_empty() as u8,
            translation.replace('\t', " "),
            detail.join(" | ").replace('\t', " ")
        ));
    }
    println!("| check | segments | errors (label) | flagged | caught | false alarms | precision | recall | false alarms / segments |");
    println!("|---|---|---|---|---|---|---|---|---|");
    println!("{}", name_tally.row("unsupported_name"));
    println!("{}", lost_tally.row("lost_content"));
    println!("{}", any.row("either"));
    for ((name, _), tally) in variants.iter().zip(&variant_tallies) {
        println!("{}", tally.row(name));
    }
    if let Some(path) = rest.first() {
        std::fs::write(path, rows.join("\n") + "\n")?;
        eprintln!("labelled rows written to {path}");
    }
    Ok(())
}
