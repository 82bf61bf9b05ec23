//! Images (`.png`, `.jpg`, `.tif`): a scanned or photographed page, read by Tesseract
//! in Arabic. Lines are rejoined into paragraphs as for a PDF's text.

use super::pdf::{self, Para};
use super::tool::{Call, TESSERACT};
use super::{Extracted, Reader};
use crate::document::{Extraction, ExtractionMethod};
use crate::load::LoadError;

pub struct Image;

/// Tesseract's page segmentation mode for images: automatic, as for PDF pages.
pub const IMAGE_PSM: u32 = pdf::OCR_PSM;

impl Reader for Image {
    fn format(&self) -> &'static str {
        "image"
    }

    fn extensions(&self) -> &'static [&'static str] {
        &["png", "jpg", "jpeg", "tif", "tiff"]
    }

    fn sniff(&self, bytes: &[u8]) -> bool {
        bytes.starts_with(b"\x89PNG\r\n\x1a\n")
            || bytes.starts_with(&[0xFF, 0xD8, 0xFF])
            || bytes.starts_with(b"II*\0")
            || bytes.starts_with(b"MM\0*")
    }

    fn read(&self, path: &str, bytes: &[u8]) -> Result<Extracted, LoadError> {
        // Tesseract reads the image from stdin: no temporary file to leave behind.
        let call = Call::new(TESSERACT).arg("stdin").stdin(bytes);
        let text = pdf::tesseract(path, "image", call, IMAGE_PSM)?;
        let blocks = pdf::to_blocks(paragraphs_of(&text));
        if blocks.is_empty() {
            return Err(LoadError::unreadable(
                path,
                "no text recognized in the image",
                "check that it is a scan of a document at 200 dpi or more",
            ));
        }
        Ok(Extracted {
            blocks,
            extraction: Some(Extraction {
                method: ExtractionMethod::Ocr,
                notes: vec![
                    "read by OCR (Tesseract), which misreads some letters; check names and numbers against the original".into(),
                ],
            }),
        })
    }
}

/// Paragraphs of Tesseract's output: a multi-page TIFF comes back with a form feed
/// between pages. Lines with no letter or digit (specks read as `.` or `'`) go.
fn paragraphs_of(text: &str) -> Vec<Para> {
    let mut pages: Vec<Vec<String>> = text
        .split('\u{0C}')
        .map(|page| {
            pdf::ocr_lines(page)
                .into_iter()
                .map(|l| {
                    if l.chars().any(char::is_alphanumeric) {
                        l
                    } else {
                        String::new()
                    }
                })
                .collect()
        })
        .collect();
    while pages.last().is_some_and(|p| p.iter().all(|l| l.is_empty())) {
        pages.pop();
    }
    pdf::drop_running_lines(&mut pages);
    pdf::paragraphs(&pages)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::document::Role;

    fn fixture(name: &str) -> Vec<u8> {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/formats")
            .join(name);
        std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    }

    /// Tests that need Tesseract fail with the install line rather than skip: CI has it.
    fn read(name: &str, bytes: &[u8]) -> Result<Extracted, LoadError> {
        let result = Image.read(name, bytes);
        if let Err(e @ LoadError::MissingTool { .. }) = &result {
            panic!("{e} (this test needs it: apt-get install tesseract-ocr tesseract-ocr-ara)");
        }
        result
    }

    #[test]
    fn images_are_sniffed_by_their_magic_bytes() {
        assert!(Image.sniff(&fixture("release-scan.png")));
        assert!(Image.sniff(&[0xFF, 0xD8, 0xFF, 0xE0, 0, 0x10]));
        assert!(Image.sniff(b"II*\0\x08\0\0\0"));
        assert!(Image.sniff(b"MM\0*\0\0\0\x08"));
        assert!(!Image.sniff(b"%PDF-1.4"));
        assert!(!Image.sniff("نص".as_bytes()));
    }

    #[test]
    fn paragraphs_rejoin_lines_and_map_commas() {
        let text = "عنوان التقرير\n\nأكد الوزير, في كلمته أمام المؤتمر الذي عقد في العاصمة\nأهمية التعاون.\n\n.\n\u{0C}";
        let paras = paragraphs_of(text);
        let texts: Vec<&str> = paras.iter().map(|p| p.text.as_str()).collect();
        assert_eq!(
            texts,
            [
                "عنوان التقرير",
                "أكد الوزير، في كلمته أمام المؤتمر الذي عقد في العاصمة أهمية التعاون."
            ]
        );
    }

    #[test]
    fn the_scanned_page_reads_as_the_first_page_of_the_article() {
        let expected = std::fs::read_to_string(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("tests/fixtures/formats/release-scan.png.expected"),
        )
        .expect("expected text");
        let got = read("release-scan.png", &fixture("release-scan.png")).expect("reads");
        assert_eq!(
            got.extraction.as_ref().map(|e| e.method),
            Some(ExtractionMethod::Ocr)
        );
        let text: Vec<String> = got
            .blocks
            .iter()
            .map(|b| crate::load::normalize(&b.text))
            .collect();
        let rate = pdf::character_error_rate(&expected, &text.join("\n"));
        assert!(rate < IMAGE_CER_BOUND, "character error rate {rate:.4}");
        // One page has no other to show that its header is a running one: it stays.
        let title = got
            .blocks
            .iter()
            .position(|b| b.text.starts_with("الأمين العام لمجلس التعاون"));
        assert!(title.is_some_and(|i| i <= 1), "{:#?}", got.blocks);
        assert!(got
            .blocks
            .iter()
            .all(|b| b.position.as_deref() == Some("page 1")));
        assert!(matches!(got.blocks[1].role, Role::Heading { .. }));
    }

    /// Measured 2.7% on the fixture (docs/formats.md), the page's running header
    /// included, with room for other Tesseract builds.
    const IMAGE_CER_BOUND: f64 = 0.05;

    #[test]
    fn an_image_without_text_says_so() {
        // A blank white 64×64 grey PNG.
        let err = read("blank.png", &blank_png()).unwrap_err();
        let message = err.to_string();
        assert_eq!(
            message,
            "blank.png: no text recognized in the image; check that it is a scan of a document at 200 dpi or more"
        );
    }

    fn blank_png() -> Vec<u8> {
        use std::io::Write;
        let (w, h) = (64u32, 64u32);
        let mut raw = Vec::new();
        for _ in 0..h {
            raw.push(0u8);
            raw.extend(std::iter::repeat_n(255u8, w as usize));
        }
        let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
        z.write_all(&raw).expect("compress");
        let data = z.finish().expect("compress");
        let mut ihdr = Vec::new();
        ihdr.extend(w.to_be_bytes());
        ihdr.extend(h.to_be_bytes());
        ihdr.extend([8, 0, 0, 0, 0]);
        let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
        for (kind, body) in [(&b"IHDR"[..], ihdr), (b"IDAT", data), (b"IEND", Vec::new())] {
            png.extend((body.len() as u32).to_be_bytes());
            let mut crc = flate2::Crc::new();
            crc.update(kind);
            crc.update(&body);
            png.extend(kind);
            png.extend(&body);
            png.extend(crc.sum().to_be_bytes());
        }
        png
    }
}
