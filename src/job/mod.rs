//! The batch job behind `tarjama translate`: inputs → load → segment → translate →
//! summarize → write, then the run's digest.
//!
//! A run has three stages, each a function a newcomer can read on its own:
//!
//! 1. [`plan`] collects the inputs, loads every document and decides which are up to
//!    date (skipped), which failed and which still need translating (`plan.rs`);
//! 2. the caller loads an [`Engine`] only if the plan has pending documents, so a
//!    nightly run where everything is up to date never loads the model;
//! 3. [`execute`] translates the pending documents with that engine: segments
//!    (`segments.rs`), the translation memory (`memory.rs`), batches (`batches.rs`), then
//!    per group assembly, summaries and writing (`group.rs`); [`finish`] writes the
//!    run's digest and returns the [`Report`]. [`run`] does all three.
//!
//! Documents are translated in groups: the segments of every document in a group go to
//! the model together, so it can batch them (longest first) whatever document they come
//! from; results go back to their documents in order. A group holds at least
//! [`GROUP_SEGMENTS`] segments (a small run is one group), and its documents are written
//! as soon as it is done, so an interrupted run keeps every group finished before.
//!
//! One bad document never stops the others: its error is recorded and the run goes on.

mod batches;
mod group;
mod memory;
mod plan;
mod progress;
mod report;
mod segments;
#[cfg(test)]
mod tests;

use std::path::PathBuf;
use std::time::Duration;

pub use plan::{plan, Plan};
pub use progress::LOG_EVERY;
pub use report::{Outcome, Report, StageSeconds};
pub(crate) use segments::{segment_document, Segmented};

use crate::check::Checker;
use crate::engine::Engine;
use crate::inputs::Input;
use crate::settings::RunSettings;
use crate::write::digest::{DigestEntry, DigestFailure};
use crate::write::{self, Format};
use group::{translate_group, Stage};
use memory::RunMemory;
use plan::Pending;
use progress::Progress;

/// Everything `tarjama translate` was asked to do.
#[derive(Debug, Clone)]
pub struct JobSettings {
    /// How to translate: model, strategy, glossary, lexicon, memory.
    pub run: RunSettings,
    pub inputs: Vec<String>,
    pub out_dir: PathBuf,
    pub formats: Vec<Format>,
    /// Redo documents whose outputs are up to date.
    pub force: bool,
    /// `(I, N)`: translate only the documents of shard I of N.
    pub shard: Option<(usize, usize)>,
    /// Draw a progress bar (stderr is a terminal and not `-q`).
    pub progress_bar: bool,
    /// Without a bar, how often a progress line is logged (normally [`LOG_EVERY`]).
    pub progress_every: Duration,
}

/// Fewest segments translated together before a group's documents are written.
pub const GROUP_SEGMENTS: usize = 512;

/// Runs the whole job: [`plan`], then `load` the engine if any document needs it, then
/// [`execute`] and [`finish`]. A model that cannot be loaded fails every pending
/// document, not the run. Errors only for problems that stop every document (the output
/// directory cannot be created); per-document problems end up in the report.
pub fn run(
    job: &JobSettings,
    load: impl FnOnce(&RunSettings) -> anyhow::Result<Engine>,
) -> anyhow::Result<Report> {
    let mut plan = plan(job)?;
    if plan.pending() > 0 {
        match load(&job.run) {
            Ok(mut engine) => execute(job, &mut plan, &mut engine),
            Err(e) => plan.fail_pending(&e),
        }
    }
    finish(job, plan)
}

