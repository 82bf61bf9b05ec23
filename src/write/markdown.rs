//! `NAME.md`: the bilingual document as a two-column Markdown table.

use std::fmt::Write;

use super::{
    extraction_note, hover, notes_count, pieces, rows, safe_href, sentences_count, Mark,
    MarkCounts, Piece, Row, NO_TRANSLATION,
};
use crate::check::Warning;
use crate::document::{ParagraphKind, Role, TranslatedDocument, TranslatedParagraph};

/// Follows a flagged English sentence; the reasons come after it in square brackets.
const FLAG: &str = "⚠️";
/// Follows a sentence the model was unsure of; its confidence comes after it.
const UNSURE: &str = "❔";
/// Follows a sentence with only notes on form: a small mark, as they matter least.
const NOTE: &str = "ⁱ";

/// Renders `doc` as Markdown: title, summary, then one table row per paragraph.
pub fn render(doc: &TranslatedDocument) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# {}{}\n",
        escape_line(&doc.title),
        flag_note(&doc.title_warnings, "title flagged")
    );
    match &doc.summary {
        Some(summary) => {
            let _ = writeln!(
                out,
                "**Summary:** {}{}\n",
                escape_line(summary),
                flag_note(&doc.summary_warnings, "summary flagged")
            );
        }
        None => out.push_str("_No summary for this document._\n\n"),
    }
    notices(&mut out, doc);
    let _ = writeln!(
        out,
        "_Source: {} · Model: {}_\n",
        escape_line(&doc.source_path),
        escape_line(&doc.model.name)
    );
    if let Some(note) = extraction_note(doc) {
        let _ = writeln!(out, "**{}.**\n", escape_line(&note));
    }
    out.push_str("| Arabic | English |\n| --- | --- |\n");
    for row in rows(&doc.paragraphs) {
        match row {
            Row::Paragraph(p) => out.push_str(&paragraph_row(p)),
            Row::TableRow(cells) => out.push_str(&table_row(&cells)),
        }
    }
    out
}

/// What the marks below mean and how many there are: flagged sentences first, as they
/// matter most, and notes on form last, in italics.
fn notices(out: &mut String, doc: &TranslatedDocument) {
    let counts = MarkCounts::of(doc);
    if counts.errors > 0 {
        let _ = writeln!(
            out,
            "**{} flagged for review** (marked {FLAG}).\n",
            sentences_count(counts.errors)
        );
    }
    if counts.unsure > 0 {
        let _ = writeln!(
            out,
            "**{} the model was unsure of** (marked {UNSURE}, with its confidence).\n",
            sentences_count(counts.unsure)
        );
    }
    if counts.notes > 0 {
        let _ = writeln!(
            out,
            "_{} on form (marked {NOTE})._\n",
            notes_count(counts.notes)
        );
    }
}

/// A paragraph's row, with the mark of its role in front of both sides and its links'
/// targets after the English.
fn paragraph_row(p: &TranslatedParagraph) -> String {
    let (source, translation) = cells(p);
    let mark = role_mark(&p.block.role);
    format!("| {mark}{source} | {mark}{translation}{} |\n", links(p))
}

/// One row of a source table: its cells side by side within each column, split by `│`
/// (a Markdown table cannot hold a table).
fn table_row(cells_of_row: &[&TranslatedParagraph]) -> String {
    let (sources, translations): (Vec<String>, Vec<String>) = cells_of_row
        .iter()
        .map(|p| {
            let (s, t) = cells(p);
            (s, format!("{t}{}", links(p)))
        })
        .unzip();
    format!(
        "| {} | {} |\n",
        sources.join(" │ "),
        translations.join(" │ ")
    )
}

/// `• `, `3. ` or `> ` before a list item or quote, indented by depth; nothing otherwise.
fn role_mark(role: &Role) -> String {
    match *role {
        Role::ListItem {
            ordered,
            depth,
            number,
        } => {
            let indent = "&emsp;".repeat(usize::from(depth));
            match (ordered, number) {
                (true, Some(n)) => format!("{indent}{n}. "),
                _ => format!("{indent}• "),
            }
        }
        Role::Quote => "❝ ".to_string(),
        _ => String::new(),
    }
}

/// ` (links: <href> …)` after the English: the targets of the source's links.
fn links(p: &TranslatedParagraph) -> String {
    let targets: Vec<String> = p
        .block
        .links
        .iter()
        .filter_map(|l| safe_href(&l.href))
        .map(|href| format!("<{}>", href.replace(['<', '>', ' '], "")))
        .collect();
    if targets.is_empty() {
        String::new()
    } else {
        format!(" (links: {})", targets.join(" "))
    }
}

