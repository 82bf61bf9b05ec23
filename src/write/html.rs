//! `NAME.html`: a self-contained bilingual page, Arabic and English side by side.

use std::fmt::Write;

use html_escape::{encode_double_quoted_attribute, encode_text};

use super::{
    extraction_note, hover, notes_count, pieces, rows, safe_href, sentences_count, Mark,
    MarkCounts, Piece, Row, NO_TRANSLATION,
};
use crate::check::Warning;
use crate::document::{ParagraphKind, Role, TranslatedDocument, TranslatedParagraph};

/// Shared by the document pages and the digest so a run's files look like one set.
/// Inline, because the files are meant to be mailed or archived without anything beside them.
pub(crate) const STYLE: &str = r#"
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif;
  line-height: 1.5; color: #1b1b1b; background: #fff; max-width: 75rem; margin: 2rem auto; padding: 0 1rem; }
h1 { font-size: 1.75rem; line-height: 1.25; margin: 0 0 .25rem; }
.meta { font-size: .85rem; color: #5a5a5a; margin: .25rem 0; overflow-wrap: anywhere; }
.summary { background: #f4f6f9; border-left: 4px solid #2f5f8f; padding: .6rem 1rem; margin: 1rem 0 1.5rem; }
.summary h2 { font-size: .8rem; text-transform: uppercase; letter-spacing: .06em; color: #2f5f8f; margin: 0 0 .25rem; }
.summary p { margin: 0; white-space: pre-line; }
.none { color: #5a5a5a; font-style: italic; }
.flags { background: #fff6dc; border-left: 4px solid #d9a400; padding: .4rem 1rem; margin: 0 0 1.5rem; }
.unsure-notice { border-left: 4px dotted #6a3d9a; padding: .4rem 1rem; margin: 0 0 1.5rem; }
.note-notice { color: #5a5a5a; font-size: .85rem; padding: 0 1.25rem; margin: 0 0 1.5rem; }
.flags + .unsure-notice, .flags + .note-notice, .unsure-notice + .note-notice { margin-top: -1rem; }
mark.flag { background: #ffe8a3; color: inherit; text-decoration: underline dotted #a26f00;
  text-underline-offset: .2em; cursor: help; }
span.unsure { text-decoration: underline dotted #6a3d9a; text-decoration-thickness: 2px;
  text-underline-offset: .25em; cursor: help; }
span.note { text-decoration: underline dotted #a0a0a0; text-underline-offset: .25em; cursor: help; }
span.note.badge { font-size: .6em; font-weight: normal; color: #5a5a5a; vertical-align: middle; }
table.bilingual { width: 100%; border-collapse: collapse; table-layout: fixed; }
table.bilingual > thead th { font-size: .8rem; text-transform: uppercase; letter-spacing: .06em; color: #5a5a5a;
  text-align: left; border-bottom: 2px solid #ccc; padding: .4rem .75rem; }
table.bilingual > thead th[lang="ar"] { text-align: right; }
table.bilingual td { vertical-align: top; padding: .6rem .75rem; border-bottom: 1px solid #e2e2e2;
  white-space: pre-line; overflow-wrap: anywhere; }
[lang="ar"] { text-align: right; font-family: "Noto Naskh Arabic", "Amiri", "Scheherazade New", "Geeza Pro",
  "Traditional Arabic", "Arabic Typesetting", "Noto Sans Arabic", "Segoe UI", Tahoma, serif;
  font-size: 1.15em; line-height: 1.9; }
td h2 { font-size: 1.15rem; line-height: 1.4; margin: 0; }
td[lang="ar"] h2 { font-size: 1.25rem; line-height: 1.7; }
tr.passthrough td { color: #5a5a5a; font-style: italic; }
.extraction { background: #fdecea; border-left: 4px solid #b3261e; padding: .4rem 1rem; margin: 0 0 1rem; }
.extraction.clean { background: none; border-left-color: #ccc; }
td h3, td h4, td h5, td h6 { font-size: 1.05rem; margin: 0; }
td ul, td ol { margin: 0; padding-inline-start: 1.25rem; }
td blockquote { margin: 0; padding-inline-start: .75rem; border-inline-start: 3px solid #ccc; }
tr.caption td { font-style: italic; color: #3a3a3a; }
table.source-table { width: 100%; border-collapse: collapse; table-layout: fixed; }
table.source-table td, table.source-table th { border: 1px solid #d0d0d0; padding: .3rem .5rem;
  vertical-align: top; white-space: pre-line; }
table.source-table th { background: #f4f4f4; }
.links { font-size: .85rem; margin-top: .3rem; overflow-wrap: anywhere; }
ol.digest { padding-left: 1.5rem; }
ol.digest li { margin-bottom: 1.25rem; }
ol.digest h2 { font-size: 1.15rem; margin: 0; }
ol.digest p { margin: .2rem 0; }
section.failures h2 { font-size: 1.15rem; color: #8a1c1c; }
a { color: #1f4f7f; }
@media print {
  body { max-width: none; margin: 0; padding: 0; font-size: 10.5pt; }
  .summary { background: none; border-left-color: #888; }
  tr, li { break-inside: avoid; }
  thead { display: table-header-group; }
  a { color: inherit; text-decoration: none; }
  mark.flag::after { content: " [" attr(title) "]"; font-size: .85em; }
  span.unsure::after { content: " (" attr(title) ")"; font-size: .85em; }
  span.note::after { content: " (" attr(title) ")"; font-size: .75em; color: #5a5a5a; }
}
"#;

/// Wraps `body` into a complete page. `title` is escaped here; `body` must already be.
pub(crate) fn page(title: &str, body: &str) -> String {
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n{body}</body>\n</html>\n",
        encode_text(title)
    )
}

/// Renders the bilingual page for `doc`.
pub fn render(doc: &TranslatedDocument) -> String {
    let mut body = String::new();
    header(&mut body, doc);
    extraction(&mut body, doc);
    summary(&mut body, doc);
    notices(&mut body, doc);
    table(&mut body, &doc.paragraphs);
    page(&doc.title, &body)
}

fn header(out: &mut String, doc: &TranslatedDocument) {
    let _ = write!(
        out,
        "<header>\n<h1>{}{}</h1>\n<p class=\"meta\">Source: <code>{}</code> · Model: {}</p>\n</header>\n",
        encode_text(&doc.title),
        flag_badge(&doc.title_warnings, "title flagged"),
        encode_text(&doc.source_path),
        encode_text(&doc.model.name),
    );
}

/// How the text was obtained from a PDF or image, above everything it affects.
fn extraction(out: &mut String, doc: &TranslatedDocument) {
    let Some(note) = extraction_note(doc) else {
        return;
    };
    let clean = doc
        .extraction
        .as_ref()
        .is_some_and(|e| e.method == crate::document::ExtractionMethod::TextLayer);
    let class = if clean {
        "extraction clean"
    } else {
        "extraction"
    };
    let _ = writeln!(out, "<p class=\"{class}\">{}.</p>", encode_text(&note));
}

fn summary(out: &mut String, doc: &TranslatedDocument) {
    match doc.summary.as_deref() {
        Some(text) => {
            let _ = write!(
                out,
                "<section class=\"summary\">\n<h2>Summary{}</h2>\n<p>{}</p>\n</section>\n",
                flag_badge(&doc.summary_warnings, "flagged"),
                encode_text(text.trim())
            );
        }
        None => out.push_str("<p class=\"summary none\">No summary for this document.</p>\n"),
    }
}

/// What follows a title or summary that `warnings` doubt, its tooltip giving the
/// reasons: a highlighted "⚠ LABEL" when one is an error, a small grey "ⁱ note" when
/// all are notes, nothing when there are none.
pub(crate) fn flag_badge(warnings: &[Warning], label: &str) -> String {
    let title = encode_double_quoted_attribute(&hover(warnings, None)).into_owned();
    match Mark::of(warnings, None) {
        Mark::Error => format!(
            " <mark class=\"flag\" title=\"{title}\">⚠ {}</mark>",
            encode_text(label)
        ),
        Mark::Note => format!(" <span class=\"note badge\" title=\"{title}\">ⁱ note</span>"),
        Mark::LowConfidence | Mark::None => String::new(),
    }
}

/// Tells the reader, before the text, what the marks below mean and how many there are:
/// flagged sentences first, as they matter most, and notes on form last, subdued.
fn notices(out: &mut String, doc: &TranslatedDocument) {
    let counts = MarkCounts::of(doc);
    if counts.errors > 0 {
        let _ = writeln!(
            out,
            "<p class=\"flags\">{} flagged for review: highlighted below; hover for the reason.</p>",
            sentences_count(counts.errors)
        );
    }
    if counts.unsure > 0 {
        let _ = writeln!(
            out,
            "<p class=\"unsure-notice\">{} the model was unsure of: underlined with dots below; \
             hover for its confidence.</p>",
            sentences_count(counts.unsure)
        );
    }
    if counts.notes > 0 {
        let _ = writeln!(
            out,
            "<p class=\"note-notice\">{} on form: underlined in grey below; hover to read {}.</p>",
            notes_count(counts.notes),
            if counts.notes == 1 { "it" } else { "them" }
        );
    }
}

fn table(out: &mut String, paragraphs: &[TranslatedParagraph]) {
    out.push_str(
        "<table class=\"bilingual\">\n<thead><tr><th dir=\"rtl\" lang=\"ar\">العربية</th>\
         <th lang=\"en\">English</th></tr></thead>\n<tbody>\n",
    );
    for row in rows(paragraphs) {
        match row {
            Row::Paragraph(p) => paragraph_row(out, p),
            Row::TableRow(cells) => table_row(out, &cells),
        }
    }
    out.push_str("</tbody>\n</table>\n");
}

/// A paragraph's two sides as escaped HTML: its sentences, each flagged one marked.
fn sides(p: &TranslatedParagraph) -> (String, String) {
    match p.kind {
        ParagraphKind::Passthrough => (
            encode_text(&p.source).into_owned(),
            encode_text(&p.translation).into_owned(),
        ),
        ParagraphKind::Heading | ParagraphKind::Body => (
            cell(&pieces(&p.source, &p.sentences, |s| &s.source)),
            cell(&pieces(&p.translation, &p.sentences, |s| &s.translation)),
        ),
    }
}

/// One paragraph as a row, its role kept on both sides (a heading stays a heading, a
/// list item an item). Cell contents carry no surrounding whitespace because the cells
/// use `white-space: pre-line` to keep line breaks inside a paragraph.
fn paragraph_row(out: &mut String, p: &TranslatedParagraph) {
    let (source, translation) = sides(p);
    let (source, links) = with_links(source, p);
    let source = wrap_role(&p.block.role, &source);
    let translation = wrap_role(&p.block.role, &translation) + &links;
    let class = match (p.kind, &p.block.role) {
        (ParagraphKind::Passthrough, _) => "passthrough",
        (_, Role::Heading { .. }) => "heading",
        (_, Role::ListItem { .. }) => "list-item",
        (_, Role::Caption) => "caption",
        (_, Role::Quote) => "quote",
        _ => "body",
    };
    // Copied text such as "Leave a Reply" is usually Latin, so let the browser pick
    // the direction instead of forcing right-to-left.
    let source_attributes = if p.kind == ParagraphKind::Passthrough {
        "dir=\"auto\""
    } else {
        "dir=\"rtl\" lang=\"ar\""
    };
    let _ = writeln!(
        out,
        "<tr class=\"{class}\"><td {source_attributes}>{source}</td>\
         <td lang=\"en\">{translation}</td></tr>"
    );
}

/// The markup a role puts around a cell's text.
fn wrap_role(role: &Role, html: &str) -> String {
    match *role {
        Role::Heading { level } => {
            // The page's own <h1> is the document title, so the source's levels start at h2.
            let h = (level.saturating_add(1)).clamp(2, 6);
            format!("<h{h}>{html}</h{h}>")
        }
        Role::ListItem {
            ordered,
            depth,
            number,
        } => {
            let indent = format!(
                " style=\"margin-inline-start: {}rem\"",
                f32::from(depth) * 1.5
            );
            match (ordered, number) {
                (true, Some(n)) => format!("<ol{indent}><li value=\"{n}\">{html}</li></ol>"),
                (true, None) => format!("<ol{indent}><li>{html}</li></ol>"),
                (false, _) => format!("<ul{indent}><li>{html}</li></ul>"),
            }
        }
        Role::Quote => format!("<blockquote>{html}</blockquote>"),
        Role::Paragraph | Role::Caption | Role::TableCell { .. } => html.to_string(),
    }
}

/// One row of a source table: the row's cells as a small table on each side, Arabic
/// right-to-left, so that the reader sees the table as it was, row by row.
fn table_row(out: &mut String, cells: &[&TranslatedParagraph]) {
    let mut source = String::new();
    let mut translation = String::new();
    for p in cells {
        let tag = match p.block.role {
            Role::TableCell { header: true, .. } => "th",
            _ => "td",
        };
        let (s, t) = sides(p);
        let (s, links) = with_links(s, p);
        let _ = write!(source, "<{tag}>{s}</{tag}>");
        let _ = write!(translation, "<{tag}>{t}{links}</{tag}>");
    }
    let _ = writeln!(
        out,
        "<tr class=\"table-row\"><td dir=\"rtl\" lang=\"ar\">\
         <table class=\"source-table\" dir=\"rtl\"><tr>{source}</tr></table></td>\
         <td lang=\"en\"><table class=\"source-table\"><tr>{translation}</tr></table></td></tr>"
    );
}

/// The source side with each link's text made a link where it appears whole, and the
/// English side's list of targets (the English words of a link cannot be located).
fn with_links(mut source: String, p: &TranslatedParagraph) -> (String, String) {
    let mut targets = Vec::new();
    for link in &p.block.links {
        let Some(href) = safe_href(&link.href) else {
            continue;
        };
        let href = encode_double_quoted_attribute(href);
        if let Some(linked) = link_in_text(&source, &encode_text(&link.text), &href) {
            source = linked;
        }
        targets.push(format!(
            "<a href=\"{href}\" rel=\"noopener noreferrer\">{href}</a>"
        ));
    }
    let list = if targets.is_empty() {
        String::new()
    } else {
        format!("<div class=\"links\">Links: {}</div>", targets.join(" · "))
    };
    (source, list)
}

/// `html` with the first occurrence of `text` outside any tag wrapped in a link.
fn link_in_text(html: &str, text: &str, href: &str) -> Option<String> {
    if text.is_empty() {
        return None;
    }
    let mut in_tag = false;
    for (i, c) in html.char_indices() {
        match c {
            '<' => in_tag = true,
            '>' => in_tag = false,
            _ if !in_tag && html[i..].starts_with(text) => {
                let end = i + text.len();
                if html[i..end].contains(['<', '>']) {
                    return None;
                }
                return Some(format!(
                    "{}<a href=\"{href}\" rel=\"noopener noreferrer\">{text}</a>{}",
                    &html[..i],
                    &html[end..]
                ));
            }
            _ => {}
        }
    }
    None
}

/// Escaped cell text with each marked sentence wrapped by [`wrapper`], its title giving
/// the reasons and the confidence.
fn cell(pieces: &[Piece]) -> String {
    let mut out = String::new();
    for piece in pieces {
        let (text, warnings, confidence) = match *piece {
            Piece::Text(text) => (text, &[][..], None),
            Piece::Sentence {
                text,
                warnings,
                confidence,
            } => (text, warnings, confidence),
        };
        let Some((tag, class)) = wrapper(Mark::of(warnings, confidence)) else {
            out.push_str(&encode_text(text));
            continue;
        };
        let text = if text.is_empty() {
            NO_TRANSLATION
        } else {
            text
        };
        let _ = write!(
            out,
            "<{tag} class=\"{class}\" title=\"{}\">{}</{tag}>",
            encode_double_quoted_attribute(&hover(warnings, confidence)),
            encode_text(text)
        );
    }
    out
}

/// The element and class a marked sentence is wrapped in: a highlighting `<mark>` only
/// for a flag, so that an unsure or noted sentence never looks like one.
fn wrapper(mark: Mark) -> Option<(&'static str, &'static str)> {
    match mark {
        Mark::Error => Some(("mark", "flag")),
        Mark::LowConfidence => Some(("span", "unsure")),
        Mark::Note => Some(("span", "note")),
        Mark::None => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::{CheckKind, Warning};
    use crate::write::fixture;

    /// The `<td ...>` opening tags in document order.
    fn cell_tags(html: &str) -> Vec<&str> {
        html.match_indices("<td")
            .map(|(i, _)| {
                let end = html[i..].find('>').unwrap();
                &html[i..=i + end]
            })
            .collect()
    }

    fn tbody(html: &str) -> &str {
        let start = html.find("<tbody>").unwrap();
        let end = html.find("</tbody>").unwrap();
        &html[start..end]
    }

    #[test]
    fn is_a_self_contained_utf8_page() {
        let html = render(&fixture::document());
        assert!(html.starts_with("<!DOCTYPE html>\n<html lang=\"en\">"));
        assert!(html.contains("<meta charset=\"utf-8\">"));
        assert!(html.contains("<style>"));
        for external in [
            "<script", "<link", "src=", "http://", "https://", "@import", "url(",
        ] {
            assert!(!html.contains(external), "page refers to {external}");
        }
        assert!(html.trim_end().ends_with("</html>"));
    }

    #[test]
    fn markup_in_the_document_stays_text() {
        let doc = fixture::hostile_document();
        let html = render(&doc);
        assert!(!html.contains("<script"), "{html}");
        assert!(!html.contains("</script"));
        assert!(!html.contains(" & co"), "bare ampersand");
        let escaped = "&lt;script&gt;alert(\"x\")&lt;/script&gt; &amp; co";
        // Paragraphs twice each (source and translation); title in <title> and <h1>;
        // summary, source path and model name once each.
        let expected = 2 * doc.paragraphs.len() + 2 + 3;
        assert_eq!(html.matches(escaped).count(), expected, "{html}");
        assert!(html.contains(&format!("<h1>Title {escaped}</h1>")));
        assert!(html.contains(&format!("<title>Title {escaped}</title>")));
        assert!(html.contains(&format!("<p>Summary {escaped}</p>")));
    }

    #[test]
    fn cells_carry_direction_and_language() {
        let doc = fixture::document();
        let html = render(&doc);
        let body = tbody(&html);
        assert_eq!(body.matches("<tr").count(), doc.paragraphs.len());

        let cells = cell_tags(body);
        assert_eq!(cells.len(), 2 * doc.paragraphs.len());
        for (p, pair) in doc.paragraphs.iter().zip(cells.chunks(2)) {
            let expected_source = match p.kind {
                ParagraphKind::Passthrough => "<td dir=\"auto\">",
                _ => "<td dir=\"rtl\" lang=\"ar\">",
            };
            assert_eq!(pair[0], expected_source, "{:?}", p.kind);
            assert_eq!(pair[1], "<td lang=\"en\">");
        }
        for p in &doc.paragraphs {
            assert!(body.contains(&encode_text(&p.source).into_owned()));
            assert!(body.contains(&encode_text(&p.translation).into_owned()));
        }
    }

    #[test]
    fn headings_render_as_headings_in_both_cells() {
        let doc = fixture::document();
        let html = render(&doc);
        let heading = &doc.paragraphs[0];
        assert_eq!(heading.kind, ParagraphKind::Heading);
        assert!(html.contains(&format!(
            "<td dir=\"rtl\" lang=\"ar\"><h2>{}</h2></td><td lang=\"en\"><h2>{}</h2></td>",
            heading.source, heading.translation
        )));
        // Only the heading paragraph (two cells) puts headings inside the table.
        assert_eq!(tbody(&html).matches("<h2>").count(), 2);
    }

    /// The contents of every `<td>` in the table body, in document order.
    fn cells(html: &str) -> Vec<&str> {
        let body = tbody(html);
        body.match_indices("<td")
            .map(|(i, _)| {
                let open = i + body[i..].find('>').unwrap() + 1;
                let close = open + body[open..].find("</td>").unwrap();
                &body[open..close]
            })
            .collect()
    }

    /// What a reader sees of a cell: tags removed, entities decoded.
    fn visible_text(cell: &str) -> String {
        let mut text = String::new();
        let mut in_tag = false;
        for c in cell.chars() {
            match c {
                '<' => in_tag = true,
                '>' if in_tag => in_tag = false,
                _ if !in_tag => text.push(c),
                _ => {}
            }
        }
        html_escape::decode_html_entities(&text).into_owned()
    }

    #[test]
    fn flagged_sentence_is_marked_in_both_cells() {
        let doc = fixture::flagged_document();
        let html = render(&doc);
        let cells = cells(&html);
        let (arabic, english) = (cells[2], cells[3]);
        assert_eq!(
            english.matches("<mark class=\"flag\"").count(),
            1,
            "{english}"
        );
        assert_eq!(
            arabic.matches("<mark class=\"flag\"").count(),
            1,
            "{arabic}"
        );
        assert_eq!(html.matches("<mark").count(), 2, "no other marks");

        let title = "title=\"numbers: number(s) from the source missing: 5 \
                     &lt;b&gt;&amp;&quot;&lt;/b&gt;; length: English is 2.60× the length of the Arabic\"";
        assert!(english.contains(title), "{english}");
        assert!(arabic.contains(title), "{arabic}");
        assert!(!html.contains("<b>"), "{html}");
        assert!(!html.contains("</b>"), "{html}");

        // The mark holds exactly the flagged sentence, on each side.
        let flagged = &doc.paragraphs[1].sentences[1];
        assert!(english.contains(&format!("\">{}</mark>", encode_text(&flagged.translation))));
        assert!(arabic.contains(&format!("\">{}</mark>", encode_text(&flagged.source))));
        assert!(english.starts_with(&*encode_text(&doc.paragraphs[1].sentences[0].translation)));

        assert!(html.contains(
            "<p class=\"flags\">1 sentence flagged for review: highlighted below; \
             hover for the reason.</p>"
        ));
        assert!(html.find("class=\"flags\"").unwrap() > html.find("class=\"summary\"").unwrap());
        assert!(html.contains("mark.flag {"), "styled");
    }

    #[test]
    fn cells_show_exactly_the_paragraph_text() {
        for doc in [
            fixture::document(),
            fixture::flagged_document(),
            fixture::review_document(),
        ] {
            let html = render(&doc);
            let cells = cells(&html);
            assert_eq!(cells.len(), 2 * doc.paragraphs.len());
            for (p, pair) in doc.paragraphs.iter().zip(cells.chunks(2)) {
                assert_eq!(visible_text(pair[0]), p.source);
                assert_eq!(visible_text(pair[1]), p.translation);
            }
        }
    }

    #[test]
    fn unflagged_documents_have_no_marks() {
        for doc in [fixture::document(), fixture::hostile_document()] {
            let html = render(&doc);
            assert!(!html.contains("<mark"), "{html}");
            assert!(!html.contains("<span"), "{html}");
            assert!(!html.contains("class=\"flags\""));
            assert!(!html.contains("-notice\""));
        }
    }

    #[test]
    fn unsure_and_noted_sentences_look_apart_from_flags() {
        let doc = fixture::review_document();
        let html = render(&doc);
        let cells = cells(&html);
        let (arabic, english) = (cells[2], cells[3]);
        let [unsure, flagged] = [0, 1].map(|i| &doc.paragraphs[1].sentences[i]);

        // Unsure: a dotted underline, not a highlight, its confidence on hover.
        let title = "title=\"low confidence: 0.32\"";
        assert!(
            english.starts_with(&format!(
                "<span class=\"unsure\" {title}>{}</span> ",
                unsure.translation
            )),
            "{english}"
        );
        assert!(arabic.starts_with(&format!(
            "<span class=\"unsure\" {title}>{}</span> ",
            unsure.source
        )));
        // Flagged and unsure: a flag, whose hover gives the reason, then the confidence.
        let title = "title=\"numbers: number(s) from the source missing: 5; low confidence: 0.41\"";
        assert!(
            english.ends_with(&format!(
                "<mark class=\"flag\" {title}>{}</mark>",
                encode_text(&flagged.translation)
            )),
            "{english}"
        );
        assert!(arabic.contains(&format!("<mark class=\"flag\" {title}>")));
        // Noted: a grey underline, never a mark.
        let title = format!("title=\"note: glossary: {}\"", fixture::NOTE);
        let noted = &doc.paragraphs[2].sentences[0];
        assert_eq!(
            cells[5],
            format!("<span class=\"note\" {title}>{}</span>", noted.translation)
        );
        assert_eq!(
            html.matches("<mark").count(),
            2,
            "only the flag, on both sides"
        );
        assert_eq!(html.matches("<span class=\"unsure\"").count(), 2);
        assert_eq!(html.matches("<span class=\"note\"").count(), 2);

        // The notices count what is marked, the note apart from the flags.
        let notices = [
            "<p class=\"flags\">1 sentence flagged for review: highlighted below; hover for the reason.</p>",
            "<p class=\"unsure-notice\">1 sentence the model was unsure of: underlined with dots below; \
             hover for its confidence.</p>",
            "<p class=\"note-notice\">1 note on form: underlined in grey below; hover to read it.</p>",
            "<table class=\"bilingual\">",
        ];
        let at: Vec<usize> = notices
            .iter()
            .map(|n| html.find(n).unwrap_or_else(|| panic!("{n} in {html}")))
            .collect();
        assert!(at.windows(2).all(|w| w[0] < w[1]), "in this order: {at:?}");

        // Each look is styled, on screen and in print, and the two differ.
        let rule = |selector: &str| {
            let start = STYLE
                .find(&format!("\n{selector} {{"))
                .unwrap_or_else(|| panic!("{selector}"));
            &STYLE[start..start + STYLE[start..].find('}').unwrap()]
        };
        assert!(rule("span.unsure").contains("underline dotted #6a3d9a"));
        assert!(rule("span.note").contains("underline dotted #a0a0a0"));
        assert!(!rule("span.unsure").contains("background"));
        for print in ["span.unsure::after", "span.note::after"] {
            assert!(
                STYLE.contains(&format!("  {print} {{ content: ")),
                "{print}"
            );
        }
    }

    #[test]
    fn flagged_headings_are_marked_inside_the_heading() {
        let mut doc = fixture::document();
        fixture::flag(
            &mut doc,
            0,
            0,
            vec![Warning::error(
                CheckKind::Glossary,
                "«مجلس التعاون» should be rendered as “GCC”",
            )],
        );
        let html = render(&doc);
        let title = "title=\"glossary: «مجلس التعاون» should be rendered as “GCC”\"";
        let heading = &doc.paragraphs[0];
        assert!(
            html.contains(&format!(
                "<td dir=\"rtl\" lang=\"ar\"><h2><mark class=\"flag\" {title}>{}</mark></h2></td>\
                 <td lang=\"en\"><h2><mark class=\"flag\" {title}>{}</mark></h2></td>",
                heading.source, heading.translation
            )),
            "{html}"
        );
    }

    #[test]
    fn line_breaks_inside_a_paragraph_survive_marking() {
        let mut doc = fixture::flagged_document();
        let p = &mut doc.paragraphs[1];
        let first = p.sentences[0].source.clone();
        p.source = format!("{first}\n{}", p.sentences[1].source);
        let html = render(&doc);
        let arabic = cells(&html)[2];
        assert!(
            arabic.starts_with(&format!("{first}\n<mark class=\"flag\"")),
            "{arabic}"
        );
        assert_eq!(visible_text(arabic), doc.paragraphs[1].source);
    }

    #[test]
    fn flagged_empty_translation_still_shows_its_mark() {
        let mut doc = fixture::flagged_document();
        doc.paragraphs[1].sentences[1].translation.clear();
        fixture::rejoin(&mut doc.paragraphs[1]);
        let html = render(&doc);
        let english = cells(&html)[3];
        assert!(
            english.ends_with(&format!("\">{}</mark>", crate::write::NO_TRANSLATION)),
            "{english}"
        );
        assert!(english.starts_with(&format!("{} <mark", doc.paragraphs[1].translation)));
    }

    #[test]
    fn lists_tables_and_links_keep_their_structure() {
        let html = render(&fixture::structured_document());
        assert!(html.contains(
            "<td dir=\"rtl\" lang=\"ar\"><ol style=\"margin-inline-start: 0rem\"><li value=\"2\">عمان</li></ol></td>"
        ));
        let rows: Vec<&str> = html
            .lines()
            .filter(|l| l.starts_with("<tr class=\"table-row\""))
            .collect();
        assert_eq!(rows.len(), 2);
        assert!(rows[0].contains(
            "<table class=\"source-table\" dir=\"rtl\"><tr><th>الدولة</th><th>العاصمة</th></tr></table>"
        ));
        assert!(rows[1].contains(
            "<table class=\"source-table\"><tr><td>Qatar</td><td>Doha</td></tr></table>"
        ));
        let href = "https://example.org/ar?a=1&amp;b=2";
        assert!(html.contains(&format!(
            "زوروا <a href=\"{href}\" rel=\"noopener noreferrer\">موقع الأمانة</a> العامة."
        )));
        assert!(html.contains(&format!("<div class=\"links\">Links: <a href=\"{href}\"")));
        assert!(!html.to_ascii_lowercase().contains("javascript:"));
    }

    #[test]
    fn a_pdf_read_by_ocr_says_so_above_the_text() {
        let mut doc = fixture::document();
        assert!(!render(&doc).contains("class=\"extraction"));
        doc.format = "pdf".into();
        doc.extraction = Some(crate::document::Extraction {
            method: crate::document::ExtractionMethod::Ocr,
            notes: vec!["no text layer".into()],
        });
        let html = render(&doc);
        assert!(html.contains(
            "<p class=\"extraction\">Read from PDF by OCR: check the Arabic against the original; no text layer.</p>"
        ));
        assert!(html.find("class=\"extraction").unwrap() < html.find("class=\"bilingual").unwrap());
    }

    #[test]
    fn summary_on_top_or_a_note() {
        let mut doc = fixture::document();
        let html = render(&doc);
        let summary = html.find("class=\"summary\"").unwrap();
        assert!(summary < html.find("<table").unwrap());
        assert!(html.contains(doc.summary.as_deref().unwrap()));
        assert!(html.contains("Model: opus-mt-ar-en"));
        assert!(html.contains("samples/gcc central asia.txt"));

        doc.summary = None;
        let html = render(&doc);
        assert!(html.contains("No summary"));
        assert!(!html.contains("<h2>Summary</h2>"));
    }
}
