//! `NAME.docx`: the bilingual document for Word and LibreOffice, English and Arabic side
//! by side in one table whose header row repeats on every page.
//!
//! The package is written by hand (zip + XML strings): the handful of parts a document
//! needs is small, and every element is in the order the schema requires, which Word
//! insists on.

use std::fmt::Write as _;
use std::io::{self, Cursor, Write};

use zip::write::SimpleFileOptions;
use zip::{CompressionMethod, DateTime, ZipWriter};

use super::{
    extraction_note, hover, notes_count, pieces, sentences_count, Mark, MarkCounts, Piece,
    NO_TRANSLATION,
};
use crate::check::Warning;
use crate::document::{
    ParagraphKind, Role, TranslatedDocument, TranslatedParagraph, TranslatedSentence,
};

const W_NS: &str = "http://schemas.openxmlformats.org/wordprocessingml/2006/main";
const R_NS: &str = "http://schemas.openxmlformats.org/officeDocument/2006/relationships";
const DECLARATION: &str = "<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"yes\"?>\n";
/// A4 with 2 cm margins, in twentieths of a point: the text is 9638 wide.
const COLUMN_WIDTH: u32 = 4819;
/// Separates the cells of one source table row inside a bilingual cell.
const CELL_SEPARATOR: &str = " │ ";
/// The colour of what marks a sentence the model was unsure of, its brackets included.
const UNSURE_COLOUR: &str = "6A3D9A";

/// Renders `doc` as a `.docx` package.
pub fn render(doc: &TranslatedDocument) -> io::Result<Vec<u8>> {
    let mut body = Body::default();
    body.document(doc);
    let relationships = body.relationships();
    let parts = [
        ("[Content_Types].xml", CONTENT_TYPES.to_string()),
        ("_rels/.rels", PACKAGE_RELS.to_string()),
        ("docProps/core.xml", core(doc)),
        ("word/_rels/document.xml.rels", relationships),
        ("word/styles.xml", STYLES.to_string()),
        ("word/document.xml", body.xml),
    ];
    package(&parts)
}

fn package(parts: &[(&str, String)]) -> io::Result<Vec<u8>> {
    let mut zip = ZipWriter::new(Cursor::new(Vec::new()));
    // A fixed date, so that the same translation gives the same bytes.
    let options = SimpleFileOptions::default()
        .compression_method(CompressionMethod::Deflated)
        .last_modified_time(DateTime::default());
    for (name, xml) in parts {
        zip.start_file(*name, options)?;
        zip.write_all(xml.as_bytes())?;
    }
    Ok(zip.finish()?.into_inner())
}

/// Text made safe for XML: markup escaped, and the characters XML 1.0 forbids (most
/// control characters, U+FFFE, U+FFFF) dropped, since a single one makes Word refuse
/// the whole file.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' | '\n' => out.push(c),
            c if c < ' ' || c == '\u{FFFE}' || c == '\u{FFFF}' => {}
            c => out.push(c),
        }
    }
    out
}

/// How a run looks. Bold, italics and size are set for both Latin and complex script
/// (`bCs`, `iCs`, `szCs`), because Word styles Arabic with the latter.
#[derive(Debug, Clone, Copy, Default)]
struct Look {
    style: Option<&'static str>,
    bold: bool,
    italic: bool,
    grey: bool,
    /// A colour other than grey, as `RRGGBB`.
    colour: Option<&'static str>,
    /// Half-points.
    size: Option<u32>,
    highlight: bool,
    /// The underline's kind (`dotted`, `dottedHeavy`) and colour.
    underline: Option<(&'static str, &'static str)>,
    arabic: bool,
}

impl Look {
    /// Run properties, in the order the schema fixes.
    fn properties(&self) -> String {
        let mut out = String::from("<w:rPr>");
        if let Some(style) = self.style {
            let _ = write!(out, "<w:rStyle w:val=\"{style}\"/>");
        }
        if self.bold {
            out.push_str("<w:b/><w:bCs/>");
        }
        if self.italic {
            out.push_str("<w:i/><w:iCs/>");
        }
        if let Some(colour) = self.colour.or(self.grey.then_some("666666")) {
            let _ = write!(out, "<w:color w:val=\"{colour}\"/>");
        }
        if let Some(size) = self.size {
            let _ = write!(out, "<w:sz w:val=\"{size}\"/><w:szCs w:val=\"{size}\"/>");
        }
        if self.highlight {
            out.push_str("<w:highlight w:val=\"yellow\"/>");
        }
        if let Some((kind, colour)) = self.underline {
            let _ = write!(out, "<w:u w:val=\"{kind}\" w:color=\"{colour}\"/>");
        }
        if self.arabic {
            out.push_str("<w:rtl/><w:lang w:bidi=\"ar-SA\"/>");
        }
        out.push_str("</w:rPr>");
        out
    }

    /// This look on a sentence marked `mark`: a flag highlighted, an unsure sentence
    /// underlined with heavy coloured dots, a noted one with light grey dots, so that
    /// only a flag looks like a flag.
    fn marked(self, mark: Mark) -> Self {
        match mark {
            Mark::Error => Self {
                highlight: true,
                ..self
            },
            Mark::LowConfidence => Self {
                underline: Some(("dottedHeavy", UNSURE_COLOUR)),
                ..self
            },
            Mark::Note => Self {
                underline: Some(("dotted", "A0A0A0")),
                ..self
            },
            Mark::None => self,
        }
    }

    /// The bracketed reasons after a marked sentence: small, whatever the paragraph;
    /// an unsure sentence's in the colour of its underline.
    fn aside(mark: Mark) -> Self {
        let colour = (mark == Mark::LowConfidence).then_some(UNSURE_COLOUR);
        Self {
            size: Some(16),
            grey: true,
            colour,
            ..Self::default()
        }
    }
}

