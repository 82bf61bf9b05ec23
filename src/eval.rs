//! `tarjama eval`: translate a parallel test set through the same path as `translate`
//! (segment → translate → check → rejoin) and score it against human references.

use std::path::PathBuf;
use std::rc::Rc;
use std::time::Instant;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde::Serialize;

use crate::check::Checker;
use crate::glossary::Glossary;
use crate::load::{count_arabic_words, normalize};
use crate::memory::fuzzy::{FuzzyMatch, MemoryExamples};
use crate::metrics::{self, BLEU_SIGNATURE, CHRF_SIGNATURE};
use crate::model::ModelError;
use crate::segment;
use crate::translate::{translate_checked, translate_checked_batch, Request, Strategy, Translator};

/// Which lines to translate and how.
#[derive(Debug, Clone)]
pub struct EvalOptions {
    pub src: PathBuf,
    pub reference: PathBuf,
    /// Lines skipped at the start (`--offset 200` starts at line 201).
    pub offset: usize,
    pub limit: Option<usize>,
    pub hyp_out: Option<PathBuf>,
    pub max_segment_tokens: usize,
    pub glossary: Glossary,
    pub strategy: Strategy,
    pub progress_bar: bool,
    /// Runs the checks (the lexicon's too, when loaded).
    pub checker: Checker,
    /// Write each segment with its translation and warnings here, as JSON lines.
    pub segments_out: Option<PathBuf>,
    /// Translation memory pairs shown as worked examples when close to a segment.
    pub memory_examples: Option<Rc<MemoryExamples>>,
}

/// Scores and cost of one evaluation.
#[derive(Debug, Clone, Serialize)]
pub struct EvalReport {
    pub bleu: f64,
    pub chrf: f64,
    pub lines: usize,
    pub seconds: f64,
    pub arabic_words: usize,
    pub words_per_second: f64,
    /// Lines with at least one flagged segment.
    pub flagged_lines: usize,
    pub bleu_signature: String,
    pub chrf_signature: String,
}

impl EvalReport {
    pub fn render(&self) -> String {
        format!(
            "BLEU = {:.2} {}\nchrF2 = {:.2} {}\n{} lines, {} Arabic words in {:.1} s ({:.2} words/s); {} lines flagged",
            self.bleu,
            self.bleu_signature,
            self.chrf,
            self.chrf_signature,
            self.lines,
            self.arabic_words,
            self.seconds,
            self.words_per_second,
            self.flagged_lines
        )
    }
}

