//! Glossary: a glossary term in the source not rendered as the glossary says.
//!
//! A miss is an error when the English may have lost or changed the term ("Asian-Pacific"
//! for «آسيا الوسطى»), and a note when only a form is missing: an honorific left out, or
//! every word of a rendering present in another form ("Jeenbek Kulubayev",
//! "Council of Ministers" for "Ministerial Council"). Either way the retry is made to
//! contain the preferred rendering.

use super::words::{close, english_words};
use super::{Check, CheckKind, Finding, Severity, Subject};
use crate::glossary::Term;

pub struct Glossary;

impl Check for Glossary {
    fn kind(&self) -> CheckKind {
        CheckKind::Glossary
    }

    fn run(&self, s: &Subject) -> Vec<Finding> {
        s.terms
            .iter()
            .filter(|term| !term.is_rendered_in(s.translation))
            .map(|term| {
                let severity = if term.form_only || rendered_in_another_form(term, s.translation) {
                    Severity::Note
                } else {
                    Severity::Error
                };
                Finding::new(
                    CheckKind::Glossary,
                    format!(
                        "«{}» should be rendered as “{}”",
                        term.arabic,
                        term.preferred()
                    ),
                    "Use the English renderings listed above exactly as written.".into(),
                )
                .with_severity(severity)
                .requiring(term.preferred())
            })
            .collect()
    }
}

/// Some rendering of `term` has every word of four letters or more in `translation` in
/// a close form (short words such as "of" and "the" may be reordered or dropped).
fn rendered_in_another_form(term: &Term, translation: &str) -> bool {
    let words = english_words(translation);
    term.english.iter().any(|rendering| {
        let wanted: Vec<String> = english_words(rendering)
            .into_iter()
            .filter(|w| w.chars().count() >= 4)
            .collect();
        !wanted.is_empty()
            && wanted
                .iter()
                .all(|w| words.iter().any(|have| close(w, have)))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::glossary::Glossary as Terms;

    fn severities(translation: &str, source: &str) -> Vec<Severity> {
        let glossary = Terms::default_glossary();
        let terms = glossary.find(source);
        Glossary
            .run(&Subject {
                source,
                translation,
                hit_cap: false,
                terms: &terms,
            })
            .into_iter()
            .map(|f| f.warning.severity)
            .collect()
    }

    #[test]
    fn a_lost_term_is_an_error_and_a_missing_form_a_note() {
        let source = "أكد معالي الأمين العام على أهمية العلاقات مع آسيا الوسطى";
        assert_eq!(
            severities(
                "The Secretary-General stressed the importance of relations with Central Asia.",
                source
            ),
            [Severity::Note]
        );
        assert_eq!(
            severities(
                "His Excellency the Secretary-General stressed relations with the Asian-Pacific region.",
                source
            ),
            [Severity::Error]
        );
        assert!(severities(
            "His Excellency the Secretary-General stressed relations with Central Asia.",
            source
        )
        .is_empty());
    }

    #[test]
    fn a_name_spelled_another_way_is_a_note() {
        assert_eq!(
            severities(
                "Jeenbek Kulubayev met the delegation.",
                "استقبل جينبيك كولوبييف الوفد"
            ),
            [Severity::Note]
        );
        assert_eq!(
            severities(
                "The minister met the delegation.",
                "استقبل جينبيك كولوبييف الوفد"
            ),
            [Severity::Error]
        );
    }

    #[test]
    fn a_miss_asks_the_retry_for_the_preferred_rendering() {
        let glossary = Terms::default_glossary();
        let source = "زار الوفد آسيا الوسطى";
        let terms = glossary.find(source);
        let findings = Glossary.run(&Subject {
            source,
            translation: "The delegation visited Asia.",
            hit_cap: false,
            terms: &terms,
        });
        assert_eq!(findings.len(), 1);
        assert_eq!(findings[0].required.as_deref(), Some("Central Asia"));
    }
}