/// Appends one run; line breaks and tabs become Word's own elements.
fn run(out: &mut String, text: &str, look: Look) {
    if text.is_empty() {
        return;
    }
    out.push_str("<w:r>");
    out.push_str(&look.properties());
    for (i, line) in text.split('\n').enumerate() {
        if i > 0 {
            out.push_str("<w:br/>");
        }
        for (j, piece) in line.split('\t').enumerate() {
            if j > 0 {
                out.push_str("<w:tab/>");
            }
            let piece = escape(&piece.replace('\r', ""));
            if !piece.is_empty() {
                let _ = write!(out, "<w:t xml:space=\"preserve\">{piece}</w:t>");
            }
        }
    }
    out.push_str("</w:r>");
}

/// Which column a cell is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Side {
    English,
    Arabic,
}

/// `word/document.xml` being written, and the external links it refers to (their
/// relationship ids are `rIdLink1`, `rIdLink2`, ... in this order).
#[derive(Debug, Default)]
struct Body {
    xml: String,
    links: Vec<String>,
}

impl Body {
    fn document(&mut self, doc: &TranslatedDocument) {
        let _ = write!(
            self.xml,
            "{DECLARATION}<w:document xmlns:w=\"{W_NS}\" xmlns:r=\"{R_NS}\"><w:body>"
        );
        self.title(doc);
        self.summary(doc);
        self.notices(MarkCounts::of(doc));
        self.table(&doc.paragraphs);
        // Word wants a paragraph between a table and the section properties.
        self.xml.push_str(
            "<w:p/><w:sectPr><w:pgSz w:w=\"11906\" w:h=\"16838\"/>\
             <w:pgMar w:top=\"1134\" w:right=\"1134\" w:bottom=\"1134\" w:left=\"1134\" \
             w:header=\"567\" w:footer=\"567\" w:gutter=\"0\"/></w:sectPr></w:body></w:document>",
        );
    }

    fn title(&mut self, doc: &TranslatedDocument) {
        self.xml
            .push_str("<w:p><w:pPr><w:pStyle w:val=\"Title\"/></w:pPr>");
        run(&mut self.xml, &doc.title, Look::default());
        flag(&mut self.xml, &doc.title_warnings, "title flagged");
        self.xml.push_str("</w:p><w:p>");
        let meta = Look {
            grey: true,
            size: Some(18),
            ..Look::default()
        };
        let source = format!("Source: {} · Model: {}", doc.source_path, doc.model.name);
        run(&mut self.xml, &source, meta);
        self.xml.push_str("</w:p>");
        if let Some(note) = extraction_note(doc) {
            // A scan's text may be misread: said before anything built on it.
            self.xml.push_str("<w:p>");
            let look = Look {
                bold: true,
                highlight: doc
                    .extraction
                    .as_ref()
                    .is_some_and(|e| e.method != crate::document::ExtractionMethod::TextLayer),
                ..Look::default()
            };
            run(&mut self.xml, &format!("{note}."), look);
            self.xml.push_str("</w:p>");
        }
    }

    fn summary(&mut self, doc: &TranslatedDocument) {
        match doc.summary.as_deref() {
            Some(text) => {
                self.xml
                    .push_str("<w:p><w:pPr><w:pStyle w:val=\"Heading2\"/></w:pPr>");
                run(&mut self.xml, "Summary", Look::default());
                self.xml.push_str("</w:p><w:p>");
                run(&mut self.xml, text.trim(), Look::default());
                flag(&mut self.xml, &doc.summary_warnings, "flagged");
            }
            None => {
                self.xml.push_str("<w:p>");
                let look = Look {
                    italic: true,
                    grey: true,
                    ..Look::default()
                };
                run(&mut self.xml, "No summary for this document.", look);
            }
        }
        self.xml.push_str("</w:p>");
    }

    /// Tells the reader, before the table, what the marks below mean and how many there
    /// are: flagged sentences first and in bold, notes on form last and small.
    fn notices(&mut self, counts: MarkCounts) {
        if counts.errors > 0 {
            let text = format!(
                "{} flagged for review: highlighted below, with the reasons in brackets.",
                sentences_count(counts.errors)
            );
            let look = Look {
                bold: true,
                ..Look::default()
            };
            self.paragraph(&text, look);
        }
        if counts.unsure > 0 {
            let text = format!(
                "{} the model was unsure of: underlined with dots below, with its confidence in brackets.",
                sentences_count(counts.unsure)
            );
            let look = Look {
                colour: Some(UNSURE_COLOUR),
                ..Look::default()
            };
            self.paragraph(&text, look);
        }
        if counts.notes > 0 {
            let text = format!(
                "{} on form: underlined in grey below, with the note in brackets.",
                notes_count(counts.notes)
            );
            let look = Look {
                grey: true,
                size: Some(18),
                ..Look::default()
            };
            self.paragraph(&text, look);
        }
    }

    /// A paragraph of one run.
    fn paragraph(&mut self, text: &str, look: Look) {
        self.xml.push_str("<w:p>");
        run(&mut self.xml, text, look);
        self.xml.push_str("</w:p>");
    }

