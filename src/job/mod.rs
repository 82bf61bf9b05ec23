//! The batch job behind `tarjama translate`: inputs → load → segment → translate →
//! summarize → write, then the run's digest.
//!
//! Documents are translated in groups: the segments of every document in a group go to
//! the model together, so it can batch them (longest first) whatever document they come
//! from; results go back to their documents in order. A group holds at least
//! [`GROUP_SEGMENTS`] segments (a small run is one group), and its documents are written
//! as soon as it is done, so an interrupted run keeps every group finished before.
//!
//! One bad document never stops the others: its error is recorded and the run goes on.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::check::{Checker, Warning};
use crate::document::{
    Document, ExtractionMethod, ModelRecord, ParagraphKind, Settings, Timings, TranslatedDocument,
    TranslatedParagraph, TranslatedSentence,
};
use crate::glossary::Glossary;
use crate::inputs::{self, Input, Source};
use crate::lexicon::Lexicon;
use crate::memory::fuzzy::{FuzzyMatch, MemoryExamples};
use crate::memory::{self, Memory};
use crate::model::{DeviceChoice, GgufLlm, ModelError, OpusMt};
use crate::registry::{self, FetchPolicy, ModelFile, ModelKind};
use crate::segment;
use crate::summarize::{self, CheckedSummary, SummaryInput};
use crate::translate::{
    translate_checked_batch, CheckedTranslation, LlmTranslator, MtTranslator, PromptStyle, Request,
    Strategy, Translator, PROMPT_VERSION,
};
use crate::write::digest::{DigestEntry, DigestFailure};
use crate::write::{self, Format};
use crate::{load, load::LoadError};

/// Everything `tarjama translate` was asked to do.
#[derive(Debug, Clone)]
pub struct JobOptions {
    pub inputs: Vec<String>,
    pub out_dir: PathBuf,
    pub model: String,
    pub formats: Vec<Format>,
    pub summary: bool,
    /// The chat LLM that writes summaries when `model` is a translation model.
    pub summary_model: String,
    pub force: bool,
    pub max_new_tokens: usize,
    pub max_segment_tokens: usize,
    /// Terms whose renderings are imposed and checked; empty to disable.
    pub glossary: Glossary,
    pub prompt_style: PromptStyle,
    /// Retry segments that fail a check.
    pub strategy: Strategy,
    pub fetch: FetchPolicy,
    /// Draw a progress bar (stderr is a terminal and not `-q`).
    pub progress_bar: bool,
    pub engine: Engine,
    /// The translation memory's file; `None` with `--no-memory`.
    pub memory: Option<PathBuf>,
    /// `(I, N)`: translate only the documents of shard I of N.
    pub shard: Option<(usize, usize)>,
    /// The Arabic lexicon for hints and checks; `None` with `--no-lexicon`.
    pub lexicon: Option<Arc<Lexicon>>,
    /// Rare words of each segment whose glosses the model is given.
    pub hints: usize,
    /// Show each segment's closest translation memory match at or above this similarity
    /// (percent) to the model as a worked example; `None` to show none.
    pub memory_examples: Option<u32>,
}

/// Where and how wide the model runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Engine {
    pub device: DeviceChoice,
    /// Requests the model decodes together (1: one at a time).
    pub batch_size: usize,
}

/// Fewest segments translated together before a group's documents are written.
pub const GROUP_SEGMENTS: usize = 512;

/// What happened to one document.
#[derive(Debug, Clone)]
pub enum Outcome {
    Translated {
        arabic_words: usize,
        seconds: f64,
        /// Sentences whose translation failed a check even after a retry.
        flagged: usize,
    },
    /// Outputs were up to date.
    Skipped,
    Failed {
        error: String,
    },
}

/// The end-of-run report.
#[derive(Debug, Default)]
pub struct Report {
    pub outcomes: Vec<(String, Outcome)>,
    pub warnings: Vec<String>,
    pub model_load_seconds: Option<f64>,
    /// Segments found in the translation memory (`None` without one).
    pub memory_hits: Option<usize>,
    /// Segments shown a close memory match as an example (`None` unless asked for).
    pub memory_examples: Option<usize>,
    pub wall: Duration,
}

