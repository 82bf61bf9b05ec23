//! Confidence and severities on a set labelled by reading.
//!
//! ```sh
//! cargo run --release --example confidence_audit -- tests/fixtures/checks/samples.tsv
//! ```
//!
//! Each row's translation is checked as `translate` checks it, and scored teacher-forced
//! under the translation prompt (the log-probabilities the model would have decoded it
//! with), which gives its confidence. A row is a meaning error when it is labelled with
//! an unsupported name or lost content. Prints the ROC-AUC of low confidence for those
//! rows, the precision of each severity, and the meaning errors left without an
//! error-severity flag, before severities and confidence (any flag counted) and now.
//!
//! With `--reconstruct SEGMENTS.jsonl` (from `tarjama eval --segments-out`) it instead
//! adds to every segment how well its English gives the Arabic back (the mean
//! log-probability of the source under the back-translation prompt, teacher-forced) and
//! prints the records again, for `scripts/fit-confidence.py`.
//!
//! `--tokens SEGMENTS.jsonl` adds each segment's token log-probabilities (its English
//! scored teacher-forced under its first attempt's prompt: for a segment translated in one
//! attempt, the values it was decoded with), and `--coverage SEGMENTS.jsonl` how many of
//! its Arabic content words at each rarity have a gloss in the English; `scripts/fit-confidence.py
//! --aggregates` ranks what can be derived from either.

use std::path::PathBuf;

use tarjama::check::{
    close, english_words, weigh, Checker, LostContent, Severity, Signals, Subject,
};
use tarjama::engine;
use tarjama::glossary::Term;
use tarjama::lexicon::{arabic_words, Lexicon, Rarity};
use tarjama::metrics::detection::{flag_quality, roc_auc};
use tarjama::model::{DeviceChoice, ModelError};
use tarjama::registry::DEFAULT_MODEL;
use tarjama::settings::{Choices, GlossaryChoice, RunSettings};
use tarjama::translate::{PromptStyle, Quality, Request, Translator, DEFAULT_HINTS};

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let settings = default_settings()?;
    let (_, mut translator) = engine::load_llm(&settings)?;
    if let [flag, segments] = &args[..] {
        match flag.as_str() {
            "--reconstruct" => {
                return annotate(
                    &settings,
                    segments,
                    "reconstruction",
                    |source, english, _| translator.reconstruction(source, english).into(),
                )
            }
            "--tokens" => {
                return annotate(
                    &settings,
                    segments,
                    "token_logprobs",
                    |source, english, terms| {
                        translator
                            .score_answer(&Request::new(source, terms), english)
                            .into()
                    },
                )
            }
            "--coverage" => {
                let lexicon = settings
                    .lexicon
                    .clone()
                    .ok_or_else(|| anyhow::anyhow!("--coverage needs the lexicon"))?;
                return annotate(&settings, segments, "coverage", |source, english, _| {
                    coverage(&lexicon, source, english)
                });
            }
            _ => {}
        }
    }
    let path = args
        .first()
        .cloned()
        .unwrap_or_else(|| "tests/fixtures/checks/samples.tsv".into());
    audit(&settings, &mut translator, &path)
}