    fn table(&mut self, paragraphs: &[TranslatedParagraph]) {
        let _ = write!(
            self.xml,
            "<w:tbl><w:tblPr><w:tblStyle w:val=\"BilingualTable\"/><w:tblW w:w=\"5000\" w:type=\"pct\"/>\
             <w:tblLayout w:type=\"fixed\"/><w:tblLook w:val=\"0620\" w:firstRow=\"1\" w:lastRow=\"0\" \
             w:firstColumn=\"0\" w:lastColumn=\"0\" w:noHBand=\"1\" w:noVBand=\"1\"/></w:tblPr>\
             <w:tblGrid><w:gridCol w:w=\"{COLUMN_WIDTH}\"/><w:gridCol w:w=\"{COLUMN_WIDTH}\"/></w:tblGrid>"
        );
        self.header_row();
        // Cells of one source table row stay together in one bilingual row.
        let same_row = |a: &TranslatedParagraph, b: &TranslatedParagraph| {
            a.block.role.table_row().is_some()
                && a.block.role.table_row() == b.block.role.table_row()
        };
        for group in paragraphs.chunk_by(same_row) {
            self.xml.push_str("<w:tr>");
            self.cell(group, Side::English);
            self.cell(group, Side::Arabic);
            self.xml.push_str("</w:tr>");
        }
        self.xml.push_str("</w:tbl>");
    }

    /// "English" | "العربية", repeated at the top of every page the table runs onto.
    fn header_row(&mut self) {
        self.xml
            .push_str("<w:tr><w:trPr><w:cantSplit/><w:tblHeader/></w:trPr>");
        for side in [Side::English, Side::Arabic] {
            cell_start(&mut self.xml, true);
            paragraph_start(&mut self.xml, side == Side::Arabic, None);
            let look = Look {
                bold: true,
                arabic: side == Side::Arabic,
                ..Look::default()
            };
            let label = match side {
                Side::English => "English",
                Side::Arabic => "العربية",
            };
            run(&mut self.xml, label, look);
            self.xml.push_str("</w:p></w:tc>");
        }
        self.xml.push_str("</w:tr>");
    }

    /// One side of a bilingual row: one paragraph holding each source paragraph of the
    /// group, then (in English) the group's links.
    fn cell(&mut self, group: &[TranslatedParagraph], side: Side) {
        let Some(first) = group.first() else {
            return;
        };
        let rtl =
            side == Side::Arabic && group.iter().any(|p| p.kind != ParagraphKind::Passthrough);
        cell_start(&mut self.xml, false);
        paragraph_start(&mut self.xml, rtl, list_indent(&first.block.role));
        for (i, p) in group.iter().enumerate() {
            if i > 0 {
                run(&mut self.xml, CELL_SEPARATOR, look_of(p, side));
            }
            self.content(p, side);
        }
        if side == Side::English {
            self.links(group);
        }
        self.xml.push_str("</w:p></w:tc>");
    }

    /// A paragraph's text on one side, each marked sentence in its [`Look::marked`] look;
    /// in English each is followed by why it is marked.
    fn content(&mut self, p: &TranslatedParagraph, side: Side) {
        let look = look_of(p, side);
        if let Some(marker) = list_marker(&p.block.role) {
            run(&mut self.xml, &marker, look);
        }
        let whole = match side {
            Side::English => &p.translation,
            Side::Arabic => &p.source,
        };
        if p.kind == ParagraphKind::Passthrough {
            run(&mut self.xml, whole, look);
            return;
        }
        let part: fn(&TranslatedSentence) -> &str = match side {
            Side::English => english,
            Side::Arabic => arabic,
        };
        for piece in pieces(whole, &p.sentences, part) {
            let (text, warnings, confidence) = match piece {
                Piece::Text(text) => (text, &[][..], None),
                Piece::Sentence {
                    text,
                    warnings,
                    confidence,
                } => (text, warnings, confidence),
            };
            let mark = Mark::of(warnings, confidence);
            if mark == Mark::None {
                run(&mut self.xml, text, look);
                continue;
            }
            let text = if text.is_empty() {
                NO_TRANSLATION
            } else {
                text
            };
            run(&mut self.xml, text, look.marked(mark));
            if side == Side::English {
                let why = bracket(mark, &hover(warnings, confidence));
                run(&mut self.xml, &why, Look::aside(mark));
            }
        }
    }

    /// The targets of the group's links, one per line: live links for web and mail
    /// addresses, plain text for anything else (a script, a path of the source site).
    fn links(&mut self, group: &[TranslatedParagraph]) {
        let mut shown: Vec<&str> = Vec::new();
        for link in group.iter().flat_map(|p| &p.block.links) {
            if shown.contains(&link.href.as_str()) {
                continue;
            }
            shown.push(&link.href);
            self.xml.push_str("<w:r><w:br/></w:r>");
            let look = Look {
                size: Some(18),
                ..Look::default()
            };
            match self.link_id(&link.href) {
                Some(id) => {
                    let _ = write!(self.xml, "<w:hyperlink r:id=\"{id}\" w:history=\"1\">");
                    let look = Look {
                        style: Some("Hyperlink"),
                        ..look
                    };
                    run(&mut self.xml, &link.href, look);
                    self.xml.push_str("</w:hyperlink>");
                }
                None => run(&mut self.xml, &link.href, Look { grey: true, ..look }),
            }
        }
    }

    /// The relationship id for a link to `href`, or `None` when it should not be live.
    fn link_id(&mut self, href: &str) -> Option<String> {
        let scheme = href.split_once(':')?.0.to_ascii_lowercase();
        if !matches!(scheme.as_str(), "http" | "https" | "mailto" | "ftp") {
            return None;
        }
        let index = match self.links.iter().position(|l| l == href) {
            Some(i) => i,
            None => {
                self.links.push(href.to_string());
                self.links.len() - 1
            }
        };
        Some(format!("rIdLink{}", index + 1))
    }

