//! BLEU as sacreBLEU 2.4.3 computes it: the `13a` tokenizer, clipped n-gram counts for
//! orders 1–4, the brevity penalty, and `exp` smoothing (`BLEU.compute_bleu`).

use std::collections::HashMap;
use std::fmt;
use std::ops::AddAssign;

use super::{py_rstrip, py_split, BLEU_SIGNATURE, SENTENCE_BLEU_SIGNATURE};

/// sacreBLEU's `MAX_NGRAM_ORDER`.
pub const MAX_NGRAM_ORDER: usize = 4;

/// What sacreBLEU's `my_log` returns for log(0): a finite floor, so that a zero precision
/// drives the geometric mean to 0 instead of producing NaN.
const LOG_ZERO: f64 = -9_999_999_999.0;

/// A BLEU score with the statistics behind it, as sacreBLEU's `BLEUScore` reports them.
#[derive(Debug, Clone, PartialEq)]
pub struct BleuScore {
    /// BLEU on the 0–100 scale.
    pub score: f64,
    /// Matched n-grams per order (1..=4), clipped by the reference counts.
    pub counts: [u64; MAX_NGRAM_ORDER],
    /// Hypothesis n-grams per order.
    pub totals: [u64; MAX_NGRAM_ORDER],
    /// n-gram precisions on the 0–100 scale, smoothed where the count is 0.
    pub precisions: [f64; MAX_NGRAM_ORDER],
    /// Brevity penalty.
    pub bp: f64,
    /// Hypothesis tokens.
    pub sys_len: u64,
    /// Reference tokens.
    pub ref_len: u64,
    /// Whether the geometric mean stops at the highest order the hypothesis has
    /// (sentence-level BLEU) rather than always covering orders 1..=4.
    pub effective_order: bool,
}

impl BleuScore {
    /// sacreBLEU's signature for the settings that produced this score.
    pub fn signature(&self) -> &'static str {
        if self.effective_order {
            SENTENCE_BLEU_SIGNATURE
        } else {
            BLEU_SIGNATURE
        }
    }

    /// `sys_len / ref_len`, 0 when there is no reference.
    pub fn ratio(&self) -> f64 {
        if self.ref_len == 0 {
            0.0
        } else {
            self.sys_len as f64 / self.ref_len as f64
        }
    }
}

/// The same line sacreBLEU prints: `BLEU = 34.21 65.1/40.2/27.3/19.0 (BP = ...)`.
impl fmt::Display for BleuScore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let precisions: Vec<String> = self.precisions.iter().map(|p| format!("{p:.1}")).collect();
        write!(
            f,
            "BLEU = {:.2} {} (BP = {:.3} ratio = {:.3} hyp_len = {} ref_len = {})",
            self.score,
            precisions.join("/"),
            self.bp,
            self.ratio(),
            self.sys_len,
            self.ref_len
        )
    }
}

/// Sufficient statistics of one segment, or of a corpus once summed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct BleuStats {
    sys_len: u64,
    ref_len: u64,
    correct: [u64; MAX_NGRAM_ORDER],
    total: [u64; MAX_NGRAM_ORDER],
}

impl AddAssign for BleuStats {
    fn add_assign(&mut self, other: Self) {
        self.sys_len += other.sys_len;
        self.ref_len += other.ref_len;
        for (mine, theirs) in self.correct.iter_mut().zip(other.correct) {
            *mine += theirs;
        }
        for (mine, theirs) in self.total.iter_mut().zip(other.total) {
            *mine += theirs;
        }
    }
}

impl BleuStats {
    /// Statistics of a raw (untokenized) hypothesis against a raw reference.
    pub(crate) fn of_segment(hyp: &str, reference: &str) -> Self {
        let hyp = tokenize_13a(py_rstrip(hyp));
        let reference = tokenize_13a(py_rstrip(reference));
        let hyp_tokens = py_split(&hyp);
        let ref_tokens = py_split(&reference);
        let ref_ngrams = ngram_counts(&ref_tokens);

        let mut stats = BleuStats {
            sys_len: hyp_tokens.len() as u64,
            ref_len: ref_tokens.len() as u64,
            ..Self::default()
        };
        for (n, hyp_order) in ngram_counts(&hyp_tokens).iter().enumerate() {
            for (ngram, &count) in hyp_order {
                stats.total[n] += count;
                let in_ref = ref_ngrams[n].get(ngram).copied().unwrap_or(0);
                stats.correct[n] += count.min(in_ref);
            }
        }
        stats
    }

