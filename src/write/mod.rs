//! Write: render a translated document into bilingual files, plus the run's digest.
//!
//! Every file is replaced atomically. `NAME.json` is the record of a finished
//! document: it is always written, and always last, so its presence (with matching
//! hashes and settings) is what lets a later run skip the document.

pub mod atomic;
pub mod digest;
pub mod docx;
pub mod html;
pub mod json;
pub mod markdown;
pub mod text;

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use crate::check::{CheckKind, Warning};
use crate::document::{
    ExtractionMethod, ParagraphKind, Settings, TranslatedDocument, TranslatedParagraph,
    TranslatedSentence,
};

pub use atomic::write_atomic;
pub use digest::{write_digest, DigestEntry, DigestFailure};

/// An output format for a translated document.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    Html,
    Markdown,
    /// A bilingual Word document, for readers who live in Word (opt-in).
    Docx,
    Text,
    Json,
}

impl Format {
    /// Every format, in the order links fall back to one another.
    pub const ALL: [Format; 5] = [
        Format::Html,
        Format::Markdown,
        Format::Docx,
        Format::Text,
        Format::Json,
    ];

    /// The name used on the command line.
    pub fn as_str(&self) -> &'static str {
        match self {
            Format::Html => "html",
            Format::Markdown => "md",
            Format::Docx => "docx",
            Format::Text => "txt",
            Format::Json => "json",
        }
    }

    /// The output file for the document stem `name`.
    pub fn file_name(&self, name: &str) -> String {
        match self {
            Format::Html => format!("{name}.html"),
            Format::Markdown => format!("{name}.md"),
            Format::Docx => format!("{name}.docx"),
            // `.en.txt` because the text output holds only the English side.
            Format::Text => format!("{name}.en.txt"),
            Format::Json => format!("{name}.json"),
        }
    }

    /// The file's bytes; `path` is only for the error.
    fn render(&self, doc: &TranslatedDocument, path: &Path) -> Result<Vec<u8>, WriteError> {
        Ok(match self {
            Format::Html => html::render(doc).into_bytes(),
            Format::Markdown => markdown::render(doc).into_bytes(),
            Format::Text => text::render(doc).into_bytes(),
            Format::Docx => docx::render(doc).map_err(|source| WriteError::Write {
                path: path.to_path_buf(),
                source,
            })?,
            Format::Json => json::render(doc)
                .map_err(|source| WriteError::Serialize {
                    path: path.to_path_buf(),
                    source,
                })?
                .into_bytes(),
        })
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An output format name that is not one of [`Format::ALL`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown output format `{0}`; valid formats are html, md, docx, txt, json")]
pub struct ParseFormatError(pub String);

impl FromStr for Format {
    type Err = ParseFormatError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Format::ALL
            .into_iter()
            .find(|f| f.as_str() == s)
            .ok_or_else(|| ParseFormatError(s.to_string()))
    }
}

#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    #[error("output directory {} does not exist; create it or choose another output directory", dir.display())]
    MissingDir { dir: PathBuf },
    #[error("cannot write {}: {source}; check that the output directory is writable and the disk is not full", path.display())]
    Write { path: PathBuf, source: io::Error },
    #[error("cannot remove the old record {}: {source}; check the permissions of the output directory", path.display())]
    RemoveRecord { path: PathBuf, source: io::Error },
    #[error("cannot serialize the record for {}: {source}; this is a bug in tarjama, please report it", path.display())]
    Serialize {
        path: PathBuf,
        source: serde_json::Error,
    },
}

/// Writes `doc` into `dir` in each of `formats`, returning the paths written.
///
/// `NAME.json` is written even when `Json` is not requested, because it is the record
/// that later runs check to skip finished documents; it comes last, after the old
/// record is removed, so that an interruption leaves no record claiming completeness.
pub fn write_document(
    dir: &Path,
    doc: &TranslatedDocument,
    formats: &[Format],
) -> Result<Vec<PathBuf>, WriteError> {
    ensure_dir(dir)?;
    remove_record(dir, &doc.name)?;

    let mut written = Vec::new();
    for format in write_order(formats) {
        let path = dir.join(format.file_name(&doc.name));
        let contents = format.render(doc, &path)?;
        write_file(&path, &contents)?;
        written.push(path);
    }
    Ok(written)
}

/// The existing record `NAME.json` in `dir`, if there is one that parses.
pub fn read_record(dir: &Path, name: &str) -> Option<TranslatedDocument> {
    let path = dir.join(Format::Json.file_name(name));
    let bytes = std::fs::read(&path).ok()?;
    match serde_json::from_slice(&bytes) {
        Ok(doc) => Some(doc),
        Err(e) => {
            tracing::debug!("ignoring unreadable record {}: {e}", path.display());
            None
        }
    }
}

/// Whether a previous run already produced this document from the same input,
/// model and settings, in every requested format.
pub fn is_up_to_date(
    dir: &Path,
    name: &str,
    source_sha256: &str,
    model_sha256: &str,
    settings: &Settings,
    formats: &[Format],
) -> bool {
    let Some(record) = read_record(dir, name) else {
        return false;
    };
    record.source_sha256 == source_sha256
        && record.model.file_sha256 == model_sha256
        && &record.settings == settings
        && formats
            .iter()
            .all(|f| dir.join(f.file_name(name)).is_file())
}

