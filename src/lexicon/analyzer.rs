//! A Buckwalter-style morphological analyzer over the BAMA 1.0 lexicon.
//!
//! An Arabic word is prefix + stem + suffix, each possibly empty but the stem. Every way
//! of cutting the word whose three pieces are all in the dictionaries is a candidate, and
//! a candidate is an analysis when the compatibility tables allow its prefix category with
//! its stem category (table AB), its prefix with its suffix (AC) and its stem with its
//! suffix (BC). Lookups ignore vocalization and fold the spelling variants writers mix
//! (see [`buckwalter::fold`]); analyses that match the word as written are preferred.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::path::Path;

use super::buckwalter::{self, lookup_key, to_buckwalter};
use super::measures;

/// Longest prefix and suffix in the dictionaries, in letters.
const MAX_PREFIX: usize = 4;
const MAX_SUFFIX: usize = 6;

#[derive(Debug, thiserror::Error)]
pub enum AnalyzerError {
    #[error("{path}: cannot read the lexicon file ({source}); delete it to fetch it again, or use --no-lexicon")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}:{line}: malformed lexicon entry; delete the file to fetch it again, or use --no-lexicon")]
    Malformed { path: String, line: usize },
    #[error("{path}: no entries; the file is truncated or not a BAMA lexicon file, delete it to fetch it again, or use --no-lexicon")]
    Empty { path: String },
}

/// Part of speech of a stem, coarse enough to decide how a word may be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Pos {
    Noun,
    ProperNoun,
    Adjective,
    Verb,
    /// Pronouns, prepositions, particles, conjunctions, numbers written as words.
    Function,
}

impl Pos {
    /// From the tag in `<pos>…/TAG</pos>`, or from the stem's category when there is none
    /// (the lexicon tags only the ambiguous entries).
    fn classify(tag: Option<&str>, category: &str, gloss: &str) -> Pos {
        if let Some(tag) = tag {
            return match tag {
                "NOUN_PROP" => Pos::ProperNoun,
                "ADJ" => Pos::Adjective,
                "NOUN" => Pos::Noun,
                t if t.starts_with("VERB") || t.starts_with("IV") || t.starts_with("PV") => {
                    Pos::Verb
                }
                _ => Pos::Function,
            };
        }
        if category.starts_with('F') {
            Pos::Function
        } else if category.starts_with("IV")
            || category.starts_with("PV")
            || category.starts_with("CV")
        {
            Pos::Verb
        } else if category == "Nprop" || gloss.starts_with(|c: char| c.is_ascii_uppercase()) {
            Pos::ProperNoun
        } else {
            Pos::Noun
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Pos::Noun => "noun",
            Pos::ProperNoun => "proper noun",
            Pos::Adjective => "adjective",
            Pos::Verb => "verb",
            Pos::Function => "function word",
        }
    }

    /// Nouns, adjectives and verbs: words whose meaning a translation must carry.
    pub fn is_content(self) -> bool {
        matches!(self, Pos::Noun | Pos::Adjective | Pos::Verb)
    }
}

/// A prefix or suffix entry.
#[derive(Debug, Clone)]
struct Affix {
    bare: String,
    vocalized: String,
    category: u16,
    gloss: String,
    tag: String,
}

#[derive(Debug, Clone)]
struct Stem {
    bare: String,
    vocalized: String,
    category: u16,
    glosses: Vec<String>,
    pos: Pos,
    lemma: u32,
}

/// One reading of a word.
#[derive(Debug, Clone, PartialEq)]
pub struct Analysis {
    /// The whole word with its vowels, in Buckwalter transliteration.
    pub vocalized: String,
    /// The lemma's identifier in the lexicon (Buckwalter, `>aqomAr_1`).
    pub lemma: String,
    pub pos: Pos,
    /// The stem's English glosses.
    pub glosses: Vec<String>,
    /// Prefix and suffix, vocalized, with their glosses and tags (`wa/CONJ+Al/DET+`).
    pub prefix: (String, String, String),
    pub stem: String,
    pub suffix: (String, String, String),
    /// The word as written matches the lexicon without folding hamza, alef maqsura or
    /// ta marbuta.
    pub exact: bool,
}

