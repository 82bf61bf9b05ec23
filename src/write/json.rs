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
    fn confidence_and_severity_round_trip() {
        let doc = fixture::review_document();
        let json = render(&doc).unwrap();
        let back: TranslatedDocument = serde_json::from_str(&json).unwrap();
        assert_eq!(back, doc);
        assert_eq!(back.confidence, doc.confidence);
        assert!(back.confidence.is_some());

        let value: serde_json::Value = serde_json::from_str(&json).unwrap();
        let sentences = &value["paragraphs"][1]["sentences"];
        assert_eq!(sentences[0]["confidence"], 0.32);
        assert_eq!(sentences[1]["confidence"], 0.41);
        assert_eq!(sentences[1]["warnings"][0]["severity"], "error");
        let noted = &value["paragraphs"][2]["sentences"][0];
        assert_eq!(noted["warnings"][0]["severity"], "note");
        assert_eq!(noted["warnings"][0]["check"], "glossary");
        // The document-level list keeps each warning's severity, in reading order.
        assert_eq!(value["warnings"][0]["severity"], "error");
        assert_eq!(value["warnings"][1]["severity"], "note");
        // Copied text has no confidence, and says nothing of one.
        assert!(value["paragraphs"][3]["sentences"][0]
            .get("confidence")
            .is_none());
        assert!(render(&fixture::document())
            .unwrap()
            .lines()
            .all(|l| !l.contains("\"confidence\"")));
    }

    #[test]
    fn records_from_before_severities_read_as_errors() {
        let doc = fixture::review_document();
        let mut value = serde_json::to_value(&doc).unwrap();
        let mut removed = 0;
        for p in value["paragraphs"].as_array_mut().unwrap() {
            for s in p["sentences"].as_array_mut().unwrap() {
                for w in s["warnings"].as_array_mut().unwrap() {
                    w.as_object_mut().unwrap().remove("severity").unwrap();
                    removed += 1;
                }
            }
        }
        assert_eq!(removed, 2);
        let back: TranslatedDocument = serde_json::from_value(value).unwrap();
        let noted = &back.paragraphs[2].sentences[0];
        assert!(noted.has_error(), "an old glossary warning is an error");
        assert_eq!(back.flagged_sentences(), 2);
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