/// Requested formats without duplicates, then the record: JSON always exactly once, last.
fn write_order(formats: &[Format]) -> Vec<Format> {
    let mut order: Vec<Format> = Vec::new();
    for &f in formats {
        if f != Format::Json && !order.contains(&f) {
            order.push(f);
        }
    }
    order.push(Format::Json);
    order
}

/// A missing directory gets its own error, since "No such file" on a file inside it
/// would point the user at the wrong thing.
fn ensure_dir(dir: &Path) -> Result<(), WriteError> {
    if dir.is_dir() {
        Ok(())
    } else {
        Err(WriteError::MissingDir {
            dir: dir.to_path_buf(),
        })
    }
}

fn remove_record(dir: &Path, name: &str) -> Result<(), WriteError> {
    let path = dir.join(Format::Json.file_name(name));
    match std::fs::remove_file(&path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(source) => Err(WriteError::RemoveRecord { path, source }),
    }
}

fn write_file(path: &Path, bytes: &[u8]) -> Result<(), WriteError> {
    write_atomic(path, bytes).map_err(|source| WriteError::Write {
        path: path.to_path_buf(),
        source,
    })
}

/// A stretch of a paragraph's text as a writer lays it out: plain text, or one sentence
/// with the checks it failed (none for a sentence nobody doubts) and the model's
/// confidence in it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Piece<'a> {
    Text(&'a str),
    Sentence {
        text: &'a str,
        warnings: &'a [Warning],
        confidence: Option<f32>,
    },
}

/// How a writer shows a sentence, most serious first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mark {
    /// A warning says the meaning may be wrong: highlighted.
    Error,
    /// The model was unsure, and no check found an error: marked apart from flags.
    LowConfidence,
    /// Only a form is missing (an honorific, a preferred spelling): shown subdued.
    Note,
    /// Nothing to show.
    None,
}

impl Mark {
    pub(crate) fn of(warnings: &[Warning], confidence: Option<f32>) -> Self {
        if warnings.iter().any(Warning::is_error) {
            Mark::Error
        } else if confidence.is_some_and(|c| c < crate::check::LOW_CONFIDENCE) {
            Mark::LowConfidence
        } else if !warnings.is_empty() {
            Mark::Note
        } else {
            Mark::None
        }
    }
}

/// What a marked sentence's hover text (or bracket) says: the reasons, errors first,
/// then the confidence when it is low.
pub(crate) fn hover(warnings: &[Warning], confidence: Option<f32>) -> String {
    let mut parts = Vec::new();
    let errors: Vec<Warning> = warnings.iter().filter(|w| w.is_error()).cloned().collect();
    let notes: Vec<Warning> = warnings.iter().filter(|w| !w.is_error()).cloned().collect();
    if !errors.is_empty() {
        parts.push(reasons(&errors));
    }
    if !notes.is_empty() {
        parts.push(format!("note: {}", reasons(&notes)));
    }
    // A very low confidence is a warning of its own, which already gives the value.
    let said = warnings.iter().any(|w| w.check == CheckKind::LowConfidence);
    if let Some(c) = confidence.filter(|&c| c < crate::check::LOW_CONFIDENCE && !said) {
        parts.push(format!("low confidence: {c:.2}"));
    }
    parts.join("; ")
}

/// Cuts `whole`, a paragraph's source or translation, into its sentences so that writers
/// can mark the flagged ones. `part` picks the side of each sentence.
///
/// The pipeline joins the sentences with single spaces (skipping empty translations) and
/// segmentation only cuts at whitespace, so `whole` is normally the sentences in order
/// with whitespace between them; then the pieces reproduce `whole` exactly, line breaks
/// included. When it is not (a record edited by hand), a paragraph without flagged
/// sentences is `whole` unchanged, and one with flagged sentences is its sentences joined
/// with single spaces, so that the reader still sees which sentence is doubted.
pub(crate) fn pieces<'a>(
    whole: &'a str,
    sentences: &'a [TranslatedSentence],
    part: fn(&TranslatedSentence) -> &str,
) -> Vec<Piece<'a>> {
    if let Some(located) = locate(whole, sentences, part) {
        return located;
    }
    if !sentences.iter().any(TranslatedSentence::is_marked) {
        return vec![Piece::Text(whole)];
    }
    let mut out = Vec::new();
    for s in sentences {
        let text = part(s);
        // An empty translation adds nothing to the paragraph, unless it is flagged.
        if text.is_empty() && s.warnings.is_empty() {
            continue;
        }
        if !out.is_empty() {
            out.push(Piece::Text(" "));
        }
        out.push(sentence_piece(text, s));
    }
    out
}