    /// `word/_rels/document.xml.rels`: the styles and every external link.
    fn relationships(&self) -> String {
        let mut out = format!(
            "{DECLARATION}<Relationships xmlns=\"http://schemas.openxmlformats.org/package/2006/relationships\">\
             <Relationship Id=\"rIdStyles\" Type=\"{R_NS}/styles\" Target=\"styles.xml\"/>"
        );
        for (i, href) in self.links.iter().enumerate() {
            let _ = write!(
                out,
                "<Relationship Id=\"rIdLink{}\" Type=\"{R_NS}/hyperlink\" Target=\"{}\" TargetMode=\"External\"/>",
                i + 1,
                escape(&uri(href))
            );
        }
        out.push_str("</Relationships>");
        out
    }
}

/// The reasons after a marked sentence: ` [⚠ reasons]` for a flag, in round brackets for
/// the rest (` (low confidence: 0.32)`, ` (note: …)`), whose text says what they are.
fn bracket(mark: Mark, why: &str) -> String {
    match mark {
        Mark::Error => format!(" [⚠ {why}]"),
        _ => format!(" ({why})"),
    }
}

/// After the title or summary: a highlighted "⚠ LABEL: reasons" when an error doubts it,
/// the notes small and grey when only notes do; nothing without warnings.
fn flag(out: &mut String, warnings: &[Warning], label: &str) {
    let why = hover(warnings, None);
    match Mark::of(warnings, None) {
        Mark::Error => {
            let look = Look {
                highlight: true,
                size: Some(18),
                ..Look::default()
            };
            run(out, &format!(" ⚠ {label}: {why}"), look);
        }
        Mark::Note => run(out, &bracket(Mark::Note, &why), Look::aside(Mark::Note)),
        Mark::LowConfidence | Mark::None => {}
    }
}

fn english(s: &TranslatedSentence) -> &str {
    &s.translation
}

fn arabic(s: &TranslatedSentence) -> &str {
    &s.source
}

/// How a paragraph's runs look on one side.
fn look_of(p: &TranslatedParagraph, side: Side) -> Look {
    let passthrough = p.kind == ParagraphKind::Passthrough;
    let heading = p.block.role.is_heading() || p.kind == ParagraphKind::Heading;
    let size = match p.block.role {
        Role::Heading { level: 1 } => Some(30),
        _ if heading => Some(26),
        _ => None,
    };
    Look {
        bold: heading,
        italic: passthrough,
        grey: passthrough,
        size,
        arabic: side == Side::Arabic && !passthrough,
        ..Look::default()
    }
}

fn list_marker(role: &Role) -> Option<String> {
    match *role {
        Role::ListItem {
            ordered: true,
            number: Some(n),
            ..
        } => Some(format!("{n}. ")),
        Role::ListItem { .. } => Some("• ".to_string()),
        _ => None,
    }
}

/// Indentation of a list item, deeper items further in, in twentieths of a point.
fn list_indent(role: &Role) -> Option<u32> {
    match *role {
        Role::ListItem { depth, .. } => Some(360 * (u32::from(depth) + 1)),
        _ => None,
    }
}

fn cell_start(out: &mut String, header: bool) {
    let _ = write!(
        out,
        "<w:tc><w:tcPr><w:tcW w:w=\"{COLUMN_WIDTH}\" w:type=\"dxa\"/>"
    );
    if header {
        out.push_str("<w:shd w:val=\"clear\" w:color=\"auto\" w:fill=\"DCE4EE\"/>");
    }
    out.push_str("</w:tcPr>");
}

/// Opens a paragraph: right-to-left for Arabic, indented from its start for list items.
fn paragraph_start(out: &mut String, rtl: bool, indent: Option<u32>) {
    out.push_str("<w:p><w:pPr>");
    if rtl {
        out.push_str("<w:bidi/>");
    }
    if let Some(indent) = indent {
        let _ = write!(out, "<w:ind w:start=\"{indent}\"/>");
    }
    out.push_str("</w:pPr>");
}

/// An address as a relationship target: Word rejects the whole file when a target is
/// not a valid URI, so spaces, non-ASCII and other unsafe bytes are percent-encoded.
fn uri(href: &str) -> String {
    let mut out = String::with_capacity(href.len());
    for byte in href.bytes() {
        let safe = byte.is_ascii_alphanumeric() || b"-._~:/?#[]@!$&'()*+,;=%".contains(&byte);
        if safe {
            out.push(char::from(byte));
        } else {
            let _ = write!(out, "%{byte:02X}");
        }
    }
    out
}

fn core(doc: &TranslatedDocument) -> String {
    format!(
        "{DECLARATION}<cp:coreProperties \
         xmlns:cp=\"http://schemas.openxmlformats.org/package/2006/metadata/core-properties\" \
         xmlns:dc=\"http://purl.org/dc/elements/1.1/\" xmlns:dcterms=\"http://purl.org/dc/terms/\" \
         xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\">\
         <dc:title>{}</dc:title><dc:creator>tarjama</dc:creator><dc:language>en</dc:language>\
         </cp:coreProperties>",
        escape(&doc.title)
    )
}

const CONTENT_TYPES: &str = "<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"yes\"?>\n\
<Types xmlns=\"http://schemas.openxmlformats.org/package/2006/content-types\">\
<Default Extension=\"rels\" ContentType=\"application/vnd.openxmlformats-package.relationships+xml\"/>\
<Default Extension=\"xml\" ContentType=\"application/xml\"/>\
<Override PartName=\"/word/document.xml\" \
ContentType=\"application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml\"/>\
<Override PartName=\"/word/styles.xml\" \
ContentType=\"application/vnd.openxmlformats-officedocument.wordprocessingml.styles+xml\"/>\
<Override PartName=\"/docProps/core.xml\" \
ContentType=\"application/vnd.openxmlformats-package.core-properties+xml\"/>\
</Types>";

