//! One group of documents through the engine: translate their segments together, put
//! the translations back into documents, summarize them, write them.

use std::time::Instant;

use super::batches::translate_segments;
use super::memory::RunMemory;
use super::plan::Pending;
use super::progress::Progress;
use super::segments::{assemble, collect, segment_refs, Segmented};
use super::{JobSettings, Outcome, StageSeconds};
use crate::check::{Checker, Warning};
use crate::document::{ModelRecord, Settings, Timings, TranslatedDocument, TranslatedParagraph};
use crate::engine::Engine;
use crate::model::ModelError;
use crate::summarize::{self, CheckedSummary, SummaryInput};
use crate::write;

/// What every stage of a run shares.
pub(super) struct Stage<'a> {
    pub(super) job: &'a JobSettings,
    /// The settings every output records.
    pub(super) fingerprint: &'a Settings,
    pub(super) model: &'a ModelRecord,
    pub(super) memory: Option<&'a RunMemory>,
    pub(super) checker: Checker,
    pub(super) progress: &'a Progress,
}

/// A translated document, not yet summarized or written.
struct Draft {
    /// Its place in the group.
    doc: usize,
    /// The segments it was translated in.
    segments: usize,
    paragraphs: Vec<TranslatedParagraph>,
    /// Its share of the group's translation time.
    translate_seconds: f64,
    title: String,
    title_warnings: Vec<Warning>,
}

type Summary = Option<Result<CheckedSummary, ModelError>>;

/// Translates, summarizes and writes a group of documents; returns each one's outcome,
/// and the time spent translating and summarizing.
pub(super) fn translate_group(
    stage: &Stage,
    engine: &mut Engine,
    group: Vec<(Pending, Segmented)>,
) -> (Vec<(String, Outcome)>, StageSeconds) {
    let started = Instant::now();
    let refs = segment_refs(&group);
    let results = translate_segments(stage, engine.translator.as_mut(), &refs, group.len());
    let translate_seconds = started.elapsed().as_secs_f64();

    let mut outcomes: Vec<Option<Outcome>> = group.iter().map(|_| None).collect();
    let drafts = drafts(
        &group,
        collect(&group, refs, results),
        translate_seconds,
        &mut outcomes,
    );
    let summarize_started = Instant::now();
    if stage.job.run.summary() && !drafts.is_empty() {
        let n = drafts.len();
        let documents = if n == 1 { "document" } else { "documents" };
        stage
            .progress
            .set_stage(Some(format!("summarizing {n} {documents}")));
    }
    let summaries = summarize(stage, engine, &group, &drafts);
    stage.progress.set_stage(None);
    let seconds = StageSeconds {
        translate: translate_seconds,
        summarize: summarize_started.elapsed().as_secs_f64(),
    };
    let summarize_seconds = seconds.summarize / drafts.len().max(1) as f64;
    for (draft, summary) in drafts.into_iter().zip(summaries) {
        let pending = &group[draft.doc].0;
        let d = draft.doc;
        outcomes[d] = Some(finish_document(
            stage,
            pending,
            draft,
            summary,
            summarize_seconds,
        ));
    }
    let outcomes = group
        .into_iter()
        .zip(outcomes)
        .map(|((pending, _), outcome)| {
            let outcome = outcome.unwrap_or_else(|| Outcome::Failed {
                error: format!("{}: not translated", pending.input.display),
            });
            (pending.input.display, outcome)
        })
        .collect();
    (outcomes, seconds)
}

/// The documents whose every segment was translated, assembled and titled; the others
/// are failures. The group was translated together: each document is charged its share
/// of the time, in proportion to the tokens generated for it.
fn drafts(
    group: &[(Pending, Segmented)],
    collected: Vec<super::segments::Collected>,
    translate_seconds: f64,
    outcomes: &mut [Option<Outcome>],
) -> Vec<Draft> {
    let all_generated: usize = collected.iter().map(|c| c.generated).sum();
    let mut drafts = Vec::new();
    for (d, ((pending, segmented), c)) in group.iter().zip(collected).enumerate() {
        if let Some(error) = &c.error {
            outcomes[d] = Some(Outcome::Failed {
                error: format!("{}: {error}", pending.input.display),
            });
            continue;
        }
        let share = if all_generated == 0 {
            1.0 / group.len() as f64
        } else {
            c.generated as f64 / all_generated as f64
        };
        let paragraphs = assemble(&pending.doc, c.sentences);
        let (title, title_warnings) = summarize::title_with_warnings(&paragraphs);
        drafts.push(Draft {
            doc: d,
            segments: segmented.count(),
            paragraphs,
            translate_seconds: share * translate_seconds,
            title,
            title_warnings,
        });
    }
    drafts
}