impl Analysis {
    /// The vocalized word in Arabic script.
    pub fn arabic(&self) -> String {
        buckwalter::to_arabic(&self.vocalized)
    }
}

impl fmt::Display for Analysis {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = [
            (&self.prefix.0, &self.prefix.2),
            (&self.stem, &self.pos.name().to_string()),
            (&self.suffix.0, &self.suffix.2),
        ]
        .iter()
        .filter(|(form, _)| !form.is_empty())
        .map(|(form, tag)| format!("{form} [{tag}]"))
        .collect();
        write!(
            f,
            "{} ({}) {}: {}",
            self.arabic(),
            self.vocalized,
            parts.join(" + "),
            self.glosses.join("; ")
        )
    }
}

/// The analyzer: dictionaries indexed by folded spelling, and the three tables.
pub struct Analyzer {
    prefixes: HashMap<String, Vec<Affix>>,
    suffixes: HashMap<String, Vec<Affix>>,
    stems: HashMap<String, Vec<Stem>>,
    lemmas: Vec<String>,
    ab: HashSet<(u16, u16)>,
    ac: HashSet<(u16, u16)>,
    bc: HashSet<(u16, u16)>,
    stem_entries: usize,
    /// Glosses of content stems by consonant skeleton (see [`family_key`]).
    families: HashMap<String, Vec<String>>,
}

/// A stem's consonants without alef and hamza: «إنقاذ» and «أنقذ» (rescue, save) share
/// `nq*`. BAMA has no roots; stems sharing these consonants are mostly one root's
/// derivations, whose glosses are the English a translator may choose for either.
pub fn family_key(stem: &str) -> String {
    stem.chars()
        .filter(|&c| !buckwalter::is_vocalization(c))
        .filter(|c| !matches!(c, 'A' | '>' | '<' | '|' | '{' | '\'' | '&' | '}' | 'Y'))
        .collect()
}

/// Category names to small integers, so table lookups hash two numbers.
#[derive(Default)]
struct Categories(HashMap<String, u16>);

impl Categories {
    fn id(&mut self, name: &str) -> u16 {
        let next = self.0.len() as u16;
        *self.0.entry(name.to_string()).or_insert(next)
    }
}

/// The files are Latin-1 (a few glosses have accented letters); Buckwalter itself is ASCII.
fn latin1(bytes: &[u8]) -> String {
    bytes.iter().map(|&b| b as char).collect()
}

fn read(path: &Path) -> Result<String, AnalyzerError> {
    std::fs::read(path)
        .map(|b| latin1(&b))
        .map_err(|source| AnalyzerError::Read {
            path: path.display().to_string(),
            source,
        })
}

/// Gloss text and the tag of its `<pos>` annotation, if any.
fn split_gloss(field: &str) -> (String, Option<String>) {
    match field.split_once("<pos>") {
        Some((gloss, rest)) => {
            let pos = rest.split("</pos>").next().unwrap_or("");
            (gloss.trim().to_string(), Some(pos.to_string()))
        }
        None => (field.trim().to_string(), None),
    }
}

/// Entries of a dictionary file: (line number, four fields), comments skipped.
fn entries(text: &str) -> impl Iterator<Item = (usize, &str)> {
    text.lines()
        .enumerate()
        .map(|(i, l)| (i + 1, l.trim_end_matches('\r')))
}

impl Analyzer {
    /// Loads the six BAMA files from `dir`, named as the lexicon names them.
    pub fn load(dir: &Path) -> Result<Self, AnalyzerError> {
        let mut categories = Categories::default();
        let prefixes = Self::load_affixes(&dir.join("dictPrefixes"), &mut categories)?;
        let suffixes = Self::load_affixes(&dir.join("dictSuffixes"), &mut categories)?;
        let (stems, lemmas, stem_entries) =
            Self::load_stems(&dir.join("dictStems"), &mut categories)?;
        let mut families: HashMap<String, Vec<String>> = HashMap::new();
        for stem in stems.values().flatten().filter(|s| s.pos.is_content()) {
            let glosses = families.entry(family_key(&stem.bare)).or_default();
            for g in &stem.glosses {
                if !glosses.contains(g) {
                    glosses.push(g.clone());
                }
            }
        }
        let ab = Self::load_table(&dir.join("tableAB"), &mut categories)?;
        let ac = Self::load_table(&dir.join("tableAC"), &mut categories)?;
        let bc = Self::load_table(&dir.join("tableBC"), &mut categories)?;
        Ok(Self {
            prefixes,
            suffixes,
            stems,
            lemmas,
            ab,
            ac,
            bc,
            stem_entries,
            families,
        })
    }

