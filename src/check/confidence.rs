//! Confidence: how sure the model itself was of its English, from the log-probability it
//! gave each token as it decoded them.
//!
//! A model that does not know a word, or has lost the thread of the source, spreads its
//! probability over many continuations, so the tokens it picks get low probabilities.
//! Sequence log-probability is the best cheap detector of hallucinated translations in
//! the HalOmi benchmark (Dale et al., 2023). Three views of it are recorded (the mean,
//! the minimum and the share of doubtful tokens); a logistic model fitted on FLORES-200
//! devtest lines 1–200 (labels: the quarter of lines with the lowest chrF against the
//! human reference) turns them into a 0–1 confidence. On those lines the mean alone
//! ranked the bad translations as well as any combination, so the confidence is the
//! mean's; docs/quality.md gives the fit and every signal's ROC-AUC on lines 1–200 and
//! 201–400.

use serde::{Deserialize, Serialize};

use super::{CheckKind, Finding, Severity};
use crate::model::exp::exp;

/// A token below this log-probability (about 1 in 10) counts as a doubtful pick.
pub const DOUBTFUL_LOGPROB: f32 = -2.3;

/// Below this confidence a sentence is shown as low-confidence to the reader, left out
/// of its document's summary, and its unsupported names and lost words are errors (at or
/// above it they are notes: on FLORES lines 1–200 a name flag on a sentence the model
/// was sure of landed on a bad translation 4 times in 35, below chance).
pub const LOW: f32 = 0.70;

/// Below this confidence the meaning itself is in doubt: an error-severity warning of
/// its own (about a fifth of FLORES segments).
pub const VERY_LOW: f32 = 0.65;

/// Below this confidence a segment is worth sampled candidates and reranking (about one
/// segment in twelve on FLORES), so that only the most doubtful pay for it.
pub const RERANK_BELOW: f32 = 0.55;

/// What the token log-probabilities of one translation say.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Signals {
    /// Mean log-probability per token.
    pub mean: f32,
    /// The least probable token's log-probability.
    pub min: f32,
    /// Share of tokens below [`DOUBTFUL_LOGPROB`].
    pub doubtful: f32,
    pub tokens: usize,
}

impl Signals {
    /// `None` for an empty answer or a backend that reports no log-probabilities.
    pub fn of(logprobs: &[f32]) -> Option<Self> {
        if logprobs.is_empty() {
            return None;
        }
        let n = logprobs.len() as f32;
        let mut sum = 0f64;
        let mut min = f32::INFINITY;
        let mut doubtful = 0usize;
        for &lp in logprobs {
            sum += lp as f64;
            min = min.min(lp);
            doubtful += usize::from(lp < DOUBTFUL_LOGPROB);
        }
        Some(Self {
            mean: (sum / logprobs.len() as f64) as f32,
            min,
            doubtful: doubtful as f32 / n,
            tokens: logprobs.len(),
        })
    }

    /// The probability, 0 to 1, that this translation is not among the worst quarter.
    pub fn confidence(&self) -> f32 {
        let z = BIAS + MEAN_WEIGHT * self.mean;
        // tarjama's own `exp`, not the C library's: the same value on every CPU.
        let p = 1.0 / (1.0 + exp(-z));
        // Two decimals: what a reader sees, and what thresholds compare.
        (p * 100.0).round() / 100.0
    }
}

/// The logistic model's intercept and its weight on the mean token log-probability,
/// fitted on FLORES-200 devtest lines 1–200 by `scripts/fit-confidence.py`.
const BIAS: f32 = 3.6795;
const MEAN_WEIGHT: f32 = 4.4768;

/// Weighs a translation's findings by the model's confidence in it: a name or a lost
/// word is an error only when the model was unsure (a confident model mostly got it
/// right in another form: a note), and a very low confidence is an error of its own.
pub fn weigh(findings: &mut Vec<Finding>, confidence: f32) {
    for f in findings.iter_mut() {
        let weighed = matches!(
            f.warning.check,
            CheckKind::UnsupportedName | CheckKind::LostContent
        );
        if weighed && confidence >= LOW {
            f.warning.severity = Severity::Note;
        }
    }
    findings.extend(low_confidence(confidence));
}

/// The error-severity warning of a very low confidence, if it is one.
pub fn low_confidence(confidence: f32) -> Option<Finding> {
    (confidence < VERY_LOW).then(|| {
        Finding::new(
            CheckKind::LowConfidence,
            format!("the model was unsure of this English (confidence {confidence:.2})"),
            "Translate every word of the text; do not add anything it does not say.".into(),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn finding(check: CheckKind) -> Finding {
        Finding::new(check, "x".into(), "y".into())
    }

    #[test]
    fn signals_summarize_the_token_log_probs() {
        let s = Signals::of(&[-0.5, -3.0, -0.1, -2.4]).unwrap();
        assert!((s.mean - -1.5).abs() < 1e-6);
        assert_eq!(s.min, -3.0);
        assert_eq!(s.doubtful, 0.5);
        assert_eq!(s.tokens, 4);
        assert!(Signals::of(&[]).is_none());
        // A surer translation is more confident, and confidence is a probability.
        let sure = Signals::of(&[-0.05; 8]).unwrap().confidence();
        let unsure = Signals::of(&[-1.5; 8]).unwrap().confidence();
        assert!(
            sure > unsure && sure <= 1.0 && unsure >= 0.0,
            "{sure} {unsure}"
        );
    }

    #[test]
    fn names_and_lost_words_weigh_as_errors_only_when_the_model_was_unsure() {
        let kinds = [
            CheckKind::UnsupportedName,
            CheckKind::LostContent,
            CheckKind::Numbers,
        ];
        let mut sure: Vec<Finding> = kinds.iter().map(|&k| finding(k)).collect();
        weigh(&mut sure, LOW);
        let severities: Vec<Severity> = sure.iter().map(|f| f.warning.severity).collect();
        assert_eq!(
            severities,
            [Severity::Note, Severity::Note, Severity::Error]
        );
        let mut unsure: Vec<Finding> = kinds.iter().map(|&k| finding(k)).collect();
        weigh(&mut unsure, VERY_LOW - 0.01);
        assert!(unsure.iter().all(|f| f.warning.severity == Severity::Error));
        assert_eq!(
            unsure.len(),
            4,
            "a very low confidence is an error of its own"
        );
        assert_eq!(unsure[3].warning.check, CheckKind::LowConfidence);
        let mut between: Vec<Finding> = vec![finding(CheckKind::UnsupportedName)];
        weigh(&mut between, VERY_LOW);
        assert_eq!(between.len(), 1);
        assert!(between[0].warning.is_error());
    }
}
