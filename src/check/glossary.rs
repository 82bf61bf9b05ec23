//! Glossary: a glossary term in the source not rendered as the glossary says.

use super::{Check, CheckKind, Finding, Subject};

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
                Finding::new(
                    CheckKind::Glossary,
                    format!(
                        "«{}» should be rendered as “{}”",
                        term.arabic,
                        term.preferred()
                    ),
                    "Use the English renderings listed above exactly as written.".into(),
                )
            })
            .collect()
    }
}
