//! Word (`.docx`): the package is read directly (zip + XML) so that headings, lists,
//! tables, headers, footers, notes and links keep their place in the document.
//!
//! Only what the page shows is taken: deleted revisions, field codes and drawings are
//! left out; inserted revisions and the cached results of fields are kept.

use std::collections::HashMap;
use std::io::{Cursor, Read};

use roxmltree::{Document, Node};
use zip::result::ZipError;
use zip::ZipArchive;

use super::{Extracted, Reader, SourceBlock};
use crate::document::{Link, Role};
use crate::load::LoadError;

pub struct Docx;

const DOCUMENT: &str = "word/document.xml";
/// Largest part inflated, whatever its zip header claims: a real document's XML is a
/// few MiB, and anything far larger is a zip bomb.
const MAX_PART: u64 = 64 * 1024 * 1024;
/// Deepest element nesting accepted. Word documents stay under 40; the limit keeps the
/// recursive walk below from exhausting the stack on hostile input.
const MAX_DEPTH: usize = 256;
/// Styles are looked up through `basedOn`; a cycle must not loop forever.
const MAX_STYLE_CHAIN: usize = 32;
const OLE_MAGIC: &[u8] = &[0xD0, 0xCF, 0x11, 0xE0];
const DAMAGED_FIX: &str =
    "the file is damaged; open it in Word or LibreOffice and save it again as .docx";

/// Both the transitional and the strict WordprocessingML namespaces.
fn is_w_namespace(ns: &str) -> bool {
    ns == "http://schemas.openxmlformats.org/wordprocessingml/2006/main"
        || ns == "http://purl.oclc.org/ooxml/wordprocessingml/main"
}

impl Reader for Docx {
    fn format(&self) -> &'static str {
        "docx"
    }

    fn extensions(&self) -> &'static [&'static str] {
        &["docx"]
    }

    fn sniff(&self, bytes: &[u8]) -> bool {
        bytes.starts_with(b"PK\x03\x04")
            && ZipArchive::new(Cursor::new(bytes))
                .is_ok_and(|z| z.index_for_name(DOCUMENT).is_some())
    }

    fn read(&self, path: &str, bytes: &[u8]) -> Result<Extracted, LoadError> {
        let mut package = Package::open(path, bytes)?;
        Ok(read_package(&mut package)?.into())
    }
}

/// The zip archive of a `.docx`, with the file name for messages.
struct Package<'a> {
    path: &'a str,
    zip: ZipArchive<Cursor<&'a [u8]>>,
}

impl<'a> Package<'a> {
    fn open(path: &'a str, bytes: &'a [u8]) -> Result<Self, LoadError> {
        if bytes.starts_with(OLE_MAGIC) {
            return Err(LoadError::unreadable(
                path,
                "is a password-protected .docx or an old binary .doc (an OLE compound file), \
                 neither of which can be read",
                "remove the password (File › Info › Protect Document) and save it again, \
                 or convert the .doc to .docx in Word or LibreOffice",
            ));
        }
        let zip = ZipArchive::new(Cursor::new(bytes)).map_err(|_| {
            LoadError::unreadable(
                path,
                "is not a Word document (not a zip package)",
                "save it as .docx from Word or LibreOffice; old .doc files must be converted to .docx first",
            )
        })?;
        if zip.index_for_name(DOCUMENT).is_none() {
            return Err(no_document(path));
        }
        Ok(Self { path, zip })
    }

    /// The text of part `name`; `None` when the package has no such part.
    fn part(&mut self, name: &str) -> Result<Option<String>, LoadError> {
        let path = self.path;
        let damaged = |e: &dyn std::fmt::Display| {
            LoadError::unreadable(
                path,
                format!("{name} cannot be unpacked ({e})"),
                DAMAGED_FIX,
            )
        };
        let file = match self.zip.by_name(name) {
            Ok(file) => file,
            Err(ZipError::FileNotFound) => return Ok(None),
            Err(e) => return Err(damaged(&e)),
        };
        if file.size() > MAX_PART {
            return Err(too_large(path, name));
        }
        let mut bytes = Vec::new();
        file.take(MAX_PART + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| damaged(&e))?;
        if bytes.len() as u64 > MAX_PART {
            return Err(too_large(path, name));
        }
        decode(path, name, bytes).map(Some)
    }

    /// The relationships of part `name` (its `_rels/NAME.rels`), by id.
    fn rels(&mut self, name: &str) -> Result<Rels, LoadError> {
        let rels_name = match name.rsplit_once('/') {
            Some((dir, file)) => format!("{dir}/_rels/{file}.rels"),
            None => format!("_rels/{name}.rels"),
        };
        let Some(xml) = self.part(&rels_name)? else {
            return Ok(Rels::new());
        };
        let doc = parse(self.path, &rels_name, &xml)?;
        let base = name.rsplit_once('/').map_or("", |(dir, _)| dir);
        Ok(relationships(&doc, base))
    }
}

fn no_document(path: &str) -> LoadError {
    LoadError::unreadable(
        path,
        "is a zip package without word/document.xml, so not a Word document",
        "save it as .docx from Word or LibreOffice",
    )
}

fn too_large(path: &str, name: &str) -> LoadError {
    LoadError::unreadable(
        path,
        format!("{name} unpacks to more than 64 MiB (a zip bomb, or an unusually large document)"),
        "split the document into smaller files, or save it again without embedded data",
    )
}

/// XML parts are UTF-8, or UTF-16 with a byte order mark.
fn decode(path: &str, name: &str, bytes: Vec<u8>) -> Result<String, LoadError> {
    if bytes.starts_with(&[0xFF, 0xFE]) || bytes.starts_with(&[0xFE, 0xFF]) {
        let (text, _, malformed) = encoding_rs::UTF_16LE.decode(&bytes);
        if !malformed {
            return Ok(text.into_owned());
        }
    }
    let mut text = String::from_utf8(bytes).map_err(|_| {
        LoadError::unreadable(
            path,
            format!("{name} is not UTF-8 or UTF-16 XML"),
            DAMAGED_FIX,
        )
    })?;
    if text.starts_with('\u{FEFF}') {
        text.remove(0);
    }
    Ok(text)
}

fn parse<'x>(path: &str, name: &str, xml: &'x str) -> Result<Document<'x>, LoadError> {
    let doc = Document::parse(xml).map_err(|e| {
        let reason = format!("{name} is not well-formed XML ({e})");
        LoadError::unreadable(path, reason.replace('\n', " "), DAMAGED_FIX)
    })?;
    if too_deep(&doc) {
        return Err(LoadError::unreadable(
            path,
            format!("{name} nests its elements more than {MAX_DEPTH} deep"),
            DAMAGED_FIX,
        ));
    }
    Ok(doc)
}

