//! `tarjama eval`: translate a parallel test set through the same path as `translate`
//! (segment → translate → check → rejoin) and score it against human references.

use std::path::{Path, PathBuf};
use std::time::Instant;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde::Serialize;

use crate::check::Checker;
use crate::check::LOW_CONFIDENCE;
use crate::load::{count_arabic_words, normalize};
use crate::memory::fuzzy::{FuzzyMatch, MemoryExamples};
use crate::memory::{Memory, MemoryError};
use crate::metrics::detection::{flag_quality, roc_auc, worst_share, FlagQuality};
use crate::metrics::{self, sentence_chrf, BLEU_SIGNATURE, CHRF_SIGNATURE};
use crate::model::ModelError;
use crate::segment;
use crate::settings::RunSettings;
use crate::translate::{
    translate_checked, translate_checked_batch, CheckedTranslation, Request, Translator,
};

/// Which lines to translate and how.
#[derive(Debug, Clone)]
pub struct EvalOptions {
    /// How to translate, as `translate` resolves it; memory examples come from
    /// `run.memory` when `run.memory_examples` asks for them.
    pub run: RunSettings,
    pub src: PathBuf,
    pub reference: PathBuf,
    /// Lines skipped at the start (`--offset 200` starts at line 201).
    pub offset: usize,
    pub limit: Option<usize>,
    pub hyp_out: Option<PathBuf>,
    pub progress_bar: bool,
    /// Write each segment with its translation and warnings here, as JSON lines.
    pub segments_out: Option<PathBuf>,
    /// Score each translation with and without its source (see
    /// [`Translator::source_contrast`]).
    pub source_contrast: bool,
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
    /// How well confidence and error flags find the worst quarter of lines.
    pub detection: Detection,
    pub bleu_signature: String,
    pub chrf_signature: String,
}

/// Confidence and flags against the references: the quarter of lines with the lowest
/// sentence chrF are the bad translations they should find.
#[derive(Debug, Clone, Serialize)]
pub struct Detection {
    /// ROC-AUC of low confidence (a line's least confident segment) for the bad lines.
    pub confidence_auc: Option<f64>,
    /// The same for each signal alone: mean, minimum and share of doubtful token
    /// log-probabilities, and the source contrast when measured.
    pub mean_logprob_auc: Option<f64>,
    pub min_logprob_auc: Option<f64>,
    pub doubtful_share_auc: Option<f64>,
    pub source_contrast_auc: Option<f64>,
    /// Lines with an error-severity warning.
    pub errors: FlagQuality,
    /// Lines with a note and no error.
    pub notes_only: FlagQuality,
    /// Lines shown as low-confidence (below the confidence floor).
    pub low_confidence: FlagQuality,
    /// Share of segments with an error-severity warning.
    pub segments_with_error: f64,
}

impl EvalReport {
    pub fn render(&self) -> String {
        format!(
            "BLEU = {:.2} {}\nchrF2 = {:.2} {}\n{} lines, {} Arabic words in {:.1} s ({:.2} words/s); {} lines flagged\n{}",
            self.bleu,
            self.bleu_signature,
            self.chrf,
            self.chrf_signature,
            self.lines,
            self.arabic_words,
            self.seconds,
            self.words_per_second,
            self.flagged_lines,
            self.detection.render()
        )
    }
}

impl Detection {
    fn render(&self) -> String {
        let auc = |a: Option<f64>| a.map_or("–".to_string(), |a| format!("{a:.3}"));
        let flag = |q: &FlagQuality| {
            format!(
                "{} lines, precision {:.1} %, recall {:.1} %",
                q.flagged,
                100.0 * q.precision,
                100.0 * q.recall
            )
        };
        format!(
            "worst quarter by chrF: confidence ROC-AUC {} (mean log-prob {}, min {}, doubtful share {}, source contrast {})\nerrors: {}; {:.1} % of segments\nnotes only: {}\nlow confidence: {}",
            auc(self.confidence_auc),
            auc(self.mean_logprob_auc),
            auc(self.min_logprob_auc),
            auc(self.doubtful_share_auc),
            auc(self.source_contrast_auc),
            flag(&self.errors),
            100.0 * self.segments_with_error,
            flag(&self.notes_only),
            flag(&self.low_confidence),
        )
    }
}

