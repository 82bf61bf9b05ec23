//! Load: pick the reader for a document's format, then normalize and classify the
//! blocks it found, the same way for every format.
//!
//! Everything downstream (segmentation, prompts, caching by hash, the bilingual
//! writers) sees only the normalized text, so this is the one place that decides
//! what counts as "the same" Arabic text.

use std::path::Path;

use sha2::{Digest, Sha256};
use unicode_normalization::UnicodeNormalization;

use crate::document::{Block, Document, Paragraph, ParagraphKind};
use crate::read::{self, text::BinaryReason, SourceBlock};

/// Why a file could not be loaded. Every message is one line that names the file
/// and says what to do about it.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("{path}: no such file; check the path")]
    NotFound { path: String },

    #[error("{path}: is a directory, not a file; pass the text files inside it instead")]
    IsDirectory { path: String },

    #[error("{path}: cannot be read ({source}); check that it is readable")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },

    /// `line` and `column` are 1-based (column counts characters, as editors do);
    /// `byte` is the 0-based offset of the first invalid byte.
    #[error(
        "{path}: not valid UTF-8 at line {line}, column {column} (byte {byte}); \
         re-save the file as UTF-8 (it may be in a legacy encoding such as Windows-1256)"
    )]
    NotUtf8 {
        path: String,
        line: usize,
        column: usize,
        byte: usize,
    },

    #[error("{path}: is UTF-16 text; re-save the file as UTF-8")]
    Utf16 { path: String },

    #[error("{path}: looks like a binary file, not text ({reason}); give a plain-text UTF-8 file")]
    Binary { path: String, reason: BinaryReason },

    #[error("{path}: is empty; give a file that contains Arabic text")]
    Empty { path: String },

    #[error("{path}: contains only whitespace; give a file that contains Arabic text")]
    Blank { path: String },

    /// A file of a known format that cannot be read: `reason` says what is wrong with
    /// it, `fix` what the user can do.
    #[error("{path}: {reason}; {fix}")]
    Unreadable {
        path: String,
        reason: String,
        fix: String,
    },

    /// Reading this format needs a program that is not installed.
    #[error("{path}: reading {format} needs `{tool}`, which is not installed; install it with `apt-get install {package}`")]
    MissingTool {
        path: String,
        format: &'static str,
        tool: &'static str,
        package: &'static str,
    },
}

impl LoadError {
    pub fn unreadable(path: &str, reason: impl Into<String>, fix: impl Into<String>) -> Self {
        LoadError::Unreadable {
            path: path.to_string(),
            reason: reason.into(),
            fix: fix.into(),
        }
    }
}

/// Read and load a document from disk.
pub fn load_file(path: &Path) -> Result<Document, LoadError> {
    let shown = path.display().to_string();
    // Check the metadata first so a directory gets its own message instead of
    // an OS-specific "Is a directory" io error (or, on some systems, success).
    let meta = std::fs::metadata(path).map_err(|e| io_error(&shown, e))?;
    if meta.is_dir() {
        return Err(LoadError::IsDirectory { path: shown });
    }
    let bytes = std::fs::read(path).map_err(|e| io_error(&shown, e))?;
    load_bytes(&shown, &bytes)
}

fn io_error(path: &str, e: std::io::Error) -> LoadError {
    match e.kind() {
        std::io::ErrorKind::NotFound => LoadError::NotFound {
            path: path.to_string(),
        },
        _ => LoadError::Io {
            path: path.to_string(),
            source: e,
        },
    }
}

/// Load a document from raw bytes; `source_path` is what the user named (`-` for stdin),
/// and its extension chooses the reader.
pub fn load_bytes(source_path: &str, bytes: &[u8]) -> Result<Document, LoadError> {
    let shown = if source_path == "-" {
        "<stdin>".to_string()
    } else {
        source_path.to_string()
    };
    if bytes.is_empty() {
        return Err(LoadError::Empty { path: shown });
    }
    let reader = read::reader_for(source_path, bytes);
    let extracted = reader.read(&shown, bytes)?;
    let paragraphs: Vec<Paragraph> = extracted
        .blocks
        .into_iter()
        .filter_map(paragraph_of)
        .collect();
    if paragraphs.is_empty() {
        return Err(LoadError::Blank { path: shown });
    }
    Ok(Document {
        source_path: source_path.to_string(),
        source_sha256: hex::encode(Sha256::digest(bytes)),
        format: reader.format(),
        extraction: extracted.extraction,
        paragraphs,
    })
}