/// Whether elements nest deeper than [`MAX_DEPTH`], found without recursion.
fn too_deep(doc: &Document) -> bool {
    let mut stack = vec![(doc.root(), 0usize)];
    while let Some((node, depth)) = stack.pop() {
        if depth > MAX_DEPTH {
            return true;
        }
        stack.extend(
            node.children()
                .filter(Node::is_element)
                .map(|c| (c, depth + 1)),
        );
    }
    false
}

/// A relationship of a part: its type's last path segment (`header`, `hyperlink`), its
/// target (a part name resolved against the package, or an external address as is).
#[derive(Debug, Clone)]
struct Rel {
    kind: String,
    target: String,
}

type Rels = HashMap<String, Rel>;

fn relationships(doc: &Document, base: &str) -> Rels {
    let mut rels = Rels::new();
    for node in doc.descendants().filter(|n| n.has_tag_name("Relationship")) {
        let (Some(id), Some(kind), Some(target)) = (
            node.attribute("Id"),
            node.attribute("Type"),
            node.attribute("Target"),
        ) else {
            continue;
        };
        let external = node.attribute("TargetMode") == Some("External");
        let target = if external {
            target.to_string()
        } else {
            resolve(base, target)
        };
        let kind = kind.rsplit('/').next().unwrap_or(kind).to_string();
        rels.insert(id.to_string(), Rel { kind, target });
    }
    rels
}

/// A part name from a relative `target` seen from the folder `base`.
fn resolve(base: &str, target: &str) -> String {
    let (mut parts, target) = match target.strip_prefix('/') {
        Some(absolute) => (Vec::new(), absolute),
        None => (base.split('/').filter(|s| !s.is_empty()).collect(), target),
    };
    for segment in target.split('/') {
        match segment {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            s => parts.push(s),
        }
    }
    parts.join("/")
}

/// The part a relationship of type `kind` points to.
fn part_of_kind(rels: &Rels, kind: &str) -> Option<String> {
    let mut found: Vec<&Rel> = rels.values().filter(|r| r.kind == kind).collect();
    // Ids are unordered in a map; sort for a deterministic pick.
    found.sort_by(|a, b| a.target.cmp(&b.target));
    found.first().map(|r| r.target.clone())
}

fn read_package(package: &mut Package) -> Result<Vec<SourceBlock>, LoadError> {
    let path = package.path;
    let rels = package.rels(DOCUMENT)?;
    let styles = match part_of_kind(&rels, "styles") {
        Some(name) => read_styles(package, &name)?,
        None => read_styles(package, "word/styles.xml")?,
    };
    let numbering = match part_of_kind(&rels, "numbering") {
        Some(name) => read_numbering(package, &name)?,
        None => read_numbering(package, "word/numbering.xml")?,
    };
    let xml = package.part(DOCUMENT)?.ok_or_else(|| no_document(path))?;
    let document = parse(path, DOCUMENT, &xml)?;
    let mut walker = Walker::new(&styles, &numbering);
    for name in referenced_parts(&document, &rels, "headerReference") {
        walker.side_part(package, &name, "header")?;
    }
    if let Some(body) = child(document.root_element(), "body") {
        walker.walk(
            body,
            &Part {
                rels: &rels,
                label: None,
            },
        );
    }
    for name in referenced_parts(&document, &rels, "footerReference") {
        walker.side_part(package, &name, "footer")?;
    }
    walker.notes(package, &rels, "footnotes", "footnote")?;
    walker.notes(package, &rels, "endnotes", "endnote")?;
    Ok(walker.blocks)
}

/// The headers (or footers) the sections refer to, each once, in order of reference.
fn referenced_parts(document: &Document, rels: &Rels, element: &str) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    for node in document.descendants().filter(|n| is_w(*n, element)) {
        if let Some(rel) = r_id(node).and_then(|id| rels.get(id)) {
            if !names.contains(&rel.target) {
                names.push(rel.target.clone());
            }
        }
    }
    names
}

fn is_w(node: Node, name: &str) -> bool {
    node.is_element()
        && node.tag_name().name() == name
        && node.tag_name().namespace().is_some_and(is_w_namespace)
}

fn is_any_w(node: Node) -> bool {
    node.is_element() && node.tag_name().namespace().is_some_and(is_w_namespace)
}

fn child<'a, 'i>(node: Node<'a, 'i>, name: &str) -> Option<Node<'a, 'i>> {
    node.children().find(|c| is_w(*c, name))
}

/// A `w:` attribute of `node`.
fn w_attr<'a>(node: Node<'a, '_>, name: &str) -> Option<&'a str> {
    node.attributes()
        .find(|a| a.name() == name && a.namespace().is_some_and(is_w_namespace))
        .map(|a| a.value())
}

fn val<'a>(node: Node<'a, '_>) -> Option<&'a str> {
    w_attr(node, "val")
}

/// The `w:val` of the child `name` of `node`.
fn child_val<'a>(node: Node<'a, '_>, name: &str) -> Option<&'a str> {
    child(node, name).and_then(val)
}

fn number<T: std::str::FromStr>(text: Option<&str>) -> Option<T> {
    text.and_then(|t| t.trim().parse().ok())
}

/// An on/off property: present without a value means on.
fn is_on(node: Option<Node>) -> bool {
    node.is_some_and(|n| !matches!(val(n), Some("0" | "false" | "off")))
}

/// The `r:id` of a reference or hyperlink, in either OOXML flavour.
fn r_id<'a>(node: Node<'a, '_>) -> Option<&'a str> {
    node.attributes()
        .find(|a| {
            a.name() == "id"
                && a.namespace()
                    .is_some_and(|ns| ns.ends_with("/relationships"))
        })
        .map(|a| a.value())
}

/// One style of styles.xml, as far as it matters for roles.
#[derive(Debug, Default)]
struct Style {
    /// Lower case: built-in names ("heading 1") are English whatever the style id.
    name: String,
    based_on: Option<String>,
    outline: Option<u8>,
    num_id: Option<String>,
    ilvl: Option<u8>,
}

#[derive(Debug, Default)]
struct Styles {
    by_id: HashMap<String, Style>,
    /// The paragraph style of paragraphs that name none.
    default: Option<String>,
}

/// What a paragraph style, with the styles it is based on, makes of a paragraph.
#[derive(Debug, Default)]
struct StyleRole {
    heading: Option<u8>,
    special: Option<Role>,
    num_id: Option<String>,
    ilvl: Option<u8>,
}

