//! The first stage of a run, before any model: collect the inputs (this shard's), load
//! every document, and decide which are up to date, which failed and which still need
//! translating.

use std::path::Path;
use std::time::Instant;

use super::{JobSettings, Outcome, Report};
use crate::document::{Document, ExtractionMethod, ParagraphKind, Settings};
use crate::inputs::{self, Input, Source};
use crate::write;
use crate::{load, load::LoadError};

/// A document that passed loading and still needs translating.
pub(super) struct Pending {
    pub(super) input: Input,
    pub(super) doc: Document,
    pub(super) load_seconds: f64,
}

/// What a run has to do: the documents to translate, and what is already decided about
/// the others (skipped, failed) in the report so far.
pub struct Plan {
    pub(super) started: Instant,
    /// The settings every output of this run records ([`RunSettings::fingerprint`]).
    ///
    /// [`RunSettings::fingerprint`]: crate::settings::RunSettings::fingerprint
    pub(super) fingerprint: Settings,
    pub(super) pending: Vec<Pending>,
    /// Every input in the order given, for the digest and the report.
    pub(super) order: Vec<Input>,
    pub(super) report: Report,
}

impl Plan {
    /// Documents that need the model.
    pub fn pending(&self) -> usize {
        self.pending.len()
    }

    /// The report as planned: skipped and failed documents, warnings.
    pub fn report(&self) -> &Report {
        &self.report
    }

    /// Without a model no pending document can be translated: all are failures.
    pub fn fail_pending(&mut self, error: &anyhow::Error) {
        let error = format!("{error:#}");
        tracing::error!("{error}");
        for p in self.pending.drain(..) {
            self.report.outcomes.push((
                p.input.display,
                Outcome::Failed {
                    error: error.clone(),
                },
            ));
        }
    }

    fn fail(&mut self, name: String, error: String) {
        self.report.outcomes.push((name, Outcome::Failed { error }));
    }

    fn warn(&mut self, warning: String) {
        tracing::warn!("{warning}");
        self.report.warnings.push(warning);
    }
}

/// Prepares the output directory, collects the inputs and loads every document first:
/// bad ones are reported early and the progress bar knows the real amount of work.
/// Errors only for problems that stop every document (the output directory cannot be
/// created or written).
pub fn plan(job: &JobSettings) -> anyhow::Result<Plan> {
    let started = Instant::now();
    prepare_out_dir(&job.out_dir)?;
    let mut plan = Plan {
        started,
        fingerprint: job.run.fingerprint(),
        pending: Vec::new(),
        order: Vec::new(),
        report: Report::default(),
    };
    for input in collect_inputs(job, &mut plan) {
        let t = Instant::now();
        match load_input(&input) {
            Err(e) => {
                tracing::error!("{e}");
                plan.fail(input.display.clone(), e.to_string());
            }
            Ok(doc) if is_up_to_date(job, &plan.fingerprint, &input, &doc) => {
                tracing::info!(
                    "{}: outputs up to date, skipped (use --force to redo)",
                    input.display
                );
                plan.report
                    .outcomes
                    .push((input.display.clone(), Outcome::Skipped));
            }
            Ok(doc) => {
                for w in document_warnings(&input.display, &doc) {
                    plan.warn(w);
                }
                plan.pending.push(Pending {
                    input: input.clone(),
                    doc,
                    load_seconds: t.elapsed().as_secs_f64(),
                });
            }
        }
        plan.order.push(input);
    }
    Ok(plan)
}

fn prepare_out_dir(dir: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).map_err(|e| {
        anyhow::anyhow!(
            "{}: cannot create the output directory ({e}); choose another --out",
            dir.display()
        )
    })?;
    tempfile::NamedTempFile::new_in(dir).map(drop).map_err(|e| {
        anyhow::anyhow!(
            "{}: output directory is not writable ({e}); fix its permissions or choose another --out",
            dir.display()
        )
    })
}

/// The inputs of this shard; arguments that name nothing usable are failures.
fn collect_inputs(job: &JobSettings, plan: &mut Plan) -> Vec<Input> {
    let (mut inputs, problems) = inputs::collect(&job.inputs);
    if let Some((index, count)) = job.shard {
        let all = inputs.len();
        inputs.retain(|i| inputs::shard_of(&i.relative, count) == index);
        tracing::info!("shard {index}/{count}: {} of {all} documents", inputs.len());
    }
    for p in problems {
        tracing::error!("{}", p.error);
        // Every shard sees a bad argument; only the first reports it as a failure, so a
        // merged digest lists it once.
        if job.shard.is_none_or(|(index, _)| index == 0) {
            plan.fail(p.path, p.error);
        }
    }
    inputs
}

/// Whether `input`'s outputs were written from this very text, model and settings (and
/// `--force` was not given). Without a model identity nothing is up to date.
fn is_up_to_date(job: &JobSettings, settings: &Settings, input: &Input, doc: &Document) -> bool {
    !job.force
        && job.run.model.sha256.as_deref().is_some_and(|sha| {
            write::is_up_to_date(
                &job.out_dir,
                &input.name,
                &doc.source_sha256,
                sha,
                settings,
                &job.formats,
            )
        })
}

/// What a reader of a document's translation should know about its source: no Arabic
/// in it, or text that came from OCR or a damaged PDF text layer.
fn document_warnings(display: &str, doc: &Document) -> Vec<String> {
    let mut warnings = Vec::new();
    if !doc
        .paragraphs
        .iter()
        .any(|p| p.kind != ParagraphKind::Passthrough)
    {
        warnings.push(format!(
            "{display}: no Arabic text found; copied through untranslated"
        ));
    }
    warnings.extend(extraction_warning(display, doc));
    warnings
}

/// A warning for a document whose text came from OCR or a damaged PDF text layer: the
/// translation can only be as good as that text.
fn extraction_warning(display: &str, doc: &Document) -> Option<String> {
    let extraction = doc.extraction.as_ref()?;
    let detail = if extraction.notes.is_empty() {
        String::new()
    } else {
        format!(" ({})", extraction.notes.join("; "))
    };
    match extraction.method {
        ExtractionMethod::TextLayer => None,
        ExtractionMethod::Degraded => Some(format!(
            "{display}: the PDF's text layer looks damaged{detail}; check the Arabic against the original"
        )),
        ExtractionMethod::Ocr => Some(format!(
            "{display}: read by OCR{detail}; names and numbers may be misread, check them against the original"
        )),
    }
}

fn load_input(input: &Input) -> Result<Document, LoadError> {
    match &input.source {
        Source::File(path) => load::load_file(path),
        Source::Stdin => {
            let mut bytes = Vec::new();
            std::io::Read::read_to_end(&mut std::io::stdin(), &mut bytes).map_err(|source| {
                LoadError::Io {
                    path: "-".into(),
                    source,
                }
            })?;
            load::load_bytes("-", &bytes)
        }
    }
}
