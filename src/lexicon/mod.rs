//! Lexicon: what tarjama knows about Arabic words, independently of the model.
//!
//! A morphological analyzer over the Buckwalter (BAMA 1.0) lexicon gives each word its
//! possible lemmas, parts of speech and English glosses; wordfreq's Arabic list says how
//! rare it is. Both are third-party data fetched on first use (see [`data`]); the lexicon
//! is GPL and is only ever read from the cache at run time, never built into tarjama.
//!
//! The translator uses the lexicon to give the model the meanings of rare words
//! ([`Lexicon::hints`]), and the checks use it to tell which English words the source
//! licenses and which source words the English lost.

use std::collections::HashSet;
use std::path::Path;

pub mod analyzer;
pub mod buckwalter;
pub mod data;
pub mod frequency;
pub mod measures;

pub use analyzer::{Analysis, Analyzer, AnalyzerError, Pos};
pub use data::DataError;
pub use frequency::{Frequencies, FrequencyError};

use crate::load::is_arabic_letter;
use crate::registry::FetchPolicy;

#[derive(Debug, thiserror::Error)]
pub enum LexiconError {
    #[error(transparent)]
    Data(#[from] DataError),
    #[error(transparent)]
    Analyzer(#[from] AnalyzerError),
    #[error(transparent)]
    Frequency(#[from] FrequencyError),
}

/// Which words count as rare and unambiguous enough to gloss or to check.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rarity {
    /// Rare below this Zipf frequency: common words the model knows; rare ones it misreads.
    pub max_zipf: f32,
    /// At most this many distinct glosses over all readings.
    pub max_glosses: usize,
    /// Verbs too (their translations are paraphrased far more often than nouns').
    pub verbs: bool,
}

impl Rarity {
    /// Words whose meanings the model is given: below about 30 per million words.
    pub const HINT: Rarity = Rarity {
        max_zipf: 4.5,
        max_glosses: 4,
        verbs: true,
    };
}

/// The analyzer and the frequency list, loaded together.
pub struct Lexicon {
    analyzer: Analyzer,
    frequencies: Frequencies,
    /// Every word of every gloss, lower-cased: the English the lexicon can vouch for.
    gloss_words: HashSet<String>,
}

/// A source word with its meaning, for the model's notes and the checks.
#[derive(Debug, Clone, PartialEq)]
pub struct Gloss {
    /// The word as written in the source.
    pub arabic: String,
    /// Distinct English glosses over all its analyses, most analyses first.
    pub glosses: Vec<String>,
    pub zipf: f32,
}

impl std::fmt::Debug for Lexicon {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lexicon")
            .field("stem_entries", &self.analyzer.stem_entries())
            .field("frequencies", &self.frequencies.len())
            .finish()
    }
}

impl Lexicon {
    /// The cached lexicon, fetched first when missing and `policy` allows.
    pub fn load(policy: FetchPolicy) -> Result<Self, LexiconError> {
        let bama = data::ensure(&data::source("bama"), policy)?;
        let freq = data::ensure(&data::source("wordfreq"), policy)?;
        let dir = bama[0].parent().unwrap_or(Path::new("."));
        Self::load_from(dir, &freq[0])
    }

    /// From a directory of BAMA files and a wordfreq `.msgpack.gz` list.
    pub fn load_from(bama_dir: &Path, frequency_list: &Path) -> Result<Self, LexiconError> {
        let analyzer = Analyzer::load(bama_dir)?;
        let frequencies = Frequencies::load(frequency_list)?;
        let gloss_words = analyzer.gloss_words();
        Ok(Self {
            analyzer,
            frequencies,
            gloss_words,
        })
    }

    pub fn analyzer(&self) -> &Analyzer {
        &self.analyzer
    }

    pub fn analyze(&self, word: &str) -> Vec<Analysis> {
        self.analyzer.analyze(&strip_marks(word))
    }

    /// Zipf frequency of a word as written.
    pub fn zipf(&self, word: &str) -> f32 {
        self.frequencies.zipf(&strip_marks(word))
    }

    /// Every gloss of every reading of `word`, of the words derived from the same
    /// consonants (see [`analyzer::family_key`]), and of a verbal noun's verb: the English
    /// that may render it.
    pub fn related_glosses(&self, word: &str) -> Vec<String> {
        let analyses = self.analyze(word);
        let mut out = distinct_glosses(&analyses);
        for a in &analyses {
            for g in self.analyzer.family_glosses(&a.stem) {
                if !out.contains(g) {
                    out.push(g.clone());
                }
            }
        }
        out
    }