/// A reader's block as the pipeline sees it: normalized, and classified by how it is
/// translated; `None` when nothing visible is left.
fn paragraph_of(block: SourceBlock) -> Option<Paragraph> {
    let text = normalize(&block.text).trim().to_string();
    if text.is_empty() {
        return None;
    }
    let kind = if !block.translate {
        ParagraphKind::Passthrough
    } else if block.role.is_heading() && has_arabic(&text) {
        ParagraphKind::Heading
    } else {
        classify(&text)
    };
    Some(Paragraph {
        kind,
        text,
        block: Block {
            role: block.role,
            position: block.position,
            links: block.links,
        },
    })
}

/// Normalize text so that visually identical input gives identical output and
/// identical cache keys.
///
/// - a leading BOM is dropped; CRLF, lone CR and Unicode line/paragraph
///   separators become LF;
/// - zero-width characters (U+200B..U+200D, U+2060, U+FEFF) and bidi controls
///   are removed: they are invisible, and leaking them into prompts makes the
///   model echo them or treat a word as two. ZWNJ (U+200C) goes too: Persian
///   needs it, but Modern Standard Arabic does not, and in press releases it is
///   copy-paste debris;
/// - tatweel (U+0640) is removed: it is pure justification ("مـــجلس" is "مجلس");
/// - NBSP, the other Unicode space separators and tabs become a space; runs of
///   spaces collapse to one and lines are trimmed (indentation means nothing in
///   these documents);
/// - finally NFC, so decomposed input (e.g. alef + combining hamza) matches the
///   composed form (أ). NFKC is deliberately not used: it would also rewrite
///   characters such as superscripts and ligatures whose form matters.
pub fn normalize(text: &str) -> String {
    let text = text.strip_prefix('\u{FEFF}').unwrap_or(text);
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\r' => {
                if chars.peek() == Some(&'\n') {
                    chars.next();
                }
                out.push('\n');
            }
            '\n' | '\u{0B}' | '\u{0C}' | '\u{85}' | '\u{2028}' | '\u{2029}' => out.push('\n'),
            c if is_invisible(c) => {}
            c if is_space(c) => out.push(' '),
            // Any other control character is debris (a stray escape code).
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    let lines: Vec<String> = out.split('\n').map(collapse_spaces).collect();
    lines.join("\n").nfc().collect()
}

/// Zero-width characters, bidi controls and tatweel: removed outright.
fn is_invisible(c: char) -> bool {
    matches!(c,
        '\u{200B}'..='\u{200D}' | '\u{2060}' | '\u{FEFF}'
        | '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{061C}'
        | '\u{0640}')
}

/// Characters that are shown as (and mean) a plain space.
fn is_space(c: char) -> bool {
    matches!(
        c,
        ' ' | '\t' | '\u{00A0}' | '\u{2000}'..='\u{200A}' | '\u{202F}' | '\u{205F}' | '\u{3000}'
    )
}