    fn load_affixes(
        path: &Path,
        categories: &mut Categories,
    ) -> Result<HashMap<String, Vec<Affix>>, AnalyzerError> {
        let text = read(path)?;
        let display = path.display().to_string();
        let mut map: HashMap<String, Vec<Affix>> = HashMap::new();
        for (line, l) in entries(&text) {
            if l.starts_with(';') || l.trim().is_empty() {
                continue;
            }
            let fields: Vec<&str> = l.split('\t').collect();
            if fields.len() < 3 {
                return Err(AnalyzerError::Malformed {
                    path: display,
                    line,
                });
            }
            let (gloss, tag) = split_gloss(fields.get(3).copied().unwrap_or(""));
            map.entry(lookup_key(fields[0])).or_default().push(Affix {
                bare: fields[0].to_string(),
                vocalized: fields[1].to_string(),
                category: categories.id(fields[2].trim()),
                gloss,
                tag: tag.unwrap_or_default(),
            });
        }
        if map.is_empty() {
            return Err(AnalyzerError::Empty { path: display });
        }
        Ok(map)
    }

    #[allow(clippy::type_complexity)]
    fn load_stems(
        path: &Path,
        categories: &mut Categories,
    ) -> Result<(HashMap<String, Vec<Stem>>, Vec<String>, usize), AnalyzerError> {
        let text = read(path)?;
        let display = path.display().to_string();
        let mut map: HashMap<String, Vec<Stem>> = HashMap::new();
        let mut lemmas: Vec<String> = Vec::new();
        let mut count = 0;
        for (line, l) in entries(&text) {
            if let Some(lemma) = l.strip_prefix(";; ") {
                lemmas.push(lemma.trim().to_string());
                continue;
            }
            if l.starts_with(';') || l.trim().is_empty() {
                continue;
            }
            let fields: Vec<&str> = l.split('\t').collect();
            if fields.len() < 4 || fields[0].is_empty() {
                return Err(AnalyzerError::Malformed {
                    path: display,
                    line,
                });
            }
            let (gloss, tag) = split_gloss(fields[3]);
            let tag = tag.as_deref().and_then(|t| t.rsplit('/').next());
            let category = fields[2].trim();
            let pos = Pos::classify(tag, category, &gloss);
            // Entries before the first lemma line (none in BAMA 1.0) are their own lemma.
            if lemmas.is_empty() {
                lemmas.push(fields[1].to_string());
            }
            map.entry(lookup_key(fields[0])).or_default().push(Stem {
                bare: fields[0].to_string(),
                vocalized: fields[1].to_string(),
                category: categories.id(category),
                glosses: gloss
                    .split(';')
                    .map(|g| g.trim().to_string())
                    .filter(|g| !g.is_empty())
                    .collect(),
                pos,
                lemma: (lemmas.len() - 1) as u32,
            });
            count += 1;
        }
        if count == 0 {
            return Err(AnalyzerError::Empty { path: display });
        }
        Ok((map, lemmas, count))
    }

    fn load_table(
        path: &Path,
        categories: &mut Categories,
    ) -> Result<HashSet<(u16, u16)>, AnalyzerError> {
        let text = read(path)?;
        let display = path.display().to_string();
        let mut set = HashSet::new();
        for (line, l) in entries(&text) {
            if l.starts_with(';') || l.trim().is_empty() {
                continue;
            }
            let mut words = l.split_whitespace();
            let (Some(a), Some(b)) = (words.next(), words.next()) else {
                return Err(AnalyzerError::Malformed {
                    path: display,
                    line,
                });
            };
            set.insert((categories.id(a), categories.id(b)));
        }
        if set.is_empty() {
            return Err(AnalyzerError::Empty { path: display });
        }
        Ok(set)
    }