const PACKAGE_RELS: &str = "<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"yes\"?>\n\
<Relationships xmlns=\"http://schemas.openxmlformats.org/package/2006/relationships\">\
<Relationship Id=\"rId1\" \
Type=\"http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument\" \
Target=\"word/document.xml\"/>\
<Relationship Id=\"rId2\" \
Type=\"http://schemas.openxmlformats.org/package/2006/relationships/metadata/core-properties\" \
Target=\"docProps/core.xml\"/>\
</Relationships>";

/// Normal, Title, Heading 1–3, Hyperlink and the bordered table style. Arabic text
/// (complex script) gets its own font and a slightly larger size, as it reads small
/// next to Latin text of the same point size.
const STYLES: &str = "<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"yes\"?>\n\
<w:styles xmlns:w=\"http://schemas.openxmlformats.org/wordprocessingml/2006/main\">\
<w:docDefaults><w:rPrDefault><w:rPr>\
<w:rFonts w:ascii=\"Calibri\" w:hAnsi=\"Calibri\" w:eastAsia=\"Calibri\" w:cs=\"Arial\"/>\
<w:sz w:val=\"22\"/><w:szCs w:val=\"24\"/><w:lang w:val=\"en-GB\" w:eastAsia=\"en-US\" w:bidi=\"ar-SA\"/>\
</w:rPr></w:rPrDefault><w:pPrDefault><w:pPr><w:spacing w:after=\"120\" w:line=\"264\" w:lineRule=\"auto\"/>\
</w:pPr></w:pPrDefault></w:docDefaults>\
<w:style w:type=\"paragraph\" w:default=\"1\" w:styleId=\"Normal\"><w:name w:val=\"Normal\"/><w:qFormat/></w:style>\
<w:style w:type=\"character\" w:default=\"1\" w:styleId=\"DefaultParagraphFont\">\
<w:name w:val=\"Default Paragraph Font\"/><w:uiPriority w:val=\"1\"/><w:semiHidden/></w:style>\
<w:style w:type=\"table\" w:default=\"1\" w:styleId=\"TableNormal\"><w:name w:val=\"Normal Table\"/>\
<w:uiPriority w:val=\"99\"/><w:semiHidden/><w:tblPr><w:tblInd w:w=\"0\" w:type=\"dxa\"/><w:tblCellMar>\
<w:top w:w=\"0\" w:type=\"dxa\"/><w:left w:w=\"108\" w:type=\"dxa\"/><w:bottom w:w=\"0\" w:type=\"dxa\"/>\
<w:right w:w=\"108\" w:type=\"dxa\"/></w:tblCellMar></w:tblPr></w:style>\
<w:style w:type=\"paragraph\" w:styleId=\"Title\"><w:name w:val=\"Title\"/><w:basedOn w:val=\"Normal\"/>\
<w:next w:val=\"Normal\"/><w:qFormat/><w:pPr><w:spacing w:after=\"80\"/></w:pPr>\
<w:rPr><w:b/><w:bCs/><w:sz w:val=\"40\"/><w:szCs w:val=\"40\"/></w:rPr></w:style>\
<w:style w:type=\"paragraph\" w:styleId=\"Heading1\"><w:name w:val=\"heading 1\"/><w:basedOn w:val=\"Normal\"/>\
<w:next w:val=\"Normal\"/><w:qFormat/><w:pPr><w:keepNext/><w:spacing w:before=\"240\" w:after=\"80\"/>\
<w:outlineLvl w:val=\"0\"/></w:pPr><w:rPr><w:b/><w:bCs/><w:color w:val=\"2F5F8F\"/><w:sz w:val=\"32\"/>\
<w:szCs w:val=\"32\"/></w:rPr></w:style>\
<w:style w:type=\"paragraph\" w:styleId=\"Heading2\"><w:name w:val=\"heading 2\"/><w:basedOn w:val=\"Normal\"/>\
<w:next w:val=\"Normal\"/><w:qFormat/><w:pPr><w:keepNext/><w:spacing w:before=\"200\" w:after=\"60\"/>\
<w:outlineLvl w:val=\"1\"/></w:pPr><w:rPr><w:b/><w:bCs/><w:color w:val=\"2F5F8F\"/><w:sz w:val=\"26\"/>\
<w:szCs w:val=\"26\"/></w:rPr></w:style>\
<w:style w:type=\"paragraph\" w:styleId=\"Heading3\"><w:name w:val=\"heading 3\"/><w:basedOn w:val=\"Normal\"/>\
<w:next w:val=\"Normal\"/><w:qFormat/><w:pPr><w:keepNext/><w:spacing w:before=\"160\" w:after=\"40\"/>\
<w:outlineLvl w:val=\"2\"/></w:pPr><w:rPr><w:b/><w:bCs/><w:sz w:val=\"24\"/><w:szCs w:val=\"24\"/></w:rPr></w:style>\
<w:style w:type=\"character\" w:styleId=\"Hyperlink\"><w:name w:val=\"Hyperlink\"/>\
<w:rPr><w:color w:val=\"1F4F7F\"/><w:u w:val=\"single\"/></w:rPr></w:style>\
<w:style w:type=\"table\" w:styleId=\"BilingualTable\"><w:name w:val=\"Bilingual Table\"/>\
<w:basedOn w:val=\"TableNormal\"/><w:tblPr><w:tblBorders>\
<w:top w:val=\"single\" w:sz=\"4\" w:space=\"0\" w:color=\"A6A6A6\"/>\
<w:left w:val=\"single\" w:sz=\"4\" w:space=\"0\" w:color=\"A6A6A6\"/>\
<w:bottom w:val=\"single\" w:sz=\"4\" w:space=\"0\" w:color=\"A6A6A6\"/>\
<w:right w:val=\"single\" w:sz=\"4\" w:space=\"0\" w:color=\"A6A6A6\"/>\
<w:insideH w:val=\"single\" w:sz=\"4\" w:space=\"0\" w:color=\"A6A6A6\"/>\
<w:insideV w:val=\"single\" w:sz=\"4\" w:space=\"0\" w:color=\"A6A6A6\"/>\
</w:tblBorders><w:tblCellMar><w:top w:w=\"80\" w:type=\"dxa\"/><w:left w:w=\"108\" w:type=\"dxa\"/>\
<w:bottom w:w=\"80\" w:type=\"dxa\"/><w:right w:w=\"108\" w:type=\"dxa\"/></w:tblCellMar></w:tblPr></w:style>\
</w:styles>";

