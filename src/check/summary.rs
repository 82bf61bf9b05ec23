//! Summary checks: a summary is read instead of the translation, so it may state nothing
//! the translation does not, and it must say something beyond the title.
//!
//! The summary is compared with its document's English (not the Arabic): every number
//! it states must be a number of the English, every name (capitalized word, acronym,
//! decade) must be a word of the English, and a summary of a document over
//! [`LONG_DOCUMENT_WORDS`] Arabic words must have at least two sentences and more to say
//! than its title. A summary that repeats a flagged sentence, or a name the checks
//! flagged in the translation, carries the flag: the reader of the summary never sees
//! the sentence's own warning.

use super::names::{name_spans, unsupported_words};
use super::numbers::{backwards_compound_numbers, numbers};
use super::words::{close, english_words};
use super::{CheckKind, Finding, Warning};
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
    /// The document's translated sentences that were flagged, with their warnings.
    pub flagged: &'a [FlaggedSentence<'a>],
}

/// A translated sentence that failed a check.
#[derive(Debug, Clone, Copy)]
pub struct FlaggedSentence<'a> {
    pub english: &'a str,
    pub warnings: &'a [Warning],
}

/// Share of a summary sentence's words found in a flagged sentence above which the
/// summary repeats it (and the flagged sentence's share in the summary sentence must be
/// at least half, so a long summary sentence does not "repeat" a three-word one).
const REPEAT_SHARE: f64 = 0.75;

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
    for f in repeated_flags(s, lexicon) {
        // A repeated sentence's problem the summary is already flagged for is said once.
        if !found
            .iter()
            .any(|g| f.warning.message.contains(&g.warning.message))
        {
            found.push(f);
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

/// The flags of the translation the summary passes on: names the unsupported-name check
/// flagged (and no unflagged sentence uses), and sentences the summary repeats nearly word
/// for word.
fn repeated_flags(s: &SummarySubject, lexicon: Option<&Lexicon>) -> Vec<Finding> {
    let mut found = Vec::new();
    if let Some(lexicon) = lexicon {
        let names = flagged_names_repeated(s, lexicon);
        if !names.is_empty() {
            let list = names.join(", ");
            found.push(Finding::new(
                CheckKind::UnsupportedName,
                format!("summary repeats what the translation flags as not in the source: {list}"),
                format!("Do not mention {list}: the source does not support it."),
            ));
        }
    }
    let sentences: Vec<Vec<String>> = s
        .summary
        .split_inclusive(['.', '!', '?'])
        .map(content_words)
        .filter(|w| w.len() >= 4)
        .collect();
    for flagged in s.flagged {
        // The repeated sentence's most serious warning: the summary is as doubtful.
        let Some(first) = flagged
            .warnings
            .iter()
            .find(|w| w.is_error())
            .or(flagged.warnings.first())
        else {
            continue;
        };
        let theirs = content_words(flagged.english);
        let repeats = sentences
            .iter()
            .any(|ours| share_in(ours, &theirs) >= REPEAT_SHARE && share_in(&theirs, ours) >= 0.5);
        if repeats {
            let short = shorten(flagged.english, 12);
            found.push(
                Finding::new(
                    first.check,
                    format!(
                        "summary repeats a flagged sentence (“{short}”: {})",
                        first.message
                    ),
                    format!(
                        "Do not repeat “{short}” word for word: its translation is doubtful ({}).",
                        first.message
                    ),
                )
                .with_severity(first.severity),
            );
        }
    }
    found
}

/// Words of the summary's names that a flagged sentence's unsupported-name warning names
/// and that no unflagged sentence of the English uses.
fn flagged_names_repeated(s: &SummarySubject, lexicon: &Lexicon) -> Vec<String> {
    let mut flagged_words: Vec<String> = Vec::new();
    let mut in_flagged: Vec<String> = Vec::new();
    for sentence in s.flagged {
        in_flagged.extend(english_words(sentence.english));
        for w in sentence.warnings {
            // A name flag that is only a note (the model was sure) is not passed on.
            if w.check == CheckKind::UnsupportedName && w.is_error() {
                flagged_words.extend(
                    unsupported_words(&w.message)
                        .iter()
                        .map(|w| w.to_lowercase()),
                );
            }
        }
    }
    let count = |words: &[String], w: &str| words.iter().filter(|x| *x == w).count();
    let english = english_words(s.english);
    let mut repeated: Vec<String> = Vec::new();
    for word in name_spans(s.summary, lexicon)
        .into_iter()
        .flat_map(|span| span.words)
    {
        let lower = word.to_lowercase();
        let used_unflagged = count(&english, &lower) > count(&in_flagged, &lower);
        if flagged_words.contains(&lower) && !used_unflagged && !repeated.contains(&word) {
            repeated.push(word);
        }
    }
    repeated
}

/// Words of more than three letters: what two sentences must share to say the same.
fn content_words(text: &str) -> Vec<String> {
    english_words(text)
        .into_iter()
        .filter(|w| w.len() > 3)
        .collect()
}

/// Share of `a`'s words with a close form in `b`.
fn share_in(a: &[String], b: &[String]) -> f64 {
    if a.is_empty() {
        return 0.0;
    }
    let hits = a.iter().filter(|w| b.iter().any(|x| close(w, x))).count();
    hits as f64 / a.len() as f64
}

/// The first `words` words of `text`, with an ellipsis when cut.
fn shorten(text: &str, words: usize) -> String {
    let all: Vec<&str> = text.split_whitespace().collect();
    if all.len() <= words {
        all.join(" ")
    } else {
        format!("{}…", all[..words].join(" "))
    }
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
            flagged: &[],
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

    #[test]
    fn a_summary_carries_the_flags_of_what_it_repeats() {
        let title = "The sixth Asian-Pacific Council meeting agreed on the integration path.";
        let name_flag = [Warning::error(
            CheckKind::UnsupportedName,
            "not in the source: “Asian-Pacific Council” (Pacific, Council)",
        )];
        let lost_flag = [Warning::error(
            CheckKind::LostContent,
            "no English for «التشاوري» (advisory; consultative)",
        )];
        let flagged = [FlaggedSentence {
            english: title,
            warnings: &name_flag,
        }];
        let summary = "The sixth Asian-Pacific Council meeting agreed on the integration path. \
            The presidents met in Astana on August 9, 2024.";
        let english = format!("{title} The presidents met in Astana on August 9, 2024.");
        let subject = |flagged| SummarySubject {
            summary,
            english: &english,
            title,
            arabic_words: 100,
            flagged,
        };
        // Without a lexicon only the repeated sentence is seen (names need one: see
        // tests/lexicon.rs).
        let f = check_summary(&subject(&flagged), None);
        assert_eq!(f.len(), 1, "{f:?}");
        assert_eq!(f[0].warning.check, CheckKind::UnsupportedName);
        assert!(
            f[0].warning
                .message
                .starts_with("summary repeats a flagged sentence"),
            "{f:?}"
        );
        // A sentence flagged for something else still passes its flag on when repeated.
        let flagged = [FlaggedSentence {
            english: title,
            warnings: &lost_flag,
        }];
        let f = check_summary(&subject(&flagged), None);
        assert_eq!(f.len(), 1, "{f:?}");
        assert_eq!(f[0].warning.check, CheckKind::LostContent);
        assert!(f[0].warning.is_error());
        // A repeated note stays a note; an error beside it is what the summary carries.
        let note = [Warning {
            severity: crate::check::Severity::Note,
            ..lost_flag[0].clone()
        }];
        let noted = [FlaggedSentence {
            english: title,
            warnings: &note,
        }];
        let f = check_summary(&subject(&noted), None);
        assert_eq!(f[0].warning.severity, crate::check::Severity::Note);
        let both = [note[0].clone(), name_flag[0].clone()];
        let mixed = [FlaggedSentence {
            english: title,
            warnings: &both,
        }];
        let f = check_summary(&subject(&mixed), None);
        assert_eq!(f[0].warning.check, CheckKind::UnsupportedName);
        assert!(f[0].warning.is_error());
        // Nothing is passed on when the summary does not repeat the flagged sentence.
        let other = [FlaggedSentence {
            english: "The ministers of transport signed three memoranda on railways and ports.",
            warnings: &lost_flag,
        }];
        assert!(check_summary(&subject(&other), None).is_empty());
        assert!(check_summary(&subject(&[]), None).is_empty());
    }
}