impl Report {
    fn count(&self, f: impl Fn(&Outcome) -> bool) -> usize {
        self.outcomes.iter().filter(|(_, o)| f(o)).count()
    }
    pub fn done(&self) -> usize {
        self.count(|o| matches!(o, Outcome::Translated { .. }))
    }
    pub fn skipped(&self) -> usize {
        self.count(|o| matches!(o, Outcome::Skipped))
    }
    pub fn failed(&self) -> usize {
        self.count(|o| matches!(o, Outcome::Failed { .. }))
    }
    pub fn flagged(&self) -> usize {
        self.outcomes
            .iter()
            .map(|(_, o)| match o {
                Outcome::Translated { flagged, .. } => *flagged,
                _ => 0,
            })
            .sum()
    }
    pub fn arabic_words(&self) -> usize {
        self.outcomes
            .iter()
            .map(|(_, o)| match o {
                Outcome::Translated { arabic_words, .. } => *arabic_words,
                _ => 0,
            })
            .sum()
    }

    /// The lines printed at the end of a run.
    pub fn render(&self) -> String {
        let secs = self.wall.as_secs_f64();
        let words = self.arabic_words();
        let mut out = format!(
            "tarjama: {} translated, {} skipped (up to date), {} failed; {} Arabic words in {:.1} s ({:.2} words/s)",
            self.done(),
            self.skipped(),
            self.failed(),
            words,
            secs,
            if secs > 0.0 { words as f64 / secs } else { 0.0 }
        );
        if let Some(load) = self.model_load_seconds {
            out.push_str(&format!("; model loaded in {load:.1} s"));
        }
        if let Some(hits) = self.memory_hits {
            out.push_str(&format!("; {hits} segment(s) from the translation memory"));
        }
        if let Some(shown) = self.memory_examples {
            out.push_str(&format!("; {shown} shown a close memory match"));
        }
        if self.flagged() > 0 {
            out.push_str(&format!(
                "\n  {} sentence(s) flagged for review:",
                self.flagged()
            ));
            for (name, outcome) in &self.outcomes {
                if let Outcome::Translated { flagged, .. } = outcome {
                    if *flagged > 0 {
                        out.push_str(&format!("\n    {name}: {flagged}"));
                    }
                }
            }
        }
        // Every error already names its file.
        for (_, outcome) in &self.outcomes {
            if let Outcome::Failed { error } = outcome {
                out.push_str(&format!("\n  failed: {error}"));
            }
        }
        out
    }
}

/// A document that passed loading and still needs translating.
struct Pending {
    input: Input,
    doc: Document,
    load_seconds: f64,
}

