//! `NAME.json`: the complete record of a translated document, and the skip marker.

use crate::document::TranslatedDocument;

/// Pretty JSON of `doc` with a trailing newline; parses back to an equal document.
pub fn render(doc: &TranslatedDocument) -> Result<String, serde_json::Error> {
    let mut json = serde_json::to_string_pretty(doc)?;
    json.push('\n');
    Ok(json)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::write::fixture;

    #[test]
    fn round_trips() {
        for doc in [fixture::document(), fixture::hostile_document()] {
            let json = render(&doc).unwrap();
            assert!(json.ends_with("}\n"));
            let back: TranslatedDocument = serde_json::from_str(&json).unwrap();
            assert_eq!(back, doc);
        }
    }

    #[test]
    fn round_trips_without_summary() {
        let mut doc = fixture::document();
        doc.summary = None;
        let json = render(&doc).unwrap();
        assert!(json.contains("\"summary\": null"));
        assert_eq!(
            serde_json::from_str::<TranslatedDocument>(&json).unwrap(),
            doc
        );
    }

    #[test]
    fn uses_the_documented_field_names() {
        let json = render(&fixture::document()).unwrap();
        let value: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(value["paragraphs"][0]["kind"], "heading");
        assert_eq!(value["paragraphs"][3]["kind"], "passthrough");
        assert_eq!(value["model"]["name"], "opus-mt-ar-en");
        assert_eq!(value["settings"]["prompt_version"], 3);
    }
}