#[derive(Debug, thiserror::Error)]
pub enum EvalError {
    #[error(transparent)]
    Metrics(#[from] metrics::MetricsError),
    #[error(transparent)]
    Model(#[from] ModelError),
    #[error(transparent)]
    Memory(#[from] MemoryError),
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
    let (sources, references) = select_lines(opts)?;
    let started = Instant::now();
    let lines: Vec<String> = sources.iter().map(|l| normalize(l)).collect();
    let arabic_words: usize = lines.iter().map(|l| count_arabic_words(l)).sum();
    let segments = segment_lines(&lines, opts.run.max_segment_tokens, translator);
    let examples = memory_examples(&opts.run)?;
    let matches: Vec<Option<FuzzyMatch>> = segments
        .iter()
        .map(|(_, source)| examples.as_ref().and_then(|e| e.find(source)))
        .collect();
    let bar = progress_bar(opts.progress_bar, segments.len());
    let translations = translate(opts, translator, &segments, &matches, &bar)?;
    let contrasts: Vec<Option<f32>> = if opts.source_contrast {
        source_contrasts(opts, translator, &segments, &translations)
    } else {
        vec![None; segments.len()]
    };
    if let Some(path) = &opts.segments_out {
        let rows = SegmentRows {
            offset: opts.offset,
            segments: &segments,
            translations: &translations,
            matches: &matches,
            contrasts: &contrasts,
        };
        write_segments(path, &rows)?;
    }
    let line_of: Vec<usize> = segments.iter().map(|(line, _)| *line).collect();
    let per_line = LineSignals::gather(lines.len(), &line_of, &translations, &contrasts);
    let (hypotheses, flagged_lines) = hypotheses(lines.len(), &segments, translations);
    bar.finish_and_clear();
    let seconds = started.elapsed().as_secs_f64();
    if let Some(path) = &opts.hyp_out {
        let mut text = hypotheses.join("\n");
        text.push('\n');
        write(path, &text)?;
    }
    let bleu = metrics::corpus_bleu(&hypotheses, &references);
    let chrf = metrics::corpus_chrf(&hypotheses, &references);
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
        detection: per_line.detection(&hypotheses, &references),
        bleu_signature: BLEU_SIGNATURE.to_string(),
        chrf_signature: CHRF_SIGNATURE.to_string(),
    })
}

/// The source and reference lines `--offset` and `--limit` select, after checking that
/// the two files pair up.
fn select_lines(opts: &EvalOptions) -> Result<(Vec<String>, Vec<String>), EvalError> {
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
    Ok((
        sources[opts.offset..end].to_vec(),
        references[opts.offset..end].to_vec(),
    ))
}

/// One test line is one segment unit: long lines are segmented and rejoined, exactly as
/// a body paragraph of a document would be. Each segment comes with its line's index.
fn segment_lines(
    lines: &[String],
    max_tokens: usize,
    translator: &dyn Translator,
) -> Vec<(usize, String)> {
    let count = |s: &str| {
        translator
            .count_tokens(s)
            .unwrap_or_else(|_| s.split_whitespace().count() * 3)
    };
    lines
        .iter()
        .enumerate()
        .filter(|(_, line)| !line.trim().is_empty())
        .flat_map(|(i, line)| {
            segment::segment_paragraph(line, max_tokens, &count)
                .into_iter()
                .map(move |s| (i, s))
        })
        .collect()
}

/// The translation memory's pairs, offered as worked examples when asked for.
fn memory_examples(run: &RunSettings) -> Result<Option<MemoryExamples>, EvalError> {
    match (run.memory_examples, &run.memory) {
        (Some(percent), Some(path)) => {
            let memory = Memory::open(path)?;
            Ok(Some(MemoryExamples::load(&memory, percent)?))
        }
        _ => Ok(None),
    }
}

fn progress_bar(enabled: bool, len: usize) -> ProgressBar {
    if !enabled {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::with_draw_target(Some(len as u64), ProgressDrawTarget::stderr());
    bar.set_style(
        ProgressStyle::with_template(
            "{spinner} [{elapsed_precise}] {wide_bar} {pos}/{len} segments, ETA {eta}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar
}

/// Every segment's checked translation, each shown its memory match, if any.
fn translate(
    opts: &EvalOptions,
    translator: &mut dyn Translator,
    segments: &[(usize, String)],
    matches: &[Option<FuzzyMatch>],
    bar: &ProgressBar,
) -> Result<Vec<CheckedTranslation>, EvalError> {
    let glossary = &opts.run.glossary;
    let terms: Vec<_> = segments.iter().map(|(_, s)| glossary.find(s)).collect();
    let example = |found: &Option<FuzzyMatch>| {
        found
            .as_ref()
            .map(|m| (m.source.clone(), m.translation.clone()))
    };
    let examples: Vec<Option<(String, String)>> = matches.iter().map(example).collect();
    let requests: Vec<Request> = segments
        .iter()
        .zip(&terms)
        .zip(&examples)
        .map(|(((_, source), terms), example)| Request {
            example: example.as_ref().map(|(s, t)| (s.as_str(), t.as_str())),
            ..Request::new(source, terms)
        })
        .collect();
    let checker = Checker::new(opts.run.lexicon.clone());
    let strategy = &opts.run.strategy;
    if strategy.context {
        return translate_in_order(translator, &requests, strategy, &checker, bar);
    }
    translate_checked_batch(translator, &requests, strategy, &checker, &mut |_, _| {
        bar.inc(1)
    })
    .into_iter()
    .map(|r| r.map_err(EvalError::from))
    .collect()
}

/// The test lines run on in articles, as paragraphs do in a document: each segment is
/// shown the one before, so they go one at a time.
fn translate_in_order(
    translator: &mut dyn Translator,
    requests: &[Request],
    strategy: &crate::translate::Strategy,
    checker: &Checker,
    bar: &ProgressBar,
) -> Result<Vec<CheckedTranslation>, EvalError> {
    let mut previous: Option<(String, String)> = None;
    let mut out = Vec::with_capacity(requests.len());
    for request in requests {
        let request = Request {
            previous: previous.as_ref().map(|(s, t)| (s.as_str(), t.as_str())),
            ..*request
        };
        let t = translate_checked(translator, &request, strategy, checker)?;
        previous = Some((request.source.to_string(), t.text.clone()));
        out.push(t);
        bar.inc(1);
    }
    Ok(out)
}

/// The source contrast of every segment's kept translation.
fn source_contrasts(
    opts: &EvalOptions,
    translator: &mut dyn Translator,
    segments: &[(usize, String)],
    translations: &[CheckedTranslation],
) -> Vec<Option<f32>> {
    segments
        .iter()
        .zip(translations)
        .map(|((_, source), t)| {
            let terms = opts.run.glossary.find(source);
            translator.source_contrast(&Request::new(source, &terms), &t.text)
        })
        .collect()
}

/// What `--segments-out` writes.
struct SegmentRows<'a> {
    offset: usize,
    segments: &'a [(usize, String)],
    translations: &'a [CheckedTranslation],
    matches: &'a [Option<FuzzyMatch>],
    contrasts: &'a [Option<f32>],
}

/// Each segment with its translation, attempts, warnings, confidence and memory match,
/// as JSON lines.
fn write_segments(path: &Path, rows: &SegmentRows) -> Result<(), EvalError> {
    let mut text = String::new();
    for (i, (line, source)) in rows.segments.iter().enumerate() {
        let t = &rows.translations[i];
        let record = serde_json::json!({
            "line": rows.offset + line + 1,
            "source": source,
            "translation": t.text,
            "attempts": t.attempts,
            "warnings": t.warnings,
            "confidence": t.confidence(),
            "signals": t.signals,
            "source_contrast": rows.contrasts[i],
            "memory_match": rows.matches[i].as_ref().map(|m| m.similarity),
        });
        text.push_str(&record.to_string());
        text.push('\n');
    }
    write(path, &text)
}

/// One hypothesis per line (its segments' translations rejoined), and how many lines
/// have a flagged segment.
fn hypotheses(
    lines: usize,
    segments: &[(usize, String)],
    translations: Vec<CheckedTranslation>,
) -> (Vec<String>, usize) {
    let mut parts: Vec<Vec<String>> = vec![Vec::new(); lines];
    let mut flagged = vec![false; lines];
    for ((line, _), t) in segments.iter().zip(translations) {
        flagged[*line] |= !t.warnings.is_empty();
        parts[*line].push(t.text);
    }
    let hypotheses = parts.into_iter().map(|p| p.join(" ")).collect();
    (hypotheses, flagged.iter().filter(|f| **f).count())
}

/// Per test line, what its segments' confidence and warnings say: a line is as doubtful
/// as its most doubtful segment.
struct LineSignals {
    confidence: Vec<Option<f64>>,
    mean: Vec<Option<f64>>,
    min: Vec<Option<f64>>,
    doubtful: Vec<Option<f64>>,
    contrast: Vec<Option<f64>>,
    error: Vec<bool>,
    note: Vec<bool>,
    segments_with_error: f64,
}

impl LineSignals {
    fn gather(
        lines: usize,
        line_of: &[usize],
        translations: &[CheckedTranslation],
        contrasts: &[Option<f32>],
    ) -> Self {
        let mut s = Self {
            confidence: vec![None; lines],
            mean: vec![None; lines],
            min: vec![None; lines],
            doubtful: vec![None; lines],
            contrast: vec![None; lines],
            error: vec![false; lines],
            note: vec![false; lines],
            segments_with_error: 0.0,
        };
        // Each a "higher is worse" view, so the worst segment of a line is its maximum.
        let worse = |slot: &mut Option<f64>, value: Option<f64>| {
            if let Some(v) = value {
                *slot = Some(slot.map_or(v, |old: f64| old.max(v)));
            }
        };
        let mut with_error = 0usize;
        for ((&line, t), contrast) in line_of.iter().zip(translations).zip(contrasts) {
            worse(&mut s.confidence[line], t.confidence().map(|c| -c as f64));
            worse(&mut s.mean[line], t.signals.map(|x| -x.mean as f64));
            worse(&mut s.min[line], t.signals.map(|x| -x.min as f64));
            worse(&mut s.doubtful[line], t.signals.map(|x| x.doubtful as f64));
            worse(&mut s.contrast[line], contrast.map(|c| -c as f64));
            s.error[line] |= t.has_error();
            s.note[line] |= t.warnings.iter().any(|w| !w.is_error());
            with_error += usize::from(t.has_error());
        }
        s.segments_with_error = with_error as f64 / translations.len().max(1) as f64;
        s
    }

    fn detection(&self, hypotheses: &[String], references: &[String]) -> Detection {
        let chrf: Vec<f64> = hypotheses
            .iter()
            .zip(references)
            .map(|(h, r)| sentence_chrf(h, r).score)
            .collect();
        let bad = worst_share(&chrf, 0.25);
        let auc = |scores: &[Option<f64>]| {
            let (s, b): (Vec<f64>, Vec<bool>) = scores
                .iter()
                .zip(&bad)
                .filter_map(|(s, b)| s.map(|s| (s, *b)))
                .unzip();
            roc_auc(&s, &b)
        };
        let low: Vec<bool> = self
            .confidence
            .iter()
            .map(|c| c.is_some_and(|c| -c < LOW_CONFIDENCE as f64))
            .collect();
        let notes_only: Vec<bool> = self
            .note
            .iter()
            .zip(&self.error)
            .map(|(n, e)| *n && !*e)
            .collect();
        Detection {
            confidence_auc: auc(&self.confidence),
            mean_logprob_auc: auc(&self.mean),
            min_logprob_auc: auc(&self.min),
            doubtful_share_auc: auc(&self.doubtful),
            source_contrast_auc: auc(&self.contrast),
            errors: flag_quality(&self.error, &bad),
            notes_only: flag_quality(&notes_only, &bad),
            low_confidence: flag_quality(&low, &bad),
            segments_with_error: self.segments_with_error,
        }
    }
}

fn write(path: &Path, text: &str) -> Result<(), EvalError> {
    crate::write::write_atomic(path, text.as_bytes()).map_err(|source| EvalError::Write {
        path: path.to_path_buf(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::settings::testing;
    use crate::translate::testing::Scripted;

    const PAIRS: &[(&str, &str)] = &[
        (
            "عقد المجلس اجتماعه في الرياض.",
            "The council held its meeting in Riyadh.",
        ),
        (
            "وناقش الوزراء التعاون الاقتصادي.",
            "The ministers discussed economic cooperation.",
        ),
        (
            "افتتح الوزير المعرض في جدة.",
            "The minister opened the exhibition in Jeddah.",
        ),
    ];

    #[test]
    fn lines_are_segmented_translated_rejoined_and_scored() {
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("test.ar");
        let reference = dir.path().join("test.en");
        // The first line holds two sentences: two segments, one hypothesis.
        let sources = format!("{} {}\n{}\n", PAIRS[0].0, PAIRS[1].0, PAIRS[2].0);
        let references = format!("{} {}\n{}\n", PAIRS[0].1, PAIRS[1].1, PAIRS[2].1);
        std::fs::write(&src, sources).unwrap();
        std::fs::write(&reference, references).unwrap();
        let opts = EvalOptions {
            run: RunSettings::resolve(testing::choices("scripted")).unwrap(),
            src,
            reference,
            offset: 0,
            limit: None,
            hyp_out: Some(dir.path().join("hyp.en")),
            source_contrast: false,
            progress_bar: false,
            segments_out: Some(dir.path().join("segments.jsonl")),
        };
        let mut translator = Scripted::with_table(PAIRS);
        let report = run(&opts, &mut translator).unwrap();
        assert_eq!(report.lines, 2);
        assert!(report.bleu > 99.9 && report.chrf > 99.9, "{report:?}");
        let hyp = std::fs::read_to_string(dir.path().join("hyp.en")).unwrap();
        assert_eq!(
            hyp.lines().next(),
            Some(format!("{} {}", PAIRS[0].1, PAIRS[1].1).as_str())
        );
        let segments = std::fs::read_to_string(dir.path().join("segments.jsonl")).unwrap();
        assert_eq!(segments.lines().count(), 3, "{segments}");

        // --offset and --limit select the second line only.
        let opts = EvalOptions {
            offset: 1,
            limit: Some(1),
            hyp_out: None,
            segments_out: None,
            ..opts
        };
        let asked = translator.asked.clone();
        asked.borrow_mut().clear();
        let report = run(&opts, &mut translator).unwrap();
        assert_eq!(report.lines, 1);
        assert_eq!(*asked.borrow(), [PAIRS[2].0]);
    }
}
