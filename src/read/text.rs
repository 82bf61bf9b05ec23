//! Plain text (`.txt`, and anything no other reader claims): one block per line.

use std::fmt;

use super::{Extracted, Reader, SourceBlock};
use crate::document::{ParagraphKind, Role};
use crate::load::{self, LoadError};

pub struct PlainText;

impl Reader for PlainText {
    fn format(&self) -> &'static str {
        "text"
    }

    fn extensions(&self) -> &'static [&'static str] {
        &["txt"]
    }

    /// Press releases put one paragraph per line; some separate them with blank lines,
    /// some (sample 003) do not. Every non-empty line is a paragraph, which handles
    /// both; a hard-wrapped paragraph is rare in this genre. Plain text has no markup
    /// for headings, so a short line without final punctuation is taken for one, all at
    /// the top level.
    fn read(&self, path: &str, bytes: &[u8]) -> Result<Extracted, LoadError> {
        let text = load::normalize(decode(path, bytes)?);
        let blocks = text
            .lines()
            .enumerate()
            .filter(|(_, line)| !line.trim().is_empty())
            .map(|(i, line)| {
                let role = match load::classify(line) {
                    ParagraphKind::Heading => Role::Heading { level: 1 },
                    _ => Role::Paragraph,
                };
                SourceBlock::new(role, line.trim()).at(format!("line {}", i + 1))
            })
            .collect::<Vec<_>>();
        Ok(blocks.into())
    }
}

/// Turn raw bytes into text, or say precisely why they are not a text file.
pub fn decode<'a>(path: &str, bytes: &'a [u8]) -> Result<&'a str, LoadError> {
    let path = path.to_string();
    if bytes.is_empty() {
        return Err(LoadError::Empty { path });
    }
    // Windows editors save "Unicode" as UTF-16 with a BOM; that would otherwise
    // be reported as binary (it is full of NULs), which is confusing.
    if bytes.starts_with(&[0xFF, 0xFE]) || bytes.starts_with(&[0xFE, 0xFF]) {
        return Err(LoadError::Utf16 { path });
    }
    if let Some(reason) = binary_reason(bytes) {
        return Err(LoadError::Binary { path, reason });
    }
    std::str::from_utf8(bytes).map_err(|e| {
        let byte = e.valid_up_to();
        let (line, column) = line_column(&bytes[..byte]);
        LoadError::NotUtf8 {
            path,
            line,
            column,
            byte,
        }
    })
}

/// Share of control bytes above which a file is taken for binary. Real text has
/// essentially none besides tab/newline; 10% leaves room for a stray escape code.
const MAX_CONTROL_PERCENT: usize = 10;
/// Only the start is sampled: enough to tell, without scanning huge files.
const BINARY_SAMPLE_BYTES: usize = 8192;

fn binary_reason(bytes: &[u8]) -> Option<BinaryReason> {
    if bytes.contains(&0) {
        return Some(BinaryReason::NulBytes);
    }
    let sample = &bytes[..bytes.len().min(BINARY_SAMPLE_BYTES)];
    let controls = sample.iter().filter(|&&b| is_binary_control(b)).count();
    let percent = controls * 100 / sample.len();
    // percent is at most 100, so it fits a u8
    (percent > MAX_CONTROL_PERCENT).then_some(BinaryReason::ControlCharacters(percent as u8))
}

/// C0 controls and DEL, except the whitespace ones text files legitimately contain.
fn is_binary_control(b: u8) -> bool {
    (b < 0x20 && !matches!(b, b'\t' | b'\n' | b'\r' | 0x0B | 0x0C)) || b == 0x7F
}

/// 1-based line and column just after `prefix` (which is valid UTF-8: it is the
/// part `from_utf8` accepted). Columns count characters, as editors show them.
fn line_column(prefix: &[u8]) -> (usize, usize) {
    let text = std::str::from_utf8(prefix).unwrap_or("");
    let mut line = 1;
    let mut column = 1;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            // CRLF is one line break; a lone CR (old Mac files) is one too.
            '\r' if chars.peek() == Some(&'\n') => {}
            '\n' | '\r' => {
                line += 1;
                column = 1;
            }
            _ => column += 1,
        }
    }
    (line, column)
}

/// What gave a binary file away.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BinaryReason {
    NulBytes,
    /// Percentage of control bytes in the sampled prefix.
    ControlCharacters(u8),
}

impl fmt::Display for BinaryReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BinaryReason::NulBytes => f.write_str("contains NUL bytes"),
            BinaryReason::ControlCharacters(pct) => write!(f, "{pct}% control characters"),
        }
    }
}
