//! Summary checks: a summary is read instead of the translation, so it may state nothing
//! the translation does not, and it must say something beyond the title.
//!
//! The summary is compared with its document's English (not the Arabic): every number
//! it states must be a number of the English, every name (capitalized word, acronym,
//! decade) must be a word of the English, and a summary of a document over
//! [`LONG_DOCUMENT_WORDS`] Arabic words must have at least two sentences and more to say
//! than its title.

use super::names::name_spans;
use super::numbers::{backwards_compound_numbers, numbers};
use super::words::{close, english_words};
use super::{CheckKind, Finding};
use crate::lexicon::Lexicon;

/// Documents longer than this (in Arabic words) get a summary of 2–4 sentences.
pub const LONG_DOCUMENT_WORDS: usize = 300;
/// Fewest words a summary of a long document may have.
const MIN_SUMMARY_WORDS: usize = 30;

/// What a summary should be checked against.
pub struct SummarySubject<'a> {
    pub summary: &'a str,
    /// The document's English translation.
    pub english: &'a str,
    pub title: &'a str,
    pub arabic_words: usize,
}

/// Everything wrong with a summary; each finding's retry hint is for the summarizer.
pub fn check_summary(s: &SummarySubject, lexicon: Option<&Lexicon>) -> Vec<Finding> {
    let mut found = Vec::new();
    let english_numbers = numbers(s.english);
    let invented: Vec<String> = numbers(s.summary)
        .into_iter()
        .filter(|n| !english_numbers.contains(n))
        .collect();
    if !invented.is_empty() {
        found.push(Finding::new(
            CheckKind::Numbers,
            format!(
                "summary number(s) not in the translation: {}",
                invented.join(", ")
            ),
            format!(
                "Use only numbers that appear in the text; {} does not.",
                invented.join(", ")
            ),
        ));
    }
    for (wrong, right) in backwards_compound_numbers(s.summary) {
        found.push(Finding::new(
            CheckKind::Numbers,
            format!("“{wrong}” is not English for {right}"),
            format!("Write {right}, not “{wrong}”."),
        ));
    }
    if let Some(lexicon) = lexicon {
        let english = english_words(s.english);
        let unsupported: Vec<String> = name_spans(s.summary, lexicon)
            .into_iter()
            .flat_map(|span| span.words)
            .filter(|w| {
                let lower = w.to_lowercase();
                !english.iter().any(|e| close(e, &lower))
            })
            .collect();
        if !unsupported.is_empty() {
            found.push(Finding::new(
                CheckKind::UnsupportedName,
                format!("summary names what the translation does not: {}", unsupported.join(", ")),
                format!(
                    "Name only people, places, organizations and titles that appear in the text; {} does not.",
                    unsupported.join(", ")
                ),
            ));
        }
    }
    if s.arabic_words > LONG_DOCUMENT_WORDS {
        if let Some(problem) = too_thin(s) {
            found.push(Finding::new(
                CheckKind::Length,
                problem,
                "Write 2 to 4 sentences that say what happened, who took part, where and when, \
                 and what was decided or agreed; do not just repeat the title."
                    .into(),
            ));
        }
    }
    found
}

/// Why a summary of a long document says too little, if it does.
fn too_thin(s: &SummarySubject) -> Option<String> {
    let words = s.summary.split_whitespace().count();
    let sentences = s
        .summary
        .split_inclusive(['.', '!', '?'])
        .filter(|p| p.split_whitespace().count() >= 3)
        .count();
    if words < MIN_SUMMARY_WORDS || sentences < 2 {
        return Some(format!(
            "summary of {words} words in {sentences} sentence(s) for a document of {} Arabic words",
            s.arabic_words
        ));
    }
    let title = english_words(s.title);
    let summary = english_words(s.summary);
    let new_words = summary
        .iter()
        .filter(|w| w.len() > 3 && !title.iter().any(|t| close(t, w)))
        .count();
    (new_words < 8).then(|| "summary restates the title and adds almost nothing".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    const ENGLISH: &str = "The GCC Secretary-General met the First Deputy of the President of \
        Azerbaijan in Doha on Monday, on the sidelines of the 23rd Doha Forum. They discussed \
        cooperation in 2023.";

    fn subject<'a>(summary: &'a str, arabic_words: usize) -> SummarySubject<'a> {
        SummarySubject {
            summary,
            english: ENGLISH,
            title: "GCC Secretary-General meets Azerbaijani official",
            arabic_words,
        }
    }

    #[test]
    fn numbers_must_come_from_the_translation() {
        let f = check_summary(&subject("They met in 2024.", 100), None);
        assert_eq!(f.len(), 1);
        assert!(f[0].warning.message.contains("2024"));
        assert!(check_summary(
            &subject("They met on the sidelines of the 23rd forum in 2023.", 100),
            None
        )
        .is_empty());
        let f = check_summary(
            &subject("They met at the third and twentieth session.", 100),
            None,
        );
        assert!(f[0].warning.message.contains("23rd"), "{f:?}");
    }

    #[test]
    fn a_long_document_needs_more_than_its_title() {
        let f = check_summary(
            &subject("GCC Secretary-General meets Azerbaijani official.", 838),
            None,
        );
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].warning.check, CheckKind::Length);
        let full = "The GCC Secretary-General met the First Deputy of the President of Azerbaijan \
            in Doha on Monday, on the sidelines of the 23rd Doha Forum. The two sides discussed \
            regional developments and ways to strengthen cooperation between the Council and \
            Azerbaijan in 2023.";
        assert!(check_summary(&subject(full, 838), None).is_empty());
        // A short document may have a one-sentence summary.
        assert!(check_summary(
            &subject("GCC Secretary-General meets Azerbaijani official.", 120),
            None
        )
        .is_empty());
    }
}
