//! The batch job behind `tarjama translate`: inputs → load → segment → translate →
//! summarize → write, one document at a time, then the run's digest.
//!
//! One bad document never stops the others: its error is recorded and the run goes on.
//! Each document's files are written as soon as it is done, so an interrupted run keeps
//! everything finished before the interruption.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use candle_core::Device;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::document::{
    Document, ModelRecord, ParagraphKind, Settings, Timings, TranslatedDocument,
    TranslatedParagraph, TranslatedSentence,
};
use crate::glossary::Glossary;
use crate::inputs::{self, Input, Source};
use crate::model::{GgufLlm, ModelError};
use crate::registry::{self, FetchPolicy, ModelFile};
use crate::segment;
use crate::summarize;
use crate::translate::{
    translate_checked, LlmTranslator, PromptStyle, Request, Strategy, Translator, PROMPT_VERSION,
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
}

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

    let (inputs, problems) = inputs::collect(&opts.inputs);
    for p in problems {
        tracing::error!("{}", p.error);
        report
            .outcomes
            .push((p.path, Outcome::Failed { error: p.error }));
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
    };
    let known_sha = registry::manifest(&opts.model).map(|m| m.sha256);

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
pub fn load_translator(
    spec: &str,
    fetch: FetchPolicy,
    max_new_tokens: usize,
    style: PromptStyle,
) -> anyhow::Result<(ModelFile, LlmTranslator<GgufLlm>)> {
    let file = registry::resolve(spec, fetch)?;
    let llm = GgufLlm::load(&file.path, &Device::Cpu)?;
    Ok((file, LlmTranslator::new(llm, max_new_tokens, style)))
}

/// A document cut into the units the model translates.
struct Segmented {
    /// Per paragraph: the source segments (empty for passthrough).
    segments: Vec<Vec<String>>,
}

fn segment_document(doc: &Document, max_tokens: usize, translator: &dyn Translator) -> Segmented {
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
        opts.fetch,
        opts.max_new_tokens,
        opts.prompt_style,
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
        "model {} loaded in {:.1} s",
        file.name,
        t.elapsed().as_secs_f64()
    );
    let model = ModelRecord {
        name: file.name.clone(),
        file_sha256: file.sha256.clone(),
    };

    let segmented: Vec<Segmented> = pending
        .iter()
        .map(|p| segment_document(&p.doc, opts.max_segment_tokens, &translator))
        .collect();
    let total: usize = segmented
        .iter()
        .map(|s| s.segments.iter().map(Vec::len).sum::<usize>())
        .sum();
    let bar = progress_bar(opts.progress_bar, total as u64);

    let count = pending.len();
    for (i, (p, seg)) in pending.into_iter().zip(segmented).enumerate() {
        bar.set_message(format!("document {}/{count}: {}", i + 1, p.input.display));
        tracing::info!(
            "translating {} ({} segments) [{}/{count}]",
            p.input.display,
            seg.segments.iter().map(Vec::len).sum::<usize>(),
            i + 1
        );
        let outcome =
            match translate_document(opts, settings, &model, &mut translator, &p, seg, &bar) {
                Ok(doc) => match write::write_document(&opts.out_dir, &doc, &opts.formats) {
                    Ok(_) => {
                        let line = format!(
                            "{}: done in {:.1} s ({} Arabic words) → {}",
                            p.input.display,
                            doc.timings.total_seconds,
                            doc.arabic_words,
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
                Err(e) => Outcome::Failed {
                    error: format!("{}: {e}", p.input.display),
                },
            };
        if let Outcome::Failed { error } = &outcome {
            bar.suspend(|| tracing::error!("{error}"));
        }
        report.outcomes.push((p.input.display.clone(), outcome));
    }
    bar.finish_and_clear();
    Ok(())
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

fn translate_document(
    opts: &JobOptions,
    settings: &Settings,
    model: &ModelRecord,
    translator: &mut LlmTranslator<GgufLlm>,
    pending: &Pending,
    segmented: Segmented,
    bar: &ProgressBar,
) -> Result<TranslatedDocument, ModelError> {
    let started = Instant::now();
    let mut paragraphs = Vec::with_capacity(pending.doc.paragraphs.len());
    let mut previous: Option<(String, String)> = None;
    for (paragraph, segments) in pending.doc.paragraphs.iter().zip(segmented.segments) {
        if paragraph.kind == ParagraphKind::Passthrough {
            paragraphs.push(TranslatedParagraph {
                kind: paragraph.kind,
                source: paragraph.text.clone(),
                translation: paragraph.text.clone(),
                sentences: vec![TranslatedSentence::plain(
                    paragraph.text.clone(),
                    paragraph.text.clone(),
                )],
            });
            continue;
        }
        let mut sentences = Vec::with_capacity(segments.len());
        for source in segments {
            let terms = opts.glossary.find(&source);
            let request = Request::after(&source, &terms, previous.as_ref());
            let t = translate_checked(translator, &request, &opts.strategy)?;
            previous = Some((source.clone(), t.text.clone()));
            for w in &t.warnings {
                tracing::debug!("{}: flagged: {}", pending.input.display, w.message);
            }
            sentences.push(TranslatedSentence {
                source,
                translation: t.text,
                warnings: t.warnings,
            });
            bar.inc(1);
        }
        let translation = sentences
            .iter()
            .map(|s| s.translation.as_str())
            .filter(|t| !t.is_empty())
            .collect::<Vec<_>>()
            .join(" ");
        paragraphs.push(TranslatedParagraph {
            kind: paragraph.kind,
            source: paragraph.text.clone(),
            translation,
            sentences,
        });
    }
    let translate_seconds = started.elapsed().as_secs_f64();

    let summarize_started = Instant::now();
    let needs_model = paragraphs
        .iter()
        .any(|p| p.kind != ParagraphKind::Passthrough);
    let summary = match (opts.summary, translator.chat_model()) {
        (true, Some(llm)) if needs_model => Some(summarize::summarize(llm, &paragraphs)?),
        (true, _) => Some(String::new()),
        (false, _) => None,
    };
    let summarize_seconds = summarize_started.elapsed().as_secs_f64();

    Ok(TranslatedDocument {
        name: pending.input.name.clone(),
        source_path: pending.input.display.clone(),
        source_sha256: pending.doc.source_sha256.clone(),
        model: model.clone(),
        settings: settings.clone(),
        title: summarize::title(&paragraphs),
        summary,
        arabic_words: pending.doc.arabic_words(),
        warnings: TranslatedDocument::collect_warnings(&paragraphs),
        paragraphs,
        timings: Timings {
            load_seconds: pending.load_seconds,
            translate_seconds,
            summarize_seconds,
            total_seconds: pending.load_seconds + started.elapsed().as_secs_f64(),
        },
    })
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
    write::digest::write_digest(&opts.out_dir, &entries, &failures, &opts.formats)?;
    Ok(())
}
