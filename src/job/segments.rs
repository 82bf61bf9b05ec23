//! Documents cut into the units the model translates, and the translations put back
//! into their documents.

use super::plan::Pending;
use crate::document::{Document, ParagraphKind, TranslatedParagraph, TranslatedSentence};
use crate::model::ModelError;
use crate::segment;
use crate::translate::{CheckedTranslation, Translator};

/// A document cut into the units the model translates.
pub(crate) struct Segmented {
    /// Per paragraph: the source segments (empty for passthrough).
    pub(crate) segments: Vec<Vec<String>>,
}

impl Segmented {
    pub(super) fn count(&self) -> usize {
        self.segments.iter().map(Vec::len).sum()
    }
}

/// Splits `doc`'s paragraphs into segments of at most `max_tokens` of the translator's
/// tokens; passthrough paragraphs have none.
pub(crate) fn segment_document(
    doc: &Document,
    max_tokens: usize,
    translator: &dyn Translator,
) -> Segmented {
    let count = |s: &str| {
        translator
            .count_tokens(s)
            // A tokenizer failure on odd text must not lose text: words are a fair stand-in.
            .unwrap_or_else(|_| s.split_whitespace().count() * 3)
    };
    let segments = doc
        .paragraphs
        .iter()
        .map(|p| match p.kind {
            ParagraphKind::Passthrough => Vec::new(),
            ParagraphKind::Heading | ParagraphKind::Body => {
                segment::segment_paragraph(&p.text, max_tokens, &count)
            }
        })
        .collect();
    Segmented { segments }
}

/// Where a segment sits: document (in its group), paragraph, and its source text.
pub(super) struct SegmentRef {
    pub(super) doc: usize,
    pub(super) paragraph: usize,
    pub(super) source: String,
    /// It may become the document's title (a heading before the running text, or the
    /// first segment of the first body paragraph): an error in it is repaired harder.
    pub(super) prominent: bool,
}

/// A slot per segment, filled as each is settled.
pub(super) type Results = Vec<Option<Result<CheckedTranslation, ModelError>>>;

/// Every segment of a group, document by document, in reading order.
pub(super) fn segment_refs(group: &[(Pending, Segmented)]) -> Vec<SegmentRef> {
    let mut refs = Vec::new();
    for (doc, (pending, segmented)) in group.iter().enumerate() {
        let paragraphs = &pending.doc.paragraphs;
        let first_body = paragraphs
            .iter()
            .position(|p| p.kind == ParagraphKind::Body && !p.block.is_running_header_or_footer());
        for (paragraph, segments) in segmented.segments.iter().enumerate() {
            let p = &paragraphs[paragraph];
            let title_heading = p.kind == ParagraphKind::Heading
                && !p.block.is_running_header_or_footer()
                && first_body.is_none_or(|b| paragraph < b);
            for (k, source) in segments.iter().enumerate() {
                refs.push(SegmentRef {
                    doc,
                    paragraph,
                    source: source.clone(),
                    prominent: title_heading || (Some(paragraph) == first_body && k == 0),
                });
            }
        }
    }
    refs
}

/// One document's share of a group's translations.
pub(super) struct Collected {
    /// Per paragraph, its translated sentences in order.
    pub(super) sentences: Vec<Vec<TranslatedSentence>>,
    /// Tokens generated for it, to charge it its share of the time.
    pub(super) generated: usize,
    /// The first error of any of its segments: the document failed.
    pub(super) error: Option<String>,
}

/// Puts each segment's translation back in its document and paragraph, in order.
pub(super) fn collect(
    group: &[(Pending, Segmented)],
    refs: Vec<SegmentRef>,
    results: Results,
) -> Vec<Collected> {
    let mut collected: Vec<Collected> = group
        .iter()
        .map(|(_, s)| Collected {
            sentences: s.segments.iter().map(|_| Vec::new()).collect(),
            generated: 0,
            error: None,
        })
        .collect();
    for (r, result) in refs.into_iter().zip(results) {
        let c = &mut collected[r.doc];
        match result {
            Some(Ok(t)) => {
                for w in &t.warnings {
                    tracing::debug!("{}: flagged: {}", group[r.doc].0.input.display, w.message);
                }
                c.generated += t.generated_tokens;
                c.sentences[r.paragraph].push(TranslatedSentence {
                    confidence: t.confidence(),
                    source: r.source,
                    translation: t.text,
                    warnings: t.warnings,
                });
            }
            Some(Err(e)) => {
                c.error.get_or_insert_with(|| e.to_string());
            }
            None => {
                c.error.get_or_insert_with(|| {
                    "translation stopped after an earlier segment failed".to_string()
                });
            }
        }
    }
    collected
}

/// A document's paragraphs with their translated sentences; passthrough paragraphs are
/// copied as they are.
pub(super) fn assemble(
    doc: &Document,
    sentences: Vec<Vec<TranslatedSentence>>,
) -> Vec<TranslatedParagraph> {
    doc.paragraphs
        .iter()
        .zip(sentences)
        .map(|(paragraph, sentences)| {
            if paragraph.kind == ParagraphKind::Passthrough {
                return TranslatedParagraph {
                    kind: paragraph.kind,
                    source: paragraph.text.clone(),
                    translation: paragraph.text.clone(),
                    sentences: vec![TranslatedSentence::plain(
                        paragraph.text.clone(),
                        paragraph.text.clone(),
                    )],
                    block: paragraph.block.clone(),
                };
            }
            let translation = sentences
                .iter()
                .map(|s| s.translation.as_str())
                .filter(|t| !t.is_empty())
                .collect::<Vec<_>>()
                .join(" ");
            TranslatedParagraph {
                kind: paragraph.kind,
                source: paragraph.text.clone(),
                translation,
                sentences,
                block: paragraph.block.clone(),
            }
        })
        .collect()
}
