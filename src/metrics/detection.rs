//! How well a reference-free signal finds the bad translations: ROC-AUC of a score, and
//! precision and recall of a yes/no flag, against labels from the human references.

use serde::Serialize;

/// The probability that a random bad item scores higher than a random good one (ties
/// count half): 0.5 is chance, 1.0 a perfect ranking. `None` without both kinds.
pub fn roc_auc(scores: &[f64], bad: &[bool]) -> Option<f64> {
    let mut items: Vec<(f64, bool)> = scores.iter().copied().zip(bad.iter().copied()).collect();
    let positives = items.iter().filter(|(_, b)| *b).count();
    let negatives = items.len() - positives;
    if positives == 0 || negatives == 0 {
        return None;
    }
    items.sort_by(|a, b| a.0.total_cmp(&b.0));
    // Mann–Whitney U from the ranks, ties given their mean rank.
    let mut rank_sum = 0.0;
    let mut i = 0;
    while i < items.len() {
        let mut j = i;
        while j < items.len() && items[j].0 == items[i].0 {
            j += 1;
        }
        let mean_rank = (i + 1 + j) as f64 / 2.0;
        rank_sum += mean_rank * items[i..j].iter().filter(|(_, b)| *b).count() as f64;
        i = j;
    }
    let u = rank_sum - (positives * (positives + 1)) as f64 / 2.0;
    Some(u / (positives * negatives) as f64)
}

/// A flag judged against labels.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct FlagQuality {
    pub flagged: usize,
    /// Share of flagged items that are bad.
    pub precision: f64,
    /// Share of bad items that are flagged.
    pub recall: f64,
}

pub fn flag_quality(flags: &[bool], bad: &[bool]) -> FlagQuality {
    let flagged = flags.iter().filter(|f| **f).count();
    let hits = flags.iter().zip(bad).filter(|(f, b)| **f && **b).count();
    let bad_count = bad.iter().filter(|b| **b).count();
    FlagQuality {
        flagged,
        precision: hits as f64 / flagged.max(1) as f64,
        recall: hits as f64 / bad_count.max(1) as f64,
    }
}

/// Marks the `share` of items with the lowest `quality` (the first on ties, so the
/// labels do not depend on anything but the order of the items).
pub fn worst_share(quality: &[f64], share: f64) -> Vec<bool> {
    let mut order: Vec<usize> = (0..quality.len()).collect();
    order.sort_by(|&a, &b| quality[a].total_cmp(&quality[b]).then(a.cmp(&b)));
    let count = (quality.len() as f64 * share).round() as usize;
    let mut bad = vec![false; quality.len()];
    for &i in order.iter().take(count) {
        bad[i] = true;
    }
    bad
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auc_is_one_for_a_perfect_ranking_and_half_for_ties() {
        assert_eq!(
            roc_auc(&[0.9, 0.8, 0.1, 0.2], &[true, true, false, false]),
            Some(1.0)
        );
        assert_eq!(
            roc_auc(&[0.1, 0.2, 0.9, 0.8], &[true, true, false, false]),
            Some(0.0)
        );
        assert_eq!(roc_auc(&[0.5, 0.5], &[true, false]), Some(0.5));
        assert_eq!(roc_auc(&[0.5, 0.5], &[true, true]), None);
        // One bad item above two of three good ones.
        let auc = roc_auc(&[0.6, 0.5, 0.4, 0.7], &[true, false, false, false]).unwrap();
        assert!((auc - 2.0 / 3.0).abs() < 1e-12);
    }

    #[test]
    fn flags_are_judged_by_precision_and_recall() {
        let q = flag_quality(&[true, true, false, false], &[true, false, true, false]);
        assert_eq!((q.flagged, q.precision, q.recall), (2, 0.5, 0.5));
    }

    #[test]
    fn the_worst_quarter_is_the_lowest_scores() {
        let bad = worst_share(&[50.0, 10.0, 70.0, 30.0, 20.0, 90.0, 60.0, 40.0], 0.25);
        assert_eq!(bad, [false, true, false, false, true, false, false, false]);
    }
}