/// The sentences found in order in `whole`, with only whitespace around and between
/// them; `None` when `whole` is anything else.
fn locate<'a>(
    whole: &'a str,
    sentences: &'a [TranslatedSentence],
    part: fn(&TranslatedSentence) -> &str,
) -> Option<Vec<Piece<'a>>> {
    let mut out = Vec::new();
    let mut cursor = 0;
    // Flagged empty translations: not in `whole`, shown before the next sentence.
    let mut pending: Vec<Piece<'a>> = Vec::new();
    for s in sentences {
        let text = part(s);
        if text.is_empty() {
            if !s.warnings.is_empty() {
                pending.push(sentence_piece(text, s));
            }
            continue;
        }
        let rest = &whole[cursor..];
        let start = rest.find(text)?;
        let gap = &rest[..start];
        if !gap.chars().all(char::is_whitespace) {
            return None;
        }
        if !gap.is_empty() {
            out.push(Piece::Text(gap));
        }
        for empty in pending.drain(..) {
            out.push(empty);
            out.push(Piece::Text(" "));
        }
        out.push(sentence_piece(text, s));
        cursor += start + text.len();
    }
    let tail = &whole[cursor..];
    if !tail.chars().all(char::is_whitespace) {
        return None;
    }
    if !tail.is_empty() {
        out.push(Piece::Text(tail));
    }
    for empty in pending {
        if matches!(out.last(), Some(Piece::Sentence { .. })) {
            out.push(Piece::Text(" "));
        }
        out.push(empty);
    }
    Some(out)
}

fn sentence_piece<'a>(text: &'a str, s: &'a TranslatedSentence) -> Piece<'a> {
    Piece::Sentence {
        text,
        warnings: &s.warnings,
        confidence: s.confidence,
    }
}

/// How the writers lay a document out: a row per paragraph, except that the cells of one
/// row of a source table stay together, so that a table reads row by row.
pub(crate) enum Row<'a> {
    Paragraph(&'a TranslatedParagraph),
    TableRow(Vec<&'a TranslatedParagraph>),
}

pub(crate) fn rows(paragraphs: &[TranslatedParagraph]) -> Vec<Row<'_>> {
    let mut out: Vec<Row> = Vec::new();
    for p in paragraphs {
        let Some(key) = p.block.role.table_row() else {
            out.push(Row::Paragraph(p));
            continue;
        };
        match out.last_mut() {
            Some(Row::TableRow(cells)) if cells[0].block.role.table_row() == Some(key) => {
                cells.push(p)
            }
            _ => out.push(Row::TableRow(vec![p])),
        }
    }
    out
}

/// A link target that is safe to follow from an output: web, mail or relative links.
/// `javascript:`, `data:` and other schemes could run code in the reader's browser.
pub(crate) fn safe_href(href: &str) -> Option<&str> {
    let href = href.trim();
    let scheme = href
        .split_once(':')
        .map(|(scheme, _)| scheme.to_ascii_lowercase())
        .filter(|scheme| !scheme.contains(['/', '?', '#']));
    match scheme.as_deref() {
        None if !href.is_empty() => Some(href),
        Some("http" | "https" | "mailto") => Some(href),
        _ => None,
    }
}

/// A line for readers about how the source's text was obtained, when that can go wrong
/// (PDF text layers and OCR): `None` for formats read as they are.
pub(crate) fn extraction_note(doc: &TranslatedDocument) -> Option<String> {
    let extraction = doc.extraction.as_ref()?;
    let mut note = format!(
        "Read from {} by {}",
        doc.format.to_uppercase(),
        extraction.method.describe()
    );
    if extraction.method != ExtractionMethod::TextLayer {
        note.push_str(": check the Arabic against the original");
    }
    for n in &extraction.notes {
        note.push_str("; ");
        note.push_str(n);
    }
    Some(note)
}

/// Shown, marked, in place of a flagged sentence whose translation is empty, so that the
/// flag has something to sit on.
pub(crate) const NO_TRANSLATION: &str = "[no translation]";

/// Why a sentence is flagged, in one line: `check: message` for each warning, joined by "; ".
pub(crate) fn reasons(warnings: &[Warning]) -> String {
    warnings
        .iter()
        .map(|w| format!("{}: {}", w.check.name(), one_line(&w.message)))
        .collect::<Vec<_>>()
        .join("; ")
}

/// Whitespace runs, line breaks included, folded into single spaces.
pub(crate) fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// How many sentences of a document a writer shows with each mark: what the notices
/// above the text count. Counted by [`Mark::of`], as the marks are drawn, so that each
/// notice matches what the reader finds below it (a low-confidence sentence that is
/// also flagged is shown, and counted, once, as flagged).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct MarkCounts {
    pub errors: usize,
    pub unsure: usize,
    pub notes: usize,
}

impl MarkCounts {
    pub(crate) fn of(doc: &TranslatedDocument) -> Self {
        let mut counts = Self::default();
        // Copied text is never marked.
        let translated = doc
            .paragraphs
            .iter()
            .filter(|p| p.kind != ParagraphKind::Passthrough)
            .flat_map(|p| &p.sentences);
        for s in translated {
            match Mark::of(&s.warnings, s.confidence) {
                Mark::Error => counts.errors += 1,
                Mark::LowConfidence => counts.unsure += 1,
                Mark::Note => counts.notes += 1,
                Mark::None => {}
            }
        }
        counts
    }
}

/// "1 sentence" or "N sentences".
pub(crate) fn sentences_count(n: usize) -> String {
    if n == 1 {
        "1 sentence".to_string()
    } else {
        format!("{n} sentences")
    }
}

/// "1 note" or "N notes".
pub(crate) fn notes_count(n: usize) -> String {
    if n == 1 {
        "1 note".to_string()
    } else {
        format!("{n} notes")
    }
}