fn read_styles(package: &mut Package, name: &str) -> Result<Styles, LoadError> {
    let Some(xml) = package.part(name)? else {
        return Ok(Styles::default());
    };
    let doc = parse(package.path, name, &xml)?;
    let mut styles = Styles::default();
    for node in doc.descendants().filter(|n| is_w(*n, "style")) {
        if w_attr(node, "type") != Some("paragraph") {
            continue;
        }
        let Some(id) = w_attr(node, "styleId") else {
            continue;
        };
        if matches!(w_attr(node, "default"), Some("1" | "true" | "on")) {
            styles.default = Some(id.to_string());
        }
        let ppr = child(node, "pPr");
        let num_pr = ppr.and_then(|p| child(p, "numPr"));
        let style = Style {
            name: child_val(node, "name").unwrap_or("").to_lowercase(),
            based_on: child_val(node, "basedOn").map(str::to_string),
            outline: number(ppr.and_then(|p| child_val(p, "outlineLvl"))),
            num_id: num_pr
                .and_then(|n| child_val(n, "numId"))
                .map(str::to_string),
            ilvl: number(num_pr.and_then(|n| child_val(n, "ilvl"))),
        };
        styles.by_id.insert(id.to_string(), style);
    }
    Ok(styles)
}

impl Styles {
    /// The role of style `id` (or the default style): the nearest style in the
    /// `basedOn` chain that decides each property wins.
    fn resolve(&self, id: Option<&str>) -> StyleRole {
        let mut out = StyleRole::default();
        let mut next = id.or(self.default.as_deref());
        for _ in 0..MAX_STYLE_CHAIN {
            let Some(style) = next.and_then(|id| self.by_id.get(id)) else {
                break;
            };
            if out.heading.is_none() {
                out.heading =
                    heading_by_name(&style.name).or(style.outline.and_then(outline_level));
            }
            if out.special.is_none() {
                out.special = match style.name.as_str() {
                    "caption" => Some(Role::Caption),
                    "quote" | "intense quote" => Some(Role::Quote),
                    _ => None,
                };
            }
            if out.num_id.is_none() {
                out.num_id = style.num_id.clone();
                out.ilvl = out.ilvl.or(style.ilvl);
            }
            next = style.based_on.as_deref();
        }
        out
    }
}

fn heading_by_name(name: &str) -> Option<u8> {
    if name == "title" {
        return Some(1);
    }
    let level: u8 = number(name.strip_prefix("heading "))?;
    (1..=9).contains(&level).then(|| level.min(6))
}

/// Outline level 0 is a top heading; 9 means body text.
fn outline_level(outline: u8) -> Option<u8> {
    (outline < 9).then(|| (outline + 1).min(6))
}

/// A numbering level's format and first number.
#[derive(Debug, Clone)]
struct Level {
    format: String,
    start: u32,
}

/// A `w:num`: the abstract numbering it uses, with its per-level overrides.
#[derive(Debug, Default)]
struct Num {
    abstract_id: String,
    starts: HashMap<u8, u32>,
    levels: HashMap<u8, Level>,
}

#[derive(Debug, Default)]
struct Numbering {
    abstracts: HashMap<String, HashMap<u8, Level>>,
    nums: HashMap<String, Num>,
}

fn read_numbering(package: &mut Package, name: &str) -> Result<Numbering, LoadError> {
    let Some(xml) = package.part(name)? else {
        return Ok(Numbering::default());
    };
    let doc = parse(package.path, name, &xml)?;
    let mut numbering = Numbering::default();
    let root = doc.root_element();
    for node in root.children().filter(|n| is_w(*n, "abstractNum")) {
        if let Some(id) = w_attr(node, "abstractNumId") {
            numbering.abstracts.insert(id.to_string(), levels(node));
        }
    }
    for node in root.children().filter(|n| is_w(*n, "num")) {
        let (Some(id), Some(abstract_id)) =
            (w_attr(node, "numId"), child_val(node, "abstractNumId"))
        else {
            continue;
        };
        let mut num = Num {
            abstract_id: abstract_id.to_string(),
            ..Num::default()
        };
        for o in node.children().filter(|n| is_w(*n, "lvlOverride")) {
            let Some(ilvl) = number(w_attr(o, "ilvl")) else {
                continue;
            };
            if let Some(start) = number(child_val(o, "startOverride")) {
                num.starts.insert(ilvl, start);
            }
            num.levels
                .extend(levels(o).into_iter().filter(|(l, _)| *l == ilvl));
        }
        numbering.nums.insert(id.to_string(), num);
    }
    Ok(numbering)
}

/// The `w:lvl` children of an abstract numbering or a level override, by level.
fn levels(node: Node) -> HashMap<u8, Level> {
    let mut out = HashMap::new();
    for lvl in node.children().filter(|n| is_w(*n, "lvl")) {
        let Some(ilvl) = number(w_attr(lvl, "ilvl")) else {
            continue;
        };
        // Newer Word puts custom formats in mc:AlternateContent, with a plain fallback.
        let format = child_val(lvl, "numFmt")
            .or_else(|| lvl.descendants().find(|n| is_w(*n, "numFmt")).and_then(val))
            .unwrap_or("decimal");
        let level = Level {
            format: format.to_string(),
            start: number(child_val(lvl, "start")).unwrap_or(1),
        };
        out.insert(ilvl, level);
    }
    out
}

impl Numbering {
    fn level(&self, num_id: &str, ilvl: u8) -> Option<Level> {
        let num = self.nums.get(num_id)?;
        let mut level = match num.levels.get(&ilvl) {
            Some(level) => level.clone(),
            None => self.abstracts.get(&num.abstract_id)?.get(&ilvl)?.clone(),
        };
        if let Some(start) = num.starts.get(&ilvl) {
            level.start = *start;
        }
        Some(level)
    }
}

/// Where the blocks being read come from: the part's relationships (for links), and
/// `None` for the body or the position every block of a header, footer or note gets.
struct Part<'r> {
    rels: &'r Rels,
    label: Option<&'r str>,
}

/// A table cell's place, 0-based.
#[derive(Debug, Clone, Copy)]
struct CellAt {
    table: u32,
    row: u32,
    column: u32,
    header: bool,
}

/// Walks the parts in reading order, collecting blocks and the state that spans parts:
/// list counters, table and paragraph numbers.
struct Walker<'s> {
    styles: &'s Styles,
    numbering: &'s Numbering,
    /// Per `numId`, the last number given at each level (`None`: restart there).
    counters: HashMap<String, [Option<u32>; 9]>,
    tables: u32,
    paragraphs: u32,
    blocks: Vec<SourceBlock>,
}

impl<'s> Walker<'s> {
    fn new(styles: &'s Styles, numbering: &'s Numbering) -> Self {
        Self {
            styles,
            numbering,
            counters: HashMap::new(),
            tables: 0,
            paragraphs: 0,
            blocks: Vec::new(),
        }
    }

    /// A header or footer: every block in it gets the position `label`.
    fn side_part(
        &mut self,
        package: &mut Package,
        name: &str,
        label: &str,
    ) -> Result<(), LoadError> {
        let Some(xml) = package.part(name)? else {
            return Ok(());
        };
        let doc = parse(package.path, name, &xml)?;
        let rels = package.rels(name)?;
        self.walk(
            doc.root_element(),
            &Part {
                rels: &rels,
                label: Some(label),
            },
        );
        Ok(())
    }

