//! Glossary: fixed English renderings for Arabic names and terms.
//!
//! Terms found in a segment are given to the model with the segment, and the translation
//! is checked for them afterwards. Arabic attaches conjunctions, prepositions and the
//! article to the next word and spells some letters several ways, so matching works on
//! folded words with those prefixes stripped.

use std::path::Path;

/// The glossary shipped with tarjama, for the GCC and Central Asian press releases of the
/// samples.
pub const DEFAULT_TSV: &str = include_str!("../glossary/default.tsv");

#[derive(Debug, thiserror::Error)]
pub enum GlossaryError {
    #[error("{path}: cannot read the glossary ({source}); check the path given to --glossary")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}:{line}: expected `Arabic term<TAB>English rendering[<TAB>form]`; fix or comment out the line with #")]
    Malformed { path: String, line: usize },
}

/// One glossary entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Term {
    pub arabic: String,
    /// Accepted English renderings; the first is the one asked for.
    pub english: Vec<String>,
    /// Leaving the term out loses a form, not the meaning (an honorific such as
    /// «معالي»): the third column of the glossary says `form`.
    pub form_only: bool,
    /// The Arabic folded and split into words, for matching.
    words: Vec<String>,
}

impl Term {
    pub fn preferred(&self) -> &str {
        &self.english[0]
    }

    /// True when any accepted rendering appears in `translation` (case-insensitive,
    /// on word boundaries).
    pub fn is_rendered_in(&self, translation: &str) -> bool {
        let haystack = loose(translation);
        self.english
            .iter()
            .any(|e| contains_phrase(&haystack, &loose(e)))
    }
}

/// Case and hyphenation do not make a rendering wrong: "Nur Sultan" is "Nur-Sultan".
fn loose(text: &str) -> String {
    text.to_lowercase().replace(['-', '‐', '–'], " ")
}

fn contains_phrase(haystack: &str, needle: &str) -> bool {
    let is_word = |c: Option<char>| c.is_some_and(|c| c.is_alphanumeric());
    haystack.match_indices(needle).any(|(i, m)| {
        let before = haystack[..i].chars().next_back();
        let after = haystack[i + m.len()..].chars().next();
        !is_word(before) && !is_word(after)
    })
}

#[derive(Debug, Clone, Default)]
pub struct Glossary {
    terms: Vec<Term>,
}

impl Glossary {
    pub fn default_glossary() -> Self {
        Self::parse("glossary/default.tsv", DEFAULT_TSV)
            .expect("the shipped glossary is checked by a unit test")
    }

    pub fn from_file(path: &Path) -> Result<Self, GlossaryError> {
        let display = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| GlossaryError::Read {
            path: display.clone(),
            source,
        })?;
        Self::parse(&display, &text)
    }

    pub fn parse(path: &str, text: &str) -> Result<Self, GlossaryError> {
        let mut terms = Vec::new();
        for (i, line) in text.lines().enumerate() {
            let line = line.trim_end_matches('\r');
            if line.trim().is_empty() || line.trim_start().starts_with('#') {
                continue;
            }
            let malformed = || GlossaryError::Malformed {
                path: path.to_string(),
                line: i + 1,
            };
            let (arabic, rest) = line.split_once('\t').ok_or_else(malformed)?;
            let (english, kind) = rest.split_once('\t').unwrap_or((rest, ""));
            let form_only = match kind.trim() {
                "" => false,
                "form" => true,
                _ => return Err(malformed()),
            };
            let english: Vec<String> = english
                .split('|')
                .map(|e| e.trim().to_string())
                .filter(|e| !e.is_empty())
                .collect();
            let words = fold_words(arabic);
            if words.is_empty() || english.is_empty() {
                return Err(malformed());
            }
            terms.push(Term {
                arabic: arabic.trim().to_string(),
                english,
                form_only,
                words,
            });
        }
        Ok(Self { terms })
    }

    pub fn len(&self) -> usize {
        self.terms.len()
    }

    pub fn is_empty(&self) -> bool {
        self.terms.is_empty()
    }

    /// A stable fingerprint of the entries, for deciding whether outputs are stale.
    pub fn fingerprint(&self) -> String {
        use sha2::{Digest, Sha256};
        let mut h = Sha256::new();
        for t in &self.terms {
            h.update(t.arabic.as_bytes());
            h.update([0]);
            h.update(t.english.join("|").as_bytes());
            h.update([1]);
        }
        hex::encode(h.finalize())
    }

    /// Terms that occur in `arabic`, longest match first at each position, each once.
    pub fn find(&self, arabic: &str) -> Vec<&Term> {
        let words = fold_words(arabic);
        let mut found: Vec<&Term> = Vec::new();
        let mut i = 0;
        while i < words.len() {
            let best = self
                .terms
                .iter()
                .filter(|t| matches_at(&words, i, &t.words))
                .max_by_key(|t| t.words.len());
            match best {
                Some(t) => {
                    if !found.iter().any(|f| f.arabic == t.arabic) {
                        found.push(t);
                    }
                    i += t.words.len();
                }
                None => i += 1,
            }
        }
        found
    }
}

/// The term's first word may carry prefixes in the text; later words must agree up to
/// the article (`دول الخليج` vs `لدول الخليج` differ only in the first word).
fn matches_at(text: &[String], at: usize, term: &[String]) -> bool {
    if at + term.len() > text.len() {
        return false;
    }
    term.iter().enumerate().all(|(k, t)| {
        let w = &text[at + k];
        if k == 0 {
            stems(w).iter().any(|s| *s == strip_article(t))
        } else {
            w == t
                || strip_article(w) == strip_article(t)
                || stems(w).iter().any(|s| *s == strip_article(t))
        }
    })
}

