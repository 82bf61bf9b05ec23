//! TMX 1.4, the format translation tools exchange memories in: the memory is written as
//! TMX, and a TMX file (a CAT tool's memory, a translator's approved work) is read into it.

use std::path::Path;

/// One translation unit as exported: source, translation, model, creation date.
pub struct Unit<'a> {
    pub source: &'a str,
    pub translation: &'a str,
    pub model: &'a str,
    pub created: &'a str,
}

/// The TMX document of `units` (Arabic source, English target).
pub fn write(units: &[Unit]) -> String {
    let mut xml = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<tmx version=\"1.4\">\n  <header creationtool=\"tarjama\" creationtoolversion=\"{}\" datatype=\"plaintext\" segtype=\"sentence\" adminlang=\"en\" srclang=\"ar\" o-tmf=\"tarjama\"/>\n  <body>\n",
        env!("CARGO_PKG_VERSION")
    );
    for unit in units {
        xml.push_str(&format!(
            "    <tu creationdate=\"{}\">\n      <prop type=\"x-model\">{}</prop>\n      <tuv xml:lang=\"ar\"><seg>{}</seg></tuv>\n      <tuv xml:lang=\"en\"><seg>{}</seg></tuv>\n    </tu>\n",
            xml_text(unit.created),
            xml_text(unit.model),
            xml_text(unit.source),
            xml_text(unit.translation)
        ));
    }
    xml.push_str("  </body>\n</tmx>\n");
    xml
}

/// The (Arabic, English) pairs of a TMX document; units without both languages are
/// skipped. `Err` says what is wrong with the document.
pub fn read(text: &str) -> Result<Vec<(String, String)>, String> {
    let doc = roxmltree::Document::parse(text).map_err(|e| format!("not TMX: {e}"))?;
    if !doc.root_element().has_tag_name("tmx") {
        return Err(format!(
            "not TMX: the root element is <{}>",
            doc.root_element().tag_name().name()
        ));
    }
    let mut pairs = Vec::new();
    for unit in doc.descendants().filter(|n| n.has_tag_name("tu")) {
        let mut arabic = None;
        let mut english = None;
        for variant in unit.children().filter(|n| n.has_tag_name("tuv")) {
            let Some(seg) = variant.children().find(|n| n.has_tag_name("seg")) else {
                continue;
            };
            let text = segment_text(seg);
            match language(variant).as_deref() {
                Some(l) if l == "ar" || l.starts_with("ar-") => arabic = arabic.or(Some(text)),
                Some(l) if l == "en" || l.starts_with("en-") => english = english.or(Some(text)),
                _ => {}
            }
        }
        if let (Some(a), Some(e)) = (arabic, english) {
            if !a.trim().is_empty() && !e.trim().is_empty() {
                pairs.push((a, e));
            }
        }
    }
    Ok(pairs)
}

/// A variant's language, lowercased: `xml:lang` (TMX 1.4) or `lang` (TMX 1.1).
fn language(variant: roxmltree::Node) -> Option<String> {
    variant
        .attribute(("http://www.w3.org/XML/1998/namespace", "lang"))
        .or_else(|| variant.attribute("lang"))
        .map(str::to_ascii_lowercase)
}

/// The words of a `<seg>`: its text and that of its highlighted parts, without the
/// native formatting codes TMX keeps in `<bpt>`, `<ept>`, `<it>`, `<ph>` and `<ut>`.
fn segment_text(seg: roxmltree::Node) -> String {
    let mut out = String::new();
    for node in seg.descendants().filter(|n| n.is_text()) {
        let in_code = node.ancestors().take_while(|a| *a != seg).any(|a| {
            ["bpt", "ept", "it", "ph", "ut"]
                .iter()
                .any(|code| a.has_tag_name(*code))
        });
        if !in_code {
            out.push_str(node.text().unwrap_or_default());
        }
    }
    out.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Pairs from two line-aligned files (line n of `english` translates line n of
/// `arabic`), the layout of parallel corpora; blank pairs are skipped.
pub fn read_aligned(arabic: &Path, english: &Path) -> Result<Vec<(String, String)>, String> {
    let read = |path: &Path| {
        std::fs::read(path)
            .map_err(|e| format!("{}: {e}", path.display()))
            .and_then(|bytes| {
                String::from_utf8(bytes).map_err(|_| format!("{}: not UTF-8 text", path.display()))
            })
    };
    let (a, e) = (read(arabic)?, read(english)?);
    let (a_lines, e_lines): (Vec<&str>, Vec<&str>) = (a.lines().collect(), e.lines().collect());
    if a_lines.len() != e_lines.len() {
        return Err(format!(
            "{} has {} lines but {} has {}; the files must be line-aligned",
            arabic.display(),
            a_lines.len(),
            english.display(),
            e_lines.len()
        ));
    }
    Ok(a_lines
        .into_iter()
        .zip(e_lines)
        .filter(|(a, e)| !a.trim().is_empty() && !e.trim().is_empty())
        .map(|(a, e)| (a.trim().to_string(), e.trim().to_string()))
        .collect())
}

/// Text safe inside an XML 1.0 element: markup escaped, characters XML forbids dropped.
fn xml_text(s: &str) -> String {
    let allowed: String = s
        .chars()
        .filter(|&c| {
            matches!(c, '\t' | '\n' | '\r')
                || ('\u{20}'..='\u{D7FF}').contains(&c)
                || ('\u{E000}'..='\u{FFFD}').contains(&c)
                || c >= '\u{10000}'
        })
        .collect();
    html_escape::encode_text(&allowed).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn written_tmx_reads_back() {
        let xml = write(&[Unit {
            source: "أ < ب & ج",
            translation: "A < B & \"C\"\u{1}",
            model: "tiny",
            created: "20261130T000000Z",
        }]);
        assert!(xml.contains("<seg>أ &lt; ب &amp; ج</seg>"), "{xml}");
        assert_eq!(
            read(&xml).unwrap(),
            vec![("أ < ب & ج".to_string(), "A < B & \"C\"".to_string())]
        );
    }

    #[test]
    fn reads_other_tools_tmx() {
        let xml = r#"<?xml version="1.0"?>
<tmx version="1.1"><header srclang="EN-US"/><body>
  <tu><tuv lang="EN-US"><seg>The <bpt i="1">&lt;b&gt;</bpt>council<ept i="1">&lt;/b&gt;</ept> met</seg></tuv>
      <tuv lang="AR-SA"><seg>اجتمع المجلس</seg></tuv></tu>
  <tu><tuv lang="fr"><seg>Le conseil</seg></tuv><tuv lang="ar"><seg>المجلس</seg></tuv></tu>
</body></tmx>"#;
        assert_eq!(
            read(xml).unwrap(),
            vec![("اجتمع المجلس".to_string(), "The council met".to_string())]
        );
        assert!(read("<html></html>").unwrap_err().contains("not TMX"));
        assert!(read("<tmx><body>").unwrap_err().contains("not TMX"));
    }

    #[test]
    fn aligned_files_must_have_equal_lines() {
        let dir = tempfile::tempdir().unwrap();
        let (a, e) = (dir.path().join("a.ar"), dir.path().join("e.en"));
        std::fs::write(&a, "اجتمع المجلس\n\nانتهى\n").unwrap();
        std::fs::write(&e, "The council met\nx\nIt ended\n").unwrap();
        assert_eq!(read_aligned(&a, &e).unwrap().len(), 2);
        std::fs::write(&e, "The council met\n").unwrap();
        assert!(read_aligned(&a, &e).unwrap_err().contains("line-aligned"));
    }
}