/// Runs the whole job. Errors only for problems that stop every document (the output
/// directory cannot be created); per-document problems end up in the report.
pub fn run(opts: &JobOptions) -> anyhow::Result<Report> {
    let started = Instant::now();
    let mut report = Report::default();
    std::fs::create_dir_all(&opts.out_dir).map_err(|e| {
        anyhow::anyhow!(
            "{}: cannot create the output directory ({e}); choose another --out",
            opts.out_dir.display()
        )
    })?;
    check_writable(&opts.out_dir)?;

    let (mut inputs, problems) = inputs::collect(&opts.inputs);
    if let Some((index, count)) = opts.shard {
        let all = inputs.len();
        inputs.retain(|i| inputs::shard_of(&i.relative, count) == index);
        tracing::info!("shard {index}/{count}: {} of {all} documents", inputs.len());
    }
    for p in problems {
        tracing::error!("{}", p.error);
        // Every shard sees a bad argument; only the first reports it as a failure, so a
        // merged digest lists it once.
        if opts.shard.is_none_or(|(index, _)| index == 0) {
            report
                .outcomes
                .push((p.path, Outcome::Failed { error: p.error }));
        }
    }

    let settings = Settings {
        max_new_tokens: opts.max_new_tokens,
        max_segment_tokens: opts.max_segment_tokens,
        summary: opts.summary,
        prompt_version: PROMPT_VERSION,
        glossary_sha256: (!opts.glossary.is_empty()).then(|| opts.glossary.fingerprint()),
        prompt_style: opts.prompt_style.name().to_string(),
        retry: opts.strategy.retry,
        candidates: opts.strategy.candidates,
        context: opts.strategy.context,
        lexicon: opts.lexicon.is_some(),
        hints: opts.lexicon.as_ref().map_or(0, |_| opts.hints),
        memory_examples: opts.memory_examples.filter(|_| opts.memory.is_some()),
    };
    let known_sha = model_identity(&opts.model);

    // Load every document first: bad ones are reported early and the progress bar knows
    // the real amount of work.
    let mut pending = Vec::new();
    // Every input in the order given, for the digest and the report.
    let mut order: Vec<Input> = Vec::new();
    for input in inputs {
        let t = Instant::now();
        match load_input(&input) {
            Err(e) => {
                tracing::error!("{e}");
                report.outcomes.push((
                    input.display.clone(),
                    Outcome::Failed {
                        error: e.to_string(),
                    },
                ));
                order.push(input);
            }
            Ok(doc) => {
                let up_to_date = !opts.force
                    && known_sha.as_deref().is_some_and(|sha| {
                        write::is_up_to_date(
                            &opts.out_dir,
                            &input.name,
                            &doc.source_sha256,
                            sha,
                            &settings,
                            &opts.formats,
                        )
                    });
                if up_to_date {
                    tracing::info!(
                        "{}: outputs up to date, skipped (use --force to redo)",
                        input.display
                    );
                    report
                        .outcomes
                        .push((input.display.clone(), Outcome::Skipped));
                } else {
                    if !doc
                        .paragraphs
                        .iter()
                        .any(|p| p.kind != ParagraphKind::Passthrough)
                    {
                        let w = format!(
                            "{}: no Arabic text found; copied through untranslated",
                            input.display
                        );
                        tracing::warn!("{w}");
                        report.warnings.push(w);
                    }
                    if let Some(w) = extraction_warning(&input.display, &doc) {
                        tracing::warn!("{w}");
                        report.warnings.push(w);
                    }
                    pending.push(Pending {
                        input: input.clone(),
                        doc,
                        load_seconds: t.elapsed().as_secs_f64(),
                    });
                }
                order.push(input);
            }
        }
    }

    if !pending.is_empty() {
        translate_pending(opts, &settings, pending, &mut report)?;
    }

    write_run_digest(opts, &order, &report)?;
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

/// The sha256 a model's records carry, known before loading it, so that unchanged
/// documents are skipped whatever the model: the manifest's for a built-in model (not
/// fetched just to compare), else that of the local file, OPUS-MT directory or cached
/// `hf:` model (hashed once, then remembered by path, size and mtime). `None` when it
/// cannot be known without the network: then everything is translated.
fn model_identity(spec: &str) -> Option<String> {
    match registry::manifest(spec) {
        Some(m) => Some(m.sha256),
        None => registry::resolve(spec, FetchPolicy::Forbid)
            .ok()
            .map(|file| file.sha256),
    }
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

fn check_writable(dir: &std::path::Path) -> anyhow::Result<()> {
    tempfile::NamedTempFile::new_in(dir).map(drop).map_err(|e| {
        anyhow::anyhow!(
            "{}: output directory is not writable ({e}); fix its permissions or choose another --out",
            dir.display()
        )
    })
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

/// Finds (fetching if allowed) and loads a model, ready to translate.
/// Loads the translation backend `spec` names: a chat LLM (which also writes summaries),
/// or an OPUS-MT model with `summary_model`, a GGUF LLM, for summaries.
pub fn load_translator(
    spec: &str,
    summary_model: Option<&str>,
    fetch: FetchPolicy,
    max_new_tokens: usize,
    style: PromptStyle,
    engine: Engine,
    hints: Option<(Arc<Lexicon>, usize)>,
) -> anyhow::Result<(ModelFile, Box<dyn Translator>)> {
    let file = registry::resolve(spec, fetch)?;
    let device = engine.device.resolve()?;
    match file.kind {
        ModelKind::Gguf => {
            let llm = GgufLlm::load(&file.path, &device)?.with_batch_size(engine.batch_size);
            let mut translator = LlmTranslator::new(llm, max_new_tokens, style);
            if let Some((lexicon, count)) = hints {
                translator = translator.with_hints(lexicon, count);
            }
            Ok((file, Box::new(translator)))
        }
        ModelKind::Marian => {
            let mt = OpusMt::load(&file.path, &device)?.with_batch_size(engine.batch_size);
            let summarizer = match summary_model {
                Some(spec) => {
                    let summary_file = registry::resolve(spec, fetch)?;
                    if summary_file.kind != ModelKind::Gguf {
                        anyhow::bail!(
                            "--summary-model {spec}: summaries need a chat LLM (.gguf), not a translation model"
                        );
                    }
                    Some(
                        GgufLlm::load(&summary_file.path, &device)?
                            .with_batch_size(engine.batch_size),
                    )
                }
                None => None,
            };
            Ok((file, Box::new(MtTranslator::new(mt, summarizer))))
        }
    }
}

/// Loads a GGUF chat LLM as a translator, for work that needs its prompts.
pub fn load_llm_translator(
    spec: &str,
    fetch: FetchPolicy,
    max_new_tokens: usize,
    style: PromptStyle,
    engine: Engine,
) -> anyhow::Result<(ModelFile, LlmTranslator<GgufLlm>)> {
    let file = registry::resolve(spec, fetch)?;
    if file.kind != ModelKind::Gguf {
        anyhow::bail!("{spec}: this needs a chat LLM (.gguf), not a translation model");
    }
    let device = engine.device.resolve()?;
    let llm = GgufLlm::load(&file.path, &device)?.with_batch_size(engine.batch_size);
    Ok((file, LlmTranslator::new(llm, max_new_tokens, style)))
}

/// A document cut into the units the model translates.
pub(crate) struct Segmented {
    /// Per paragraph: the source segments (empty for passthrough).
    pub(crate) segments: Vec<Vec<String>>,
}

impl Segmented {
    fn count(&self) -> usize {
        self.segments.iter().map(Vec::len).sum()
    }
}

pub(crate) fn segment_document(
    doc: &Document,
    max_tokens: usize,
    translator: &dyn Translator,
) -> Segmented {
    let count = |s: &str| {
        translator
            .count_tokens(s)
            // A tokenizer failure on odd text must not lose text: words are a fair stand-in.
            .unwrap_or_else(|_| s.split_whitespace().count() * 3)
    };
    let segments = doc
        .paragraphs
        .iter()
        .map(|p| match p.kind {
            ParagraphKind::Passthrough => Vec::new(),
            ParagraphKind::Heading | ParagraphKind::Body => {
                segment::segment_paragraph(&p.text, max_tokens, &count)
            }
        })
        .collect();
    Segmented { segments }
}

fn translate_pending(
    opts: &JobOptions,
    settings: &Settings,
    pending: Vec<Pending>,
    report: &mut Report,
) -> anyhow::Result<()> {
    let t = Instant::now();
    let loaded = load_translator(
        &opts.model,
        opts.summary.then_some(opts.summary_model.as_str()),
        opts.fetch,
        opts.max_new_tokens,
        opts.prompt_style,
        opts.engine,
        opts.lexicon.clone().map(|l| (l, opts.hints)),
    );
    let (file, mut translator) = match loaded {
        Ok(m) => m,
        Err(e) => {
            // Without a model no pending document can be translated; all are failures.
            let error = format!("{e:#}");
            tracing::error!("{error}");
            for p in pending {
                report.outcomes.push((
                    p.input.display,
                    Outcome::Failed {
                        error: error.clone(),
                    },
                ));
            }
            return Ok(());
        }
    };
    report.model_load_seconds = Some(t.elapsed().as_secs_f64());
    tracing::info!(
        "model {} loaded in {:.1} s (batch size {})",
        file.name,
        t.elapsed().as_secs_f64(),
        opts.engine.batch_size
    );
    let model = ModelRecord {
        name: file.name.clone(),
        file_sha256: file.sha256.clone(),
    };
    let memory = open_memory(opts, settings, &model);

    let segmented: Vec<Segmented> = pending
        .iter()
        .map(|p| segment_document(&p.doc, opts.max_segment_tokens, translator.as_ref()))
        .collect();
    let total: usize = segmented.iter().map(Segmented::count).sum();
    let bar = progress_bar(opts.progress_bar, total as u64);

    let mut documents: Vec<(Pending, Segmented)> = pending.into_iter().zip(segmented).collect();
    let count = documents.len();
    let mut done = 0;
    while !documents.is_empty() {
        let mut take = 0;
        let mut segments = 0;
        while take < documents.len() && (take == 0 || segments < GROUP_SEGMENTS) {
            segments += documents[take].1.count();
            take += 1;
        }
        let group: Vec<(Pending, Segmented)> = documents.drain(..take).collect();
        bar.set_message(format!(
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
        done += take;
        let outcomes = translate_group(
            opts,
            settings,
            &model,
            memory.as_ref(),
            translator.as_mut(),
            group,
            &bar,
        );
        for (name, outcome) in outcomes {
            if let Outcome::Failed { error } = &outcome {
                bar.suspend(|| tracing::error!("{error}"));
            }
            report.outcomes.push((name, outcome));
        }
    }
    bar.finish_and_clear();
    if let Some(memory) = &memory {
        report.memory_hits = Some(memory.hits.get());
        report.memory_examples = memory.examples.as_ref().map(|e| e.shown());
    }
    Ok(())
}

/// The run's translation memory, unless disabled; a memory that cannot be opened is
/// reported and the run goes on without it.
fn open_memory(opts: &JobOptions, settings: &Settings, model: &ModelRecord) -> Option<RunMemory> {
    let path = opts.memory.as_ref()?;
    if opts.strategy.context {
        // With context a translation depends on the segment before it, which the memory's
        // key does not hold.
        return None;
    }
    let store = match Memory::open(path) {
        Ok(m) => m,
        Err(e) => {
            tracing::warn!("{e}; continuing without it");
            return None;
        }
    };
    let fingerprint = memory::fingerprint(&[
        ("model", model.file_sha256.clone()),
        ("prompt_version", settings.prompt_version.to_string()),
        ("prompt_style", settings.prompt_style.clone()),
        ("max_new_tokens", settings.max_new_tokens.to_string()),
        ("retry", settings.retry.to_string()),
        ("candidates", settings.candidates.to_string()),
        (
            "glossary",
            settings.glossary_sha256.clone().unwrap_or_default(),
        ),
        ("lexicon", settings.lexicon.to_string()),
        ("hints", settings.hints.to_string()),
        (
            "memory_examples",
            settings
                .memory_examples
                .map(|p| p.to_string())
                .unwrap_or_default(),
        ),
    ]);
    let examples =
        settings
            .memory_examples
            .and_then(|percent| match MemoryExamples::load(&store, percent) {
                Ok(examples) => Some(examples),
                Err(e) => {
                    tracing::warn!("{e}; continuing without memory examples");
                    None
                }
            });
    Some(RunMemory {
        store,
        fingerprint,
        hits: std::cell::Cell::new(0),
        examples,
    })
}

fn progress_bar(enabled: bool, total: u64) -> ProgressBar {
    if !enabled {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
    bar.set_style(
        ProgressStyle::with_template(
            "{spinner} [{elapsed_precise}] {wide_bar} {pos}/{len} segments, ETA {eta}\n  {msg}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar.enable_steady_tick(Duration::from_millis(200));
    bar
}

/// Where a segment sits: document, paragraph, and its source text.
struct SegmentRef {
    doc: usize,
    paragraph: usize,
    source: String,
}

/// The translation memory of a run, with what this run's translations are filed under.
struct RunMemory {
    store: Memory,
    fingerprint: String,
    hits: std::cell::Cell<usize>,
    examples: Option<MemoryExamples>,
}

/// Translates, summarizes and writes a group of documents; returns each one's outcome.
fn translate_group(
    opts: &JobOptions,
    settings: &Settings,
    model: &ModelRecord,
    memory: Option<&RunMemory>,
    translator: &mut dyn Translator,
    group: Vec<(Pending, Segmented)>,
    bar: &ProgressBar,
) -> Vec<(String, Outcome)> {
    let started = Instant::now();
    let checker = Checker::new(opts.lexicon.clone());
    let mut refs: Vec<SegmentRef> = Vec::new();
    for (doc, (_, segmented)) in group.iter().enumerate() {
        for (paragraph, segments) in segmented.segments.iter().enumerate() {
            for source in segments {
                refs.push(SegmentRef {
                    doc,
                    paragraph,
                    source: source.clone(),
                });
            }
        }
    }
    let terms: Vec<Vec<&crate::glossary::Term>> =
        refs.iter().map(|r| opts.glossary.find(&r.source)).collect();

    let results = if opts.strategy.context {
        translate_in_order(
            translator,
            &refs,
            &terms,
            group.len(),
            &opts.strategy,
            &checker,
            bar,
        )
    } else {
        translate_with_memory(
            translator,
            &refs,
            &terms,
            &opts.strategy,
            &checker,
            memory,
            model,
            bar,
        )
    };
    let translate_seconds = started.elapsed().as_secs_f64();

    // Back to documents, in order.
    let mut per_doc: Vec<Vec<Vec<TranslatedSentence>>> = group
        .iter()
        .map(|(_, s)| s.segments.iter().map(|_| Vec::new()).collect())
        .collect();
    let mut errors: Vec<Option<String>> = group.iter().map(|_| None).collect();
    let mut generated: Vec<usize> = vec![0; group.len()];
    for (r, result) in refs.into_iter().zip(results) {
        match result {
            Some(Ok(t)) => {
                for w in &t.warnings {
                    tracing::debug!("{}: flagged: {}", group[r.doc].0.input.display, w.message);
                }
                generated[r.doc] += t.generated_tokens;
                per_doc[r.doc][r.paragraph].push(TranslatedSentence {
                    source: r.source,
                    translation: t.text,
                    warnings: t.warnings,
                });
            }
            Some(Err(e)) => {
                errors[r.doc].get_or_insert_with(|| e.to_string());
            }
            None => {
                errors[r.doc].get_or_insert_with(|| {
                    "translation stopped after an earlier segment failed".to_string()
                });
            }
        }
    }
    let all_generated: usize = generated.iter().sum();

    let mut documents = Vec::new();
    let mut outcomes: Vec<Option<Outcome>> = group.iter().map(|_| None).collect();
    for (d, ((pending, _), sentences)) in group.iter().zip(per_doc).enumerate() {
        if let Some(error) = &errors[d] {
            outcomes[d] = Some(Outcome::Failed {
                error: format!("{}: {error}", pending.input.display),
            });
            continue;
        }
        // The group was translated together: each document is charged its share of the
        // time, in proportion to the tokens generated for it.
        let share = if all_generated == 0 {
            1.0 / group.len() as f64
        } else {
            generated[d] as f64 / all_generated as f64
        };
        documents.push((
            d,
            assemble(&pending.doc, sentences),
            share * translate_seconds,
        ));
    }

    let summarize_started = Instant::now();
    let titles: Vec<(String, Vec<Warning>)> = documents
        .iter()
        .map(|(_, paragraphs, _)| summarize::title_with_warnings(paragraphs))
        .collect();
    let summaries: Vec<Option<Result<CheckedSummary, ModelError>>> = match translator.chat_model() {
        Some(llm) if opts.summary => {
            let inputs: Vec<SummaryInput> = documents
                .iter()
                .zip(&titles)
                .map(|((d, paragraphs, _), (title, _))| SummaryInput {
                    paragraphs,
                    title,
                    arabic_words: group[*d].0.doc.arabic_words(),
                })
                .collect();
            summarize::summarize_checked_batch(llm, &inputs, opts.lexicon.as_deref())
                .into_iter()
                .map(Some)
                .collect()
        }
        _ => documents.iter().map(|_| None).collect(),
    };
    let summarize_seconds =
        summarize_started.elapsed().as_secs_f64() / documents.len().max(1) as f64;

    for (((d, paragraphs, translate_seconds), summary), (title, title_warnings)) in
        documents.into_iter().zip(summaries).zip(titles)
    {
        let pending = &group[d].0;
        let (summary, summary_warnings) = match (opts.summary, summary) {
            (true, Some(Ok(s))) => (Some(s.text), s.warnings),
            (true, Some(Err(e))) => {
                outcomes[d] = Some(Outcome::Failed {
                    error: format!("{}: summary: {e}", pending.input.display),
                });
                continue;
            }
            (true, None) => (Some(String::new()), Vec::new()),
            (false, _) => (None, Vec::new()),
        };
        for w in &summary_warnings {
            bar.suspend(|| {
                tracing::warn!("{}: summary flagged: {}", pending.input.display, w.message)
            });
        }
        let doc = TranslatedDocument {
            name: pending.input.name.clone(),
            source_path: pending.input.display.clone(),
            source_sha256: pending.doc.source_sha256.clone(),
            format: pending.doc.format.to_string(),
            extraction: pending.doc.extraction.clone(),
            model: model.clone(),
            settings: settings.clone(),
            title,
            title_warnings,
            summary,
            summary_warnings,
            arabic_words: pending.doc.arabic_words(),
            warnings: TranslatedDocument::collect_warnings(&paragraphs),
            paragraphs,
            timings: Timings {
                load_seconds: pending.load_seconds,
                translate_seconds,
                summarize_seconds,
                total_seconds: pending.load_seconds + translate_seconds + summarize_seconds,
            },
        };
        outcomes[d] = Some(
            match write::write_document(&opts.out_dir, &doc, &opts.formats) {
                Ok(_) => {
                    let line = format!(
                        "{}: done ({} Arabic words, {:.1} s of the batch) → {}",
                        pending.input.display,
                        doc.arabic_words,
                        doc.timings.total_seconds,
                        opts.out_dir.join(&doc.name).display()
                    );
                    if bar.is_hidden() {
                        tracing::info!("{line}");
                    } else {
                        bar.println(line);
                    }
                    Outcome::Translated {
                        arabic_words: doc.arabic_words,
                        seconds: doc.timings.total_seconds,
                        flagged: doc.flagged_sentences(),
                    }
                }
                Err(e) => Outcome::Failed {
                    error: e.to_string(),
                },
            },
        );
    }
    group
        .into_iter()
        .zip(outcomes)
        .map(|((pending, _), outcome)| {
            let outcome = outcome.unwrap_or_else(|| Outcome::Failed {
                error: format!("{}: not translated", pending.input.display),
            });
            (pending.input.display, outcome)
        })
        .collect()
}

/// A slot per segment, filled as each is settled.
type Results = Vec<Option<Result<CheckedTranslation, ModelError>>>;

/// Translates `refs` with each segment shown the one before it in its document: the
/// documents of a group advance side by side, one segment each per batch. A document
/// whose segment fails stops there.
fn translate_in_order(
    translator: &mut dyn Translator,
    refs: &[SegmentRef],
    terms: &[Vec<&crate::glossary::Term>],
    documents: usize,
    strategy: &crate::translate::Strategy,
    checker: &Checker,
    bar: &ProgressBar,
) -> Results {
    let mut results: Results = refs.iter().map(|_| None).collect();
    // Each segment needs the translation of the one before it: documents advance
    // side by side, one segment per document per batch.
    let mut next_of_doc: Vec<usize> = Vec::new();
    for (i, r) in refs.iter().enumerate() {
        if r.doc == next_of_doc.len() {
            next_of_doc.push(i);
        }
    }
    let mut previous: Vec<Option<(String, String)>> = vec![None; documents];
    let mut failed = vec![false; documents];
    loop {
        let wave: Vec<usize> = next_of_doc
            .iter()
            .copied()
            .filter(|&i| i < refs.len() && !failed[refs[i].doc])
            .collect();
        if wave.is_empty() {
            break;
        }
        let requests: Vec<Request> = wave
            .iter()
            .map(|&i| Request::after(&refs[i].source, &terms[i], previous[refs[i].doc].as_ref()))
            .collect();
        let out =
            translate_checked_batch(translator, &requests, strategy, &checker, &mut |_, _| {
                bar.inc(1)
            });
        for (&i, result) in wave.iter().zip(out) {
            let doc = refs[i].doc;
            match &result {
                Ok(t) => previous[doc] = Some((refs[i].source.clone(), t.text.clone())),
                Err(_) => failed[doc] = true,
            }
            results[i] = Some(result);
            next_of_doc[doc] = if i + 1 < refs.len() && refs[i + 1].doc == doc {
                i + 1
            } else {
                usize::MAX
            };
        }
    }
    results
}

/// Translates `refs`, taking what the memory already holds and storing each new
/// translation the moment it settles, so a run killed part-way keeps its work; with
/// memory examples, each segment is shown its closest stored pair.
#[allow(clippy::too_many_arguments)]
fn translate_with_memory(
    translator: &mut dyn Translator,
    refs: &[SegmentRef],
    terms: &[Vec<&crate::glossary::Term>],
    strategy: &crate::translate::Strategy,
    checker: &Checker,
    memory: Option<&RunMemory>,
    model: &ModelRecord,
    bar: &ProgressBar,
) -> Results {
    let mut results: Results = refs.iter().map(|_| None).collect();
    // Segments the memory already holds are not sent to the model; the others are
    // stored one by one as they settle, so a run killed part-way keeps its work.
    if let Some(memory) = memory {
        for (slot, r) in results.iter_mut().zip(refs) {
            match memory.store.lookup(&memory.fingerprint, &r.source) {
                Ok(Some(hit)) => {
                    *slot = Some(Ok(hit));
                    memory.hits.set(memory.hits.get() + 1);
                    bar.inc(1);
                }
                Ok(None) => {}
                Err(e) => bar.suspend(|| tracing::warn!("{e}")),
            }
        }
    }
    let todo: Vec<usize> = (0..refs.len()).filter(|&i| results[i].is_none()).collect();
    // Only a chat LLM reads worked examples; a translation model is never offered one.
    let takes_examples = translator.chat_model().is_some();
    let examples = memory
        .and_then(|m| m.examples.as_ref())
        .filter(|_| takes_examples);
    let matches: Vec<Option<FuzzyMatch>> = todo
        .iter()
        .map(|&i| examples.and_then(|e| e.find(&refs[i].source)))
        .collect();
    let requests: Vec<Request> = todo
        .iter()
        .zip(&matches)
        .map(|(&i, found)| Request {
            example: found
                .as_ref()
                .map(|m| (m.source.as_str(), m.translation.as_str())),
            ..Request::new(&refs[i].source, &terms[i])
        })
        .collect();
    let out = translate_checked_batch(
        translator,
        &requests,
        strategy,
        &checker,
        &mut |j, result| {
            bar.inc(1);
            if let (Some(memory), Ok(t)) = (memory, result) {
                if let Err(e) =
                    memory
                        .store
                        .store(&memory.fingerprint, &model.name, &refs[todo[j]].source, t)
                {
                    bar.suspend(|| tracing::warn!("{e}"));
                }
            }
        },
    );
    for (&i, result) in todo.iter().zip(out) {
        results[i] = Some(result);
    }
    results
}

/// A document's paragraphs with their translated sentences; passthrough paragraphs are
/// copied as they are.
fn assemble(doc: &Document, sentences: Vec<Vec<TranslatedSentence>>) -> Vec<TranslatedParagraph> {
    doc.paragraphs
        .iter()
        .zip(sentences)
        .map(|(paragraph, sentences)| {
            if paragraph.kind == ParagraphKind::Passthrough {
                return TranslatedParagraph {
                    kind: paragraph.kind,
                    source: paragraph.text.clone(),
                    translation: paragraph.text.clone(),
                    sentences: vec![TranslatedSentence::plain(
                        paragraph.text.clone(),
                        paragraph.text.clone(),
                    )],
                    block: paragraph.block.clone(),
                };
            }
            let translation = sentences
                .iter()
                .map(|s| s.translation.as_str())
                .filter(|t| !t.is_empty())
                .collect::<Vec<_>>()
                .join(" ");
            TranslatedParagraph {
                kind: paragraph.kind,
                source: paragraph.text.clone(),
                translation,
                sentences,
                block: paragraph.block.clone(),
            }
        })
        .collect()
}

/// Rebuilds `index.html` and `digest.md` from every document's record, in input order.
fn write_run_digest(opts: &JobOptions, order: &[Input], report: &Report) -> anyhow::Result<()> {
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
        } else if let Some(record) = write::read_record(&opts.out_dir, &input.name) {
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
    write::digest::write_failures(&opts.out_dir, opts.shard, &failures)?;
    write::digest::write_digest(&opts.out_dir, &entries, &failures, &opts.formats)?;
    Ok(())
}