/// Translates, summarizes and writes the plan's pending documents with `engine`, group
/// by group; their outcomes go into the plan's report.
pub fn execute(job: &JobSettings, plan: &mut Plan, engine: &mut Engine) {
    plan.report.model_load_seconds = engine.load_seconds;
    let memory = RunMemory::open(&job.run, &plan.fingerprint, &engine.model);
    let pending = std::mem::take(&mut plan.pending);
    let segmented: Vec<Segmented> = pending
        .iter()
        .map(|p| {
            segment_document(
                &p.doc,
                job.run.max_segment_tokens,
                engine.translator.as_ref(),
            )
        })
        .collect();
    let total: usize = segmented.iter().map(Segmented::count).sum();
    let progress = Progress::new(job.progress_bar, total, job.progress_every);
    let model = engine.model.clone();
    let stage = Stage {
        job,
        fingerprint: &plan.fingerprint,
        model: &model,
        memory: memory.as_ref(),
        checker: Checker::new(job.run.lexicon.clone()),
        progress: &progress,
    };
    let mut documents: Vec<(Pending, Segmented)> = pending.into_iter().zip(segmented).collect();
    let count = documents.len();
    let mut done = 0;
    let mut outcomes = Vec::new();
    while !documents.is_empty() {
        let group = next_group(&mut documents);
        announce(&progress, &group, done, count);
        done += group.len();
        let (group_outcomes, seconds) = translate_group(&stage, engine, group);
        plan.report.stages.translate += seconds.translate;
        plan.report.stages.summarize += seconds.summarize;
        for (name, outcome) in group_outcomes {
            if let Outcome::Failed { error } = &outcome {
                progress.suspend(|| tracing::error!("{error}"));
            }
            outcomes.push((name, outcome));
        }
    }
    // Stops the progress lines before the run's report.
    drop(progress);
    plan.report.outcomes.extend(outcomes);
    if let Some(memory) = &memory {
        plan.report.memory_hits = Some(memory.hits());
        plan.report.memory_examples = memory.examples.as_ref().map(|e| e.shown());
    }
}

/// Writes the run's digest and returns the report, outcomes in input order.
pub fn finish(job: &JobSettings, plan: Plan) -> anyhow::Result<Report> {
    let Plan {
        started,
        order,
        mut report,
        ..
    } = plan;
    write_run_digest(job, &order, &report)?;
    report.wall = started.elapsed();
    // Outcomes in input order, whatever order they were decided in.
    let position = |name: &String| {
        order
            .iter()
            .position(|i| &i.display == name)
            .unwrap_or(usize::MAX)
    };
    report.outcomes.sort_by_key(|(name, _)| position(name));
    Ok(report)
}

/// Takes the next group off `documents`: at least one document, and documents until the
/// group holds [`GROUP_SEGMENTS`] segments.
fn next_group(documents: &mut Vec<(Pending, Segmented)>) -> Vec<(Pending, Segmented)> {
    let mut take = 0;
    let mut segments = 0;
    while take < documents.len() && (take == 0 || segments < GROUP_SEGMENTS) {
        segments += documents[take].1.count();
        take += 1;
    }
    documents.drain(..take).collect()
}

fn announce(progress: &Progress, group: &[(Pending, Segmented)], done: usize, count: usize) {
    let take = group.len();
    let segments: usize = group.iter().map(|(_, s)| s.count()).sum();
    progress.set_message(format!(
        "documents {}-{} of {count}: {}",
        done + 1,
        done + take,
        group[0].0.input.display
    ));
    tracing::info!(
        "translating {take} document(s), {segments} segments, together [{}-{} of {count}]",
        done + 1,
        done + take
    );
}

/// Rebuilds `index.html` and `digest.md` from every document's record, in input order.
fn write_run_digest(job: &JobSettings, order: &[Input], report: &Report) -> anyhow::Result<()> {
    let mut entries = Vec::new();
    let mut failures = Vec::new();
    for input in order {
        let failed = report.outcomes.iter().find_map(|(name, o)| match o {
            Outcome::Failed { error } if name == &input.display => Some(error.clone()),
            _ => None,
        });
        if let Some(error) = failed {
            failures.push(DigestFailure {
                source_path: input.display.clone(),
                error,
            });
        } else if let Some(record) = write::read_record(&job.out_dir, &input.name) {
            entries.push(DigestEntry::from(&record));
        }
    }
    for (name, outcome) in &report.outcomes {
        if let Outcome::Failed { error } = outcome {
            if !order.iter().any(|i| &i.display == name) {
                failures.push(DigestFailure {
                    source_path: name.clone(),
                    error: error.clone(),
                });
            }
        }
    }
    write::digest::write_failures(&job.out_dir, job.shard, &failures)?;
    write::digest::write_digest(&job.out_dir, &entries, &failures, &job.formats)?;
    Ok(())
}
