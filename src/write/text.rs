//! `NAME.en.txt`: the English translation alone, for reading or further processing.

use crate::document::TranslatedDocument;

/// The English text, paragraphs separated by a blank line.
///
/// Sentences the other outputs mark (flagged, unsure or noted) are deliberately left
/// unmarked here: this file is meant for further processing (search, diffing, feeding
/// other tools), where inline markers would end up in the text as if the translation
/// said them. The marks are shown in the HTML, Markdown and Word outputs, and
/// `NAME.json` has the warnings and confidences.
pub fn render(doc: &TranslatedDocument) -> String {
    doc.english_text()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::write::fixture;

    #[test]
    fn english_paragraphs_separated_by_blank_lines() {
        let doc = fixture::document();
        let text = render(&doc);
        let blocks: Vec<&str> = text.trim_end().split("\n\n").collect();
        let expected: Vec<&str> = doc
            .paragraphs
            .iter()
            .map(|p| p.translation.as_str())
            .collect();
        assert_eq!(blocks, expected);
        assert!(text.ends_with(".\n\nLeave a Reply\n"));
        assert!(!text.chars().any(crate::load::is_arabic_letter));
    }

    #[test]
    fn flagged_sentences_are_not_marked() {
        let doc = fixture::flagged_document();
        let text = render(&doc);
        assert_eq!(text, doc.english_text());
        assert!(text.contains(&doc.paragraphs[1].translation));
        for marker in ["⚠", "<mark", "numbers:", "flagged"] {
            assert!(!text.contains(marker), "{marker} in {text}");
        }
    }

    #[test]
    fn unsure_and_noted_sentences_are_not_marked_either() {
        let doc = fixture::review_document();
        let text = render(&doc);
        assert_eq!(text, doc.english_text());
        for marker in ["❔", "ⁱ", "confidence", "note:", "0.32"] {
            assert!(!text.contains(marker), "{marker} in {text}");
        }
    }
}
