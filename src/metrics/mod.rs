//! Reference-based translation metrics that reproduce sacreBLEU 2.4.3 exactly, so that
//! numbers reported by tarjama can be compared with published ones.
//!
//! Corpus scores come from statistics summed over all segments (not an average of
//! sentence scores), as in sacreBLEU. Each score names the sacreBLEU signature it matches.

mod bleu;
mod chrf;
pub mod detection;

use std::path::{Path, PathBuf};

pub use bleu::{tokenize_13a, BleuScore, MAX_NGRAM_ORDER};
pub use chrf::{ChrfScore, BETA, CHAR_ORDER};

use bleu::BleuStats;
use chrf::ChrfStats;

/// sacreBLEU signature of [`corpus_bleu`] (without the `version:` field).
pub const BLEU_SIGNATURE: &str = "nrefs:1|case:mixed|eff:no|tok:13a|smooth:exp";
/// sacreBLEU signature of [`sentence_bleu`], which uses effective order as
/// `sacrebleu.sentence_bleu` does.
pub const SENTENCE_BLEU_SIGNATURE: &str = "nrefs:1|case:mixed|eff:yes|tok:13a|smooth:exp";
/// sacreBLEU signature of [`corpus_chrf`] and [`sentence_chrf`].
pub const CHRF_SIGNATURE: &str = "nrefs:1|case:mixed|eff:yes|nc:6|nw:0|space:no";

#[derive(Debug, thiserror::Error)]
pub enum MetricsError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "{path}: line {line} is not valid UTF-8; metrics read UTF-8 text, one segment per line"
    )]
    NotUtf8 { path: PathBuf, line: usize },
    #[error("{hyp_path} has {hyp_lines} lines but {ref_path} has {ref_lines}; hypotheses and references must pair up line by line")]
    LineCountMismatch {
        hyp_path: PathBuf,
        hyp_lines: usize,
        ref_path: PathBuf,
        ref_lines: usize,
    },
}

/// Corpus BLEU of `hyps` against `refs`, paired by index (`BLEU_SIGNATURE`).
///
/// # Panics
/// If the two slices differ in length; [`read_parallel`] guarantees they do not.
pub fn corpus_bleu(hyps: &[String], refs: &[String]) -> BleuScore {
    assert_same_len(hyps, refs);
    let mut stats = BleuStats::default();
    for (hyp, reference) in hyps.iter().zip(refs) {
        stats += BleuStats::of_segment(hyp, reference);
    }
    stats.score(false)
}

/// BLEU of one segment, as `sacrebleu.sentence_bleu` (`SENTENCE_BLEU_SIGNATURE`).
pub fn sentence_bleu(hyp: &str, reference: &str) -> BleuScore {
    BleuStats::of_segment(hyp, reference).score(true)
}

/// Corpus chrF2 of `hyps` against `refs`, paired by index (`CHRF_SIGNATURE`).
///
/// # Panics
/// If the two slices differ in length; [`read_parallel`] guarantees they do not.
pub fn corpus_chrf(hyps: &[String], refs: &[String]) -> ChrfScore {
    assert_same_len(hyps, refs);
    let mut stats = ChrfStats::default();
    for (hyp, reference) in hyps.iter().zip(refs) {
        stats += ChrfStats::of_segment(hyp, reference);
    }
    stats.score()
}

/// chrF2 of one segment, as `sacrebleu.sentence_chrf` (`CHRF_SIGNATURE`).
pub fn sentence_chrf(hyp: &str, reference: &str) -> ChrfScore {
    ChrfStats::of_segment(hyp, reference).score()
}

/// The lines of a UTF-8 text file, without their line endings: one segment per line.
pub fn read_lines(path: impl AsRef<Path>) -> Result<Vec<String>, MetricsError> {
    let path = path.as_ref();
    let bytes = std::fs::read(path).map_err(|source| MetricsError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let text = String::from_utf8(bytes).map_err(|e| {
        let valid = &e.as_bytes()[..e.utf8_error().valid_up_to()];
        MetricsError::NotUtf8 {
            path: path.to_path_buf(),
            line: valid.iter().filter(|&&b| b == b'\n').count() + 1,
        }
    })?;
    Ok(text.lines().map(String::from).collect())
}

/// Reads a hypothesis file and its reference file, which must have as many lines.
pub fn read_parallel(
    hyp_path: impl AsRef<Path>,
    ref_path: impl AsRef<Path>,
) -> Result<(Vec<String>, Vec<String>), MetricsError> {
    let (hyp_path, ref_path) = (hyp_path.as_ref(), ref_path.as_ref());
    let hyps = read_lines(hyp_path)?;
    let refs = read_lines(ref_path)?;
    if hyps.len() != refs.len() {
        return Err(MetricsError::LineCountMismatch {
            hyp_path: hyp_path.to_path_buf(),
            hyp_lines: hyps.len(),
            ref_path: ref_path.to_path_buf(),
            ref_lines: refs.len(),
        });
    }
    Ok((hyps, refs))
}

fn assert_same_len(hyps: &[String], refs: &[String]) {
    assert_eq!(
        hyps.len(),
        refs.len(),
        "hypotheses and references must pair up line by line"
    );
}

/// Python's `str.isspace`, which sacreBLEU's `split()` and `rstrip()` rely on. It is
/// Unicode `White_Space` plus the ASCII separators U+001C..U+001F.
fn is_py_whitespace(c: char) -> bool {
    c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c)
}