/// Prints every record of `segments` again with `field` set to `measure(source, english,
/// glossary terms)`.
fn annotate(
    settings: &RunSettings,
    segments: &str,
    field: &str,
    mut measure: impl FnMut(&str, &str, &[&Term]) -> serde_json::Value,
) -> anyhow::Result<()> {
    for line in std::fs::read_to_string(segments)?.lines() {
        let mut record: serde_json::Value = serde_json::from_str(line)?;
        let source = record["source"].as_str().unwrap_or_default().to_string();
        let english = record["translation"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let terms = settings.glossary.find(&source);
        record[field] = measure(&source, &english, &terms);
        println!("{record}");
    }
    Ok(())
}

/// Rarities from the lost-word check's to every word the lexicon knows.
const COVERAGE_RARITIES: [Rarity; 5] = [
    LostContent::RARITY,
    Rarity {
        max_zipf: 4.0,
        max_glosses: 3,
        verbs: false,
    },
    Rarity::HINT,
    Rarity {
        max_zipf: 5.5,
        max_glosses: 6,
        verbs: true,
    },
    Rarity {
        max_zipf: 9.0,
        max_glosses: 8,
        verbs: true,
    },
];

/// For each of [`COVERAGE_RARITIES`]: `[content words, words with no gloss in the English]`.
fn coverage(lexicon: &Lexicon, source: &str, english: &str) -> serde_json::Value {
    let english = english_words(english);
    let counts: Vec<[usize; 2]> = COVERAGE_RARITIES
        .iter()
        .map(|rarity| {
            let mut counted = [0, 0];
            for word in arabic_words(source) {
                if lexicon.rare_word(word, rarity).is_none() {
                    continue;
                }
                let meaning: Vec<String> = lexicon
                    .related_glosses(word)
                    .iter()
                    .flat_map(|g| english_words(g))
                    .filter(|w| w.len() > 2)
                    .collect();
                if meaning.is_empty() {
                    continue;
                }
                counted[0] += 1;
                if !meaning.iter().any(|m| english.iter().any(|e| close(m, e))) {
                    counted[1] += 1;
                }
            }
            counted
        })
        .collect();
    serde_json::json!(counts)
}

fn default_settings() -> anyhow::Result<RunSettings> {
    RunSettings::resolve(Choices {
        model: DEFAULT_MODEL.to_string(),
        summary_model: None,
        offline: false,
        device: DeviceChoice::Cpu,
        batch_size: 8,
        max_new_tokens: 512,
        max_segment_tokens: 160,
        prompt_style: PromptStyle::FewShot,
        quality: Quality::Fast,
        retry: true,
        candidates: None,
        rerank: None,
        context: false,
        glossary: GlossaryChoice::BuiltIn,
        lexicon: true,
        hints: DEFAULT_HINTS as usize,
        memory: None::<PathBuf>,
        memory_examples: None,
    })
}

fn audit(
    settings: &RunSettings,
    translator: &mut dyn Translator,
    path: &str,
) -> anyhow::Result<()> {
    let checker = Checker::new(settings.lexicon.clone());

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

    let mut labels = Vec::new();
    let (mut any_flag, mut error_flag, mut note_only) = (Vec::new(), Vec::new(), Vec::new());
    let (mut doubt, mut low) = (Vec::new(), Vec::new());
    for (i, line) in lines.enumerate() {
        let fields: Vec<&str> = line.split('\t').collect();
        let field = |at: usize| fields.get(at).copied().unwrap_or_default();
        let (source, translation) = (field(source_at), field(translation_at));
        let terms = settings.glossary.find(source);
        let mut findings = checker.run(&Subject {
            source,
            translation,
            hit_cap: false,
            terms: &terms,
        });
        let logprobs = translator
            .score_answer(&Request::new(source, &terms), translation)
            .ok_or_else(|| ModelError::Inference(format!("row {}: not scored", i + 2)))?;
        let confidence = Signals::of(&logprobs).map_or(1.0, |s| s.confidence());
        any_flag.push(!findings.is_empty());
        weigh(&mut findings, confidence);
        let errors = findings
            .iter()
            .filter(|f| f.warning.severity == Severity::Error)
            .count();
        labels.push(field(name_at) == "1" || field(lost_at) == "1");
        error_flag.push(errors > 0);
        note_only.push(errors == 0 && !findings.is_empty());
        doubt.push(-confidence as f64);
        low.push(confidence < tarjama::check::LOW_CONFIDENCE);
        eprintln!(
            "row {}: label {} confidence {confidence:.2} {}",
            i + 2,
            u8::from(*labels.last().unwrap_or(&false)),
            findings
                .iter()
                .map(|f| format!("[{}] {}", f.warning.severity.name(), f.warning.message))
                .collect::<Vec<_>>()
                .join(" | ")
        );
    }
    let errors = labels.iter().filter(|l| **l).count();
    let unflagged = |flags: &[bool]| {
        flags
            .iter()
            .zip(&labels)
            .filter(|(f, l)| **l && !**f)
            .count()
    };
    println!(
        "{} rows, {errors} with a meaning error (name or lost content)",
        labels.len()
    );
    println!(
        "confidence ROC-AUC for them: {}",
        roc_auc(&doubt, &labels).map_or("–".into(), |a| format!("{a:.3}"))
    );
    println!("| flag | rows | precision | recall | meaning errors left unflagged |");
    println!("|---|---|---|---|---|");
    for (name, flags) in [
        ("any flag (before severities)", &any_flag),
        ("error severity (now)", &error_flag),
        ("note only (now)", &note_only),
        ("low confidence", &low),
    ] {
        let q = flag_quality(flags, &labels);
        println!(
            "| {name} | {} | {:.1} % | {:.1} % | {} |",
            q.flagged,
            100.0 * q.precision,
            100.0 * q.recall,
            unflagged(flags)
        );
    }
    Ok(())
}
