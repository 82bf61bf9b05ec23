//! Repetition: the signature of a decoding loop.

use super::{Check, CheckKind, Finding, Subject};

pub struct Repetition;

impl Check for Repetition {
    fn kind(&self) -> CheckKind {
        CheckKind::Repetition
    }

    fn run(&self, s: &Subject) -> Vec<Finding> {
        repeated_phrase(s.translation)
            .map(|phrase| {
                Finding::new(
                    CheckKind::Repetition,
                    format!("repeats «{phrase}»"),
                    "Translate the text once, without repeating anything.".into(),
                )
            })
            .into_iter()
            .collect()
    }
}

/// The signature of a decoding loop: a short phrase (1–4 words) three times back to back,
/// a longer one (5–20 words) twice back to back, or an 8-word run three times anywhere.
/// Press releases legitimately repeat "Minister of Foreign Affairs of …" down a list, so
/// shorter phrases scattered through the text do not count.
pub fn repeated_phrase(text: &str) -> Option<String> {
    let words: Vec<String> = text
        .split_whitespace()
        .map(|w| {
            w.trim_matches(|c: char| !c.is_alphanumeric())
                .to_lowercase()
        })
        .filter(|w| !w.is_empty())
        .collect();
    let back_to_back = |n: usize, times: usize| {
        (0..words.len().saturating_sub(n * times - 1)).find_map(|start| {
            let phrase = &words[start..start + n];
            (1..times)
                .all(|k| words.get(start + k * n..start + (k + 1) * n) == Some(phrase))
                .then(|| phrase.join(" "))
        })
    };
    if let Some(p) = (1..=4).find_map(|n| back_to_back(n, 3)) {
        return Some(p);
    }
    if let Some(p) = (5..=20).find_map(|n| back_to_back(n, 2)) {
        return Some(p);
    }
    let mut counts = std::collections::HashMap::new();
    for window in words.windows(8) {
        let c = counts.entry(window).or_insert(0);
        *c += 1;
        if *c >= 3 {
            return Some(window.join(" "));
        }
    }
    None
}