    /// True when `english` (lower-case) occurs in some common-word gloss of the lexicon.
    pub fn knows_english(&self, english: &str) -> bool {
        self.gloss_words.contains(english)
    }

    /// The meaning of a rare, unambiguous content word (noun, adjective or verb in every
    /// reading, few glosses), or `None` for any other word.
    pub fn rare_content_word(&self, word: &str) -> Option<Gloss> {
        self.rare_word(word, &Rarity::HINT)
    }

    /// The meaning of `word` when it is as rare and unambiguous as `rarity` asks.
    pub fn rare_word(&self, word: &str, rarity: &Rarity) -> Option<Gloss> {
        let zipf = self.zipf(word);
        if zipf >= rarity.max_zipf {
            return None;
        }
        let analyses = self.analyze(word);
        let allowed = |pos: Pos| pos.is_content() && (rarity.verbs || pos != Pos::Verb);
        if analyses.is_empty() || !analyses.iter().all(|a| allowed(a.pos)) {
            return None;
        }
        let glosses = distinct_glosses(&analyses);
        if glosses.is_empty() || glosses.len() > rarity.max_glosses {
            return None;
        }
        Some(Gloss {
            arabic: word.to_string(),
            glosses,
            zipf,
        })
    }

    /// True when every reading of `word` is «لـ» (to, for) before a derived measure's
    /// verbal noun without the article: «لإنقاذ» (to save), «لتعزيز» (to strengthen). Such a
    /// word states what something is for.
    pub fn states_purpose(&self, word: &str) -> bool {
        let analyses = self.analyze(word);
        !analyses.is_empty()
            && analyses.iter().all(|a| {
                let prefix = &a.prefix.2;
                a.pos == Pos::Noun
                    && (prefix.contains("li/PREP") || prefix.contains("la/EMPHATIC"))
                    && !prefix.contains("DET")
                    && measures::is_derived_verbal_noun(&a.stem)
            })
    }

    /// Up to `limit` rare content words of `text`, rarest first, each once.
    pub fn hints(&self, text: &str, limit: usize) -> Vec<Gloss> {
        if limit == 0 {
            return Vec::new();
        }
        let mut seen = HashSet::new();
        let mut found: Vec<Gloss> = arabic_words(text)
            .into_iter()
            .filter(|w| seen.insert(*w))
            .filter_map(|w| self.rare_content_word(w))
            .collect();
        found.sort_by(|a, b| a.zipf.total_cmp(&b.zipf));
        found.truncate(limit);
        found
    }
}

/// Glosses of `analyses` without repeats, in order of first appearance.
pub fn distinct_glosses(analyses: &[Analysis]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for g in analyses.iter().flat_map(|a| &a.glosses) {
        if !out.contains(g) {
            out.push(g.clone());
        }
    }
    out
}

/// Diacritics and tatweel removed: the form dictionaries and frequency lists index.
pub fn strip_marks(word: &str) -> String {
    word.chars()
        .filter(|&c| !matches!(c, '\u{064B}'..='\u{0652}' | '\u{0670}' | '\u{0640}'))
        .collect()
}

/// The Arabic words of `text`: maximal runs of Arabic letters and marks.
pub fn arabic_words(text: &str) -> Vec<&str> {
    text.split(|c: char| {
        !(is_arabic_letter(c) || matches!(c, '\u{064B}'..='\u{0652}' | '\u{0670}' | '\u{0640}'))
    })
    .filter(|w| w.chars().any(is_arabic_letter))
    .collect()
}

impl Lexicon {
    /// What `tarjama lookup` prints for the words of `text`.
    pub fn describe(&self, text: &str) -> String {
        use std::fmt::Write;
        let mut out = String::new();
        let words = arabic_words(text);
        if words.is_empty() {
            let _ = writeln!(out, "no Arabic words in «{text}»");
        }
        for word in words {
            let analyses = self.analyze(word);
            let hint = if self.rare_content_word(word).is_some() {
                ", hint"
            } else {
                ""
            };
            let _ = writeln!(
                out,
                "{word}  (zipf {:.2}{hint}): {} analys{}",
                self.zipf(word),
                analyses.len(),
                if analyses.len() == 1 { "is" } else { "es" }
            );
            for a in &analyses {
                let folded = if a.exact { "" } else { " (spelling folded)" };
                let _ = writeln!(out, "  {a}  [lemma {}]{folded}", a.lemma);
            }
        }
        out
    }
}