fn collapse_spaces(line: &str) -> String {
    line.split(' ')
        .filter(|w| !w.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

/// Longest line, in words, that may still be a heading. Titles of the sample
/// press releases run to 16 words; a body paragraph without final punctuation is
/// almost always far longer than this.
const HEADING_MAX_WORDS: usize = 20;
/// And in characters, so that a run-on line of a few very long tokens is not a heading.
const HEADING_MAX_CHARS: usize = 160;

/// Decide how a paragraph is treated: no Arabic → passed through untouched; short
/// and without sentence-final punctuation → heading; anything else → body.
pub fn classify(paragraph: &str) -> ParagraphKind {
    if !has_arabic(paragraph) {
        return ParagraphKind::Passthrough;
    }
    let short = paragraph.split_whitespace().count() <= HEADING_MAX_WORDS
        && paragraph.chars().count() <= HEADING_MAX_CHARS;
    if short && !ends_with_sentence_punctuation(paragraph) {
        ParagraphKind::Heading
    } else {
        ParagraphKind::Body
    }
}

/// True if the text ends like a sentence: with `. ! ? ؟ … : ؛`, possibly followed
/// by closing quotes or brackets (`قال "نعم."`). A colon counts because a line
/// ending in one introduces what follows ("اجتماعات مع كل من:").
fn ends_with_sentence_punctuation(text: &str) -> bool {
    let core = text.trim_end().trim_end_matches(is_closing_punctuation);
    core.ends_with(['.', '!', '?', '؟', '…', ':', '؛'])
}

/// Closing quotes and brackets that may follow sentence-final punctuation.
pub(crate) fn is_closing_punctuation(c: char) -> bool {
    matches!(c, '"' | '\'' | '”' | '’' | '»' | '›' | ')' | ']' | '}')
}

/// True if the text contains at least one Arabic letter.
pub fn has_arabic(text: &str) -> bool {
    text.chars().any(is_arabic_letter)
}

/// True for letters of the Arabic script blocks (not digits or punctuation).
pub fn is_arabic_letter(c: char) -> bool {
    matches!(c, '\u{0621}'..='\u{064A}' | '\u{066E}'..='\u{06D3}' | '\u{06FA}'..='\u{06FF}' | '\u{0750}'..='\u{077F}' | '\u{08A0}'..='\u{08FF}' | '\u{FB50}'..='\u{FDFF}' | '\u{FE70}'..='\u{FEFF}')
}

/// Whitespace-separated words containing at least one Arabic letter.
pub fn count_arabic_words(text: &str) -> usize {
    text.split_whitespace()
        .filter(|w| w.chars().any(is_arabic_letter))
        .count()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::document::Role;

    fn sample(name: &str) -> Document {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("samples");
        let entry = std::fs::read_dir(&dir)
            .expect("samples directory")
            .filter_map(Result::ok)
            .find(|e| e.file_name().to_string_lossy().starts_with(name))
            .expect("sample file");
        load_file(&entry.path()).expect("sample loads")
    }

    fn kinds_of(doc: &Document, text: &str) -> ParagraphKind {
        doc.paragraphs
            .iter()
            .find(|p| p.text == text)
            .unwrap_or_else(|| panic!("no paragraph {text:?}"))
            .kind
    }

    #[test]
    fn normalize_strips_bom_and_line_endings() {
        assert_eq!(normalize("\u{FEFF}سطر\r\nآخر\rثالث\n"), "سطر\nآخر\nثالث\n");
    }

    #[test]
    fn normalize_removes_invisible_characters() {
        // zero-width space, ZWNJ, ZWJ, word joiner, BOM inside the text
        assert_eq!(
            normalize("مج\u{200B}لس\u{200C}ال\u{200D}تعا\u{2060}ون\u{FEFF}"),
            "مجلسالتعاون"
        );
        // bidi marks, embeddings, isolates and the Arabic letter mark
        assert_eq!(
            normalize("\u{200F}الرياض\u{200E} \u{202B}2022\u{202C} \u{2067}م\u{2069}\u{061C}"),
            "الرياض 2022 م"
        );
    }

    #[test]
    fn normalize_turns_unicode_spaces_into_single_spaces() {
        assert_eq!(
            normalize("أكد\u{00A0}معالي\u{2003}\u{2003}الأمين\u{202F}العام\t\tاليوم\u{3000}"),
            "أكد معالي الأمين العام اليوم"
        );
        assert_eq!(
            normalize("  بداية   ونهاية  \n  سطر  "),
            "بداية ونهاية\nسطر"
        );
    }

    #[test]
    fn normalize_removes_tatweel() {
        assert_eq!(normalize("مـــجلس الـتـعـاون"), "مجلس التعاون");
    }

    #[test]
    fn normalize_composes_to_nfc() {
        // alef + combining hamza above → أ; e + combining acute → é
        assert_eq!(normalize("\u{0627}\u{0654}كد"), "أكد");
        assert_eq!(normalize("Gu\u{0308}nde\u{0301}"), "Günd\u{00E9}");
    }

    #[test]
    fn plain_text_takes_each_nonempty_line() {
        let doc =
            load_bytes("a.txt", "أولى\n\n\nثانية\nثالثة\n  \n رابعة ".as_bytes()).expect("loads");
        let texts: Vec<_> = doc.paragraphs.iter().map(|p| p.text.as_str()).collect();
        assert_eq!(texts, vec!["أولى", "ثانية", "ثالثة", "رابعة"]);
        assert_eq!(doc.paragraphs[1].block.position.as_deref(), Some("line 4"));
        assert_eq!(doc.format, "text");
    }

    #[test]
    fn sample_003_single_newlines_gives_one_paragraph_per_line() {
        let doc = sample("003");
        assert_eq!(doc.paragraphs.len(), 14);
        assert!(doc.paragraphs[2].text.starts_with("شارك مؤسس السلام"));
        assert!(doc.paragraphs[13].text.starts_with("أيد رؤساء الدول"));
        assert_eq!(doc.paragraphs[0].kind, ParagraphKind::Heading);
        assert_eq!(doc.paragraphs[2].kind, ParagraphKind::Body);
    }

    #[test]
    fn sample_000_blank_lines_gives_one_paragraph_per_block() {
        let doc = sample("000");
        assert_eq!(doc.paragraphs.len(), 28);
        assert_eq!(doc.paragraphs[0].kind, ParagraphKind::Heading);
        assert_eq!(
            kinds_of(&doc, "الرياض – الأمانة العامة"),
            ParagraphKind::Heading
        );
        assert_eq!(kinds_of(&doc, "جمهورية تركمانستان"), ParagraphKind::Heading);
        // ends with a colon: introduces a list, so it is running text
        assert_eq!(
            kinds_of(&doc, "كما عقد معالي الأمين العام اجتماعات منفردة مع كلّ من:"),
            ParagraphKind::Body
        );
        let bodies = doc
            .paragraphs
            .iter()
            .filter(|p| p.kind == ParagraphKind::Body)
            .count();
        // title, dateline and five country subheadings are the 7 headings
        assert_eq!(bodies, 21);
        // the NBSPs of the source are gone
        assert!(doc.paragraphs.iter().all(|p| !p.text.contains('\u{A0}')));
    }

    #[test]
    fn sample_004_latin_boilerplate_is_passthrough() {
        let doc = sample("004");
        assert_eq!(doc.paragraphs.len(), 22);
        assert_eq!(doc.paragraphs[0].text, "Gündəm");
        assert_eq!(doc.paragraphs[0].kind, ParagraphKind::Passthrough);
        assert_eq!(kinds_of(&doc, "Leave a Reply"), ParagraphKind::Passthrough);
        assert_eq!(
            kinds_of(
                &doc,
                "Your email address will not be published. Required fields are marked *"
            ),
            ParagraphKind::Passthrough
        );
        assert_eq!(doc.paragraphs[1].kind, ParagraphKind::Heading);
        assert!(doc.paragraphs[1]
            .text
            .starts_with("الاجتماع التشاوري السادس"));
        assert_eq!(doc.paragraphs[2].kind, ParagraphKind::Body);
    }

    #[test]
    fn every_sample_loads_with_title_first() {
        for name in ["000", "001", "002", "003", "004"] {
            let doc = sample(name);
            assert_eq!(doc.source_sha256.len(), 64);
            assert!(doc.arabic_words() > 100, "{name}");
            let first_arabic = doc
                .paragraphs
                .iter()
                .find(|p| p.kind != ParagraphKind::Passthrough)
                .expect("arabic paragraph");
            // 001 and 002 have no title line: they open with running text
            let expected = if matches!(name, "001" | "002") {
                ParagraphKind::Body
            } else {
                ParagraphKind::Heading
            };
            assert_eq!(first_arabic.kind, expected, "{name}");
        }
    }

    #[test]
    fn classify_rules() {
        assert_eq!(classify("123 - 456."), ParagraphKind::Passthrough);
        assert_eq!(classify("Exit mobile version"), ParagraphKind::Passthrough);
        assert_eq!(
            classify("خطة العمل المشترك 2024-2028"),
            ParagraphKind::Heading
        );
        assert_eq!(classify("شاركها."), ParagraphKind::Body);
        assert_eq!(classify("هل يتحقق ذلك؟"), ParagraphKind::Body);
        assert_eq!(classify("قال الوزير \"نعم.\""), ParagraphKind::Body);
        assert_eq!(classify("قال الوزير «نعم»"), ParagraphKind::Heading);
        let long_line = "كلمة ".repeat(HEADING_MAX_WORDS + 1);
        assert_eq!(classify(long_line.trim()), ParagraphKind::Body);
    }

    #[test]
    fn sha256_is_of_the_raw_bytes() {
        let doc = load_bytes("-", "abc".as_bytes()).expect("loads");
        assert_eq!(
            doc.source_sha256,
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(doc.source_path, "-");
        // no Arabic at all is not an error: the caller warns
        assert_eq!(doc.paragraphs[0].kind, ParagraphKind::Passthrough);
    }

    #[test]
    fn invalid_utf8_reports_line_and_column() {
        let mut bytes = "سطر أول\nab سطر\n".as_bytes().to_vec();
        bytes.extend_from_slice(&[b'x', b'y', 0xC7, 0xE4]); // Windows-1256 "ال"
        let err = load_bytes("samples/x.txt", &bytes).unwrap_err();
        let LoadError::NotUtf8 {
            line, column, byte, ..
        } = err
        else {
            panic!("wrong error {err:?}");
        };
        let message = err.to_string();
        assert_eq!((line, column), (3, 3));
        assert_eq!(byte, bytes.len() - 2);
        assert!(message.starts_with("samples/x.txt: not valid UTF-8 at line 3, column 3"));
        assert!(message.contains("re-save the file as UTF-8"));
        assert!(!message.contains('\n'));

        let err = load_bytes("a.txt", b"ok\r\nbad \xFF").unwrap_err();
        assert!(err.to_string().contains("line 2, column 5"), "{err}");
    }

    #[test]
    fn empty_and_blank_input_are_errors() {
        let err = load_bytes("empty.txt", b"").unwrap_err();
        assert!(matches!(err, LoadError::Empty { .. }));
        assert!(err.to_string().starts_with("empty.txt: is empty"));

        let err = load_bytes("blank.txt", " \n\t\r\n\u{A0}".as_bytes()).unwrap_err();
        assert!(matches!(err, LoadError::Blank { .. }));
        assert!(err
            .to_string()
            .starts_with("blank.txt: contains only whitespace"));

        // invisible characters alone are blank too
        let err = load_bytes("-", "\u{FEFF}\u{200F}\n".as_bytes()).unwrap_err();
        assert!(err
            .to_string()
            .starts_with("<stdin>: contains only whitespace"));
    }

    #[test]
    fn binary_input_is_rejected() {
        // (a PNG is no longer binary junk: the image reader takes it, by extension or magic)
        let err = load_bytes("blob.bin", b"\x7fELF\x02\x01\x01\0\0\0\0\0").unwrap_err();
        assert!(matches!(
            err,
            LoadError::Binary {
                reason: BinaryReason::NulBytes,
                ..
            }
        ));
        assert!(err
            .to_string()
            .starts_with("blob.bin: looks like a binary file"));

        let controls: Vec<u8> = (0..200u8)
            .map(|i| if i % 3 == 0 { 0x01 } else { b'a' })
            .collect();
        let err = load_bytes("ctl.bin", &controls).unwrap_err();
        assert!(matches!(
            err,
            LoadError::Binary {
                reason: BinaryReason::ControlCharacters(_),
                ..
            }
        ));

        let err = load_bytes("utf16.txt", b"\xFF\xFE'\x06D\x06").unwrap_err();
        assert!(matches!(err, LoadError::Utf16 { .. }));
        assert!(err.to_string().contains("utf16.txt"));
    }

    #[test]
    fn missing_file_and_directory_are_named() {
        let dir = tempfile::tempdir().expect("tempdir");
        let missing = dir.path().join("nope.txt");
        let err = load_file(&missing).unwrap_err();
        assert!(matches!(err, LoadError::NotFound { .. }));
        assert!(err
            .to_string()
            .starts_with(&format!("{}: no such file", missing.display())));

        let err = load_file(dir.path()).unwrap_err();
        assert!(matches!(err, LoadError::IsDirectory { .. }));
        assert!(err.to_string().contains(&dir.path().display().to_string()));
    }

    #[test]
    fn load_file_round_trip() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("doc.txt");
        std::fs::write(&path, "\u{FEFF}العنوان\r\n\r\nنص الفقرة الأولى.\r\n").expect("write");
        let doc = load_file(&path).expect("loads");
        assert_eq!(doc.source_path, path.display().to_string());
        assert_eq!(
            doc.paragraphs,
            vec![
                Paragraph {
                    kind: ParagraphKind::Heading,
                    text: "العنوان".into(),
                    block: Block {
                        role: Role::Heading { level: 1 },
                        position: Some("line 1".into()),
                        links: Vec::new(),
                    },
                },
                Paragraph {
                    kind: ParagraphKind::Body,
                    text: "نص الفقرة الأولى.".into(),
                    block: Block {
                        role: Role::Paragraph,
                        position: Some("line 3".into()),
                        links: Vec::new(),
                    },
                },
            ]
        );
    }
}
