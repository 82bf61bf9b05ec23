//! The data that flows through the pipeline: a loaded document, and the translated
//! document every writer renders. `TranslatedDocument` *is* the JSON schema of `NAME.json`.

use serde::{Deserialize, Serialize};

use crate::check::{CheckKind, Severity, Warning, LOW_CONFIDENCE};

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

/// What a block is in the structure of its source document. Readers decide it; the
/// writers render it (a heading stays a heading, a table cell stays in its table).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "role", rename_all = "snake_case")]
pub enum Role {
    /// `level` 1 is the document title; deeper sections count up to 6.
    Heading {
        level: u8,
    },
    #[default]
    Paragraph,
    /// `depth` 0 is a top-level item; `number` is shown for ordered lists.
    ListItem {
        ordered: bool,
        depth: u8,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        number: Option<u32>,
    },
    /// Cells of one source table share `table`; `row` and `column` count from 0.
    TableCell {
        table: u32,
        row: u32,
        column: u32,
        #[serde(default)]
        header: bool,
    },
    Caption,
    Quote,
}

impl Role {
    pub fn is_heading(&self) -> bool {
        matches!(self, Role::Heading { .. })
    }

    /// The table row a cell belongs to, so writers can keep a source row together.
    pub fn table_row(&self) -> Option<(u32, u32)> {
        match *self {
            Role::TableCell { table, row, .. } => Some((table, row)),
            _ => None,
        }
    }
}

/// A link inside a block: its text as it appears in the block, and where it points.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Link {
    pub text: String,
    pub href: String,
}

/// Where a block sits in its source and what it is: kept with the translation so every
/// output can show the document's structure and a reader can find the original.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Block {
    #[serde(flatten)]
    pub role: Role,
    /// In the source: `line 12` for text, `page 3` for PDF, an element path for HTML,
    /// `body paragraph 7` or `header` for DOCX.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub position: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub links: Vec<Link>,
}

impl Block {
    /// A Word document's running header or footer: part of the document, but neither its
    /// title nor where its text begins.
    pub fn is_running_header_or_footer(&self) -> bool {
        matches!(self.position.as_deref(), Some("header" | "footer"))
    }

    /// The block a paragraph of flat text has: a heading for a heading (flat text has no
    /// levels, so all are top level), else a paragraph.
    pub fn for_kind(kind: ParagraphKind) -> Self {
        let role = match kind {
            ParagraphKind::Heading => Role::Heading { level: 1 },
            _ => Role::Paragraph,
        };
        Self {
            role,
            ..Self::default()
        }
    }
}

/// One paragraph of a loaded, normalized document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Paragraph {
    pub kind: ParagraphKind,
    pub text: String,
    pub block: Block,
}

/// How the text of a document was obtained, when that is worth a reader's attention:
/// every PDF and image gets one, so a poor extraction is never passed off as the text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Extraction {
    pub method: ExtractionMethod,
    /// What was found wrong (or fixed) on the way, one short sentence each.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExtractionMethod {
    /// The PDF's own text layer, clean.
    TextLayer,
    /// The PDF's text layer, with signs of damage the notes name: read it with care.
    Degraded,
    /// Recognized from page images by Tesseract.
    Ocr,
}

impl ExtractionMethod {
    pub fn describe(self) -> &'static str {
        match self {
            ExtractionMethod::TextLayer => "text layer",
            ExtractionMethod::Degraded => "degraded text layer",
            ExtractionMethod::Ocr => "OCR",
        }
    }
}

/// A document after loading: normalized text split into classified paragraphs.
#[derive(Debug, Clone)]
pub struct Document {
    /// Where it came from, as the user named it (`-` for stdin).
    pub source_path: String,
    /// sha256 of the raw input bytes, hex.
    pub source_sha256: String,
    /// The reader that read it (`text`, `markdown`, `html`, `docx`, `pdf`, `image`).
    pub format: &'static str,
    pub extraction: Option<Extraction>,
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
    /// 0 to 1: how sure the model was of this English, from its own token
    /// probabilities; absent for copied text and backends that do not report them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub confidence: Option<f32>,
}

impl TranslatedSentence {
    /// A sentence copied through or translated without any doubts.
    pub fn plain(source: impl Into<String>, translation: impl Into<String>) -> Self {
        Self {
            source: source.into(),
            translation: translation.into(),
            warnings: Vec::new(),
            confidence: None,
        }
    }

    /// At least one warning says the meaning may be wrong.
    pub fn has_error(&self) -> bool {
        self.warnings.iter().any(Warning::is_error)
    }

    /// The model's confidence is below the floor at which a reader is told.
    pub fn is_low_confidence(&self) -> bool {
        self.confidence.is_some_and(|c| c < LOW_CONFIDENCE)
    }

    /// A writer marks it: a warning of either severity, or low confidence.
    pub fn is_marked(&self) -> bool {
        !self.warnings.is_empty() || self.is_low_confidence()
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
    #[serde(default)]
    pub severity: Severity,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TranslatedParagraph {
    pub kind: ParagraphKind,
    pub source: String,
    pub translation: String,
    pub sentences: Vec<TranslatedSentence>,
    /// Its place in the source's structure; records written before structure was kept
    /// read as plain paragraphs.
    #[serde(default)]
    pub block: Block,
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
    /// Samples drawn for a doubtful segment and reranked (0: none).
    #[serde(default)]
    pub rerank: usize,
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

fn text_format() -> String {
    "text".to_string()
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
    /// The reader that read the source (`text` in records older than the readers).
    #[serde(default = "text_format")]
    pub format: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extraction: Option<Extraction>,
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
    /// 0 to 1: its sentences' confidence, weighted by length (see
    /// [`TranslatedDocument::mean_confidence`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub confidence: Option<f32>,
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
                        severity: w.severity,
                    });
                }
            }
        }
        all
    }

    fn translated_sentences(&self) -> impl Iterator<Item = &TranslatedSentence> {
        self.paragraphs
            .iter()
            .filter(|p| p.kind != ParagraphKind::Passthrough)
            .flat_map(|p| &p.sentences)
    }

    /// Number of sentences with at least one error-severity warning: the headline count.
    pub fn flagged_sentences(&self) -> usize {
        self.translated_sentences()
            .filter(|s| s.has_error())
            .count()
    }

    /// Number of sentences whose only warnings are notes.
    pub fn noted_sentences(&self) -> usize {
        self.translated_sentences()
            .filter(|s| !s.warnings.is_empty() && !s.has_error())
            .count()
    }

    /// Number of sentences below the confidence floor.
    pub fn low_confidence_sentences(&self) -> usize {
        self.translated_sentences()
            .filter(|s| s.is_low_confidence())
            .count()
    }

    /// The document's confidence: its sentences' mean, each weighted by its Arabic
    /// length, so a long doubtful sentence counts for more than a short sure one.
    pub fn mean_confidence(&self) -> Option<f32> {
        let (mut sum, mut weight) = (0f64, 0f64);
        for s in self.translated_sentences() {
            if let Some(c) = s.confidence {
                let w = s.source.chars().count().max(1) as f64;
                sum += c as f64 * w;
                weight += w;
            }
        }
        (weight > 0.0).then(|| ((sum / weight * 100.0).round() / 100.0) as f32)
    }

    /// Share of translated sentences below the confidence floor, 0 to 1.
    pub fn low_confidence_share(&self) -> f64 {
        let total = self
            .translated_sentences()
            .filter(|s| s.confidence.is_some())
            .count();
        self.low_confidence_sentences() as f64 / total.max(1) as f64
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
