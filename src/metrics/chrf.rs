//! chrF2 as sacreBLEU 2.4.3 computes it by default: character n-grams of orders 1–6 with
//! whitespace removed, β = 2, and sacreBLEU's effective-order averaging (`eff:yes`).

use std::collections::HashMap;
use std::fmt;
use std::ops::AddAssign;

use super::{is_py_whitespace, CHRF_SIGNATURE};

/// sacreBLEU's `CHRF.CHAR_ORDER`.
pub const CHAR_ORDER: usize = 6;

/// sacreBLEU's `CHRF.BETA`: recall weighs β² = 4 times as much as precision.
pub const BETA: u32 = 2;

/// A chrF2 score on the 0–100 scale.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ChrfScore {
    pub score: f64,
}

impl ChrfScore {
    /// sacreBLEU's signature for the settings that produced this score.
    pub fn signature(&self) -> &'static str {
        CHRF_SIGNATURE
    }
}

/// The same line sacreBLEU prints: `chrF2 = 58.31`.
impl fmt::Display for ChrfScore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "chrF{BETA} = {:.2}", self.score)
    }
}

/// Hypothesis, reference and matched n-gram counts of one character order.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct OrderStats {
    hyp: u64,
    reference: u64,
    matched: u64,
}

/// Sufficient statistics of one segment, or of a corpus once summed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct ChrfStats([OrderStats; CHAR_ORDER]);

impl AddAssign for ChrfStats {
    fn add_assign(&mut self, other: Self) {
        for (mine, theirs) in self.0.iter_mut().zip(other.0) {
            mine.hyp += theirs.hyp;
            mine.reference += theirs.reference;
            mine.matched += theirs.matched;
        }
    }
}

impl ChrfStats {
    /// Statistics of a hypothesis against a reference (`_compute_segment_statistics`).
    pub(crate) fn of_segment(hyp: &str, reference: &str) -> Self {
        let hyp = without_whitespace(hyp);
        let reference = without_whitespace(reference);
        let mut stats = Self::default();
        for (n, order) in stats.0.iter_mut().enumerate() {
            *order = match_statistics(&char_ngrams(&hyp, n + 1), &char_ngrams(&reference, n + 1));
        }
        stats
    }

    /// Mirrors `CHRF._compute_f_score` with `eps_smoothing=False`: precision and recall
    /// are averaged over the orders both sides have n-grams of, and the F-score is taken
    /// of those averages (not an average of per-order F-scores). The operation order
    /// follows sacreBLEU so that scores agree to the last digits.
    pub(crate) fn score(&self) -> ChrfScore {
        let factor = f64::from(BETA * BETA);
        let mut avg_prec = 0.0;
        let mut avg_rec = 0.0;
        let mut effective_order = 0u32;
        for order in &self.0 {
            if order.hyp > 0 && order.reference > 0 {
                avg_prec += order.matched as f64 / order.hyp as f64;
                avg_rec += order.matched as f64 / order.reference as f64;
                effective_order += 1;
            }
        }
        if effective_order > 0 {
            avg_prec /= f64::from(effective_order);
            avg_rec /= f64::from(effective_order);
        }
        if avg_prec + avg_rec == 0.0 {
            return ChrfScore { score: 0.0 };
        }
        let f = (1.0 + factor) * avg_prec * avg_rec / (factor * avg_prec + avg_rec);
        ChrfScore { score: 100.0 * f }
    }
}

/// `''.join(line.split())`: chrF without `space:yes` ignores whitespace entirely.
fn without_whitespace(line: &str) -> Vec<char> {
    line.chars().filter(|&c| !is_py_whitespace(c)).collect()
}

fn char_ngrams(chars: &[char], n: usize) -> HashMap<&[char], u64> {
    let mut counts = HashMap::new();
    for ngram in chars.windows(n) {
        *counts.entry(ngram).or_insert(0) += 1;
    }
    counts
}

/// `CHRF._get_match_statistics`.
fn match_statistics<'a>(
    hyp: &HashMap<&'a [char], u64>,
    reference: &HashMap<&'a [char], u64>,
) -> OrderStats {
    let mut hyp_count = 0;
    let mut matched = 0;
    for (ngram, &count) in hyp {
        hyp_count += count;
        if let Some(&in_ref) = reference.get(ngram) {
            matched += count.min(in_ref);
        }
    }
    OrderStats {
        // An order the reference is too short for drops out of the averages entirely,
        // rather than counting as a precision of 0.
        hyp: if reference.is_empty() { 0 } else { hyp_count },
        reference: reference.values().sum(),
        matched,
    }
}