    /// Footnotes or endnotes, numbered from 1 as the reader sees them, without the
    /// separator lines Word keeps among them.
    fn notes(
        &mut self,
        package: &mut Package,
        rels: &Rels,
        kind: &str,
        element: &str,
    ) -> Result<(), LoadError> {
        let Some(name) = part_of_kind(rels, kind) else {
            return Ok(());
        };
        let Some(xml) = package.part(&name)? else {
            return Ok(());
        };
        let doc = parse(package.path, &name, &xml)?;
        let note_rels = package.rels(&name)?;
        let mut n = 0;
        for note in doc.root_element().children().filter(|c| is_w(*c, element)) {
            if matches!(
                w_attr(note, "type"),
                Some("separator" | "continuationSeparator" | "continuationNotice")
            ) {
                continue;
            }
            n += 1;
            let label = format!("{element} {n}");
            self.walk(
                note,
                &Part {
                    rels: &note_rels,
                    label: Some(&label),
                },
            );
        }
        Ok(())
    }

    /// The block-level content of `node`: paragraphs and tables, also inside content
    /// controls and custom XML.
    fn walk(&mut self, node: Node, part: &Part) {
        for child in node.children().filter(|c| is_any_w(*c)) {
            match child.tag_name().name() {
                "p" => self.paragraph(child, part),
                "tbl" => self.table(child, part),
                "sdt" | "sdtContent" | "customXml" | "ins" | "moveTo" => self.walk(child, part),
                _ => {}
            }
        }
    }

    fn paragraph(&mut self, p: Node, part: &Part) {
        // The role first: an empty list item still takes its number.
        let role = self.role(p);
        let mut content = Inline::default();
        inline(p, part.rels, &mut content);
        if content.text.trim().is_empty() {
            return;
        }
        // Numbered among the paragraphs with text, as a reader counts them.
        let position = match part.label {
            Some(label) => label.to_string(),
            None => {
                self.paragraphs += 1;
                format!("paragraph {}", self.paragraphs)
            }
        };
        self.push(role, content, position);
    }

    fn push(&mut self, role: Role, content: Inline, position: String) {
        self.blocks.push(SourceBlock {
            role,
            text: content.text,
            position: Some(position),
            links: content.links,
            translate: true,
        });
    }

    /// A paragraph's role: a heading (by outline level or style), else a list item
    /// (by its own or its style's numbering), else what its style says.
    fn role(&mut self, p: Node) -> Role {
        let ppr = child(p, "pPr");
        let style = self
            .styles
            .resolve(ppr.and_then(|x| child_val(x, "pStyle")));
        let outline: Option<u8> = number(ppr.and_then(|x| child_val(x, "outlineLvl")));
        let heading = match outline {
            Some(outline) => outline_level(outline),
            None => style.heading,
        };
        if let Some(level) = heading {
            return Role::Heading { level };
        }
        let num_pr = ppr.and_then(|x| child(x, "numPr"));
        let num_id = num_pr
            .and_then(|n| child_val(n, "numId"))
            .or(style.num_id.as_deref());
        let ilvl = number(num_pr.and_then(|n| child_val(n, "ilvl")))
            .or(style.ilvl)
            .unwrap_or(0);
        // numId 0 is how a paragraph switches off its style's numbering.
        if let Some(item) = num_id
            .filter(|id| *id != "0")
            .and_then(|id| self.list_item(id, ilvl))
        {
            return item;
        }
        style.special.unwrap_or(Role::Paragraph)
    }

    /// Counts per list and level, as Word does: a deeper level restarts after each
    /// item of a shallower one.
    fn list_item(&mut self, num_id: &str, ilvl: u8) -> Option<Role> {
        let ilvl = ilvl.min(8);
        let level = self.numbering.level(num_id, ilvl)?;
        let counters = self.counters.entry(num_id.to_string()).or_insert([None; 9]);
        let depth = usize::from(ilvl);
        let n = counters[depth].map_or(level.start, |n| n.saturating_add(1));
        counters[depth] = Some(n);
        for deeper in &mut counters[depth + 1..] {
            *deeper = None;
        }
        let ordered = !matches!(level.format.as_str(), "bullet" | "none");
        Some(Role::ListItem {
            ordered,
            depth: ilvl,
            number: ordered.then_some(n),
        })
    }

    fn table(&mut self, tbl: Node, part: &Part) {
        let table = self.tables;
        self.tables = self.tables.saturating_add(1);
        let first_row_header = first_row_is_header(tbl);
        for (row, tr) in (0u32..).zip(wrapped(tbl, "tr")) {
            let tr_pr = child(tr, "trPr");
            let header =
                is_on(tr_pr.and_then(|t| child(t, "tblHeader"))) || (row == 0 && first_row_header);
            let mut column: u32 =
                number(tr_pr.and_then(|t| child_val(t, "gridBefore"))).unwrap_or(0);
            for tc in wrapped(tr, "tc") {
                let span: u32 =
                    number(child(tc, "tcPr").and_then(|t| child_val(t, "gridSpan"))).unwrap_or(1);
                let at = CellAt {
                    table,
                    row,
                    column,
                    header,
                };
                self.cell(tc, part, at);
                column = column.saturating_add(span.max(1));
            }
        }
    }

    /// One cell as one block, its paragraphs on separate lines; a nested table's cells
    /// follow as blocks of their own. Empty cells (such as the continuations of a
    /// vertically merged cell) give no block.
    fn cell(&mut self, tc: Node, part: &Part, at: CellAt) {
        let mut content = Inline::default();
        let mut nested = Vec::new();
        cell_content(tc, part.rels, &mut content, &mut nested);
        if !content.text.trim().is_empty() {
            let role = Role::TableCell {
                table: at.table,
                row: at.row,
                column: at.column,
                header: at.header,
            };
            let place = format!(
                "table {}, row {}, cell {}",
                u64::from(at.table) + 1,
                u64::from(at.row) + 1,
                u64::from(at.column) + 1
            );
            let position = match part.label {
                Some(label) => format!("{label}, {place}"),
                None => place,
            };
            self.push(role, content, position);
        }
        for table in nested {
            self.table(table, part);
        }
    }
}

fn first_row_is_header(tbl: Node) -> bool {
    let Some(look) = child(tbl, "tblPr").and_then(|p| child(p, "tblLook")) else {
        return false;
    };
    match w_attr(look, "firstRow") {
        Some(v) => matches!(v, "1" | "true" | "on"),
        // Word 2007 wrote the flags as a hex bit mask; 0x0020 is the first row.
        None => val(look)
            .and_then(|v| u32::from_str_radix(v, 16).ok())
            .is_some_and(|bits| bits & 0x0020 != 0),
    }
}

/// The `name` children of `node`, also those wrapped in content controls or custom XML.
fn wrapped<'a, 'i>(node: Node<'a, 'i>, name: &str) -> Vec<Node<'a, 'i>> {
    let mut out = Vec::new();
    for c in node.children().filter(|c| is_any_w(*c)) {
        match c.tag_name().name() {
            n if n == name => out.push(c),
            "sdt" | "sdtContent" | "customXml" => out.extend(wrapped(c, name)),
            _ => {}
        }
    }
    out
}