/// Python's `str.split()` with no argument.
fn py_split(s: &str) -> Vec<&str> {
    s.split(is_py_whitespace)
        .filter(|t| !t.is_empty())
        .collect()
}

/// Python's `str.rstrip()` with no argument.
fn py_rstrip(s: &str) -> &str {
    s.trim_end_matches(is_py_whitespace)
}

/// Levenshtein distance between two character sequences: insertions, deletions and
/// substitutions, each costing one. Shared by the name check's spelling match and the
/// readers' character error rate.
pub fn edit_distance(a: &[char], b: &[char]) -> usize {
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    let mut current = vec![0; b.len() + 1];
    for (i, &ca) in a.iter().enumerate() {
        current[0] = i + 1;
        for (j, &cb) in b.iter().enumerate() {
            let substitution = previous[j] + usize::from(ca != cb);
            current[j + 1] = substitution.min(previous[j + 1] + 1).min(current[j] + 1);
        }
        std::mem::swap(&mut previous, &mut current);
    }
    previous[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;
    use std::collections::BTreeMap;

    /// Values are rounded to 4 decimals in expected.json.
    const TOLERANCE: f64 = 0.01;

    #[derive(Deserialize)]
    struct Expected {
        bleu_signature: String,
        chrf_signature: String,
        sentence_bleu_signature: String,
        scores: BTreeMap<String, Case>,
    }

    #[derive(Deserialize)]
    struct Case {
        corpus_bleu: f64,
        bleu_precisions: [f64; 4],
        bleu_bp: f64,
        sys_len: u64,
        ref_len: u64,
        corpus_chrf: f64,
        sentence_chrf_first10: Vec<f64>,
        sentence_bleu_first10: Vec<f64>,
    }

    fn fixture(name: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/metrics")
            .join(name)
    }

    fn load_expected() -> Expected {
        let text = std::fs::read_to_string(fixture("expected.json")).expect("read expected.json");
        serde_json::from_str(&text).expect("parse expected.json")
    }

    /// Collects every mismatch so that one run shows all failing cases and fields.
    #[derive(Default)]
    struct Mismatches(Vec<String>);

    impl Mismatches {
        fn check(&mut self, case: &str, field: &str, got: f64, want: f64) {
            if (got - want).abs() > TOLERANCE {
                self.0
                    .push(format!("{case}: {field} = {got:.4}, sacreBLEU {want:.4}"));
            }
        }

        fn assert_none(&self) {
            assert!(
                self.0.is_empty(),
                "{} mismatches:\n{}",
                self.0.len(),
                self.0.join("\n")
            );
        }
    }

    #[test]
    fn signatures_match_the_fixtures() {
        let expected = load_expected();
        // The fixtures' signatures carry sacreBLEU's version as a last field.
        let strip = |s: &str| s.trim_end_matches("|version:2.4.3").to_string();
        assert_eq!(strip(&expected.bleu_signature), BLEU_SIGNATURE);
        assert_eq!(
            strip(&expected.sentence_bleu_signature),
            SENTENCE_BLEU_SIGNATURE
        );
        assert_eq!(strip(&expected.chrf_signature), CHRF_SIGNATURE);
    }

    #[test]
    fn scores_match_sacrebleu_on_every_fixture() {
        let expected = load_expected();
        assert!(!expected.scores.is_empty());
        let mut mismatches = Mismatches::default();
        for (case, want) in &expected.scores {
            let (hyps, refs) = read_parallel(fixture(&format!("{case}.hyp")), fixture("ref.eng"))
                .unwrap_or_else(|e| panic!("{case}: {e}"));
            check_case(case, want, &hyps, &refs, &mut mismatches);
        }
        mismatches.assert_none();
    }

    fn check_case(case: &str, want: &Case, hyps: &[String], refs: &[String], out: &mut Mismatches) {
        let bleu = corpus_bleu(hyps, refs);
        assert_eq!(bleu.signature(), BLEU_SIGNATURE);
        out.check(case, "corpus_bleu", bleu.score, want.corpus_bleu);
        for (n, (&got, &expected)) in bleu
            .precisions
            .iter()
            .zip(&want.bleu_precisions)
            .enumerate()
        {
            out.check(case, &format!("bleu_precisions[{n}]"), got, expected);
        }
        out.check(case, "bleu_bp", bleu.bp, want.bleu_bp);
        out.check(case, "sys_len", bleu.sys_len as f64, want.sys_len as f64);
        out.check(case, "ref_len", bleu.ref_len as f64, want.ref_len as f64);
        out.check(
            case,
            "corpus_chrf",
            corpus_chrf(hyps, refs).score,
            want.corpus_chrf,
        );

        assert_eq!(
            want.sentence_bleu_first10.len(),
            10,
            "{case}: sentence_bleu_first10"
        );
        assert_eq!(
            want.sentence_chrf_first10.len(),
            10,
            "{case}: sentence_chrf_first10"
        );
        for (i, (hyp, reference)) in hyps.iter().zip(refs).take(10).enumerate() {
            let sentence = sentence_bleu(hyp, reference);
            assert_eq!(sentence.signature(), SENTENCE_BLEU_SIGNATURE);
            out.check(
                case,
                &format!("sentence_bleu[{i}]"),
                sentence.score,
                want.sentence_bleu_first10[i],
            );
            let chrf = sentence_chrf(hyp, reference).score;
            out.check(
                case,
                &format!("sentence_chrf[{i}]"),
                chrf,
                want.sentence_chrf_first10[i],
            );
        }
    }

    #[test]
    fn tokenizer_13a_splits_punctuation_but_not_numbers() {
        assert_eq!(
            tokenize_13a("Hello, world. It's 3.5-4 km."),
            "Hello , world . It's 3.5 - 4 km ."
        );
        assert_eq!(
            tokenize_13a("1,000.50 dollars, e.g. $5 (approx.)"),
            "1,000.50 dollars , e . g . $ 5 ( approx . )"
        );
        assert_eq!(tokenize_13a("well-known 2-3"), "well-known 2 - 3");
        // Runs of punctuation, where the rules' non-overlapping matches matter; the
        // expected string is sacreBLEU 2.4.3's own output.
        assert_eq!(tokenize_13a("a.,b 5.,x ..,"), "a . , b 5 . , x . . ,");
    }

    #[test]
    fn tokenizer_13a_unescapes_entities_and_drops_skipped() {
        assert_eq!(
            tokenize_13a("A &amp; B &lt;tag&gt; &quot;q&quot;"),
            "A & B < tag > \" q \""
        );
        assert_eq!(tokenize_13a("x<skipped>y"), "xy");
        assert_eq!(tokenize_13a("line-\nbreak\nnext"), "linebreak next");
        assert_eq!(tokenize_13a("  \t "), "");
    }

    #[test]
    fn empty_hypothesis_scores_zero() {
        let bleu = sentence_bleu("", "The cat sat.");
        assert_eq!((bleu.score, bleu.bp, bleu.sys_len), (0.0, 0.0, 0));
        assert_eq!(sentence_chrf("", "The cat sat.").score, 0.0);
        assert_eq!(corpus_bleu(&[], &[]).score, 0.0);
    }

    #[test]
    fn sentence_bleu_uses_effective_order_for_short_segments() {
        // Two tokens have no 3- or 4-grams: with effective order the mean covers orders
        // 1 and 2 only, so an exact match still scores 100.
        assert!((sentence_bleu("Good morning", "Good morning").score - 100.0).abs() < 1e-9);
        assert_eq!(
            corpus_bleu(&["Good morning".into()], &["Good morning".into()]).score,
            0.0
        );
    }

    #[test]
    fn chrf_ignores_whitespace() {
        assert!((sentence_chrf("a b c", "abc").score - 100.0).abs() < 1e-9);
    }

    #[test]
    fn read_errors_name_the_files() {
        let dir = tempfile::tempdir().expect("tempdir");
        let missing = dir.path().join("missing.hyp");
        let err = read_lines(&missing).unwrap_err().to_string();
        assert!(err.contains("missing.hyp"), "{err}");

        let latin1 = dir.path().join("latin1.hyp");
        std::fs::write(&latin1, b"ok\ncaf\xe9\n").expect("write");
        let err = read_lines(&latin1).unwrap_err().to_string();
        assert!(
            err.contains("latin1.hyp") && err.contains("line 2"),
            "{err}"
        );

        let (hyp, reference) = (dir.path().join("a.hyp"), dir.path().join("b.ref"));
        std::fs::write(&hyp, "one\ntwo\n").expect("write");
        std::fs::write(&reference, "one\n").expect("write");
        let err = read_parallel(&hyp, &reference).unwrap_err().to_string();
        assert!(
            err.contains("a.hyp has 2 lines") && err.contains("b.ref has 1"),
            "{err}"
        );
    }
}
