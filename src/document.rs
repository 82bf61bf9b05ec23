//! The data that flows through the pipeline: a loaded document, and the translated
//! document every writer renders. `TranslatedDocument` *is* the JSON schema of `NAME.json`.

use serde::{Deserialize, Serialize};

use crate::check::{CheckKind, Warning};

/// How a paragraph is treated by the pipeline.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ParagraphKind {
    /// A short line without final punctuation: translated as one unit, rendered as a heading.
    Heading,
    /// Running text: split into sentences, each translated, then rejoined in order.
    Body,
    /// No Arabic letters (e.g. "Leave a Reply"): copied as is, never sent to the model.
    Passthrough,
}

/// One paragraph of a loaded, normalized document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Paragraph {
    pub kind: ParagraphKind,
    pub text: String,
}

/// A document after loading: normalized text split into classified paragraphs.
#[derive(Debug, Clone)]
pub struct Document {
    /// Where it came from, as the user named it (`-` for stdin).
    pub source_path: String,
    /// sha256 of the raw input bytes, hex.
    pub source_sha256: String,
    pub paragraphs: Vec<Paragraph>,
}

impl Document {
    /// Words in Arabic script, the unit of the throughput figures.
    pub fn arabic_words(&self) -> usize {
        self.paragraphs
            .iter()
            .map(|p| crate::load::count_arabic_words(&p.text))
            .sum()
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TranslatedSentence {
    pub source: String,
    pub translation: String,
    /// Checks this translation failed even after a retry: reasons to doubt it.
    #[serde(default)]
    pub warnings: Vec<Warning>,
}

impl TranslatedSentence {
    /// A sentence copied through or translated without any doubts.
    pub fn plain(source: impl Into<String>, translation: impl Into<String>) -> Self {
        Self {
            source: source.into(),
            translation: translation.into(),
            warnings: Vec::new(),
        }
    }
}

/// One flagged sentence, listed at document level so that readers and tools find every
/// doubt without walking the paragraphs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DocumentWarning {
    /// Index into `paragraphs`.
    pub paragraph: usize,
    /// Index into that paragraph's `sentences`.
    pub sentence: usize,
    pub check: CheckKind,
    pub message: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TranslatedParagraph {
    pub kind: ParagraphKind,
    pub source: String,
    pub translation: String,
    pub sentences: Vec<TranslatedSentence>,
}

/// The model that produced a translation, as recorded in the outputs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModelRecord {
    pub name: String,
    /// sha256 of the weights file, hex.
    pub file_sha256: String,
}

/// Everything besides the input and the model that changes what tarjama writes.
/// A document is redone when any of these differ from its existing `NAME.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Settings {
    pub max_new_tokens: usize,
    pub max_segment_tokens: usize,
    pub summary: bool,
    /// Bumped whenever prompts or decoding change, so old outputs are not reused.
    pub prompt_version: u32,
    /// sha256 of the glossary's entries; `None` without a glossary.
    #[serde(default)]
    pub glossary_sha256: Option<String>,
    /// How requests were put to the model (`plain`, `instructed`, `few-shot`).
    #[serde(default)]
    pub prompt_style: String,
    /// Whether segments failing a check were retried.
    #[serde(default)]
    pub retry: bool,
    /// Candidates translated per segment (`--quality best` uses several).
    #[serde(default = "one")]
    pub candidates: usize,
    /// Whether the previous segment was shown to the model as context.
    #[serde(default)]
    pub context: bool,
    /// Whether the Arabic lexicon grounded hints and checks.
    #[serde(default)]
    pub lexicon: bool,
    /// Rare words per segment whose glosses the model was given.
    #[serde(default)]
    pub hints: usize,
    /// Least similarity (percent) of a translation memory match shown to the model as a
    /// worked example; `None` when none were shown.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_examples: Option<u32>,
}

fn one() -> usize {
    1
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Timings {
    pub load_seconds: f64,
    pub translate_seconds: f64,
    pub summarize_seconds: f64,
    pub total_seconds: f64,
}

/// A fully translated document: what every writer renders, and the `NAME.json` schema.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TranslatedDocument {
    /// Output file stem: `NAME` in `NAME.html`, `NAME.json`, ...
    pub name: String,
    pub source_path: String,
    pub source_sha256: String,
    pub model: ModelRecord,
    pub settings: Settings,
    pub title: String,
    /// Warnings of the translated sentence the title was taken from.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub title_warnings: Vec<Warning>,
    /// `None` when run with `--no-summary`.
    pub summary: Option<String>,
    /// What is still wrong with the summary after its retry (it states a number or name
    /// the translation does not, or says too little).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub summary_warnings: Vec<Warning>,
    pub arabic_words: usize,
    pub paragraphs: Vec<TranslatedParagraph>,
    /// Every flagged sentence of the document, in reading order.
    #[serde(default)]
    pub warnings: Vec<DocumentWarning>,
    pub timings: Timings,
}

impl TranslatedDocument {
    /// Collects the sentence warnings into the document-level list.
    pub fn collect_warnings(paragraphs: &[TranslatedParagraph]) -> Vec<DocumentWarning> {
        let mut all = Vec::new();
        for (p, paragraph) in paragraphs.iter().enumerate() {
            for (s, sentence) in paragraph.sentences.iter().enumerate() {
                for w in &sentence.warnings {
                    all.push(DocumentWarning {
                        paragraph: p,
                        sentence: s,
                        check: w.check,
                        message: w.message.clone(),
                    });
                }
            }
        }
        all
    }

    /// Number of sentences with at least one warning.
    pub fn flagged_sentences(&self) -> usize {
        self.paragraphs
            .iter()
            .flat_map(|p| &p.sentences)
            .filter(|s| !s.warnings.is_empty())
            .count()
    }

    /// The English text, one paragraph per block.
    pub fn english_text(&self) -> String {
        let mut out = String::new();
        for p in &self.paragraphs {
            if !out.is_empty() {
                out.push_str("\n\n");
            }
            out.push_str(&p.translation);
        }
        out.push('\n');
        out
    }
}
