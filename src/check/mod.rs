//! Check: reference-free tests of a translated segment against its source.
//!
//! A small LLM changes numbers, leaves words in Arabic script, loops, drops or invents
//! text, and names people, bodies and places the source never mentions. None of that
//! needs a reference to notice: each check here compares the English with its Arabic
//! source, and a failed check becomes a [`Warning`] that every output shows the reader.
//!
//! One check per file, each a [`Check`]: its name, how it runs on a segment, and what the
//! model is told when the segment is retried. A new check is a new file and one line in
//! [`Checker::new`].

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::glossary::Term;
use crate::lexicon::Lexicon;

mod confidence;
mod glossary;
mod length;
mod lost;
mod names;
mod numbers;
mod repetition;
mod script;
mod summary;
mod truncated;
mod words;

pub use confidence::{low_confidence, weigh, Signals, LOW as LOW_CONFIDENCE, RERANK_BELOW};
pub use lost::LostContent;
pub use names::{name_spans, UnsupportedNames};
pub use numbers::{added_numbers, backwards_compound_numbers, missing_numbers, numbers};
pub use repetition::repeated_phrase;
pub use script::has_arabic_script;
pub use summary::{check_summary, FlaggedSentence, SummarySubject, LONG_DOCUMENT_WORDS};
pub use words::{close, english_words};

/// What a warning is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CheckKind {
    /// A number in the source is missing from the English, or one was added.
    Numbers,
    /// Arabic script left in the English.
    Untranslated,
    /// The output repeats the source instead of translating it.
    Echo,
    /// The same words over and over.
    Repetition,
    /// Generation stopped at the token cap: the end may be missing.
    Truncated,
    /// Far shorter or longer than translations of this length normally are.
    Length,
    /// A glossary term was not rendered as the glossary says.
    Glossary,
    /// A name, title, organization, acronym, weekday, month or decade in the English that
    /// nothing in the source licenses.
    UnsupportedName,
    /// A rare, unambiguous source word whose meaning is nowhere in the English.
    LostContent,
    /// The model itself gave its English a very low probability.
    LowConfidence,
}

impl CheckKind {
    pub const ALL: [CheckKind; 10] = [
        CheckKind::Numbers,
        CheckKind::Untranslated,
        CheckKind::Echo,
        CheckKind::Repetition,
        CheckKind::Truncated,
        CheckKind::Length,
        CheckKind::Glossary,
        CheckKind::UnsupportedName,
        CheckKind::LostContent,
        CheckKind::LowConfidence,
    ];

    /// The name of a check as the JSON record spells it.
    pub fn name(self) -> &'static str {
        match self {
            CheckKind::Numbers => "numbers",
            CheckKind::Untranslated => "untranslated",
            CheckKind::Echo => "echo",
            CheckKind::Repetition => "repetition",
            CheckKind::Truncated => "truncated",
            CheckKind::Length => "length",
            CheckKind::Glossary => "glossary",
            CheckKind::UnsupportedName => "unsupported_name",
            CheckKind::LostContent => "lost_content",
            CheckKind::LowConfidence => "low_confidence",
        }
    }
}

/// How much a warning matters to a reader.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default, Serialize, Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// The meaning may be wrong: a number, a name, lost content, very low confidence.
    #[default]
    Error,
    /// The meaning stands but a form is missing: an honorific, a glossary's preferred
    /// spelling of a term the English otherwise gets right.
    Note,
}

impl Severity {
    pub fn name(self) -> &'static str {
        match self {
            Severity::Error => "error",
            Severity::Note => "note",
        }
    }
}

/// A reason to doubt one translated segment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Warning {
    pub check: CheckKind,
    pub message: String,
    /// Records written before severities existed read as errors.
    #[serde(default)]
    pub severity: Severity,
}

impl Warning {
    /// An error-severity warning.
    pub fn error(check: CheckKind, message: impl Into<String>) -> Self {
        Self {
            check,
            message: message.into(),
            severity: Severity::Error,
        }
    }

    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
}

