//! Fuzzy matches: the memory's closest earlier segment to a new one, as translation tools
//! show them. Similarity is the CAT tools' measure on words: one minus the word-level edit
//! distance over the longer segment's length, after folding Arabic spelling variants, so
//! a segment that differs in one word of ten is a 90 % match.

use std::cell::Cell;
use std::collections::HashMap;

use super::{Memory, MemoryError};
use crate::glossary::fold_words;

/// The memory's pairs offered to a run as examples, and how many it was shown.
pub struct MemoryExamples {
    index: FuzzyIndex,
    min_similarity: f64,
    shown: Cell<usize>,
}

impl std::fmt::Debug for MemoryExamples {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryExamples")
            .field("pairs", &self.index.len())
            .field("min_similarity", &self.min_similarity)
            .field("shown", &self.shown.get())
            .finish()
    }
}

impl MemoryExamples {
    /// Indexes every pair `memory` offers; matches below `min_percent` are not shown.
    pub fn load(memory: &Memory, min_percent: u32) -> Result<Self, MemoryError> {
        let index = FuzzyIndex::new(memory.example_pairs()?);
        tracing::info!(
            "{} translation memory pairs offered as examples (matches of {min_percent} % or more)",
            index.len()
        );
        Ok(Self {
            index,
            min_similarity: f64::from(min_percent.min(100)) / 100.0,
            shown: Cell::new(0),
        })
    }

    /// The closest match of `source` good enough to show, counted as shown.
    pub fn find(&self, source: &str) -> Option<FuzzyMatch> {
        let found = self.index.best(source, self.min_similarity)?;
        self.shown.set(self.shown.get() + 1);
        Some(found)
    }

    pub fn shown(&self) -> usize {
        self.shown.get()
    }
}

/// A stored pair close to the segment being translated.
#[derive(Debug, Clone, PartialEq)]
pub struct FuzzyMatch {
    pub source: String,
    pub translation: String,
    /// 0.0–1.0; 1.0 when the folded words are the same.
    pub similarity: f64,
}

/// Entries this many or more share a word: the word says nothing about closeness
/// (particles, "said"), so it does not nominate candidates.
const COMMON_WORD_ENTRIES: usize = 2000;

/// Candidates (by shared words) whose exact similarity is computed.
const CANDIDATES: usize = 32;

struct Entry {
    words: Vec<String>,
    source: String,
    translation: String,
}

/// Every pair the memory offers, indexed by word.
pub struct FuzzyIndex {
    entries: Vec<Entry>,
    by_word: HashMap<String, Vec<u32>>,
}