/// A small realistic document shared by the writers' tests.
#[cfg(test)]
pub(crate) mod fixture {
    use std::path::Path;

    use crate::check::{CheckKind, Severity, Warning};
    use crate::document::*;

    /// The file names in `dir`, sorted: what a writer left behind.
    pub fn entries(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    fn para(kind: ParagraphKind, sentences: &[(&str, &str)]) -> TranslatedParagraph {
        let sentences: Vec<TranslatedSentence> = sentences
            .iter()
            .map(|(s, t)| TranslatedSentence::plain(*s, *t))
            .collect();
        TranslatedParagraph {
            kind,
            source: sentences
                .iter()
                .map(|s| s.source.as_str())
                .collect::<Vec<_>>()
                .join(" "),
            translation: sentences
                .iter()
                .map(|s| s.translation.as_str())
                .collect::<Vec<_>>()
                .join(" "),
            sentences,
            block: crate::document::Block::for_kind(kind),
        }
    }

    pub fn settings() -> Settings {
        Settings {
            max_new_tokens: 256,
            max_segment_tokens: 200,
            summary: true,
            prompt_version: 3,
            glossary_sha256: None,
            prompt_style: "instructed".into(),
            retry: true,
            candidates: 1,
            rerank: 0,
            context: false,
            lexicon: false,
            hints: 0,
            memory_examples: None,
        }
    }

    pub fn document() -> TranslatedDocument {
        let paragraphs = vec![
            para(
                ParagraphKind::Heading,
                &[(
                    "الأمين العام لمجلس التعاون يؤكد أهمية العلاقات مع آسيا الوسطى",
                    "GCC Secretary-General stresses the importance of relations with Central Asia",
                )],
            ),
            para(
                ParagraphKind::Body,
                &[
                    (
                        "أكد الأمين العام لمجلس التعاون على أهمية العلاقات بين مجلس التعاون وجمهوريات آسيا الوسطى.",
                        "The GCC Secretary-General affirmed the importance of relations between the GCC and the Central Asian republics.",
                    ),
                    (
                        "وأعرب عن تطلعه لأن تسهم الجولة في فتح آفاق جديدة من التعاون.",
                        "He expressed his hope that the tour would open new horizons of cooperation.",
                    ),
                ],
            ),
            para(
                ParagraphKind::Body,
                &[(
                    "وتناولت المباحثات تعزيز التبادل التجاري وأمن الطاقة والمياه.",
                    "The talks addressed strengthening trade, energy and water security.",
                )],
            ),
            para(ParagraphKind::Passthrough, &[("Leave a Reply", "Leave a Reply")]),
        ];
        TranslatedDocument {
            name: "gcc-central-asia".to_string(),
            source_path: "samples/gcc central asia.txt".to_string(),
            source_sha256: "a".repeat(64),
            format: "text".to_string(),
            extraction: None,
            model: ModelRecord {
                name: "opus-mt-ar-en".to_string(),
                file_sha256: "b".repeat(64),
            },
            settings: settings(),
            title: "GCC Secretary-General stresses ties with Central Asia".to_string(),
            title_warnings: Vec::new(),
            summary: Some(
                "The GCC Secretary-General toured five Central Asian states to deepen trade and security cooperation."
                    .to_string(),
            ),
            summary_warnings: Vec::new(),
            arabic_words: 42,
            confidence: None,
            paragraphs,
            warnings: Vec::new(),
            timings: Timings {
                load_seconds: 0.01,
                translate_seconds: 12.5,
                summarize_seconds: 3.25,
                total_seconds: 15.76,
            },
        }
    }

    /// Rebuilds a paragraph's source and translation from its sentences, as the pipeline does.
    pub fn rejoin(p: &mut TranslatedParagraph) {
        let join = |part: fn(&TranslatedSentence) -> &str| {
            p.sentences
                .iter()
                .map(part)
                .filter(|t| !t.is_empty())
                .collect::<Vec<_>>()
                .join(" ")
        };
        p.source = join(|s| s.source.as_str());
        p.translation = join(|s| s.translation.as_str());
    }

    /// Gives sentence `sentence` of paragraph `paragraph` these warnings, keeping the
    /// document-level list in step.
    pub fn flag(
        doc: &mut TranslatedDocument,
        paragraph: usize,
        sentence: usize,
        warnings: Vec<Warning>,
    ) {
        doc.paragraphs[paragraph].sentences[sentence].warnings = warnings;
        doc.warnings = TranslatedDocument::collect_warnings(&doc.paragraphs);
    }

    /// The markup-looking text in the flagged sentence of [`flagged_document`].
    pub const FLAG_EVIL: &str = r#"<b>&"</b>"#;

    /// The fixture with one flagged sentence (the second of the first body paragraph)
    /// failing two checks, and markup-looking text in its source, translation and reason.
    pub fn flagged_document() -> TranslatedDocument {
        let mut doc = document();
        let p = &mut doc.paragraphs[1];
        let s = &mut p.sentences[1];
        s.source = format!("وأعرب عن تطلعه لأن تسهم الجولة الـ5 {FLAG_EVIL} في فتح آفاق جديدة.");
        s.translation = format!("He hoped the 6th tour {FLAG_EVIL} would open new horizons.");
        rejoin(p);
        flag(
            &mut doc,
            1,
            1,
            vec![
                Warning::error(
                    CheckKind::Numbers,
                    format!("number(s) from the source missing: 5 {FLAG_EVIL}"),
                ),
                Warning::error(
                    CheckKind::Length,
                    "English is 2.60× the length of the Arabic",
                ),
            ],
        );
        doc
    }

    /// A note-severity warning: a form is missing, not the meaning.
    pub fn note(check: CheckKind, message: &str) -> Warning {
        Warning {
            check,
            message: message.to_string(),
            severity: Severity::Note,
        }
    }

    /// The note on the noted sentence of [`review_document`].
    pub const NOTE: &str = "«التبادل التجاري» should be rendered as “trade exchange”";

    /// The fixture with one sentence of each mark and confidences as the pipeline sets
    /// them. First body paragraph: the first sentence unsure (0.32), the second flagged
    /// and unsure (0.41); second body paragraph: its only sentence noted, and sure
    /// (0.90); the heading sure (0.95); the copied text without a confidence.
    pub fn review_document() -> TranslatedDocument {
        let mut doc = document();
        let confidences: [&[f32]; 3] = [&[0.95], &[0.32, 0.41], &[0.90]];
        for (p, values) in doc.paragraphs.iter_mut().zip(confidences) {
            for (s, &c) in p.sentences.iter_mut().zip(values) {
                s.confidence = Some(c);
            }
        }
        flag(
            &mut doc,
            1,
            1,
            vec![Warning::error(
                CheckKind::Numbers,
                "number(s) from the source missing: 5",
            )],
        );
        flag(&mut doc, 2, 0, vec![note(CheckKind::Glossary, NOTE)]);
        doc.confidence = doc.mean_confidence();
        doc
    }

    /// The fixture with markup-looking text in every field a writer renders.
    pub fn hostile_document() -> TranslatedDocument {
        let mut doc = document();
        let evil = r#"<script>alert("x")</script> & co"#;
        doc.title = format!("Title {evil}");
        doc.summary = Some(format!("Summary {evil}"));
        doc.source_path = format!("in/{evil}.txt");
        doc.model.name = format!("model {evil}");
        for p in &mut doc.paragraphs {
            p.source = format!("{} {evil}", p.source);
            p.translation = format!("{} {evil}", p.translation);
        }
        doc
    }

    /// A document read from a structured source (HTML, DOCX): a list, a table of two rows
    /// and a paragraph with links, one of them a `javascript:` link that must not survive.
    pub fn structured_document() -> TranslatedDocument {
        let mut doc = document();
        let with = |role: Role, arabic: &str, english: &str| {
            let mut p = para(ParagraphKind::Body, &[(arabic, english)]);
            p.block.role = role;
            p
        };
        let item = |number| Role::ListItem {
            ordered: true,
            depth: 0,
            number: Some(number),
        };
        let cell = |row, column| Role::TableCell {
            table: 0,
            row,
            column,
            header: row == 0,
        };
        let mut linked = with(
            Role::Paragraph,
            "زوروا موقع الأمانة العامة.",
            "Visit the General Secretariat's website.",
        );
        linked.block.links = vec![
            Link {
                text: "موقع الأمانة".into(),
                href: "https://example.org/ar?a=1&b=2".into(),
            },
            Link {
                text: "الأمانة".into(),
                href: "javascript:alert(1)".into(),
            },
        ];
        doc.paragraphs.extend([
            with(item(1), "قطر", "Qatar"),
            with(item(2), "عمان", "Oman"),
            with(cell(0, 0), "الدولة", "Country"),
            with(cell(0, 1), "العاصمة", "Capital"),
            with(cell(1, 0), "قطر", "Qatar"),
            with(cell(1, 1), "الدوحة", "Doha"),
            linked,
        ]);
        doc
    }
}

#[cfg(test)]
mod tests {
    use super::fixture::entries;
    use super::*;
    use crate::check::CheckKind;
    use crate::document::Settings;