fn strip_article(word: &str) -> &str {
    word.strip_prefix("ال")
        .filter(|rest| rest.chars().count() >= 2)
        .unwrap_or(word)
}

/// The word with every plausible combination of proclitics removed: an optional
/// conjunction (و، ف), an optional preposition (ب، ل، ك), then an optional article; ل
/// before the article is written لل.
fn stems(word: &str) -> Vec<&str> {
    let mut out = vec![word, strip_article(word)];
    let min_len = 2;
    let long_enough = |s: &str| s.chars().count() >= min_len;
    for conj in ["", "و", "ف"] {
        let Some(a) = word.strip_prefix(conj) else {
            continue;
        };
        for prep in ["", "ب", "ل", "ك"] {
            let Some(b) = a.strip_prefix(prep) else {
                continue;
            };
            if long_enough(b) {
                out.push(b);
                out.push(strip_article(b));
            }
        }
        if let Some(c) = a.strip_prefix("لل").filter(|c| long_enough(c)) {
            out.push(c);
        }
    }
    out
}

/// Folds spelling variants and splits into words: hamza forms of alef to ا, ta marbuta
/// to ه, alef maqsura to ي; diacritics and tatweel dropped; punctuation separates words.
pub fn fold_words(text: &str) -> Vec<String> {
    let folded: String = text
        .chars()
        .filter_map(|c| match c {
            'أ' | 'إ' | 'آ' | 'ٱ' => Some('ا'),
            'ة' => Some('ه'),
            'ى' => Some('ي'),
            '\u{064B}'..='\u{0652}' | '\u{0670}' | '\u{0640}' => None,
            c if c.is_alphanumeric() => Some(c),
            _ => Some(' '),
        })
        .collect();
    folded.split_whitespace().map(str::to_string).collect()
}

/// The instruction given to the model with a segment that contains glossary terms.
pub fn prompt_hint(terms: &[&Term]) -> Option<String> {
    if terms.is_empty() {
        return None;
    }
    let lines: Vec<String> = terms
        .iter()
        .map(|t| format!("{} = {}", t.arabic, t.preferred()))
        .collect();
    Some(format!(
        "Use these English renderings:\n{}",
        lines.join("\n")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn glossary() -> Glossary {
        Glossary::default_glossary()
    }

    fn found(text: &str) -> Vec<String> {
        glossary()
            .find(text)
            .into_iter()
            .map(|t| t.preferred().to_string())
            .collect()
    }

    #[test]
    fn the_shipped_glossary_parses() {
        let g = glossary();
        assert!(g.len() > 60);
        assert_eq!(g.fingerprint().len(), 64);
    }

    #[test]
    fn prefixes_and_the_article_are_tolerated() {
        assert_eq!(
            found("الأمين العام لمجلس التعاون"),
            vec!["Secretary-General", "GCC"]
        );
        assert_eq!(found("ومجلس التعاون"), vec!["GCC"]);
        assert_eq!(found("وبالرياض"), vec!["Riyadh"]);
        assert_eq!(found("للأمين العام"), vec!["Secretary-General"]);
        assert_eq!(found("وجمهوريات آسيا الوسطى"), vec!["Central Asia"]);
    }

    #[test]
    fn spelling_variants_are_tolerated() {
        // ا for أ, ه for ة, ي for ى
        assert_eq!(found("الامين العام"), vec!["Secretary-General"]);
        assert_eq!(found("اسيا الوسطي"), vec!["Central Asia"]);
        assert_eq!(
            found("مجلس التعاون لدول الخليج العربيه"),
            vec!["Cooperation Council for the Arab States of the Gulf"]
        );
    }

    #[test]
    fn the_longest_term_wins_and_words_are_not_matched_inside_others() {
        let f = found("أكد معالي الدكتور نايف فلاح مبارك الحجرف، الأمين العام لمجلس التعاون لدول الخليج العربية");
        assert_eq!(
            f,
            vec![
                "His Excellency",
                "Nayef Falah Mubarak Al-Hajraf",
                "Secretary-General",
                "Cooperation Council for the Arab States of the Gulf"
            ]
        );
        // قطر inside قطرات (drops) is not Qatar.
        assert!(found("قطرات المطر").is_empty());
    }

    #[test]
    fn renderings_are_checked_on_word_boundaries() {
        let g = glossary();
        let terms = g.find("في نور سلطان");
        assert_eq!(terms.len(), 1);
        assert!(terms[0].is_rendered_in("held in Astana, the capital"));
        assert!(terms[0].is_rendered_in("in Nur-Sultan."));
        assert!(terms[0].is_rendered_in("in Nur Sultan, the capital"));
        assert!(!terms[0].is_rendered_in("in Nursultanabad"));
        let uae = g.find("الإمارات العربية المتحدة");
        assert!(uae[0].is_rendered_in("the UAE said"));
        assert!(!uae[0].is_rendered_in("the QUAEstor said"));
    }

    #[test]
    fn malformed_lines_are_reported_with_their_number() {
        let e = Glossary::parse("g.tsv", "# ok\nالرياض\tRiyadh\nno tab here\n").unwrap_err();
        assert_eq!(
            e.to_string(),
            "g.tsv:3: expected `Arabic term<TAB>English rendering[<TAB>form]`; fix or comment out the line with #"
        );
        let e = Glossary::from_file(Path::new("/nonexistent/g.tsv")).unwrap_err();
        assert!(e.to_string().starts_with("/nonexistent/g.tsv: cannot read"));
    }

    #[test]
    fn hint_lists_preferred_renderings() {
        let g = glossary();
        let hint = prompt_hint(&g.find("في الرياض")).unwrap();
        assert!(hint.contains("الرياض = Riyadh"), "{hint}");
        assert!(prompt_hint(&[]).is_none());
    }
}
