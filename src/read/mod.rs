//! Read: one reader per document format, each turning the bytes of its format into
//! blocks of text with their place in the document's structure.
//!
//! Everything after a reader (normalization, classification, segmentation, the
//! writers) is shared and lives in [`crate::load`]. To add a format, write one file
//! here with a type implementing [`Reader`] and list it in [`READERS`].

use crate::document::{Extraction, Link, Role};
use crate::load::LoadError;

pub mod docx;
pub mod html;
pub mod image;
pub mod markdown;
pub mod pdf;
pub mod text;
pub mod tool;

/// A block as a reader found it, before normalization.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceBlock {
    pub role: Role,
    pub text: String,
    /// Where it is in the source (see [`crate::document::Block::position`]).
    pub position: Option<String>,
    pub links: Vec<Link>,
    /// False for text the source asks to keep as it is (`translate="no"`, code, a
    /// passage marked as another language): copied through, never sent to the model.
    pub translate: bool,
}

impl SourceBlock {
    pub fn new(role: Role, text: impl Into<String>) -> Self {
        Self {
            role,
            text: text.into(),
            position: None,
            links: Vec::new(),
            translate: true,
        }
    }

    pub fn at(mut self, position: impl Into<String>) -> Self {
        self.position = Some(position.into());
        self
    }
}

/// What a reader gives back for one document.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Extracted {
    pub blocks: Vec<SourceBlock>,
    /// How the text was obtained, for formats where that can go wrong (PDF, images).
    pub extraction: Option<Extraction>,
}

impl From<Vec<SourceBlock>> for Extracted {
    fn from(blocks: Vec<SourceBlock>) -> Self {
        Self {
            blocks,
            extraction: None,
        }
    }
}

/// Turns the bytes of one document format into blocks.
pub trait Reader: Sync {
    /// Short name recorded in each document's record (`html`, `pdf`, ...).
    fn format(&self) -> &'static str;

    /// File extensions (lower case, no dot) this reader is chosen for.
    fn extensions(&self) -> &'static [&'static str];

    /// Whether `bytes` are recognizably this format, for stdin and files whose
    /// extension names no reader (a PDF saved as `.bin`).
    fn sniff(&self, _bytes: &[u8]) -> bool {
        false
    }

    /// Reads one document; `path` is for messages. Errors name the file and say what
    /// to do, in one line.
    fn read(&self, path: &str, bytes: &[u8]) -> Result<Extracted, LoadError>;
}

/// Every format tarjama reads. Plain text comes last: it is the fallback for anything
/// no other reader recognizes.
pub static READERS: &[&dyn Reader] = &[
    &markdown::Markdown,
    &html::Html,
    &docx::Docx,
    &pdf::Pdf,
    &image::Image,
    &text::PlainText,
];

/// Extensions picked up when a directory is given, from the registered readers.
pub fn extensions() -> impl Iterator<Item = &'static str> {
    READERS.iter().flat_map(|r| r.extensions().iter().copied())
}

/// The reader for a file: by its extension, else by its content, else plain text.
pub fn reader_for(path: &str, bytes: &[u8]) -> &'static dyn Reader {
    let extension = std::path::Path::new(path)
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase);
    if let Some(extension) = extension {
        if let Some(reader) = READERS
            .iter()
            .find(|r| r.extensions().contains(&extension.as_str()))
        {
            return *reader;
        }
    }
    READERS
        .iter()
        .find(|r| r.sniff(bytes))
        .copied()
        .unwrap_or(&text::PlainText)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn readers_are_chosen_by_extension_then_content() {
        assert_eq!(reader_for("a/b.MD", b"# x").format(), "markdown");
        assert_eq!(reader_for("notes.txt", b"x").format(), "text");
        assert_eq!(reader_for("-", b"plain").format(), "text");
        assert_eq!(reader_for("noext", b"plain").format(), "text");
        assert_eq!(reader_for("report.DOCX", b"").format(), "docx");
        assert_eq!(reader_for("page.htm", b"").format(), "html");
        assert_eq!(reader_for("scan.TIF", b"").format(), "image");
        assert_eq!(reader_for("letter.bin", b"%PDF-1.7\n").format(), "pdf");
        assert_eq!(reader_for("-", b"<!DOCTYPE html><p>x").format(), "html");
    }

    #[test]
    fn every_extension_belongs_to_one_reader() {
        let all: Vec<_> = extensions().collect();
        for e in &all {
            assert_eq!(all.iter().filter(|x| x == &e).count(), 1, "{e}");
            assert_eq!(e.to_ascii_lowercase(), *e);
        }
        assert!(all.contains(&"txt") && all.contains(&"md"));
    }
}