    #[test]
    fn table_cells_of_one_row_stay_together() {
        let doc = fixture::structured_document();
        let rows = rows(&doc.paragraphs);
        let sizes: Vec<usize> = rows
            .iter()
            .map(|r| match r {
                Row::Paragraph(_) => 1,
                Row::TableRow(cells) => cells.len() * 10,
            })
            .collect();
        assert_eq!(sizes[sizes.len() - 3..], [20, 20, 1]);
        assert_eq!(sizes.iter().filter(|&&s| s == 20).count(), 2);
    }

    #[test]
    fn only_web_mail_and_relative_links_are_followed() {
        for ok in [
            "https://a.org/x?y=1",
            "http://a",
            "mailto:x@a.org",
            "page.html#s",
            "/p",
        ] {
            assert_eq!(safe_href(ok), Some(ok));
        }
        for bad in [
            "javascript:alert(1)",
            " JavaScript:x",
            "data:text/html,x",
            "vbscript:x",
            "",
        ] {
            assert_eq!(safe_href(bad), None, "{bad}");
        }
    }

    fn warning(message: &str) -> Warning {
        Warning::error(CheckKind::Numbers, message)
    }

    fn sentence(source: &str, translation: &str, warnings: &[Warning]) -> TranslatedSentence {
        TranslatedSentence {
            source: source.to_string(),
            translation: translation.to_string(),
            warnings: warnings.to_vec(),
            confidence: None,
        }
    }