fn cell_content<'a, 'i>(
    node: Node<'a, 'i>,
    rels: &Rels,
    content: &mut Inline,
    nested: &mut Vec<Node<'a, 'i>>,
) {
    for c in node.children().filter(|c| is_any_w(*c)) {
        match c.tag_name().name() {
            "p" => {
                let mut p = Inline::default();
                inline(c, rels, &mut p);
                if p.text.trim().is_empty() {
                    continue;
                }
                if !content.text.is_empty() {
                    content.text.push('\n');
                }
                content.text.push_str(&p.text);
                content.links.append(&mut p.links);
            }
            "tbl" => nested.push(c),
            "sdt" | "sdtContent" | "customXml" => cell_content(c, rels, content, nested),
            _ => {}
        }
    }
}

/// The text of a paragraph and the links in it.
#[derive(Debug, Default)]
struct Inline {
    text: String,
    links: Vec<Link>,
}

/// Collects the visible text under `node`: runs merged whatever their formatting.
fn inline(node: Node, rels: &Rels, out: &mut Inline) {
    for c in node.children().filter(Node::is_element) {
        if !is_any_w(c) {
            // mc:Fallback repeats what mc:Choice holds, for older readers.
            if c.tag_name().name() != "Fallback" {
                inline(c, rels, out);
            }
            continue;
        }
        match c.tag_name().name() {
            "t" => out.text.push_str(c.text().unwrap_or("")),
            "tab" | "ptab" => out.text.push(' '),
            "br" | "cr" => out.text.push('\n'),
            "noBreakHyphen" => out.text.push('-'),
            "hyperlink" => hyperlink(c, rels, out),
            // Deleted revisions, field codes, properties and drawings are not what the
            // page says (text boxes inside drawings included).
            "del" | "moveFrom" | "delText" | "instrText" | "pPr" | "rPr" | "sdtPr" | "drawing"
            | "pict" | "object" => {}
            _ => inline(c, rels, out),
        }
    }
}