    /// Mirrors `BLEU.compute_bleu` with `smooth_method='exp'`, including its order of
    /// floating-point operations so that scores agree to the last digits.
    pub(crate) fn score(&self, effective_order: bool) -> BleuScore {
        let bp = brevity_penalty(self.sys_len, self.ref_len);
        let mut result = BleuScore {
            score: 0.0,
            counts: self.correct,
            totals: self.total,
            precisions: [0.0; MAX_NGRAM_ORDER],
            bp,
            sys_len: self.sys_len,
            ref_len: self.ref_len,
            effective_order,
        };
        // sacreBLEU returns 0 outright when nothing matches (its issue #141), so
        // smoothing cannot lift a hypothesis that shares no word with the reference.
        if self.correct.iter().all(|&c| c == 0) {
            return result;
        }

        let mut smooth_mteval = 1.0;
        let mut eff_order = MAX_NGRAM_ORDER;
        let orders = self
            .correct
            .iter()
            .zip(&self.total)
            .zip(&mut result.precisions);
        for (n, ((&correct, &total), precision)) in orders.enumerate() {
            // An order the hypothesis is too short for, and every higher one, keeps
            // precision 0; without effective order it still enters the mean and so
            // zeroes the score.
            if total == 0 {
                break;
            }
            if effective_order {
                eff_order = n + 1;
            }
            *precision = if correct == 0 {
                // NIST smoothing: each successive zero-match order gets half the
                // pseudo-count of the previous one.
                smooth_mteval *= 2.0;
                100.0 / (smooth_mteval * total as f64)
            } else {
                100.0 * correct as f64 / total as f64
            };
        }

        let log_sum: f64 = result.precisions[..eff_order]
            .iter()
            .map(|&p| floored_log(p))
            .sum();
        result.score = bp * (log_sum / eff_order as f64).exp();
        result
    }
}

/// `exp(1 - r/c)` for a short hypothesis; an empty one gets 0 rather than a division by 0.
fn brevity_penalty(sys_len: u64, ref_len: u64) -> f64 {
    if sys_len >= ref_len {
        1.0
    } else if sys_len == 0 {
        0.0
    } else {
        (1.0 - ref_len as f64 / sys_len as f64).exp()
    }
}

/// sacreBLEU's `my_log`.
fn floored_log(x: f64) -> f64 {
    if x == 0.0 {
        LOG_ZERO
    } else {
        x.ln()
    }
}

/// Counts of every n-gram of orders 1..=4, one map per order.
fn ngram_counts<'a>(tokens: &'a [&'a str]) -> Vec<HashMap<&'a [&'a str], u64>> {
    (1..=MAX_NGRAM_ORDER)
        .map(|n| {
            let mut counts = HashMap::new();
            for ngram in tokens.windows(n) {
                *counts.entry(ngram).or_insert(0) += 1;
            }
            counts
        })
        .collect()
}

/// The `13a` tokenizer (mteval-v13a.pl as sacreBLEU reimplements it): tokens joined by
/// single spaces.
pub fn tokenize_13a(line: &str) -> String {
    let mut line = line
        .replace("<skipped>", "")
        .replace("-\n", "")
        .replace('\n', " ");
    if line.contains('&') {
        line = line
            .replace("&quot;", "\"")
            .replace("&amp;", "&")
            .replace("&lt;", "<")
            .replace("&gt;", ">");
    }
    let chars: Vec<char> = format!(" {line} ").chars().collect();
    let chars = pad_symbols(&chars);
    // A period or comma splits off unless digits sit on both sides of it, so "3.5" and
    // "1,000" stay whole; a dash splits off only after a digit ("3-4", not "well-known").
    let chars = split_pairs(&chars, Padding::Trailing, |a, b| {
        !a.is_ascii_digit() && is_period_or_comma(b)
    });
    let chars = split_pairs(&chars, Padding::Leading, |a, b| {
        is_period_or_comma(a) && !b.is_ascii_digit()
    });
    let chars = split_pairs(&chars, Padding::Trailing, |a, b| {
        a.is_ascii_digit() && b == '-'
    });
    let padded: String = chars.into_iter().collect();
    py_split(&padded).join(" ")
}

fn is_period_or_comma(c: char) -> bool {
    c == '.' || c == ','
}

/// The first 13a rule: surround each symbol of the class
/// `[\{-\~\[-\` -\&\(-\+\:-\@\/]` with spaces. The class leaves out `'`, `,`, `-` and
/// `.`, which the later rules handle by context.
fn pad_symbols(chars: &[char]) -> Vec<char> {
    let mut out = Vec::with_capacity(chars.len() * 2);
    for &c in chars {
        if matches!(c, '{'..='~' | '['..='`' | ' '..='&' | '('..='+' | ':'..='@' | '/') {
            out.extend([' ', c, ' ']);
        } else {
            out.push(c);
        }
    }
    out
}

/// Where a two-character 13a rule puts its spaces around the matched pair `a b`.
#[derive(Clone, Copy)]
enum Padding {
    /// `\1 \2 `
    Trailing,
    /// ` \1 \2`
    Leading,
}

/// One of the two-character 13a rules (`([^0-9])([\.,])` → `\1 \2 `, and so on), with
/// `re.sub` semantics: matches are found left to right and never overlap, so the second
/// character of a match cannot start the next one: in "a.," the first rule pads the
/// period, and the comma is left for the next rule.
fn split_pairs(
    chars: &[char],
    padding: Padding,
    is_match: impl Fn(char, char) -> bool,
) -> Vec<char> {
    let mut out = Vec::with_capacity(chars.len() * 2);
    let mut i = 0;
    while i < chars.len() {
        let a = chars[i];
        match chars.get(i + 1) {
            Some(&b) if is_match(a, b) => {
                match padding {
                    Padding::Trailing => out.extend([a, ' ', b, ' ']),
                    Padding::Leading => out.extend([' ', a, ' ', b]),
                }
                i += 2;
            }
            _ => {
                out.push(a);
                i += 1;
            }
        }
    }
    out
}