    fn english(s: &TranslatedSentence) -> &str {
        &s.translation
    }

    #[test]
    fn pieces_reproduce_the_paragraph_with_its_whitespace() {
        let w = [warning("x")];
        let sentences = [sentence("أ.", "One.", &[]), sentence("ب.", "Two.", &w)];
        let pieces = pieces("One.\nTwo.", &sentences, english);
        assert_eq!(
            pieces,
            [
                Piece::Sentence {
                    text: "One.",
                    warnings: &[],
                    confidence: None
                },
                Piece::Text("\n"),
                Piece::Sentence {
                    text: "Two.",
                    warnings: &w,
                    confidence: None
                },
            ]
        );
        // Sources are found the same way.
        let arabic = pieces_text(&super::pieces("أ. ب.", &sentences, |s| &s.source));
        assert_eq!(arabic, "أ. ب.");
    }

    fn pieces_text(pieces: &[Piece]) -> String {
        pieces
            .iter()
            .map(|p| match *p {
                Piece::Text(t) | Piece::Sentence { text: t, .. } => t,
            })
            .collect()
    }

    #[test]
    fn pieces_fall_back_when_the_paragraph_disagrees_with_its_sentences() {
        let w = [warning("x")];
        let unflagged = [sentence("أ.", "One.", &[]), sentence("ب.", "Two.", &[])];
        assert_eq!(
            pieces("One. Two. Edited.", &unflagged, english),
            [Piece::Text("One. Two. Edited.")]
        );
        let flagged = [sentence("أ.", "One.", &[]), sentence("ب.", "Two.", &w)];
        let pieces = pieces("Edited. One. Two.", &flagged, english);
        assert_eq!(pieces_text(&pieces), "One. Two.");
        assert_eq!(
            pieces[2],
            Piece::Sentence {
                text: "Two.",
                warnings: &w,
                confidence: None
            }
        );
    }

    #[test]
    fn unsure_sentences_are_pieces_of_their_own() {
        let mut unsure = sentence("ب.", "Two.", &[]);
        unsure.confidence = Some(0.3);
        let sentences = [sentence("أ.", "One.", &[]), unsure];
        // Even where the paragraph disagrees with its sentences, which keeps unmarked
        // paragraphs whole.
        for whole in ["One. Two.", "Edited. One. Two."] {
            let pieces = pieces(whole, &sentences, english);
            assert_eq!(
                pieces.last(),
                Some(&Piece::Sentence {
                    text: "Two.",
                    warnings: &[],
                    confidence: Some(0.3)
                }),
                "{whole}"
            );
        }
    }

    #[test]
    fn flagged_empty_translations_get_a_place() {
        let w = [warning("x")];
        let sentences = [
            sentence("أ.", "One.", &[]),
            sentence("ب.", "", &w),
            sentence("ج.", "", &[]),
            sentence("د.", "Four.", &[]),
        ];
        let pieces = pieces("One. Four.", &sentences, english);
        assert_eq!(pieces_text(&pieces), "One.  Four.");
        assert_eq!(
            pieces[2],
            Piece::Sentence {
                text: "",
                warnings: &w,
                confidence: None
            }
        );
        let last = [sentence("أ.", "One.", &[]), sentence("ب.", "", &w)];
        let pieces = super::pieces("One.", &last, english);
        assert_eq!(pieces.len(), 3);
        assert_eq!(pieces[1], Piece::Text(" "));
    }

    #[test]
    fn flagged_titles_and_summaries_are_shown_in_every_output() {
        let mut doc = fixture::document();
        doc.title_warnings = vec![Warning::error(
            CheckKind::UnsupportedName,
            "not in the source: “Asian-Pacific” (Pacific)",
        )];
        doc.summary_warnings = vec![Warning::error(
            CheckKind::Numbers,
            "summary number(s) not in the translation: 2024",
        )];
        let html = html::render(&doc);
        let h1 = &html[html.find("<h1>").unwrap()..html.find("</h1>").unwrap()];
        assert!(
            h1.contains("⚠ title flagged") && h1.contains("Pacific"),
            "{h1}"
        );
        let summary = &html[html.find("class=\"summary\"").unwrap()..];
        assert!(summary[..summary.find("</section>").unwrap()].contains("2024"));
        let md = markdown::render(&doc);
        assert!(md.lines().next().unwrap().contains("title flagged"), "{md}");
        assert!(md.contains(
            "summary flagged *[numbers: summary number(s) not in the translation: 2024]*"
        ));
        let json: serde_json::Value = serde_json::to_value(&doc).unwrap();
        assert_eq!(json["title_warnings"][0]["check"], "unsupported_name");
        assert_eq!(json["summary_warnings"][0]["check"], "numbers");
        let entries = [digest::DigestEntry::from(&doc)];
        let index = digest::render_index_html(&entries, &[], &Format::ALL);
        assert!(index.contains("⚠ title flagged") && index.contains("⚠ summary flagged"));
        let md_digest = digest::render_digest_md(&entries, &[], &Format::ALL);
        assert!(md_digest.contains("title flagged") && md_digest.contains("summary flagged"));
        // Unflagged documents carry no such marks, and their JSON no empty lists.
        let plain = fixture::document();
        assert!(!html::render(&plain).contains("title flagged"));
        assert!(serde_json::to_value(&plain)
            .unwrap()
            .get("title_warnings")
            .is_none());
    }