/// Both sides of a paragraph as cell text: bold for a heading, a marker after each
/// marked sentence.
fn cells(p: &TranslatedParagraph) -> (String, String) {
    let source = escape_cell(&p.source);
    let heading = p.block.role.is_heading();
    match p.kind {
        ParagraphKind::Heading => {
            // A heading is one unit: bold text, then the reasons outside the bold.
            let pieces = pieces(&p.translation, &p.sentences, |s| &s.translation);
            let translation = english_cell(&pieces, false);
            let markers: String = pieces.iter().map(piece_marker).collect();
            if heading {
                (
                    format!("**{source}**"),
                    format!("**{translation}**{markers}"),
                )
            } else {
                (source, format!("{translation}{markers}"))
            }
        }
        ParagraphKind::Body => {
            let pieces = pieces(&p.translation, &p.sentences, |s| &s.translation);
            (source, english_cell(&pieces, true))
        }
        ParagraphKind::Passthrough => (source, escape_cell(&p.translation)),
    }
}

/// The English cell from its pieces, escaped like [`escape_cell`], with a [`marker`]
/// after each marked sentence when `markers` is set.
fn english_cell(pieces: &[Piece], markers: bool) -> String {
    let mut out = String::new();
    let last = pieces.len().saturating_sub(1);
    for (i, piece) in pieces.iter().enumerate() {
        let (Piece::Text(mut text) | Piece::Sentence { mut text, .. }) = *piece;
        let marker = piece_marker(piece);
        if !marker.is_empty() && text.is_empty() {
            text = NO_TRANSLATION;
        }
        if i == 0 {
            text = text.trim_start();
        }
        if i == last {
            text = text.trim_end();
        }
        out.push_str(&escape_fragment(text));
        if markers {
            out.push_str(&marker);
        }
    }
    out
}

/// ` ⚠️ LABEL *[reasons]*` after a title or summary that an error doubts, ` ⁱ *(note: …)*`
/// after one with only notes; nothing when there are no warnings.
pub(crate) fn flag_note(warnings: &[Warning], label: &str) -> String {
    match Mark::of(warnings, None) {
        Mark::Error => format!(
            " {FLAG} {label} *[{}]*",
            escape_fragment(&hover(warnings, None))
        ),
        _ => marker(warnings, None),
    }
}

/// The [`marker`] of a piece: nothing for plain text.
fn piece_marker(piece: &Piece) -> String {
    match *piece {
        Piece::Text(_) => String::new(),
        Piece::Sentence {
            warnings,
            confidence,
            ..
        } => marker(warnings, confidence),
    }
}

/// What follows a marked sentence, its reasons and confidence escaped so that they stay
/// in their cell: ` ⚠️ *[check: message; …]*` for a flag, ` ❔ *(low confidence: 0.32)*`
/// for an unsure sentence, ` ⁱ *(note: …)*` for notes only; nothing for an unmarked one.
fn marker(warnings: &[Warning], confidence: Option<f32>) -> String {
    let why = escape_fragment(&hover(warnings, confidence));
    match Mark::of(warnings, confidence) {
        Mark::Error => format!(" {FLAG} *[{why}]*"),
        Mark::LowConfidence => format!(" {UNSURE} *({why})*"),
        Mark::Note => format!(" {NOTE} *({why})*"),
        Mark::None => String::new(),
    }
}

/// Escapes text for a table cell, so that it stays in its cell and renders as written:
/// a `|` would start a new column and a newline would end the row.
pub(crate) fn escape_cell(text: &str) -> String {
    escape_fragment(text.trim())
}

/// [`escape_cell`] for part of a cell: the same, without trimming.
fn escape_fragment(text: &str) -> String {
    escape_inline(text)
        .replace('|', "\\|")
        .replace("\r\n", "<br>")
        .replace(['\n', '\r'], "<br>")
}

/// Escapes text for one line of Markdown outside a table (a heading, a list item).
pub(crate) fn escape_line(text: &str) -> String {
    escape_inline(&text.split_whitespace().collect::<Vec<_>>().join(" "))
}