/// A link's text, kept as a link when it points somewhere outside the document.
fn hyperlink(node: Node, rels: &Rels, out: &mut Inline) {
    let start = out.text.len();
    inline(node, rels, out);
    let Some(rel) = r_id(node).and_then(|id| rels.get(id)) else {
        return;
    };
    let text = out.text.get(start..).unwrap_or("").trim();
    if text.is_empty() {
        return;
    }
    let href = match w_attr(node, "anchor") {
        Some(anchor) => format!("{}#{anchor}", rel.target),
        None => rel.target.clone(),
    };
    out.links.push(Link {
        text: text.to_string(),
        href,
    });
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use zip::write::SimpleFileOptions;

    use super::*;

    const NS: &str = "xmlns:w=\"http://schemas.openxmlformats.org/wordprocessingml/2006/main\" \
                      xmlns:r=\"http://schemas.openxmlformats.org/officeDocument/2006/relationships\"";
    const REL: &str = "http://schemas.openxmlformats.org/officeDocument/2006/relationships";

    fn zip(parts: &[(&str, &[u8])]) -> Vec<u8> {
        let mut zip = zip::ZipWriter::new(Cursor::new(Vec::new()));
        for (name, bytes) in parts {
            zip.start_file(*name, SimpleFileOptions::default())
                .expect("start");
            zip.write_all(bytes).expect("write");
        }
        zip.finish().expect("finish").into_inner()
    }

    fn document(body: &str) -> String {
        format!("<?xml version=\"1.0\" encoding=\"UTF-8\"?><w:document {NS}><w:body>{body}</w:body></w:document>")
    }

    /// A relationships part: `(id, type, target)`; hyperlinks are external.
    fn rels(entries: &[(&str, &str, &str)]) -> String {
        let mut out = String::from(
            "<Relationships xmlns=\"http://schemas.openxmlformats.org/package/2006/relationships\">",
        );
        for (id, kind, target) in entries {
            let mode = if *kind == "hyperlink" {
                " TargetMode=\"External\""
            } else {
                ""
            };
            out.push_str(&format!(
                "<Relationship Id=\"{id}\" Type=\"{REL}/{kind}\" Target=\"{target}\"{mode}/>"
            ));
        }
        out + "</Relationships>"
    }

    fn package(parts: &[(&str, String)]) -> Vec<u8> {
        let parts: Vec<(&str, &[u8])> = parts.iter().map(|(n, x)| (*n, x.as_bytes())).collect();
        zip(&parts)
    }

    fn read(parts: &[(&str, String)]) -> Vec<SourceBlock> {
        Docx.read("in.docx", &package(parts)).expect("reads").blocks
    }

    fn read_body(body: &str) -> Vec<SourceBlock> {
        read(&[(DOCUMENT, document(body))])
    }

    fn p(text: &str) -> String {
        format!("<w:p><w:r><w:t>{text}</w:t></w:r></w:p>")
    }

    fn styled(style: &str, text: &str) -> String {
        format!(
            "<w:p><w:pPr><w:pStyle w:val=\"{style}\"/></w:pPr><w:r><w:t>{text}</w:t></w:r></w:p>"
        )
    }

    fn roles_and_texts(blocks: &[SourceBlock]) -> Vec<(Role, &str)> {
        blocks
            .iter()
            .map(|b| (b.role.clone(), b.text.as_str()))
            .collect()
    }

    fn positions(blocks: &[SourceBlock]) -> Vec<&str> {
        blocks
            .iter()
            .filter_map(|b| b.position.as_deref())
            .collect()
    }

    fn error(bytes: &[u8]) -> String {
        let err = Docx.read("in.docx", bytes).expect_err("fails");
        let message = err.to_string();
        assert!(message.starts_with("in.docx: "), "{message}");
        assert!(!message.contains('\n'), "{message}");
        message
    }

    #[test]
    fn runs_merge_and_only_visible_text_is_kept() {
        let body = format!(
            "<w:p><w:r><w:t>مج</w:t></w:r><w:r><w:rPr><w:b/></w:rPr><w:t xml:space=\"preserve\">لس </w:t></w:r>\
             <w:r><w:tab/><w:t>a</w:t><w:br/><w:t>b</w:t><w:cr/><w:t>c</w:t></w:r>\
             <w:del><w:r><w:delText>gone</w:delText></w:r></w:del><w:ins><w:r><w:t> new</w:t></w:r></w:ins>\
             <w:r><w:fldChar w:fldCharType=\"begin\"/></w:r><w:r><w:instrText> PAGE </w:instrText></w:r>\
             <w:r><w:fldChar w:fldCharType=\"separate\"/></w:r><w:r><w:t>7</w:t></w:r>\
             <w:r><w:fldChar w:fldCharType=\"end\"/></w:r></w:p>\
             <w:p/><w:p><w:r><w:t xml:space=\"preserve\">  </w:t></w:r></w:p>\
             <w:sdt><w:sdtPr><w:alias w:val=\"x\"/></w:sdtPr><w:sdtContent>{}</w:sdtContent></w:sdt>\
             <w:customXml>{}</w:customXml><w:sectPr/>",
            p("في عنصر تحكم"),
            p("&lt;b&gt; &amp; &#1605;")
        );
        let blocks = read_body(&body);
        assert_eq!(
            roles_and_texts(&blocks),
            vec![
                (Role::Paragraph, "مجلس  a\nb\nc new7"),
                (Role::Paragraph, "في عنصر تحكم"),
                (Role::Paragraph, "<b> & م"),
            ]
        );
        // Numbered among the paragraphs with text.
        assert_eq!(
            positions(&blocks),
            ["paragraph 1", "paragraph 2", "paragraph 3"]
        );
        assert!(blocks.iter().all(|b| b.translate && b.links.is_empty()));
    }

    #[test]
    fn drawings_and_fallbacks_are_not_read_twice() {
        let body = "<w:p xmlns:mc=\"http://schemas.openxmlformats.org/markup-compatibility/2006\">\
             <w:r><w:t>نص</w:t></w:r><mc:AlternateContent><mc:Choice Requires=\"wps\">\
             <w:drawing><w:txbxContent><w:p><w:r><w:t>إطار</w:t></w:r></w:p></w:txbxContent></w:drawing>\
             </mc:Choice><mc:Fallback><w:pict><w:t>إطار</w:t></w:pict></mc:Fallback></mc:AlternateContent></w:p>";
        assert_eq!(read_body(body)[0].text, "نص");
    }

    fn styles(entries: &str) -> String {
        format!(
            "<w:styles {NS}><w:style w:type=\"paragraph\" w:default=\"1\" w:styleId=\"Normal\">\
                 <w:name w:val=\"Normal\"/></w:style>{entries}</w:styles>"
        )
    }

    fn style(id: &str, name: &str, extra: &str) -> String {
        format!("<w:style w:type=\"paragraph\" w:styleId=\"{id}\"><w:name w:val=\"{name}\"/>{extra}</w:style>")
    }

    #[test]
    fn roles_come_from_style_names_not_ids() {
        let styles = styles(
            &[
                style("Titre", "Title", ""),
                style("Titre1", "heading 1", ""),
                style("Titre2", "Heading 2", "<w:basedOn w:val=\"Titre1\"/>"),
                style("Sous", "Mine", "<w:basedOn w:val=\"Titre2\"/>"),
                style(
                    "Plan",
                    "Mine too",
                    "<w:pPr><w:outlineLvl w:val=\"3\"/></w:pPr>",
                ),
                style("Legende", "caption", ""),
                style("Citation", "Quote", ""),
                style("CitationIntense", "Intense Quote", ""),
                style("Boucle", "loop", "<w:basedOn w:val=\"Boucle\"/>"),
            ]
            .concat(),
        );
        let body = [
            styled("Titre", "عنوان"),
            styled("Titre1", "أول"),
            styled("Sous", "ثان"),
            styled("Plan", "رابع"),
            "<w:p><w:pPr><w:outlineLvl w:val=\"1\"/></w:pPr><w:r><w:t>مباشر</w:t></w:r></w:p>".into(),
            "<w:p><w:pPr><w:pStyle w:val=\"Titre1\"/><w:outlineLvl w:val=\"9\"/></w:pPr><w:r><w:t>نص</w:t></w:r></w:p>"
                .into(),
            styled("Legende", "شرح"),
            styled("Citation", "اقتباس"),
            styled("CitationIntense", "اقتباس مكثف"),
            styled("Boucle", "حلقة"),
            styled("Inconnu", "مجهول"),
        ]
        .concat();
        let blocks = read(&[(DOCUMENT, document(&body)), ("word/styles.xml", styles)]);
        let h = |level| Role::Heading { level };
        assert_eq!(
            roles_and_texts(&blocks),
            vec![
                (h(1), "عنوان"),
                (h(1), "أول"),
                (h(2), "ثان"),
                (h(4), "رابع"),
                (h(2), "مباشر"),
                (Role::Paragraph, "نص"),
                (Role::Caption, "شرح"),
                (Role::Quote, "اقتباس"),
                (Role::Quote, "اقتباس مكثف"),
                (Role::Paragraph, "حلقة"),
                (Role::Paragraph, "مجهول"),
            ]
        );
    }

    fn numbering() -> String {
        let lvl = |ilvl: u8, fmt: &str| {
            format!("<w:lvl w:ilvl=\"{ilvl}\"><w:start w:val=\"1\"/><w:numFmt w:val=\"{fmt}\"/></w:lvl>")
        };
        format!(
            "<w:numbering {NS}>\
             <w:abstractNum w:abstractNumId=\"0\">{}{}</w:abstractNum>\
             <w:abstractNum w:abstractNumId=\"1\">{}{}</w:abstractNum>\
             <w:num w:numId=\"1\"><w:abstractNumId w:val=\"0\"/></w:num>\
             <w:num w:numId=\"2\"><w:abstractNumId w:val=\"1\"/></w:num>\
             <w:num w:numId=\"3\"><w:abstractNumId w:val=\"0\"/>\
             <w:lvlOverride w:ilvl=\"0\"><w:startOverride w:val=\"5\"/></w:lvlOverride></w:num>\
             </w:numbering>",
            lvl(0, "decimal"),
            lvl(1, "lowerLetter"),
            lvl(0, "bullet"),
            lvl(1, "bullet"),
        )
    }

    fn item(num: &str, ilvl: u8, text: &str) -> String {
        format!(
            "<w:p><w:pPr><w:numPr><w:ilvl w:val=\"{ilvl}\"/><w:numId w:val=\"{num}\"/></w:numPr></w:pPr>\
             <w:r><w:t>{text}</w:t></w:r></w:p>"
        )
    }

    #[test]
    fn lists_count_per_level_and_restart_deeper_levels() {
        let list_style = style(
            "Puce",
            "List Bullet",
            "<w:pPr><w:numPr><w:numId w:val=\"2\"/></w:numPr></w:pPr>",
        );
        let body = [
            item("1", 0, "أ"),
            item("1", 0, "ب"),
            item("1", 1, "ب١"),
            item("1", 1, "ب٢"),
            "<w:p><w:pPr><w:numPr><w:ilvl w:val=\"0\"/><w:numId w:val=\"1\"/></w:numPr></w:pPr></w:p>".into(),
            item("1", 1, "د١"),
            item("2", 0, "نقطة"),
            styled("Puce", "نقطة بالنمط"),
            "<w:p><w:pPr><w:pStyle w:val=\"Puce\"/><w:numPr><w:numId w:val=\"0\"/></w:numPr></w:pPr>\
             <w:r><w:t>بلا ترقيم</w:t></w:r></w:p>"
                .into(),
            item("3", 0, "خامس"),
            item("9", 0, "قائمة مفقودة"),
        ]
        .concat();
        let blocks = read(&[
            (DOCUMENT, document(&body)),
            ("word/numbering.xml", numbering()),
            ("word/styles.xml", styles(&list_style)),
        ]);
        let ordered = |depth, n| Role::ListItem {
            ordered: true,
            depth,
            number: Some(n),
        };
        let bullet = Role::ListItem {
            ordered: false,
            depth: 0,
            number: None,
        };
        assert_eq!(
            roles_and_texts(&blocks),
            vec![
                (ordered(0, 1), "أ"),
                (ordered(0, 2), "ب"),
                (ordered(1, 1), "ب١"),
                (ordered(1, 2), "ب٢"),
                // the empty item 3 took its number and restarted level 1
                (ordered(1, 1), "د١"),
                (bullet.clone(), "نقطة"),
                (bullet, "نقطة بالنمط"),
                (Role::Paragraph, "بلا ترقيم"),
                (ordered(0, 5), "خامس"),
                (Role::Paragraph, "قائمة مفقودة"),
            ]
        );
    }

    fn tc(props: &str, content: &str) -> String {
        format!("<w:tc><w:tcPr>{props}</w:tcPr>{content}</w:tc>")
    }

    #[test]
    fn tables_give_one_block_per_cell() {
        let nested = format!(
            "<w:tbl><w:tr>{}{}</w:tr></w:tbl>",
            tc("", &p("داخلي ١")),
            tc("", &p("داخلي ٢"))
        );
        let table = format!(
            "<w:tbl><w:tblPr><w:tblLook w:val=\"04A0\" w:firstRow=\"1\"/></w:tblPr>\
             <w:tr>{}{}{}</w:tr>\
             <w:tr>{}{}</w:tr>\
             <w:tr>{}{}</w:tr>\
             <w:tr>{}<w:sdt><w:sdtContent>{}</w:sdtContent></w:sdt></w:tr></w:tbl>",
            tc("", &p("الدولة")),
            tc("", &p("المدينة")),
            tc("", &p("التاريخ")),
            tc("<w:gridSpan w:val=\"2\"/>", &p("عريضة")),
            tc("", &format!("{}<w:p/>{}", p("سطر ١"), p("سطر ٢"))),
            tc("<w:vMerge w:val=\"restart\"/>", &p("مدمجة")),
            tc(
                "<w:gridSpan w:val=\"2\"/>",
                &format!("{}{nested}<w:p/>", p("خارجي"))
            ),
            tc("<w:vMerge/>", "<w:p/>"),
            tc("", &p("أخيرة")),
        );
        let second = format!(
            "<w:tbl><w:tblPr><w:tblLook w:val=\"0000\"/></w:tblPr>\
             <w:tr><w:trPr><w:gridBefore w:val=\"1\"/><w:tblHeader/></w:trPr>{}</w:tr>\
             <w:tr>{}</w:tr></w:tbl>",
            tc("", &p("رأس")),
            tc("", &p("متن")),
        );
        let blocks = read_body(&format!("{table}{}{second}", p("بين الجدولين")));
        let cells: Vec<_> = blocks
            .iter()
            .filter_map(|b| match b.role {
                Role::TableCell {
                    table,
                    row,
                    column,
                    header,
                } => Some((table, row, column, header, b.text.as_str())),
                _ => None,
            })
            .collect();
        assert_eq!(
            cells,
            vec![
                (0, 0, 0, true, "الدولة"),
                (0, 0, 1, true, "المدينة"),
                (0, 0, 2, true, "التاريخ"),
                (0, 1, 0, false, "عريضة"),
                (0, 1, 2, false, "سطر ١\nسطر ٢"),
                (0, 2, 0, false, "مدمجة"),
                (0, 2, 1, false, "خارجي"),
                (1, 0, 0, false, "داخلي ١"),
                (1, 0, 1, false, "داخلي ٢"),
                (0, 3, 1, false, "أخيرة"),
                (2, 0, 1, true, "رأس"),
                (2, 1, 0, false, "متن"),
            ]
        );
        let positions = positions(&blocks);
        assert_eq!(positions[4], "table 1, row 2, cell 3");
        assert_eq!(positions[7], "table 2, row 1, cell 1");
        assert_eq!(positions[10], "paragraph 1");
    }

    #[test]
    fn headers_come_first_then_body_footers_and_notes() {
        let body = format!(
            "{}<w:sectPr><w:headerReference w:type=\"default\" r:id=\"rId1\"/>\
             <w:headerReference w:type=\"first\" r:id=\"rId1\"/>\
             <w:footerReference w:type=\"default\" r:id=\"rId2\"/></w:sectPr>",
            p("المتن")
        );
        let header = format!("<w:hdr {NS}>{}</w:hdr>", p("الترويسة"));
        let footer = format!("<w:ftr {NS}>{}{}</w:ftr>", p("التذييل"), p(""));
        let notes = format!(
            "<w:footnotes {NS}><w:footnote w:type=\"separator\" w:id=\"-1\"><w:p><w:r><w:separator/></w:r></w:p></w:footnote>\
             <w:footnote w:type=\"continuationSeparator\" w:id=\"0\">{}</w:footnote>\
             <w:footnote w:id=\"1\"><w:p><w:r><w:footnoteRef/></w:r><w:r><w:t xml:space=\"preserve\"> حاشية</w:t></w:r></w:p></w:footnote>\
             <w:footnote w:id=\"2\">{}</w:footnote></w:footnotes>",
            p("----"),
            p("ثانية")
        );
        let endnotes = format!(
            "<w:endnotes {NS}><w:endnote w:id=\"1\">{}</w:endnote></w:endnotes>",
            p("ختامية")
        );
        let blocks = read(&[
            (DOCUMENT, document(&body)),
            (
                "word/_rels/document.xml.rels",
                rels(&[
                    ("rId1", "header", "header1.xml"),
                    ("rId2", "footer", "/word/footer1.xml"),
                    ("rId3", "footnotes", "footnotes.xml"),
                    ("rId4", "endnotes", "./endnotes.xml"),
                ]),
            ),
            ("word/header1.xml", header),
            ("word/footer1.xml", footer),
            ("word/footnotes.xml", notes),
            ("word/endnotes.xml", endnotes),
        ]);
        let got: Vec<_> = blocks
            .iter()
            .map(|b| (b.position.as_deref().unwrap_or(""), b.text.trim()))
            .collect();
        assert_eq!(
            got,
            vec![
                ("header", "الترويسة"),
                ("paragraph 1", "المتن"),
                ("footer", "التذييل"),
                ("footnote 1", "حاشية"),
                ("footnote 2", "ثانية"),
                ("endnote 1", "ختامية"),
            ]
        );
    }

    #[test]
    fn hyperlinks_keep_their_target_but_anchors_are_not_links() {
        let body = "<w:p><w:r><w:t xml:space=\"preserve\">زوروا </w:t></w:r>\
             <w:hyperlink r:id=\"rId7\" w:history=\"1\"><w:r><w:t>موقع</w:t></w:r><w:r><w:t xml:space=\"preserve\"> الأمانة</w:t></w:r></w:hyperlink>\
             <w:r><w:t xml:space=\"preserve\"> أو </w:t></w:r>\
             <w:hyperlink w:anchor=\"_Toc1\"><w:r><w:t>القسم الثاني</w:t></w:r></w:hyperlink>\
             <w:hyperlink r:id=\"rId8\" w:anchor=\"part\"><w:r><w:t>الجزء</w:t></w:r></w:hyperlink></w:p>";
        let blocks = read(&[
            (DOCUMENT, document(body)),
            (
                "word/_rels/document.xml.rels",
                rels(&[
                    ("rId7", "hyperlink", "https://example.org/ar?a=1&amp;b=2"),
                    ("rId8", "hyperlink", "https://example.org/doc"),
                ]),
            ),
        ]);
        assert_eq!(blocks[0].text, "زوروا موقع الأمانة أو القسم الثانيالجزء");
        assert_eq!(
            blocks[0].links,
            vec![
                Link {
                    text: "موقع الأمانة".into(),
                    href: "https://example.org/ar?a=1&b=2".into()
                },
                Link {
                    text: "الجزء".into(),
                    href: "https://example.org/doc#part".into()
                },
            ]
        );
    }

    #[test]
    fn bad_packages_say_what_they_are() {
        let message = error(b"plain text, not a zip");
        assert!(
            message.contains("is not a Word document (not a zip package)"),
            "{message}"
        );
        assert!(
            message.contains("old .doc files must be converted"),
            "{message}"
        );

        let mut ole = vec![0xD0, 0xCF, 0x11, 0xE0, 0xA1, 0xB1, 0x1A, 0xE1];
        ole.resize(512, 0);
        let message = error(&ole);
        assert!(message.contains("password-protected"), "{message}");
        assert!(message.contains(".doc"), "{message}");

        let message = error(&package(&[("content.xml", "<x/>".into())]));
        assert!(message.contains("without word/document.xml"), "{message}");

        let message = error(&package(&[(DOCUMENT, "<w:document><w:body>".into())]));
        assert!(
            message.contains("word/document.xml is not well-formed XML"),
            "{message}"
        );

        let message = error(&package(&[
            (DOCUMENT, document(&p("نص"))),
            ("word/styles.xml", "<w:styles".into()),
        ]));
        assert!(
            message.contains("word/styles.xml is not well-formed XML"),
            "{message}"
        );

        let deep = format!("{}{}", "<w:sdt>".repeat(300), "</w:sdt>".repeat(300));
        let message = error(&package(&[(DOCUMENT, document(&deep))]));
        assert!(message.contains("more than 256 deep"), "{message}");
    }

    #[test]
    fn parts_inflating_past_the_limit_are_refused() {
        let mut zip = zip::ZipWriter::new(Cursor::new(Vec::new()));
        let options = SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Deflated)
            .large_file(true);
        zip.start_file(DOCUMENT, options).expect("start");
        let chunk = vec![b' '; 1 << 20];
        for _ in 0..65 {
            zip.write_all(&chunk).expect("write");
        }
        let bytes = zip.finish().expect("finish").into_inner();
        assert!(bytes.len() < 1 << 20, "compressed to {}", bytes.len());
        let message = error(&bytes);
        assert!(
            message.contains("word/document.xml unpacks to more than 64 MiB"),
            "{message}"
        );

        // Headers that claim 100 bytes do not let it through either: inflating stops
        // at the claimed size.
        let mut lying = bytes.clone();
        for (signature, at) in [(b"PK\x03\x04", 22), (b"PK\x01\x02", 24)] {
            let start = lying
                .windows(4)
                .position(|w| w == signature)
                .expect("header");
            lying[start + at..start + at + 4].copy_from_slice(&100u32.to_le_bytes());
        }
        let message = error(&lying);
        assert!(
            message
                .contains("word/document.xml cannot be unpacked (File is larger than its declared"),
            "{message}"
        );
    }

    #[test]
    fn sniffs_word_packages_only() {
        assert!(Docx.sniff(&package(&[(DOCUMENT, document(""))])));
        assert!(!Docx.sniff(&package(&[("mimetype", "x".into())])));
        assert!(!Docx.sniff("نص".as_bytes()));
        assert_eq!(Docx.extensions(), ["docx"]);
        assert_eq!(Docx.format(), "docx");
    }

    #[test]
    fn utf16_parts_are_read() {
        let xml = document(&p("نص"));
        let mut bytes = vec![0xFF, 0xFE];
        bytes.extend(
            xml.replace("UTF-8", "UTF-16")
                .encode_utf16()
                .flat_map(u16::to_le_bytes),
        );
        let blocks = Docx
            .read("in.docx", &zip(&[(DOCUMENT, &bytes)]))
            .expect("reads")
            .blocks;
        assert_eq!(blocks[0].text, "نص");
    }

    /// One line per block: position, role, text (line breaks as `\n`), then the links.
    fn describe(block: &SourceBlock) -> Option<String> {
        let text = crate::load::normalize(&block.text).trim().to_string();
        if text.is_empty() {
            return None;
        }
        let role = match &block.role {
            Role::Heading { level } => format!("heading {level}"),
            Role::Paragraph => "paragraph".to_string(),
            Role::ListItem {
                ordered,
                depth,
                number,
            } => match (ordered, number) {
                (true, Some(n)) => format!("item {depth} #{n}"),
                _ => format!("item {depth} bullet"),
            },
            Role::TableCell { header, .. } if *header => "header cell".to_string(),
            Role::TableCell { .. } => "cell".to_string(),
            Role::Caption => "caption".to_string(),
            Role::Quote => "quote".to_string(),
        };
        let mut line = format!(
            "{} | {role} | {}",
            block.position.as_deref().unwrap_or("-"),
            text.replace('\n', "\\n")
        );
        for link in &block.links {
            line.push_str(&format!(" | link {} -> {}", link.text, link.href));
        }
        Some(line)
    }

    #[test]
    fn release_fixture_reads_as_expected() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/formats");
        let bytes = std::fs::read(dir.join("release.docx")).expect("fixture");
        let expected =
            std::fs::read_to_string(dir.join("release.docx.expected")).expect("expected");
        assert!(Docx.sniff(&bytes));
        let blocks = Docx.read("release.docx", &bytes).expect("reads").blocks;
        let got: Vec<String> = blocks.iter().filter_map(describe).collect();
        let expected: Vec<&str> = expected.lines().collect();
        assert_eq!(got, expected);
    }
}