    #[test]
    fn titles_and_summaries_with_only_notes_are_shown_subdued() {
        let mut doc = fixture::document();
        let note = fixture::note(CheckKind::Glossary, fixture::NOTE);
        doc.title_warnings = vec![note.clone()];
        doc.summary_warnings = vec![note];
        let shown = format!("note: glossary: {}", fixture::NOTE);
        let html = html::render(&doc);
        let h1 = &html[html.find("<h1>").unwrap()..html.find("</h1>").unwrap()];
        assert!(
            h1.contains(&format!(
                "<span class=\"note badge\" title=\"{shown}\">ⁱ note</span>"
            )),
            "{h1}"
        );
        assert!(!html.contains("<mark"), "a note is no flag: {html}");
        let md = markdown::render(&doc);
        assert!(
            md.lines()
                .next()
                .unwrap()
                .ends_with(&format!(" ⁱ *({shown})*")),
            "{md}"
        );
        assert!(!md.contains("flagged"), "{md}");
        let entries = [digest::DigestEntry::from(&doc)];
        let index = digest::render_index_html(&entries, &[], &Format::ALL);
        assert!(
            !index.contains("flagged") && index.contains("ⁱ note</span>"),
            "{index}"
        );
        let md_digest = digest::render_digest_md(&entries, &[], &Format::ALL);
        assert!(!md_digest.contains("flagged") && md_digest.contains(&shown));
        // One error among the notes makes it a flag, the error's reason first.
        doc.title_warnings
            .push(Warning::error(CheckKind::Numbers, "missing: 5"));
        let html = html::render(&doc);
        assert!(html.contains(&format!(
            "<mark class=\"flag\" title=\"numbers: missing: 5; {shown}\">⚠ title flagged</mark>"
        )));
    }

    #[test]
    fn marks_rank_errors_then_low_confidence_then_notes() {
        let error = [Warning::error(CheckKind::Numbers, "missing: 5")];
        let note = [fixture::note(CheckKind::Glossary, "form")];
        let both = [note[0].clone(), error[0].clone()];
        assert_eq!(Mark::of(&error, Some(0.1)), Mark::Error);
        assert_eq!(Mark::of(&both, None), Mark::Error);
        assert_eq!(Mark::of(&note, Some(0.69)), Mark::LowConfidence);
        assert_eq!(Mark::of(&[], Some(0.69)), Mark::LowConfidence);
        assert_eq!(Mark::of(&note, Some(0.7)), Mark::Note);
        assert_eq!(Mark::of(&[], Some(0.7)), Mark::None);
        assert_eq!(Mark::of(&[], None), Mark::None);
        assert_eq!(
            hover(&both, Some(0.32)),
            "numbers: missing: 5; note: glossary: form; low confidence: 0.32"
        );
        assert_eq!(hover(&note, Some(0.9)), "note: glossary: form");
    }

    #[test]
    fn notices_count_the_marks_the_reader_will_find() {
        let doc = fixture::review_document();
        let counts = MarkCounts::of(&doc);
        assert_eq!(
            counts,
            MarkCounts {
                errors: 1,
                unsure: 1,
                notes: 1
            }
        );
        assert_eq!(
            counts.errors,
            doc.flagged_sentences(),
            "notes are not flagged"
        );
        // The flagged sentence is unsure too, but is shown, and counted, as a flag.
        assert_eq!(doc.low_confidence_sentences(), 2);
        assert_eq!(MarkCounts::of(&fixture::document()), MarkCounts::default());
    }

    #[test]
    fn reasons_on_one_line() {
        let warnings = [
            warning("missing: 5\nand 6"),
            Warning::error(CheckKind::Truncated, "cut"),
        ];
        assert_eq!(
            reasons(&warnings),
            "numbers: missing: 5 and 6; truncated: cut"
        );
    }

    #[test]
    fn format_names_parse_and_round_trip() {
        for f in Format::ALL {
            assert_eq!(f.as_str().parse::<Format>().unwrap(), f);
        }
        let err = "pdf".parse::<Format>().unwrap_err().to_string();
        assert!(err.contains("pdf"), "{err}");
        for name in ["html", "md", "txt", "json"] {
            assert!(err.contains(name), "{err} should list {name}");
        }
    }

    #[test]
    fn file_names() {
        assert_eq!(Format::Html.file_name("doc"), "doc.html");
        assert_eq!(Format::Markdown.file_name("doc"), "doc.md");
        assert_eq!(Format::Text.file_name("doc"), "doc.en.txt");
        assert_eq!(Format::Json.file_name("doc"), "doc.json");
    }

    #[test]
    fn json_is_written_once_and_last() {
        use Format::*;
        assert_eq!(
            write_order(&[Json, Html, Markdown]),
            vec![Html, Markdown, Json]
        );
        assert_eq!(write_order(&[Text, Text]), vec![Text, Json]);
        assert_eq!(write_order(&[]), vec![Json]);
    }