/// Makes text literal: HTML entities for what would be markup (Markdown passes raw
/// HTML through), backslashes for the characters that start emphasis, code or links.
fn escape_inline(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '\\' | '`' | '*' | '_' | '[' | ']' => {
                out.push('\\');
                out.push(c);
            }
            _ => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::{CheckKind, Warning};
    use crate::write::fixture;

    /// Column separators in a table row: pipes not escaped by an odd run of backslashes.
    fn unescaped_pipes(line: &str) -> usize {
        let mut count = 0;
        let mut backslashes = 0;
        for c in line.chars() {
            match c {
                '\\' => backslashes += 1,
                '|' if backslashes % 2 == 0 => {
                    count += 1;
                    backslashes = 0;
                }
                _ => backslashes = 0,
            }
        }
        count
    }

    fn table_rows(md: &str) -> Vec<&str> {
        md.lines().filter(|l| l.starts_with('|')).collect()
    }

    #[test]
    fn title_summary_then_one_row_per_paragraph() {
        let doc = fixture::document();
        let md = render(&doc);
        assert!(md.starts_with(&format!("# {}\n", doc.title)));
        assert!(md.contains(doc.summary.as_deref().unwrap()));
        let rows = table_rows(&md);
        assert_eq!(rows[0], "| Arabic | English |");
        assert_eq!(rows[1], "| --- | --- |");
        assert_eq!(rows.len(), 2 + doc.paragraphs.len());
        assert_eq!(
            rows[2],
            format!(
                "| **{}** | **{}** |",
                doc.paragraphs[0].source, doc.paragraphs[0].translation
            )
        );
        assert_eq!(rows[5], "| Leave a Reply | Leave a Reply |");
    }

    #[test]
    fn pipes_and_newlines_keep_two_columns() {
        let mut doc = fixture::document();
        doc.paragraphs[1].source = "أ | ب || ج \\| د\nسطر ثان\r\nثالث".to_string();
        doc.paragraphs[1].translation = "a | b || c \\| d\nsecond line\r\nthird |".to_string();
        doc.paragraphs[0].translation = "| heading with pipes |".to_string();
        let md = render(&doc);
        let rows = table_rows(&md);
        assert_eq!(rows.len(), 2 + doc.paragraphs.len(), "{md}");
        for row in &rows {
            assert_eq!(unescaped_pipes(row), 3, "row {row:?}");
        }
        assert!(rows[3].contains("a \\| b \\|\\| c \\\\\\| d<br>second line<br>third \\|"));
        assert!(!md.contains('\r'));
    }

    #[test]
    fn raw_html_and_markdown_stay_text() {
        let doc = fixture::hostile_document();
        let md = render(&doc);
        assert!(!md.contains("<script"), "{md}");
        assert!(!md.contains(" & co"));
        assert!(md.starts_with("# Title &lt;script&gt;alert(\"x\")&lt;/script&gt; &amp; co\n"));

        let mut doc = fixture::document();
        doc.paragraphs[2].translation = "*not bold* [not](a-link) `code` snake_case".to_string();
        let md = render(&doc);
        assert!(md.contains("\\*not bold\\* \\[not\\](a-link) \\`code\\` snake\\_case"));
    }

    #[test]
    fn flagged_sentences_carry_a_marker_and_rows_keep_two_cells() {
        let doc = fixture::flagged_document();
        let md = render(&doc);
        let rows = table_rows(&md);
        assert_eq!(rows.len(), 2 + doc.paragraphs.len(), "{md}");
        for row in &rows {
            assert_eq!(unescaped_pipes(row), 3, "row {row:?}");
        }
        let evil = "&lt;b&gt;&amp;\"&lt;/b&gt;";
        assert!(
            rows[3].ends_with(&format!(
                "Central Asian republics. He hoped the 6th tour {evil} would open new horizons. \
                 ⚠️ *[numbers: number(s) from the source missing: 5 {evil}; \
                 length: English is 2.60× the length of the Arabic]* |"
            )),
            "{}",
            rows[3]
        );
        assert_eq!(
            md.matches("⚠️").count(),
            2,
            "one marker and the notice: {md}"
        );
        assert!(!md.contains("<b>"));
        assert!(md.contains("\n**1 sentence flagged for review** (marked ⚠️).\n"));
        assert!(md.find("flagged for review").unwrap() < md.find("| Arabic |").unwrap());
    }

    #[test]
    fn reasons_with_pipes_and_line_breaks_stay_in_their_cell() {
        let mut doc = fixture::document();
        let warning = |message: &str| Warning::error(CheckKind::Repetition, message);
        fixture::flag(&mut doc, 0, 0, vec![warning("repeats «a | b»\nand *more*")]);
        fixture::flag(&mut doc, 2, 0, vec![warning("x || y"), warning("[z]")]);
        let md = render(&doc);
        let rows = table_rows(&md);
        assert_eq!(rows.len(), 2 + doc.paragraphs.len(), "{md}");
        for row in &rows {
            assert_eq!(unescaped_pipes(row), 3, "row {row:?}");
        }
        assert!(
            rows[2].ends_with(&format!(
                "| **{}** ⚠️ *[repetition: repeats «a \\| b» and \\*more\\*]* |",
                doc.paragraphs[0].translation
            )),
            "{}",
            rows[2]
        );
        assert!(rows[4].ends_with("security. ⚠️ *[repetition: x \\|\\| y; repetition: \\[z\\]]* |"));
        assert!(md.contains("**2 sentences flagged for review**"));
    }

    #[test]
    fn unflagged_documents_have_no_markers() {
        for doc in [fixture::document(), fixture::hostile_document()] {
            let md = render(&doc);
            for marker in [FLAG, UNSURE, NOTE, "flagged", "unsure", "note"] {
                assert!(!md.contains(marker), "{marker} in {md}");
            }
        }
    }

    #[test]
    fn unsure_and_noted_sentences_carry_their_own_markers() {
        let doc = fixture::review_document();
        let md = render(&doc);
        let rows = table_rows(&md);
        for row in &rows {
            assert_eq!(unescaped_pipes(row), 3, "row {row:?}");
        }
        let p = &doc.paragraphs[1].sentences;
        assert!(
            rows[3].ends_with(&format!(
                "| {} ❔ *(low confidence: 0.32)* {} ⚠️ *[numbers: number(s) from the source \
                 missing: 5; low confidence: 0.41]* |",
                p[0].translation, p[1].translation
            )),
            "{}",
            rows[3]
        );
        assert!(
            rows[4].ends_with(&format!(
                "security. ⁱ *(note: glossary: {})* |",
                fixture::NOTE
            )),
            "{}",
            rows[4]
        );
        // The Arabic stays as it is, and only the flag carries the flag's marker.
        assert!(rows[3].starts_with(&format!("| {} |", doc.paragraphs[1].source)));
        assert_eq!(
            md.matches(FLAG).count(),
            2,
            "one marker and the notice: {md}"
        );
        let notices = [
            "\n**1 sentence flagged for review** (marked ⚠️).\n",
            "\n**1 sentence the model was unsure of** (marked ❔, with its confidence).\n",
            "\n_1 note on form (marked ⁱ)._\n",
            "\n| Arabic |",
        ];
        let at: Vec<usize> = notices
            .iter()
            .map(|n| md.find(n).unwrap_or_else(|| panic!("{n} in {md}")))
            .collect();
        assert!(at.windows(2).all(|w| w[0] < w[1]), "in this order: {md}");
    }

    #[test]
    fn an_unsure_heading_keeps_its_marker_outside_the_bold() {
        let mut doc = fixture::document();
        doc.paragraphs[0].sentences[0].confidence = Some(0.2);
        let md = render(&doc);
        let rows = table_rows(&md);
        assert_eq!(
            rows[2],
            format!(
                "| **{}** | **{}** ❔ *(low confidence: 0.20)* |",
                doc.paragraphs[0].source, doc.paragraphs[0].translation
            )
        );
    }

    #[test]
    fn lists_tables_and_links_keep_their_structure() {
        let md = render(&fixture::structured_document());
        let rows = table_rows(&md);
        for row in &rows {
            assert_eq!(unescaped_pipes(row), 3, "row {row:?}");
        }
        assert!(rows.contains(&"| 2. عمان | 2. Oman |"), "{md}");
        assert!(
            rows.contains(&"| الدولة │ العاصمة | Country │ Capital |"),
            "{md}"
        );
        assert!(md.contains("| زوروا موقع الأمانة العامة. | Visit the General Secretariat's website. (links: <https://example.org/ar?a=1&b=2>) |"), "{md}");
        assert!(!md.contains("javascript"));
    }

    #[test]
    fn missing_summary_gets_a_note() {
        let mut doc = fixture::document();
        doc.summary = None;
        let md = render(&doc);
        assert!(md.contains("No summary"));
        assert!(!md.contains("**Summary:**"));
    }
}