/// The drafts' summaries, written together by the engine's summarizer; `None` for each
/// when summaries are off or the engine has no summarizer.
fn summarize(
    stage: &Stage,
    engine: &mut Engine,
    group: &[(Pending, Segmented)],
    drafts: &[Draft],
) -> Vec<Summary> {
    let summary = stage.job.run.summary();
    match engine.summarizer() {
        Some(llm) if summary => {
            let inputs: Vec<SummaryInput> = drafts
                .iter()
                .map(|draft| SummaryInput {
                    paragraphs: &draft.paragraphs,
                    title: &draft.title,
                    arabic_words: group[draft.doc].0.doc.arabic_words(),
                })
                .collect();
            let lexicon = stage.job.run.lexicon.as_deref();
            summarize::summarize_checked_batch(llm, &inputs, lexicon)
                .into_iter()
                .map(Some)
                .collect()
        }
        _ => drafts.iter().map(|_| None).collect(),
    }
}

/// Writes one summarized document and says how it went.
fn finish_document(
    stage: &Stage,
    pending: &Pending,
    draft: Draft,
    summary: Summary,
    summarize_seconds: f64,
) -> Outcome {
    let (summary, summary_warnings) = match (stage.job.run.summary(), summary) {
        (true, Some(Ok(s))) => (Some(s.text), s.warnings),
        (true, Some(Err(e))) => {
            return Outcome::Failed {
                error: format!("{}: summary: {e}", pending.input.display),
            };
        }
        (true, None) => (Some(String::new()), Vec::new()),
        (false, _) => (None, Vec::new()),
    };
    for w in &summary_warnings {
        stage.progress.suspend(|| {
            tracing::warn!("{}: summary flagged: {}", pending.input.display, w.message)
        });
    }
    let segments = draft.segments;
    let doc = record(
        stage,
        pending,
        draft,
        summary,
        summary_warnings,
        summarize_seconds,
    );
    write_document(stage, pending, &doc, segments)
}

/// The document as every output shows it and its JSON record keeps it.
fn record(
    stage: &Stage,
    pending: &Pending,
    draft: Draft,
    summary: Option<String>,
    summary_warnings: Vec<Warning>,
    summarize_seconds: f64,
) -> TranslatedDocument {
    let load_seconds = pending.load_seconds;
    let mut doc = TranslatedDocument {
        name: pending.input.name.clone(),
        source_path: pending.input.display.clone(),
        source_sha256: pending.doc.source_sha256.clone(),
        format: pending.doc.format.to_string(),
        extraction: pending.doc.extraction.clone(),
        model: stage.model.clone(),
        settings: stage.fingerprint.clone(),
        title: draft.title,
        title_warnings: draft.title_warnings,
        summary,
        summary_warnings,
        arabic_words: pending.doc.arabic_words(),
        confidence: None,
        warnings: TranslatedDocument::collect_warnings(&draft.paragraphs),
        paragraphs: draft.paragraphs,
        timings: Timings {
            load_seconds,
            translate_seconds: draft.translate_seconds,
            summarize_seconds,
            total_seconds: load_seconds + draft.translate_seconds + summarize_seconds,
        },
    };
    doc.confidence = doc.mean_confidence();
    doc
}

/// Writes every format of `doc` (each atomically), translated in `segments`, and logs
/// it.
fn write_document(
    stage: &Stage,
    pending: &Pending,
    doc: &TranslatedDocument,
    segments: usize,
) -> Outcome {
    let out_dir = &stage.job.out_dir;
    match write::write_document(out_dir, doc, &stage.job.formats) {
        Ok(_) => {
            let flagged = doc.flagged_sentences();
            stage.progress.note(format!(
                "{}: done ({segments} segments, {} Arabic words, {flagged} flagged, {:.1} s of the batch) → {}",
                pending.input.display,
                doc.arabic_words,
                doc.timings.total_seconds,
                out_dir.join(&doc.name).display()
            ));
            Outcome::Translated {
                arabic_words: doc.arabic_words,
                seconds: doc.timings.total_seconds,
                flagged,
            }
        }
        Err(e) => Outcome::Failed {
            error: e.to_string(),
        },
    }
}
