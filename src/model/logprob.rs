//! The log-probability of one token from a row of logits.
//!
//! Confidence, constrained decoding and reranking all compare these numbers, and their
//! decisions change the English, so they must come out the same on every CPU: the sum
//! runs in one fixed order over tarjama's own `exp` (fused multiply-adds, no C library),
//! in f64 so a 150,000-entry vocabulary loses nothing to rounding.

use super::exp::exp;

/// `ln p(token)` under the softmax of `logits`; `-inf` for a token outside them.
pub fn log_prob(logits: &[f32], token: u32) -> f32 {
    let Some(&chosen) = logits.get(token as usize) else {
        return f32::NEG_INFINITY;
    };
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    if !max.is_finite() {
        return f32::NEG_INFINITY;
    }
    let sum: f64 = logits.iter().map(|&x| exp(x - max) as f64).sum();
    (chosen - max) - sum.ln() as f32
}

/// How many entries of `logits` are strictly above `token`'s: 0 for the argmax.
pub fn rank(logits: &[f32], token: u32) -> usize {
    let Some(&chosen) = logits.get(token as usize) else {
        return logits.len();
    };
    logits.iter().filter(|&&x| x > chosen).count()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_probs_are_a_log_softmax() {
        let logits = [1.0f32, 2.0, 3.0, -1.0];
        let total: f64 = (0..4).map(|t| (log_prob(&logits, t) as f64).exp()).sum();
        assert!((total - 1.0).abs() < 1e-5, "{total}");
        let exact = 3.0 - (1f64.exp() + 2f64.exp() + 3f64.exp() + (-1f64).exp()).ln();
        assert!((log_prob(&logits, 2) as f64 - exact).abs() < 1e-5);
        assert_eq!(log_prob(&logits, 9), f32::NEG_INFINITY);
    }

    #[test]
    fn ranks_count_the_tokens_above() {
        let logits = [1.0f32, 2.0, 3.0, 2.0];
        assert_eq!(rank(&logits, 2), 0);
        assert_eq!(rank(&logits, 1), 1);
        assert_eq!(rank(&logits, 0), 3);
    }
}
