//! Lost content word: a rare, unambiguous source word whose meaning is nowhere in the
//! English.
//!
//! «الخلايا النائمة» (sleeper cells) became "the Western bloc": the model dropped words it
//! did not know. Rare words with few glosses are exactly those the model misreads, and
//! their glosses say what the English should contain. A gloss counts as present when any
//! of its words, or a close form ("sleeping" for "sleeper"), is in the English.
//!
//! A term the source puts in quotes («"الخلايا النائمة"») is one the writer wants read
//! exactly, so its words are checked even when they are fairly common
//! ([`LostContent::QUOTED`]). So is a purpose stated with «لـ» and a verbal noun
//! («الصندوق الدولي لإنقاذ بحر الآرال», the fund *for saving* the Aral Sea:
//! [`LostContent::PURPOSE`]).

use std::sync::Arc;

use super::words::{close, english_words};
use super::{Check, CheckKind, Finding, Subject};
use crate::lexicon::{arabic_words, strip_marks, Lexicon, Rarity};

pub struct LostContent {
    lexicon: Arc<Lexicon>,
    rarity: Rarity,
}

impl LostContent {
    /// Rarer and less ambiguous than the words the model is given hints for: docs/quality.md
    /// has the measurements that chose it.
    pub const RARITY: Rarity = Rarity {
        max_zipf: 3.0,
        max_glosses: 2,
        verbs: false,
    };

    /// A purpose stated with «لـ» and a verbal noun («لإنقاذ», to save): as rare as the words
    /// the model gets hints for, with up to three glosses. Dropping one changes what the
    /// sentence says ("the fund for the Aral Sea"); docs/quality.md has what it catches.
    pub const PURPOSE: Rarity = Rarity {
        max_zipf: 4.5,
        max_glosses: 3,
        verbs: false,
    };

    /// The words of a short quoted term: as rare as the words the model gets hints for, and
    /// as unambiguous as the rarest words checked.
    pub const QUOTED: Rarity = Rarity {
        max_zipf: 4.5,
        max_glosses: 2,
        verbs: false,
    };

    pub fn new(lexicon: Arc<Lexicon>) -> Self {
        Self::with_rarity(lexicon, Self::RARITY)
    }

    pub fn with_rarity(lexicon: Arc<Lexicon>, rarity: Rarity) -> Self {
        Self { lexicon, rarity }
    }

    /// The words this check looks at.
    pub fn rarity(&self) -> &Rarity {
        &self.rarity
    }
}

/// Gloss words that carry no meaning of their own ("to be", "make", "something").
const EMPTY_GLOSS_WORDS: &[&str] = &[
    "a",
    "an",
    "the",
    "to",
    "be",
    "of",
    "in",
    "on",
    "at",
    "by",
    "for",
    "with",
    "from",
    "and",
    "or",
    "make",
    "made",
    "become",
    "have",
    "has",
    "do",
    "get",
    "one",
    "someone",
    "something",
    "it",
    "its",
    "oneself",
    "him",
    "her",
    "them",
    "up",
    "out",
    "off",
    "into",
    "s",
    "person",
    "thing",
    "type",
    "kind",
    "etc",
    "very",
    "being",
    "as",
    "not",
    "no",
    "over",
    "about",
];

impl Check for LostContent {
    fn kind(&self) -> CheckKind {
        CheckKind::LostContent
    }

    fn run(&self, s: &Subject) -> Vec<Finding> {
        let english = english_words(s.translation);
        let quoted = quoted_terms(s.source);
        let mut lost: Vec<(String, String)> = Vec::new();
        for word in arabic_words(s.source) {
            let bare = strip_marks(word);
            // Glossary terms have a check of their own.
            if s.terms
                .iter()
                .any(|t| t.arabic.contains(bare.trim_start_matches('و')))
            {
                continue;
            }
            let rarity = if quoted.iter().any(|q| q.contains(&word)) {
                &Self::QUOTED
            } else if self.lexicon.states_purpose(word) {
                &Self::PURPOSE
            } else {
                &self.rarity
            };
            let Some(gloss) = self.lexicon.rare_word(word, rarity) else {
                continue;
            };
            // A derivation's gloss counts too: «إنقاذ» (rescue) rendered as "saving".
            let meaning: Vec<String> = self
                .lexicon
                .related_glosses(word)
                .iter()
                .flat_map(|g| english_words(g))
                .filter(|w| w.len() > 2 && !EMPTY_GLOSS_WORDS.contains(&w.as_str()))
                .collect();
            if meaning.is_empty() {
                continue;
            }
            let present = meaning.iter().any(|m| english.iter().any(|e| close(m, e)));
            if !present && !lost.iter().any(|(w, _)| *w == bare) {
                lost.push((bare, gloss.glosses.join("; ")));
            }
        }
        if lost.is_empty() {
            return Vec::new();
        }
        let listed: Vec<String> = lost.iter().map(|(w, g)| format!("«{w}» ({g})")).collect();
        let meanings: Vec<String> = lost
            .iter()
            .map(|(w, g)| format!("«{w}» means “{g}”"))
            .collect();
        vec![Finding::new(
            CheckKind::LostContent,
            format!("no English for {}", listed.join(", ")),
            format!(
                "The last attempt left out words of the text: {}. Translate every word.",
                meanings.join("; ")
            ),
        )]
    }
}

/// Longest quoted term whose words are checked: longer quotations are speech, not terms.
const QUOTED_TERM_WORDS: usize = 4;

/// The Arabic words of each short quoted term of `source` (between “ ”, « » or " ").
fn quoted_terms(source: &str) -> Vec<Vec<&str>> {
    let mut terms = Vec::new();
    for (open, close) in [('“', '”'), ('«', '»'), ('"', '"')] {
        let mut rest = source;
        while let Some(start) = rest.find(open) {
            let after = &rest[start + open.len_utf8()..];
            let Some(end) = after.find(close) else {
                break;
            };
            let words = arabic_words(&after[..end]);
            if !words.is_empty() && words.len() <= QUOTED_TERM_WORDS {
                terms.push(words);
            }
            rest = &after[end + close.len_utf8()..];
        }
    }
    terms
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_quoted_terms_are_found() {
        let source = "ووجود ما يسمى بـ “الخلايا النائمة” و\"خارطة الطريق\" و«قال الرئيس إن الاجتماع كان مثمرا جدا»";
        let terms = quoted_terms(source);
        assert_eq!(
            terms,
            vec![vec!["الخلايا", "النائمة"], vec!["خارطة", "الطريق"]]
        );
        assert!(quoted_terms("لا اقتباس هنا").is_empty());
    }
}