    /// Glosses of the content stems that share `stem`'s consonants (its derivations), and
    /// of its verb's when `stem` is a verbal noun whose verb has other consonants.
    pub fn family_glosses(&self, stem: &str) -> impl Iterator<Item = &String> {
        let verb = measures::verb_root(stem).map(|root| family_key(&root));
        [Some(family_key(stem)), verb]
            .into_iter()
            .flatten()
            .filter_map(|key| self.families.get(&key))
            .flatten()
    }

    /// Every word of every common-word stem gloss (nouns, adjectives, verbs; not names),
    /// lower-cased: the ordinary English the lexicon knows.
    pub fn gloss_words(&self) -> HashSet<String> {
        self.stems
            .values()
            .flatten()
            .filter(|s| s.pos.is_content())
            .flat_map(|s| &s.glosses)
            .flat_map(|g| g.split(|c: char| !c.is_alphabetic()))
            .filter(|w| !w.is_empty())
            .map(str::to_lowercase)
            .collect()
    }

    /// Stem entries in the lexicon.
    pub fn stem_entries(&self) -> usize {
        self.stem_entries
    }

    /// Every analysis of one Arabic word (diacritics and tatweel ignored). Analyses that
    /// match the spelling as written come first; folded matches are kept only when there
    /// is no exact one. Empty for words the lexicon does not know.
    pub fn analyze(&self, word: &str) -> Vec<Analysis> {
        let Some(written) = to_buckwalter(word) else {
            return Vec::new();
        };
        let written: String = written
            .chars()
            .filter(|&c| !buckwalter::is_vocalization(c))
            .collect();
        let key = lookup_key(&written);
        if key.is_empty() {
            return Vec::new();
        }
        // Buckwalter is ASCII, so byte offsets are letter offsets.
        let n = key.len();
        let mut found = Vec::new();
        for p in 0..=MAX_PREFIX.min(n.saturating_sub(1)) {
            let Some(prefixes) = self.prefixes.get(&key[..p]) else {
                continue;
            };
            for s in 0..=MAX_SUFFIX.min(n - p - 1) {
                let stem_end = n - s;
                let (Some(stems), Some(suffixes)) = (
                    self.stems.get(&key[p..stem_end]),
                    self.suffixes.get(&key[stem_end..]),
                ) else {
                    continue;
                };
                self.combine(&written, prefixes, stems, suffixes, &mut found);
            }
        }
        if found.iter().any(|a| a.exact) {
            found.retain(|a| a.exact);
        }
        let mut seen = HashSet::new();
        found.retain(|a| seen.insert((a.vocalized.clone(), a.lemma.clone(), a.glosses.clone())));
        found
    }

    fn combine(
        &self,
        written: &str,
        prefixes: &[Affix],
        stems: &[Stem],
        suffixes: &[Affix],
        out: &mut Vec<Analysis>,
    ) {
        for a in prefixes {
            for b in stems {
                if !self.ab.contains(&(a.category, b.category)) {
                    continue;
                }
                for c in suffixes {
                    if !self.ac.contains(&(a.category, c.category))
                        || !self.bc.contains(&(b.category, c.category))
                    {
                        continue;
                    }
                    let exact = written.len() == a.bare.len() + b.bare.len() + c.bare.len()
                        && written.starts_with(&a.bare)
                        && written[a.bare.len()..].starts_with(&b.bare)
                        && written.ends_with(&c.bare);
                    out.push(Analysis {
                        vocalized: format!("{}{}{}", a.vocalized, b.vocalized, c.vocalized),
                        lemma: self.lemmas[b.lemma as usize].clone(),
                        pos: b.pos,
                        glosses: b.glosses.clone(),
                        prefix: (a.vocalized.clone(), a.gloss.clone(), a.tag.clone()),
                        stem: b.vocalized.clone(),
                        suffix: (c.vocalized.clone(), c.gloss.clone(), c.tag.clone()),
                        exact,
                    });
                }
            }
        }
    }
}