    #[test]
    fn writes_every_format_and_nothing_else() {
        let dir = tempfile::tempdir().unwrap();
        let doc = fixture::document();
        let paths = write_document(dir.path(), &doc, &Format::ALL).unwrap();
        let names: Vec<String> = paths
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(
            names,
            [
                "gcc-central-asia.html",
                "gcc-central-asia.md",
                "gcc-central-asia.docx",
                "gcc-central-asia.en.txt",
                "gcc-central-asia.json"
            ]
        );
        let mut expected = names.clone();
        expected.sort();
        assert_eq!(entries(dir.path()), expected, "no stray temp files");
        assert_eq!(read_record(dir.path(), &doc.name).unwrap(), doc);
        assert_eq!(
            std::fs::read_to_string(&paths[3]).unwrap(),
            doc.english_text()
        );
    }

    #[test]
    fn record_is_written_even_when_json_is_not_requested() {
        let dir = tempfile::tempdir().unwrap();
        let doc = fixture::document();
        write_document(dir.path(), &doc, &[Format::Html]).unwrap();
        assert_eq!(
            entries(dir.path()),
            ["gcc-central-asia.html", "gcc-central-asia.json"]
        );
    }

    #[test]
    fn missing_directory_is_reported_and_nothing_is_created() {
        let parent = tempfile::tempdir().unwrap();
        let dir = parent.path().join("no-such-dir");
        let err = write_document(&dir, &fixture::document(), &Format::ALL).unwrap_err();
        assert!(matches!(err, WriteError::MissingDir { .. }), "{err:?}");
        let msg = err.to_string();
        assert!(msg.contains("no-such-dir"), "{msg}");
        assert!(!msg.contains('\n'), "one-line message: {msg}");
        assert!(entries(parent.path()).is_empty());
    }

    #[test]
    fn failed_write_leaves_no_record_and_no_temp_files() {
        let dir = tempfile::tempdir().unwrap();
        let doc = fixture::document();
        let s = fixture::settings();
        write_document(dir.path(), &doc, &Format::ALL).unwrap();
        assert!(is_up_to_date(
            dir.path(),
            &doc.name,
            &doc.source_sha256,
            &doc.model.file_sha256,
            &s,
            &Format::ALL
        ));

        // A directory where the Markdown file should go makes the second file fail.
        let md = dir.path().join("gcc-central-asia.md");
        std::fs::remove_file(&md).unwrap();
        std::fs::create_dir(&md).unwrap();
        let err = write_document(dir.path(), &doc, &Format::ALL).unwrap_err();
        assert!(
            matches!(err, WriteError::Write { ref path, .. } if path == &md),
            "{err:?}"
        );
        assert!(err.to_string().contains("gcc-central-asia.md"));

        // The old record was withdrawn before rewriting, so nothing claims completeness.
        assert!(read_record(dir.path(), &doc.name).is_none());
        assert!(!is_up_to_date(
            dir.path(),
            &doc.name,
            &doc.source_sha256,
            &doc.model.file_sha256,
            &s,
            &[Format::Html]
        ));
        assert_eq!(
            entries(dir.path()),
            [
                "gcc-central-asia.docx",
                "gcc-central-asia.en.txt",
                "gcc-central-asia.html",
                "gcc-central-asia.md"
            ]
        );
    }

    #[test]
    fn up_to_date_only_when_everything_matches() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let doc = fixture::document();
        let src = doc.source_sha256.as_str();
        let model = doc.model.file_sha256.as_str();
        let s = fixture::settings();
        let formats = [Format::Html, Format::Markdown];

        assert!(
            !is_up_to_date(d, &doc.name, src, model, &s, &formats),
            "nothing written yet"
        );
        write_document(d, &doc, &formats).unwrap();
        assert!(is_up_to_date(d, &doc.name, src, model, &s, &formats));
        assert!(is_up_to_date(d, &doc.name, src, model, &s, &[Format::Json]));

        assert!(!is_up_to_date(
            d,
            &doc.name,
            &"c".repeat(64),
            model,
            &s,
            &formats
        ));
        assert!(!is_up_to_date(
            d,
            &doc.name,
            src,
            &"c".repeat(64),
            &s,
            &formats
        ));
        let other = Settings {
            prompt_version: s.prompt_version + 1,
            ..s.clone()
        };
        assert!(!is_up_to_date(d, &doc.name, src, model, &other, &formats));
        let no_summary = Settings {
            summary: false,
            ..s.clone()
        };
        assert!(!is_up_to_date(
            d,
            &doc.name,
            src,
            model,
            &no_summary,
            &formats
        ));
        assert!(
            !is_up_to_date(d, &doc.name, src, model, &s, &[Format::Html, Format::Text]),
            "text was never written"
        );
        assert!(!is_up_to_date(d, "other-name", src, model, &s, &formats));

        std::fs::remove_file(d.join("gcc-central-asia.md")).unwrap();
        assert!(
            !is_up_to_date(d, &doc.name, src, model, &s, &formats),
            "md removed"
        );
        assert!(is_up_to_date(d, &doc.name, src, model, &s, &[Format::Html]));

        let json = d.join("gcc-central-asia.json");
        let text = std::fs::read_to_string(&json).unwrap();
        std::fs::write(&json, &text[..text.len() / 2]).unwrap();
        assert!(read_record(d, &doc.name).is_none());
        assert!(
            !is_up_to_date(d, &doc.name, src, model, &s, &[Format::Html]),
            "corrupt json"
        );
    }
}
