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
    fn warnings_round_trip() {
        let doc = fixture::flagged_document();
        assert_eq!(doc.warnings.len(), 2);
        let json = render(&doc).unwrap();
        let back: TranslatedDocument = serde_json::from_str(&json).unwrap();
        assert_eq!(back, doc);
        assert_eq!(back.flagged_sentences(), 1);
        assert_eq!(back.paragraphs[1].sentences[1].warnings.len(), 2);

        let value: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(value["warnings"][0]["check"], "numbers");
        assert_eq!(value["warnings"][0]["paragraph"], 1);
        assert_eq!(value["warnings"][0]["sentence"], 1);
        assert_eq!(value["warnings"][1]["check"], "length");
        assert_eq!(
            value["paragraphs"][1]["sentences"][1]["warnings"][0]["message"],
            format!(
                "number(s) from the source missing: 5 {}",
                fixture::FLAG_EVIL
            )
        );
    }

    #[test]
    fn records_from_before_warnings_still_parse() {
        let doc = fixture::document();
        let mut value = serde_json::to_value(&doc).unwrap();
        // Strip every `warnings` field, as a record written before the checks would be.
        value.as_object_mut().unwrap().remove("warnings").unwrap();
        let mut removed = 0;
        for p in value["paragraphs"].as_array_mut().unwrap() {
            for s in p["sentences"].as_array_mut().unwrap() {
                s.as_object_mut().unwrap().remove("warnings").unwrap();
                removed += 1;
            }
        }
        assert_eq!(removed, 5);
        let old = serde_json::to_string_pretty(&value).unwrap();
        assert!(!old.contains("warnings"));
        let back: TranslatedDocument = serde_json::from_str(&old).unwrap();
        assert_eq!(back, doc);
        assert!(back.warnings.is_empty());
        assert_eq!(back.flagged_sentences(), 0);
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
