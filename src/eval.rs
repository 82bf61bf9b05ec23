//! `tarjama eval`: translate a parallel test set through the same path as `translate`
//! (segment → translate → check → rejoin) and score it against human references.

use std::path::PathBuf;
use std::time::Instant;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde::Serialize;

use crate::glossary::Glossary;
use crate::load::{count_arabic_words, normalize};
use crate::metrics::{self, BLEU_SIGNATURE, CHRF_SIGNATURE};
use crate::model::ModelError;
use crate::segment;
use crate::translate::{translate_checked, Request, Strategy, Translator};

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

    let bar = if opts.progress_bar {
        let bar =
            ProgressBar::with_draw_target(Some(sources.len() as u64), ProgressDrawTarget::stderr());
        bar.set_style(
            ProgressStyle::with_template(
                "{spinner} [{elapsed_precise}] {wide_bar} {pos}/{len} lines, ETA {eta}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        bar
    } else {
        ProgressBar::hidden()
    };
    let started = Instant::now();
    let mut hypotheses = Vec::with_capacity(sources.len());
    let mut flagged_lines = 0;
    let mut arabic_words = 0;
    // The test lines run on in articles, as paragraphs do in a document.
    let mut previous: Option<(String, String)> = None;
    for line in sources {
        let line = normalize(line);
        arabic_words += count_arabic_words(&line);
        let (english, flagged) = translate_line(opts, translator, &line, &mut previous)?;
        flagged_lines += usize::from(flagged);
        hypotheses.push(english);
        bar.inc(1);
    }
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

/// One test line is one segment unit: long lines are segmented and rejoined, exactly as
/// a body paragraph of a document would be.
fn translate_line(
    opts: &EvalOptions,
    translator: &mut dyn Translator,
    line: &str,
    previous: &mut Option<(String, String)>,
) -> Result<(String, bool), ModelError> {
    if line.trim().is_empty() {
        return Ok((String::new(), false));
    }
    let count = |s: &str| {
        translator
            .count_tokens(s)
            .unwrap_or_else(|_| s.split_whitespace().count() * 3)
    };
    let segments = segment::segment_paragraph(line, opts.max_segment_tokens, &count);
    let mut parts = Vec::with_capacity(segments.len());
    let mut flagged = false;
    for s in segments {
        let terms = opts.glossary.find(&s);
        let request = Request::after(&s, &terms, previous.as_ref());
        let t = translate_checked(translator, &request, &opts.strategy)?;
        flagged |= !t.warnings.is_empty();
        *previous = Some((s.clone(), t.text.clone()));
        parts.push(t.text);
    }
    Ok((parts.join(" "), flagged))
}