#[derive(Debug, thiserror::Error)]
pub enum EvalError {
    #[error(transparent)]
    Metrics(#[from] metrics::MetricsError),
    #[error(transparent)]
    Model(#[from] ModelError),
    #[error("{path}: cannot write the hypotheses ({source}); choose another --hyp-out")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{src} has {src_lines} lines but {reference} has {ref_lines}; source and reference must pair up line by line")]
    LineCount {
        src: PathBuf,
        src_lines: usize,
        reference: PathBuf,
        ref_lines: usize,
    },
    #[error("--offset {offset} is past the end of {path} ({lines} lines)")]
    Offset {
        offset: usize,
        path: PathBuf,
        lines: usize,
    },
}

/// Translates the selected lines and scores them.
pub fn run(opts: &EvalOptions, translator: &mut dyn Translator) -> Result<EvalReport, EvalError> {
    let sources = metrics::read_lines(&opts.src)?;
    let references = metrics::read_lines(&opts.reference)?;
    if sources.len() != references.len() {
        return Err(EvalError::LineCount {
            src: opts.src.clone(),
            src_lines: sources.len(),
            reference: opts.reference.clone(),
            ref_lines: references.len(),
        });
    }
    if opts.offset >= sources.len() {
        return Err(EvalError::Offset {
            offset: opts.offset,
            path: opts.src.clone(),
            lines: sources.len(),
        });
    }
    let end = opts
        .limit
        .map_or(sources.len(), |l| (opts.offset + l).min(sources.len()));
    let sources = &sources[opts.offset..end];
    let references = &references[opts.offset..end];

    let started = Instant::now();
    let lines: Vec<String> = sources.iter().map(|l| normalize(l)).collect();
    let arabic_words: usize = lines.iter().map(|l| count_arabic_words(l)).sum();
    // One test line is one segment unit: long lines are segmented and rejoined, exactly
    // as a body paragraph of a document would be.
    let count = |s: &str| {
        translator
            .count_tokens(s)
            .unwrap_or_else(|_| s.split_whitespace().count() * 3)
    };
    let segments: Vec<(usize, String)> = lines
        .iter()
        .enumerate()
        .filter(|(_, line)| !line.trim().is_empty())
        .flat_map(|(i, line)| {
            segment::segment_paragraph(line, opts.max_segment_tokens, &count)
                .into_iter()
                .map(move |s| (i, s))
        })
        .collect();
    let terms: Vec<_> = segments
        .iter()
        .map(|(_, s)| opts.glossary.find(s))
        .collect();

    let bar = if opts.progress_bar {
        let bar = ProgressBar::with_draw_target(
            Some(segments.len() as u64),
            ProgressDrawTarget::stderr(),
        );
        bar.set_style(
            ProgressStyle::with_template(
                "{spinner} [{elapsed_precise}] {wide_bar} {pos}/{len} segments, ETA {eta}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        bar
    } else {
        ProgressBar::hidden()
    };
    let matches: Vec<Option<FuzzyMatch>> = segments
        .iter()
        .map(|(_, source)| {
            opts.memory_examples
                .as_ref()
                .and_then(|examples| examples.find(source))
        })
        .collect();
    let translations = if opts.strategy.context {
        // The test lines run on in articles, as paragraphs do in a document: each segment
        // is shown the one before, so they go one at a time.
        let mut previous: Option<(String, String)> = None;
        let mut out = Vec::with_capacity(segments.len());
        for (((_, source), terms), found) in segments.iter().zip(&terms).zip(&matches) {
            let request = Request {
                example: found
                    .as_ref()
                    .map(|m| (m.source.as_str(), m.translation.as_str())),
                ..Request::after(source, terms, previous.as_ref())
            };
            let t = translate_checked(translator, &request, &opts.strategy, &opts.checker)?;
            previous = Some((source.clone(), t.text.clone()));
            out.push(t);
            bar.inc(1);
        }
        out
    } else {
        let requests: Vec<Request> = segments
            .iter()
            .zip(&terms)
            .zip(&matches)
            .map(|(((_, source), terms), found)| Request {
                example: found
                    .as_ref()
                    .map(|m| (m.source.as_str(), m.translation.as_str())),
                ..Request::new(source, terms)
            })
            .collect();
        translate_checked_batch(
            translator,
            &requests,
            &opts.strategy,
            &opts.checker,
            &mut |_, _| bar.inc(1),
        )
        .into_iter()
        .collect::<Result<Vec<_>, _>>()?
    };
    if let Some(path) = &opts.segments_out {
        let mut text = String::new();
        for (((line, source), t), found) in segments.iter().zip(&translations).zip(&matches) {
            let record = serde_json::json!({
                "line": opts.offset + line + 1,
                "source": source,
                "translation": t.text,
                "attempts": t.attempts,
                "warnings": t.warnings,
                "memory_match": found.as_ref().map(|m| m.similarity),
            });
            text.push_str(&record.to_string());
            text.push('\n');
        }
        crate::write::write_atomic(path, text.as_bytes()).map_err(|source| EvalError::Write {
            path: path.clone(),
            source,
        })?;
    }
    let mut hypotheses: Vec<Vec<String>> = lines.iter().map(|_| Vec::new()).collect();
    let mut flagged = vec![false; lines.len()];
    for ((line, _), t) in segments.iter().zip(translations) {
        flagged[*line] |= !t.warnings.is_empty();
        hypotheses[*line].push(t.text);
    }
    let hypotheses: Vec<String> = hypotheses
        .into_iter()
        .map(|parts| parts.join(" "))
        .collect();
    let flagged_lines = flagged.iter().filter(|f| **f).count();
    bar.finish_and_clear();
    let seconds = started.elapsed().as_secs_f64();

    if let Some(path) = &opts.hyp_out {
        let mut text = hypotheses.join("\n");
        text.push('\n');
        crate::write::write_atomic(path, text.as_bytes()).map_err(|source| EvalError::Write {
            path: path.clone(),
            source,
        })?;
    }
    let bleu = metrics::corpus_bleu(&hypotheses, references);
    let chrf = metrics::corpus_chrf(&hypotheses, references);
    Ok(EvalReport {
        bleu: bleu.score,
        chrf: chrf.score,
        lines: hypotheses.len(),
        seconds,
        arabic_words,
        words_per_second: if seconds > 0.0 {
            arabic_words as f64 / seconds
        } else {
            0.0
        },
        flagged_lines,
        bleu_signature: BLEU_SIGNATURE.to_string(),
        chrf_signature: CHRF_SIGNATURE.to_string(),
    })
}
