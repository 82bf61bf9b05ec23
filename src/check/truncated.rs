//! Truncated: generation stopped at the token cap, so the end may be missing.

use super::{Check, CheckKind, Finding, Subject};

pub struct Truncated;

impl Check for Truncated {
    fn kind(&self) -> CheckKind {
        CheckKind::Truncated
    }

    fn run(&self, s: &Subject) -> Vec<Finding> {
        if !s.hit_cap {
            return Vec::new();
        }
        vec![Finding::new(
            CheckKind::Truncated,
            "generation hit the token cap; the end may be missing".into(),
            "Translate the text once, without repeating anything.".into(),
        )]
    }
}