/// What a check found: the warning a reader sees, and what the model is told on a retry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub warning: Warning,
    pub retry_hint: String,
    /// Shown to the reader when it survives the retry; a retry trigger only otherwise.
    pub flags: bool,
    /// An English phrase the retry is made to contain (lexically constrained decoding).
    pub required: Option<String>,
}

impl Finding {
    pub fn new(check: CheckKind, message: String, retry_hint: String) -> Self {
        Self {
            warning: Warning::error(check, message),
            retry_hint,
            flags: true,
            required: None,
        }
    }

    /// The same finding at `severity`.
    pub fn with_severity(mut self, severity: Severity) -> Self {
        self.warning.severity = severity;
        self
    }

    /// The same finding, with `phrase` forced into the retry.
    pub fn requiring(mut self, phrase: impl Into<String>) -> Self {
        self.required = Some(phrase.into());
        self
    }
}

/// One translated segment and what it is checked against.
#[derive(Clone, Copy)]
pub struct Subject<'a> {
    pub source: &'a str,
    pub translation: &'a str,
    /// The backend stopped at its output cap.
    pub hit_cap: bool,
    /// Glossary terms found in the source.
    pub terms: &'a [&'a Term],
}

/// One reference-free check.
pub trait Check: Send + Sync {
    /// The kind its warnings carry (a check may also report a related kind).
    fn kind(&self) -> CheckKind;
    /// Everything wrong with `subject` from this check's point of view.
    fn run(&self, subject: &Subject) -> Vec<Finding>;
}

/// The checks of a run, in the order their warnings are listed.
#[derive(Clone)]
pub struct Checker {
    checks: Vec<Arc<dyn Check>>,
}

impl std::fmt::Debug for Checker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.kinds().iter().map(|k| k.name()))
            .finish()
    }
}

impl Default for Checker {
    /// The checks that need nothing but the texts.
    fn default() -> Self {
        Self::new(None)
    }
}

impl Checker {
    /// Every check; those that need the lexicon only when one is given.
    pub fn new(lexicon: Option<Arc<Lexicon>>) -> Self {
        let mut checks: Vec<Arc<dyn Check>> = vec![
            Arc::new(script::Script),
            Arc::new(numbers::Numbers),
            Arc::new(truncated::Truncated),
            Arc::new(repetition::Repetition),
            Arc::new(length::Length),
            Arc::new(glossary::Glossary),
        ];
        if let Some(lexicon) = lexicon {
            checks.push(Arc::new(UnsupportedNames::new(lexicon.clone())));
            checks.push(Arc::new(LostContent::new(lexicon)));
        }
        Self { checks }
    }

    /// Runs every check on one segment.
    pub fn run(&self, subject: &Subject) -> Vec<Finding> {
        self.checks.iter().flat_map(|c| c.run(subject)).collect()
    }

    /// The kinds of check this checker runs.
    pub fn kinds(&self) -> Vec<CheckKind> {
        self.checks.iter().map(|c| c.kind()).collect()
    }
}