impl FuzzyIndex {
    /// Indexes `pairs` (source, translation); of pairs with the same folded source the
    /// first is kept, so callers list the ones they trust most first.
    pub fn new(pairs: impl IntoIterator<Item = (String, String)>) -> Self {
        let mut index = Self {
            entries: Vec::new(),
            by_word: HashMap::new(),
        };
        let mut seen = std::collections::HashSet::new();
        for (source, translation) in pairs {
            let words = fold_words(&source);
            if words.is_empty() || translation.trim().is_empty() || !seen.insert(words.clone()) {
                continue;
            }
            let id = index.entries.len() as u32;
            let mut distinct: Vec<&String> = words.iter().collect();
            distinct.sort();
            distinct.dedup();
            for word in distinct {
                index.by_word.entry(word.clone()).or_default().push(id);
            }
            index.entries.push(Entry {
                words,
                source,
                translation,
            });
        }
        index
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The most similar entry to `source` at or above `min_similarity`, if any; the
    /// earlier-indexed one on a tie.
    pub fn best(&self, source: &str, min_similarity: f64) -> Option<FuzzyMatch> {
        let words = fold_words(source);
        if words.is_empty() {
            return None;
        }
        let mut shared: HashMap<u32, usize> = HashMap::new();
        let mut distinct: Vec<&String> = words.iter().collect();
        distinct.sort();
        distinct.dedup();
        for word in distinct {
            let Some(ids) = self.by_word.get(word) else {
                continue;
            };
            if ids.len() >= COMMON_WORD_ENTRIES {
                continue;
            }
            for &id in ids {
                *shared.entry(id).or_default() += 1;
            }
        }
        let mut candidates: Vec<(u32, usize)> = shared.into_iter().collect();
        candidates.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        candidates.truncate(CANDIDATES);
        candidates.sort_by_key(|&(id, _)| id);

        let mut best: Option<(f64, u32)> = None;
        for (id, _) in candidates {
            let entry = &self.entries[id as usize];
            let longer = words.len().max(entry.words.len()) as f64;
            // The length difference alone bounds the similarity: skip hopeless ones.
            let bound = 1.0 - words.len().abs_diff(entry.words.len()) as f64 / longer;
            if bound < min_similarity || best.is_some_and(|(s, _)| bound <= s) {
                continue;
            }
            let s = similarity(&words, &entry.words);
            if s >= min_similarity && best.is_none_or(|(b, _)| s > b) {
                best = Some((s, id));
            }
        }
        best.map(|(similarity, id)| {
            let entry = &self.entries[id as usize];
            FuzzyMatch {
                source: entry.source.clone(),
                translation: entry.translation.clone(),
                similarity,
            }
        })
    }
}

/// One minus the word edit distance (insertions, deletions, substitutions) over the
/// longer length.
pub fn similarity(a: &[String], b: &[String]) -> f64 {
    let longer = a.len().max(b.len());
    if longer == 0 {
        return 1.0;
    }
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, wa) in a.iter().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, wb) in b.iter().enumerate() {
            let substitute = diagonal + usize::from(wa != wb);
            diagonal = row[j + 1];
            row[j + 1] = substitute.min(row[j] + 1).min(diagonal + 1);
        }
    }
    1.0 - row[b.len()] as f64 / longer as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(s: &str) -> Vec<String> {
        fold_words(s)
    }

    #[test]
    fn similarity_counts_word_edits() {
        assert_eq!(similarity(&words("أ ب ج د"), &words("أ ب ج د")), 1.0);
        assert_eq!(similarity(&words("أ ب ج د"), &words("أ ب ه د")), 0.75);
        assert_eq!(similarity(&words("أ ب ج د"), &words("أ ب ج")), 0.75);
        assert_eq!(similarity(&words("أ ب"), &words("ج د")), 0.0);
        // Spelling variants fold: hamza on alef, ta marbuta, diacritics.
        assert_eq!(
            similarity(&words("إجتماع القمة"), &words("اجتماع القمه")),
            1.0
        );
    }

    #[test]
    fn best_finds_the_closest_pair_above_the_threshold() {
        let index = FuzzyIndex::new([
            (
                "عقد المجلس الوزاري اجتماعه الأول في الرياض".to_string(),
                "The Ministerial Council held its first meeting in Riyadh".to_string(),
            ),
            (
                "عقد المجلس الوزاري اجتماعه الثاني في الرياض".to_string(),
                "The Ministerial Council held its second meeting in Riyadh".to_string(),
            ),
            (
                "زار الرئيس مدينة دوشنبه".to_string(),
                "The president visited Dushanbe".to_string(),
            ),
        ]);
        assert_eq!(index.len(), 3);
        let hit = index
            .best("عقد المجلس الوزاري اجتماعه الثاني في جدة", 0.5)
            .expect("a close match");
        assert!(hit.translation.contains("second"), "{hit:?}");
        assert!((hit.similarity - 6.0 / 7.0).abs() < 1e-9);
        assert!(index.best("انخفضت أسعار النفط", 0.5).is_none());
        assert!(index.best("زار الرئيس مدينة جدة", 0.8).is_none());
        assert!(index.best("زار الرئيس مدينة جدة", 0.7).is_some());
    }

    #[test]
    fn the_first_of_equal_sources_is_kept() {
        let index = FuzzyIndex::new([
            ("اجتمع المجلس".to_string(), "The council met".to_string()),
            ("اجتمع  المجلس".to_string(), "The board met".to_string()),
        ]);
        assert_eq!(index.len(), 1);
        assert_eq!(
            index.best("اجتمع المجلس", 1.0).map(|m| m.translation),
            Some("The council met".to_string())
        );
    }
}
