//! Script: Arabic left in the English, or an answer that is mostly the Arabic again.

use super::{Check, CheckKind, Finding, Subject};
use crate::load::is_arabic_letter;

/// One check for two failures, because an echo always also leaves Arabic script behind
/// and only the worse of the two is worth a warning.
pub struct Script;

const HINT: &str = "Write only in English: spell names in Latin letters, never in Arabic script.";

impl Check for Script {
    fn kind(&self) -> CheckKind {
        CheckKind::Untranslated
    }

    fn run(&self, s: &Subject) -> Vec<Finding> {
        if arabic_letter_share(s.translation) > 0.5 {
            return vec![Finding::new(
                CheckKind::Echo,
                "the output is mostly Arabic: the source was repeated, not translated".into(),
                HINT.into(),
            )];
        }
        s.translation
            .split_whitespace()
            .find(|w| has_arabic_script(w))
            .map(|word| {
                Finding::new(
                    CheckKind::Untranslated,
                    format!("Arabic script left in the English: «{word}»"),
                    HINT.into(),
                )
            })
            .into_iter()
            .collect()
    }
}

/// The share of letters in `text` that are Arabic.
pub fn arabic_letter_share(text: &str) -> f64 {
    let letters = text.chars().filter(|c| c.is_alphabetic()).count();
    if letters == 0 {
        return 0.0;
    }
    text.chars().filter(|&c| is_arabic_letter(c)).count() as f64 / letters as f64
}

/// True when Arabic letters were left in the English.
pub fn has_arabic_script(text: &str) -> bool {
    text.chars().any(is_arabic_letter)
}
