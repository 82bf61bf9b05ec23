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

use std::path::PathBuf;

use tarjama::check::{weigh, Checker, Severity, Signals, Subject};
use tarjama::engine;
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
        if flag == "--reconstruct" {
            return reconstruct(&mut translator, segments);
        }
    }
    let path = args
        .first()
        .cloned()
        .unwrap_or_else(|| "tests/fixtures/checks/samples.tsv".into());
    audit(&settings, &mut translator, &path)
}

fn reconstruct(translator: &mut dyn Translator, segments: &str) -> anyhow::Result<()> {
    for line in std::fs::read_to_string(segments)?.lines() {
        let mut record: serde_json::Value = serde_json::from_str(line)?;
        let source = record["source"].as_str().unwrap_or_default().to_string();
        let english = record["translation"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        record["reconstruction"] = translator.reconstruction(&source, &english).into();
        println!("{record}");
    }
    Ok(())
}

fn default_settings() -> anyhow::Result<RunSettings> {
    Ok(RunSettings::resolve(Choices {
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
    })?)
}

fn audit(
    settings: &RunSettings,
    translator: &mut dyn Translator,
    path: &str,
) -> anyhow::Result<()> {
    let checker = Checker::new(settings.lexicon.clone());

    let text = std::fs::read_to_string(&path)?;
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