/// Runs the lexicon-free checks on one translated segment: the warnings a reader sees.
pub fn check_segment(
    source: &str,
    translation: &str,
    hit_cap: bool,
    terms: &[&Term],
) -> Vec<Warning> {
    Checker::default()
        .run(&Subject {
            source,
            translation,
            hit_cap,
            terms,
        })
        .into_iter()
        .map(|f| f.warning)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::glossary::Glossary;

    fn kinds(w: &[Warning]) -> Vec<CheckKind> {
        w.iter().map(|w| w.check).collect()
    }

    #[test]
    fn check_names_match_the_json_record() {
        for check in CheckKind::ALL {
            assert_eq!(
                serde_json::to_value(check).unwrap(),
                serde_json::Value::from(check.name())
            );
        }
    }

    #[test]
    fn a_faithful_translation_passes() {
        let g = Glossary::default_glossary();
        let src = "عقد مجلس التعاون اجتماعه في الرياض يوم 12 أكتوبر 2021م.";
        let w = check_segment(
            src,
            "The GCC held its meeting in Riyadh on October 12, 2021.",
            false,
            &g.find(src),
        );
        assert!(w.is_empty(), "{w:?}");
    }

    #[test]
    fn each_failure_is_named() {
        let src = "عقد المجلس اجتماعه في الرياض يوم 12 أكتوبر 2021م.";
        let w = check_segment(
            src,
            "The council met in Riyadh on October 13, 2021.",
            false,
            &[],
        );
        assert_eq!(kinds(&w), vec![CheckKind::Numbers, CheckKind::Numbers]);
        assert!(w[0].message.contains("12") && w[1].message.contains("13"));

        let w = check_segment(
            src,
            "The council met in الرياض on October 12, 2021.",
            false,
            &[],
        );
        assert_eq!(kinds(&w), vec![CheckKind::Untranslated]);
        let w = check_segment(src, src, false, &[]);
        assert_eq!(kinds(&w), vec![CheckKind::Echo]);
        let w = check_segment(
            src,
            "The council met on 12 October 2021 and and and and.",
            true,
            &[],
        );
        assert_eq!(kinds(&w), vec![CheckKind::Truncated, CheckKind::Repetition]);
        let w = check_segment(src, "Met 12 2021.", false, &[]);
        assert_eq!(kinds(&w), vec![CheckKind::Length]);
    }

    #[test]
    fn spelled_out_numbers_may_become_digits() {
        let src = "الدورة الثالثة والعشرين لمنتدى الدوحة";
        assert!(added_numbers(src, "the 23rd Doha Forum").is_empty());
        assert_eq!(
            added_numbers("منتدى الدوحة", "the 23rd Doha Forum"),
            vec!["23"]
        );
        // "ست" inside a longer word is not the number six.
        assert_eq!(
            added_numbers("حوار استراتيجي", "6 strategic dialogues"),
            vec!["6"]
        );
    }

    #[test]
    fn loops_are_found_but_ordinary_english_is_not() {
        assert_eq!(
            repeated_phrase("the council the council the council met"),
            Some("the council".into())
        );
        assert!(repeated_phrase("very very good, and the council met the council").is_none());
        assert!(repeated_phrase(
            "Minister of Foreign Affairs of Kazakhstan, Minister of Foreign Affairs of Kyrgyzstan, \
             Minister of Foreign Affairs of Turkmenistan and Minister of Foreign Affairs of Uzbekistan"
        )
        .is_none());
        let english =
            "the two sides discussed regional issues and the two sides discussed regional issues";
        assert!(
            repeated_phrase(english).is_none(),
            "one repeat after a conjunction is English"
        );
        let looped =
            "the two sides discussed regional issues the two sides discussed regional issues";
        assert_eq!(
            repeated_phrase(looped),
            Some("the two sides discussed regional issues".into())
        );
    }

    #[test]
    fn glossary_terms_must_be_rendered() {
        let g = Glossary::default_glossary();
        let src = "في مدينة نور سلطان عاصمة جمهورية كازاخستان";
        let w = check_segment(
            src,
            "in the city of Nuri Sultan, capital of Kazakhstan",
            false,
            &g.find(src),
        );
        assert_eq!(kinds(&w), vec![CheckKind::Glossary]);
        assert!(w[0].message.contains("Nur-Sultan"));
    }

    #[test]
    fn numbers_in_every_script_compare_equal() {
        assert_eq!(numbers("في ١٢ أكتوبر ٢٠٢١م"), vec!["12", "2021"]);
        assert_eq!(numbers("on October 12, 2021"), vec!["12", "2021"]);
        assert_eq!(
            numbers("۱۴۰۲ and 1,117,320,768 bytes"),
            vec!["1402", "1117320768"]
        );
        assert_eq!(numbers("3.5% and 2022-2024."), vec!["35", "2022", "2024"]);
    }

    #[test]
    fn missing_numbers_respect_multiplicity() {
        assert!(missing_numbers("عام 2022م", "in 2022").is_empty());
        assert_eq!(
            missing_numbers("من 14 إلى 15 سبتمبر", "on 14 September"),
            vec!["15"]
        );
        assert_eq!(missing_numbers("5 و 5", "5"), vec!["5"]);
    }
}