#[cfg(test)]
mod tests {
    use std::io::Read;

    use super::*;
    use crate::document::Link;
    use crate::read::{docx::Docx, Reader, SourceBlock};
    use crate::write::fixture;

    fn parts(bytes: &[u8]) -> Vec<(String, String)> {
        let mut zip = zip::ZipArchive::new(Cursor::new(bytes)).expect("zip");
        let mut out = Vec::new();
        for i in 0..zip.len() {
            let mut file = zip.by_index(i).expect("entry");
            let mut text = String::new();
            file.read_to_string(&mut text).expect("utf-8");
            out.push((file.name().expect("name").to_string(), text));
        }
        out
    }

    fn part(bytes: &[u8], name: &str) -> String {
        parts(bytes)
            .into_iter()
            .find(|(n, _)| n == name)
            .map(|(_, text)| text)
            .unwrap_or_else(|| panic!("no part {name}"))
    }

    fn read_back(doc: &TranslatedDocument) -> Vec<SourceBlock> {
        let bytes = render(doc).expect("renders");
        Docx.read("out.docx", &bytes).expect("reads back").blocks
    }

    fn w(node: roxmltree::Node, name: &str) -> bool {
        node.is_element()
            && node.tag_name().name() == name
            && node.tag_name().namespace() == Some(W_NS)
    }

    /// The text of the `w:t` elements under `node`.
    fn text_of(node: roxmltree::Node) -> String {
        node.descendants()
            .filter(|n| w(*n, "t"))
            .filter_map(|n| n.text())
            .collect()
    }

    fn has_child(node: roxmltree::Node, path: &[&str]) -> bool {
        let mut current = vec![node];
        for name in path {
            current = current
                .into_iter()
                .flat_map(|n| n.children().filter(|c| w(*c, name)))
                .collect();
        }
        !current.is_empty()
    }

    #[test]
    fn every_part_is_well_formed_and_declared() {
        let review = render(&fixture::review_document()).expect("renders");
        for (name, xml) in &parts(&review) {
            roxmltree::Document::parse(xml).unwrap_or_else(|e| panic!("{name}: {e}"));
        }
        let bytes = render(&fixture::flagged_document()).expect("renders");
        let parts = parts(&bytes);
        let names: Vec<&str> = parts.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            names,
            [
                "[Content_Types].xml",
                "_rels/.rels",
                "docProps/core.xml",
                "word/_rels/document.xml.rels",
                "word/styles.xml",
                "word/document.xml",
            ]
        );
        for (name, xml) in &parts {
            roxmltree::Document::parse(xml).unwrap_or_else(|e| panic!("{name}: {e}"));
        }
        let styles = part(&bytes, "word/styles.xml");
        for id in [
            "Normal",
            "Title",
            "Heading1",
            "Heading2",
            "Heading3",
            "BilingualTable",
        ] {
            assert!(styles.contains(&format!("w:styleId=\"{id}\"")), "{id}");
        }
        assert!(styles.contains("<w:insideV w:val=\"single\""));
        let core = part(&bytes, "docProps/core.xml");
        assert!(core.contains(
            "<dc:title>GCC Secretary-General stresses ties with Central Asia</dc:title>"
        ));
        // The same document gives the same bytes.
        assert_eq!(
            bytes,
            render(&fixture::flagged_document()).expect("renders")
        );
    }

    #[test]
    fn a_scan_says_it_was_read_by_ocr_under_the_title() {
        let mut doc = fixture::document();
        doc.format = "pdf".into();
        doc.extraction = Some(crate::document::Extraction {
            method: crate::document::ExtractionMethod::Ocr,
            notes: Vec::new(),
        });
        let blocks = read_back(&doc);
        assert_eq!(
            blocks[2].text,
            "Read from PDF by OCR: check the Arabic against the original."
        );
    }

    #[test]
    fn reads_back_with_title_heading_and_every_paragraph() {
        let doc = fixture::document();
        let blocks = read_back(&doc);
        assert_eq!(blocks[0].role, Role::Heading { level: 1 });
        assert_eq!(blocks[0].text, doc.title);
        assert_eq!(
            blocks[1].text,
            "Source: samples/gcc central asia.txt · Model: opus-mt-ar-en"
        );
        assert!(blocks
            .iter()
            .any(|b| b.text == doc.summary.clone().expect("summary")));
        let cells: Vec<&SourceBlock> = blocks
            .iter()
            .filter(|b| matches!(b.role, Role::TableCell { .. }))
            .collect();
        // The header row, then one row per paragraph; English left, Arabic right.
        assert_eq!(cells.len(), 2 * (doc.paragraphs.len() + 1));
        assert_eq!(cells[0].text, "English");
        assert_eq!(cells[1].text, "العربية");
        assert!(matches!(
            cells[0].role,
            Role::TableCell { header: true, .. }
        ));
        for (p, pair) in doc.paragraphs.iter().zip(cells[2..].chunks(2)) {
            assert_eq!(pair[0].text, p.translation);
            assert_eq!(pair[1].text, p.source);
        }
        let heading = &doc.paragraphs[0];
        assert_eq!(heading.kind, ParagraphKind::Heading);
        assert_eq!(cells[2].text, heading.translation);
    }

    #[test]
    fn arabic_cells_run_right_to_left_and_the_header_row_repeats() {
        let doc = fixture::document();
        let xml = part(&render(&doc).expect("renders"), "word/document.xml");
        let tree = roxmltree::Document::parse(&xml).expect("xml");
        let rows: Vec<_> = tree.descendants().filter(|n| w(*n, "tr")).collect();
        assert_eq!(rows.len(), doc.paragraphs.len() + 1);
        assert!(has_child(rows[0], &["trPr", "tblHeader"]));
        assert!(rows[1..]
            .iter()
            .all(|r| !has_child(*r, &["trPr", "tblHeader"])));
        for (p, row) in doc.paragraphs.iter().zip(&rows[1..]) {
            let cells: Vec<_> = row.children().filter(|c| w(*c, "tc")).collect();
            assert_eq!(cells.len(), 2);
            assert!(!has_child(cells[0], &["p", "pPr", "bidi"]));
            let rtl = p.kind != ParagraphKind::Passthrough;
            assert_eq!(
                has_child(cells[1], &["p", "pPr", "bidi"]),
                rtl,
                "{}",
                p.source
            );
            let runs: Vec<_> = cells[1].descendants().filter(|n| w(*n, "r")).collect();
            assert!(runs.iter().all(|r| has_child(*r, &["rPr", "rtl"]) == rtl));
            assert_eq!(text_of(cells[1]), p.source);
        }
        // Headings are bold on both sides, passthrough text grey and italic.
        assert!(has_child(rows[1], &["tc", "p", "r", "rPr", "bCs"]));
        let last = rows[rows.len() - 1];
        assert!(has_child(last, &["tc", "p", "r", "rPr", "i"]));
    }

    #[test]
    fn flagged_sentences_are_highlighted_on_both_sides() {
        let doc = fixture::flagged_document();
        let bytes = render(&doc).expect("renders");
        let xml = part(&bytes, "word/document.xml");
        let tree = roxmltree::Document::parse(&xml).expect("xml");
        let highlighted: Vec<String> = tree
            .descendants()
            .filter(|n| w(*n, "r") && has_child(*n, &["rPr", "highlight"]))
            .map(text_of)
            .collect();
        let flagged = &doc.paragraphs[1].sentences[1];
        assert_eq!(
            highlighted,
            [flagged.translation.clone(), flagged.source.clone()]
        );

        let blocks = Docx.read("out.docx", &bytes).expect("reads back").blocks;
        let english = format!(
            "{} {} [⚠ numbers: number(s) from the source missing: 5 {}; length: English is 2.60× the length of the Arabic]",
            doc.paragraphs[1].sentences[0].translation,
            flagged.translation,
            fixture::FLAG_EVIL
        );
        assert!(blocks.iter().any(|b| b.text == english), "{blocks:#?}");
        assert!(blocks.iter().any(|b| b.text == doc.paragraphs[1].source));
        assert!(blocks.iter().any(|b| b.text
            == "1 sentence flagged for review: highlighted below, with the reasons in brackets."));
    }

    /// The text of each run of `xml` whose properties satisfy `look`, in document order.
    fn runs_where(xml: &str, look: impl Fn(roxmltree::Node) -> bool) -> Vec<String> {
        let tree = roxmltree::Document::parse(xml).expect("xml");
        tree.descendants()
            .filter(|n| w(*n, "r"))
            .filter(|r| r.children().find(|c| w(*c, "rPr")).is_some_and(&look))
            .map(text_of)
            .collect()
    }

    /// The `w:val` of the `w:u` underline in run properties `rpr`, if any.
    fn underline(rpr: roxmltree::Node) -> Option<String> {
        rpr.children()
            .find(|c| w(*c, "u"))
            .and_then(|u| u.attribute((W_NS, "val")))
            .map(str::to_string)
    }

    #[test]
    fn unsure_and_noted_sentences_look_apart_from_flags() {
        let doc = fixture::review_document();
        let bytes = render(&doc).expect("renders");
        let xml = part(&bytes, "word/document.xml");
        let [unsure, flagged] = [0, 1].map(|i| &doc.paragraphs[1].sentences[i]);
        let noted = &doc.paragraphs[2].sentences[0];
        let highlighted = runs_where(&xml, |rpr| has_child(rpr, &["highlight"]));
        assert_eq!(
            highlighted,
            [flagged.translation.clone(), flagged.source.clone()]
        );
        let heavy = runs_where(&xml, |rpr| underline(rpr).as_deref() == Some("dottedHeavy"));
        assert_eq!(heavy, [unsure.translation.clone(), unsure.source.clone()]);
        let light = runs_where(&xml, |rpr| underline(rpr).as_deref() == Some("dotted"));
        assert_eq!(light, [noted.translation.clone(), noted.source.clone()]);

        let blocks = Docx.read("out.docx", &bytes).expect("reads back").blocks;
        let english = format!(
            "{} (low confidence: 0.32) {} [⚠ numbers: number(s) from the source missing: 5; \
             low confidence: 0.41]",
            unsure.translation, flagged.translation
        );
        assert!(blocks.iter().any(|b| b.text == english), "{blocks:#?}");
        let english = format!("{} (note: glossary: {})", noted.translation, fixture::NOTE);
        assert!(blocks.iter().any(|b| b.text == english), "{blocks:#?}");
        for notice in [
            "1 sentence flagged for review: highlighted below, with the reasons in brackets.",
            "1 sentence the model was unsure of: underlined with dots below, with its confidence in brackets.",
            "1 note on form: underlined in grey below, with the note in brackets.",
        ] {
            assert!(blocks.iter().any(|b| b.text == notice), "{notice}");
        }
        // The bracket after an unsure sentence is in the colour of its underline.
        let coloured = runs_where(&xml, |rpr| {
            rpr.children()
                .any(|c| w(c, "color") && c.attribute((W_NS, "val")) == Some(UNSURE_COLOUR))
        });
        assert!(
            coloured.contains(&" (low confidence: 0.32)".to_string()),
            "{coloured:?}"
        );
    }

    #[test]
    fn a_title_with_only_notes_is_not_flagged() {
        let mut doc = fixture::document();
        doc.title_warnings = vec![fixture::note(crate::check::CheckKind::Glossary, "form")];
        let bytes = render(&doc).expect("renders");
        let blocks = Docx.read("out.docx", &bytes).expect("reads back").blocks;
        assert_eq!(
            blocks[0].text,
            format!("{} (note: glossary: form)", doc.title)
        );
        let xml = part(&bytes, "word/document.xml");
        assert!(runs_where(&xml, |rpr| has_child(rpr, &["highlight"])).is_empty());
    }

    #[test]
    fn flagged_title_summary_and_empty_translation_show_their_flags() {
        let mut doc = fixture::flagged_document();
        let warning = crate::check::Warning::error(crate::check::CheckKind::Length, "too short");
        doc.title_warnings = vec![warning.clone()];
        doc.summary_warnings = vec![warning];
        doc.paragraphs[1].sentences[1].translation.clear();
        fixture::rejoin(&mut doc.paragraphs[1]);
        let blocks = read_back(&doc);
        assert_eq!(
            blocks[0].text,
            format!("{} ⚠ title flagged: length: too short", doc.title)
        );
        let summary = format!(
            "{} ⚠ flagged: length: too short",
            doc.summary.clone().expect("summary")
        );
        assert!(blocks.iter().any(|b| b.text == summary));
        assert!(blocks
            .iter()
            .any(|b| b.text.contains(&format!(" {NO_TRANSLATION} [⚠ numbers:"))));
    }

    #[test]
    fn markup_and_forbidden_characters_stay_harmless_text() {
        let mut doc = fixture::hostile_document();
        doc.title.push_str(" \u{1}\u{FFFF}end");
        let bytes = render(&doc).expect("renders");
        let xml = part(&bytes, "word/document.xml");
        assert!(!xml.contains("<script"), "{xml}");
        let blocks = Docx.read("out.docx", &bytes).expect("reads back").blocks;
        let evil = r#"<script>alert("x")</script> & co"#;
        assert_eq!(blocks[0].text, format!("Title {evil} end"));
        for p in &doc.paragraphs {
            assert!(blocks.iter().any(|b| b.text == p.source), "{}", p.source);
            assert!(
                blocks.iter().any(|b| b.text == p.translation),
                "{}",
                p.translation
            );
        }
        assert!(blocks
            .iter()
            .any(|b| b.text.contains(&format!("in/{evil}.txt"))));
    }

    #[test]
    fn table_rows_stay_together_lists_are_marked_and_links_are_live() {
        let mut doc = fixture::document();
        let cell = |column| Role::TableCell {
            table: 0,
            row: 1,
            column,
            header: false,
        };
        doc.paragraphs[1].block.role = Role::ListItem {
            ordered: true,
            depth: 1,
            number: Some(3),
        };
        doc.paragraphs[2].block.role = cell(0);
        doc.paragraphs[3].block.role = cell(1);
        doc.paragraphs[2].block.links = vec![
            Link {
                text: "الموقع".into(),
                href: "https://example.org/ar/أخبار?a=1&b=2".into(),
            },
            Link {
                text: "نص".into(),
                href: "javascript:alert(1)".into(),
            },
        ];
        let bytes = render(&doc).expect("renders");
        let blocks = Docx.read("out.docx", &bytes).expect("reads back").blocks;
        let p = &doc.paragraphs;
        assert!(blocks
            .iter()
            .any(|b| b.text == format!("3. {}", p[1].translation)));
        assert!(blocks
            .iter()
            .any(|b| b.text == format!("3. {}", p[1].source)));
        let english = format!(
            "{} │ {}\nhttps://example.org/ar/أخبار?a=1&b=2\njavascript:alert(1)",
            p[2].translation, p[3].translation
        );
        let row = blocks
            .iter()
            .find(|b| b.text == english)
            .expect("joined row");
        assert_eq!(
            row.links,
            vec![Link {
                text: "https://example.org/ar/أخبار?a=1&b=2".into(),
                href: "https://example.org/ar/%D8%A3%D8%AE%D8%A8%D8%A7%D8%B1?a=1&b=2".into(),
            }]
        );
        assert!(blocks
            .iter()
            .any(|b| b.text == format!("{} │ {}", p[2].source, p[3].source)));
        let rels = part(&bytes, "word/_rels/document.xml.rels");
        assert_eq!(rels.matches("TargetMode=\"External\"").count(), 1, "{rels}");
        assert!(!rels.contains("javascript"));
        let xml = part(&bytes, "word/document.xml");
        assert!(xml.contains("<w:ind w:start=\"720\"/>"));
    }

    #[test]
    fn without_summary_or_flags_there_is_a_note_and_no_notice() {
        let mut doc = fixture::document();
        doc.summary = None;
        let blocks = read_back(&doc);
        assert!(blocks
            .iter()
            .any(|b| b.text == "No summary for this document."));
        assert!(!blocks.iter().any(|b| b.text.contains("flagged")));
    }
}
