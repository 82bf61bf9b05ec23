//! HTML (`.html`, `.htm`, `.xhtml`): the page's main content, without its menus,
//! scripts and other furniture, as blocks that keep their headings, lists, tables and
//! links. Parsed with html5ever (through `scraper`), so a malformed page reads the way
//! a browser shows it.

use std::borrow::Cow;
use std::collections::HashMap;

use encoding_rs::{Encoding, UTF_16BE, UTF_16LE, UTF_8};
use scraper::{ElementRef, Node};

use super::{text::decode, Extracted, Reader, SourceBlock};
use crate::document::{Link, Role};
use crate::load::{self, LoadError};

pub struct Html;

impl Reader for Html {
    fn format(&self) -> &'static str {
        "html"
    }

    fn extensions(&self) -> &'static [&'static str] {
        &["html", "htm", "xhtml"]
    }

    fn sniff(&self, bytes: &[u8]) -> bool {
        looks_like_html(bytes)
    }

    fn read(&self, path: &str, bytes: &[u8]) -> Result<Extracted, LoadError> {
        let text = decode_page(path, bytes)?;
        let blocks = blocks(&scraper::Html::parse_document(&text));
        if blocks
            .iter()
            .all(|b| load::normalize(&b.text).trim().is_empty())
        {
            return Err(LoadError::unreadable(
                path,
                "no text found in the page's main content",
                "check that it is the article itself, not a page that loads its text with JavaScript",
            ));
        }
        Ok(blocks.into())
    }
}

// ---------------------------------------------------------------------------------
// Recognizing and decoding

fn looks_like_html(bytes: &[u8]) -> bool {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let start = bytes
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(bytes.len());
    let head = &bytes[start..];
    [&b"<!doctype html"[..], b"<html"]
        .iter()
        .any(|p| head.len() >= p.len() && head[..p.len()].eq_ignore_ascii_case(p))
}

/// How far into the page a declared charset is looked for: browsers look at the
/// first 1024 bytes; a long `<head>` of scripts pushes some declarations a little further.
const CHARSET_WINDOW: usize = 2048;

/// The page's text: by its byte-order mark, else by its declared charset, else UTF-8.
fn decode_page<'a>(path: &str, bytes: &'a [u8]) -> Result<Cow<'a, str>, LoadError> {
    if let Some((encoding, bom)) = Encoding::for_bom(bytes) {
        return decode_as(path, encoding, &bytes[bom..]);
    }
    // A page cannot declare UTF-16 in its own ASCII markup; browsers read it as UTF-8.
    let declared = declared_encoding(bytes).filter(|e| ![UTF_8, UTF_16LE, UTF_16BE].contains(e));
    match declared {
        // Pages re-saved as UTF-8 often keep their old declaration, while legacy Arabic
        // text is practically never valid UTF-8: valid UTF-8 is taken for what it is.
        Some(encoding)
            if !encoding.is_ascii_compatible() || std::str::from_utf8(bytes).is_err() =>
        {
            decode_as(path, encoding, bytes)
        }
        _ => decode(path, bytes).map(Cow::Borrowed),
    }
}

fn decode_as<'a>(
    path: &str,
    encoding: &'static Encoding,
    bytes: &'a [u8],
) -> Result<Cow<'a, str>, LoadError> {
    if encoding == UTF_8 {
        return decode(path, bytes).map(Cow::Borrowed);
    }
    let (text, malformed) = encoding.decode_without_bom_handling(bytes);
    if malformed {
        return Err(LoadError::unreadable(
            path,
            format!(
                "is not valid {} text, the encoding it declares",
                encoding.name()
            ),
            "re-save it as UTF-8, or correct its <meta charset>",
        ));
    }
    Ok(text)
}

/// The encoding named by a `<meta charset>` or `<meta http-equiv="content-type">`.
fn declared_encoding(bytes: &[u8]) -> Option<&'static Encoding> {
    let head = bytes[..bytes.len().min(CHARSET_WINDOW)].to_ascii_lowercase();
    let mut rest = &head[..];
    while let Some(at) = find(rest, b"<meta") {
        let tag = &rest[at..];
        let end = tag.iter().position(|&b| b == b'>').unwrap_or(tag.len());
        if let Some(encoding) = charset_in(&tag[..end]).and_then(Encoding::for_label) {
            return Some(encoding);
        }
        rest = &tag[end..];
    }
    None
}

/// The label after `charset=` in one (lower-cased) meta tag, quoted or not.
fn charset_in(tag: &[u8]) -> Option<&[u8]> {
    let after = &tag[find(tag, b"charset")? + b"charset".len()..];
    let value = after
        .trim_ascii_start()
        .strip_prefix(b"=")?
        .trim_ascii_start();
    let value = value
        .strip_prefix(b"\"")
        .or_else(|| value.strip_prefix(b"'"))
        .unwrap_or(value);
    let end = value
        .iter()
        .position(|&b| matches!(b, b'"' | b'\'' | b';' | b'/' | b'>') || b.is_ascii_whitespace())
        .unwrap_or(value.len());
    (end > 0).then(|| &value[..end])
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

// ---------------------------------------------------------------------------------
// Walking the tree

/// One step of a depth-first walk. A walk is a loop, not recursion, because pages
/// nested thousands of elements deep would otherwise overflow the stack.
enum Visit<'a> {
    Enter(ElementRef<'a>),
    Text(&'a str),
    Exit(ElementRef<'a>),
}

/// Walks `root` and its descendants; `on` answering false to an `Enter` skips that
/// element's content (and its `Exit`).
fn visit<'a>(root: ElementRef<'a>, mut on: impl FnMut(Visit<'a>) -> bool) {
    if !on(Visit::Enter(root)) {
        return;
    }
    let mut stack = vec![(root, root.children())];
    while let Some((element, children)) = stack.last_mut() {
        let element = *element;
        let Some(child) = children.next() else {
            stack.pop();
            on(Visit::Exit(element));
            continue;
        };
        match child.value() {
            Node::Text(text) => {
                on(Visit::Text(text));
            }
            Node::Element(_) => {
                if let Some(e) = ElementRef::wrap(child) {
                    if on(Visit::Enter(e)) {
                        stack.push((e, e.children()));
                    }
                }
            }
            _ => {}
        }
    }
}

/// Elements that never hold the article: navigation, scripts and styles, forms and
/// embedded media.
const FURNITURE: &[&str] = &[
    "nav", "header", "footer", "aside", "script", "style", "noscript", "template", "form",
    "button", "select", "textarea", "iframe", "svg", "canvas", "object",
];

const FURNITURE_ROLES: &[&str] = &[
    "navigation",
    "banner",
    "contentinfo",
    "complementary",
    "search",
];

fn is_furniture(el: ElementRef) -> bool {
    let e = el.value();
    let name = e.name();
    if FURNITURE.contains(&name) && !holds_content(el, name) {
        return true;
    }
    e.attr("hidden").is_some()
        || e.attr("aria-hidden")
            .is_some_and(|v| v.trim().eq_ignore_ascii_case("true"))
        || e.attr("role").is_some_and(|roles| {
            roles
                .split_ascii_whitespace()
                .any(|r| FURNITURE_ROLES.iter().any(|f| r.eq_ignore_ascii_case(f)))
        })
        || e.attr("style").is_some_and(hidden_by_style)
}

/// The two furniture elements that also hold articles: an article's own `<header>`
/// carries its title and dateline, and ASP.NET pages, common on government sites,
/// wrap the whole page, paragraphs and all, in one `<form>` right inside `<body>`.
fn holds_content(el: ElementRef, name: &str) -> bool {
    match name {
        "header" => el
            .ancestors()
            .filter_map(ElementRef::wrap)
            .any(|a| is_landmark(a) || a.value().name() == "section"),
        "form" => {
            let in_body = el
                .parent()
                .and_then(ElementRef::wrap)
                .is_some_and(|p| p.value().name() == "body");
            el.descendent_elements().any(|d| {
                let name = d.value().name();
                is_landmark(d) || name == "h1" || (in_body && name == "p")
            })
        }
        _ => false,
    }
}

fn hidden_by_style(style: &str) -> bool {
    let compact: String = style
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect::<String>()
        .to_ascii_lowercase();
    compact.contains("display:none") || compact.contains("visibility:hidden")
}

/// An element that says it is the page's content.
fn is_landmark(el: ElementRef) -> bool {
    let e = el.value();
    matches!(e.name(), "main" | "article")
        || e.attr("role").is_some_and(|roles| {
            roles
                .split_ascii_whitespace()
                .any(|r| r.eq_ignore_ascii_case("main"))
        })
}

/// Elements a browser lays out as blocks: text on either side of one is not one line.
const BLOCKS: &[&str] = &[
    "address",
    "article",
    "aside",
    "blockquote",
    "body",
    "caption",
    "center",
    "dd",
    "details",
    "dialog",
    "dir",
    "div",
    "dl",
    "dt",
    "fieldset",
    "figcaption",
    "figure",
    "footer",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "header",
    "hgroup",
    "hr",
    "html",
    "legend",
    "li",
    "listing",
    "main",
    "menu",
    "nav",
    "ol",
    "p",
    "pre",
    "section",
    "summary",
    "table",
    "tbody",
    "td",
    "tfoot",
    "th",
    "thead",
    "tr",
    "ul",
];

fn heading_level(name: &str) -> Option<u8> {
    let level = name.strip_prefix('h')?.parse::<u8>().ok()?;
    (1..=6).contains(&level).then_some(level)
}

// ---------------------------------------------------------------------------------
// Choosing the main content

/// One element of the page outside the furniture, with what its text is made of.
struct Measured<'a> {
    el: ElementRef<'a>,
    /// Index of its parent in the list (the page's `<body>` has none).
    parent: Option<usize>,
    /// Visible characters of everything inside it, and of the part inside links.
    text: usize,
    links: usize,
    /// Characters whose nearest block-level element is this one (its own lines).
    own: usize,
}

/// Every element of `body` outside the furniture, in document order.
fn measure(body: ElementRef<'_>) -> Vec<Measured<'_>> {
    let mut all: Vec<Measured> = Vec::new();
    let mut open: Vec<usize> = Vec::new();
    let mut blocks: Vec<usize> = Vec::new();
    let mut in_links = 0usize;
    visit(body, |step| {
        match step {
            Visit::Enter(el) => {
                if is_furniture(el) {
                    return false;
                }
                let name = el.value().name();
                let index = all.len();
                let parent = open.last().copied();
                all.push(Measured {
                    el,
                    parent,
                    text: 0,
                    links: 0,
                    own: 0,
                });
                open.push(index);
                if BLOCKS.contains(&name) {
                    blocks.push(index);
                }
                in_links += usize::from(name == "a");
            }
            Visit::Text(text) => {
                let n = text.chars().filter(|c| !c.is_whitespace()).count();
                if let Some(&i) = open.last() {
                    all[i].text += n;
                    all[i].links += if in_links > 0 { n } else { 0 };
                }
                if let Some(&b) = blocks.last() {
                    all[b].own += n;
                }
            }
            Visit::Exit(el) => {
                let Some(i) = open.pop() else { return true };
                if blocks.last() == Some(&i) {
                    blocks.pop();
                }
                if el.value().name() == "a" {
                    in_links = in_links.saturating_sub(1);
                }
                if let Some(p) = all[i].parent {
                    all[p].text += all[i].text;
                    all[p].links += all[i].links;
                }
            }
        }
        true
    });
    all
}

/// The element holding the article: the landmark with the most text, else the
/// container whose paragraphs score best.
fn main_content<'a>(measured: &[Measured<'a>]) -> Option<ElementRef<'a>> {
    let mut best: Option<&Measured> = None;
    for m in measured.iter().filter(|m| m.text > 0 && is_landmark(m.el)) {
        // Strictly more: between a <main> and the <article> it wraps, the outer one.
        if best.is_none_or(|b| m.text > b.text) {
            best = Some(m);
        }
    }
    best.map(|m| m.el).or_else(|| best_scored(measured))
}

/// Shorter lines are captions, bylines and menu entries rather than paragraphs.
const MIN_PARAGRAPH_CHARS: usize = 25;

/// Readability's idea: each paragraph's text counts for the element around it (and
/// half for the one around that); link-heavy containers (lists of related stories)
/// lose in proportion to their share of link text.
fn best_scored<'a>(measured: &[Measured<'a>]) -> Option<ElementRef<'a>> {
    let mut scores = vec![0.0f64; measured.len()];
    for (i, m) in measured.iter().enumerate() {
        if m.own < MIN_PARAGRAPH_CHARS {
            continue;
        }
        let (first, second) = match m.el.value().name() {
            // A paragraph is never the container; the element around it is.
            "p" | "pre" | "li" | "dt" | "dd" => {
                (m.parent, m.parent.and_then(|p| measured[p].parent))
            }
            "h1" | "h2" | "h3" | "h4" | "h5" | "h6" | "caption" | "figcaption" | "th"
            | "summary" | "legend" => continue,
            // A div (or td) holding its own lines is a container of them.
            _ => (Some(i), m.parent),
        };
        let own = m.own as f64;
        if let Some(f) = first {
            scores[f] += own;
        }
        if let Some(s) = second {
            scores[s] += own / 2.0;
        }
    }
    let mut best: Option<(usize, f64)> = None;
    for (i, score) in scores.into_iter().enumerate() {
        let m = &measured[i];
        let density = m.links as f64 / m.text.max(1) as f64;
        let score = score * (1.0 - density);
        if score > 0.0 && best.is_none_or(|(_, b)| score > b) {
            best = Some((i, score));
        }
    }
    best.map(|(i, _)| measured[i].el)
}

/// The page's only `<h1>`, when it sits outside the chosen container: news pages often
/// put the title above the article's body.
fn lone_title<'a>(measured: &[Measured<'a>], container: ElementRef<'a>) -> Option<ElementRef<'a>> {
    let mut titles = measured
        .iter()
        .filter(|m| m.text > 0 && m.el.value().name() == "h1");
    let title = titles.next()?.el;
    if titles.next().is_some() || contains(container, title) || contains(title, container) {
        return None;
    }
    Some(title)
}

fn contains(outer: ElementRef, inner: ElementRef) -> bool {
    inner.ancestors().any(|a| a.id() == outer.id())
}

fn blocks(page: &scraper::Html) -> Vec<SourceBlock> {
    let root = page.root_element();
    let body = root
        .child_elements()
        .find(|e| e.value().name() == "body")
        .unwrap_or(root);
    let measured = measure(body);
    let container = main_content(&measured).unwrap_or(body);
    let mut walker = Walker::default();
    if let Some(title) = lone_title(&measured, container) {
        walker.walk(title);
    }
    walker.walk(container);
    walker.finish()
}

// ---------------------------------------------------------------------------------
// Turning the content into blocks

/// What an element's ancestors say about the text inside it.
#[derive(Debug, Clone, Copy, Default)]
struct Context {
    /// `translate="no"` or code: copied through as it is.
    keep: bool,
    /// Marked as a language other than Arabic.
    foreign: bool,
    /// Whitespace is kept as written (`<pre>`).
    preformatted: bool,
}

impl Context {
    /// The context inside `el`, given the one around it.
    fn within(mut self, el: ElementRef) -> Context {
        let e = el.value();
        // On <html> or <body> it turns off browsers' translation bars for the whole
        // page; someone who hands the page to tarjama wants it translated all the same.
        let translate = e
            .attr("translate")
            .filter(|_| !matches!(e.name(), "html" | "body"));
        match translate.map(|v| v.trim().to_ascii_lowercase()).as_deref() {
            Some("no") => self.keep = true,
            Some("yes" | "") => self.keep = false,
            _ => {}
        }
        if let Some(lang) = e.attr("lang") {
            let lang = lang.trim().to_ascii_lowercase();
            self.foreign = !lang.is_empty() && !lang.starts_with("ar");
        }
        match e.name() {
            "pre" | "listing" => {
                self.preformatted = true;
                self.keep = true;
            }
            "code" | "kbd" | "samp" => self.keep = true,
            _ => {}
        }
        self
    }

    /// The context of `el`'s content, from the root of the page down.
    fn of(el: ElementRef) -> Context {
        let mut ancestors: Vec<ElementRef> = el.ancestors().filter_map(ElementRef::wrap).collect();
        ancestors.reverse();
        ancestors
            .into_iter()
            .chain(std::iter::once(el))
            .fold(Context::default(), Context::within)
    }
}

/// `body/main/article/p[3]`: the index counts same-name siblings, shown when there are several.
fn path_of(el: ElementRef) -> String {
    let mut segments: Vec<String> = std::iter::once(el)
        .chain(el.ancestors().filter_map(ElementRef::wrap))
        .take_while(|e| e.value().name() != "html")
        .map(segment_of)
        .collect();
    segments.reverse();
    segments.join("/")
}

fn segment_of(el: ElementRef) -> String {
    let name = el.value().name();
    let Some(parent) = el.parent() else {
        return name.to_string();
    };
    let same: Vec<ElementRef> = parent
        .children()
        .filter_map(ElementRef::wrap)
        .filter(|e| e.value().name() == name)
        .collect();
    match same.iter().position(|e| *e == el) {
        Some(i) if same.len() > 1 => format!("{name}[{}]", i + 1),
        _ => name.to_string(),
    }
}

/// The block that inline text currently goes to.
#[derive(Debug, Clone, Copy)]
struct Target {
    index: usize,
    /// Made up of a container's own lines (text right inside a `<div>`), rather
    /// than an element's whole content (a `<p>`, an `<li>`): ends at the next block.
    anonymous: bool,
}

struct List {
    ordered: bool,
    next: i64,
}

struct Table {
    index: u32,
    rows: u32,
    row: u32,
    column: u32,
    head: bool,
}

struct OpenLink {
    href: String,
    block: usize,
    start: usize,
}

/// An element being walked, with what to undo when it closes.
struct Frame<'a> {
    path: String,
    context: Context,
    /// Laid out as a block, so text right inside it starts a block of its own.
    block: bool,
    /// Its child elements by name: how many there are, and how many were walked.
    children: HashMap<&'a str, (usize, usize)>,
    /// The target before this element took it over, given back when it closes.
    saved: Option<Option<Target>>,
    /// Its content joined its enclosing block as lines of that block.
    merged: bool,
    link: Option<OpenLink>,
}

impl<'a> Frame<'a> {
    fn new(el: ElementRef<'a>, path: String, context: Context) -> Self {
        let mut children = HashMap::new();
        for child in el.child_elements() {
            children.entry(child.value().name()).or_insert((0, 0)).0 += 1;
        }
        Frame {
            path,
            context: context.within(el),
            block: BLOCKS.contains(&el.value().name()),
            children,
            saved: None,
            merged: false,
            link: None,
        }
    }

    /// The path segment of its next child named `name`.
    fn number(&mut self, name: &'a str) -> String {
        let (total, seen) = self.children.entry(name).or_insert((1, 0));
        *seen += 1;
        if *total > 1 {
            format!("{name}[{seen}]")
        } else {
            name.to_string()
        }
    }
}

/// A block being collected, with how much of its text was in which context.
struct Building {
    block: SourceBlock,
    free: usize,
    foreign: usize,
    kept: usize,
}

impl Building {
    fn push(&mut self, piece: &str, context: Context) {
        let text = &mut self.block.text;
        let piece = if !context.preformatted && (text.is_empty() || text.ends_with([' ', '\n'])) {
            piece.trim_start_matches(' ')
        } else {
            piece
        };
        text.push_str(piece);
        let visible = piece.chars().filter(|c| !c.is_whitespace()).count();
        if context.keep {
            self.kept += visible;
        } else if context.foreign {
            self.foreign += visible;
        } else {
            self.free += visible;
        }
    }

    /// Translated when any of it is plain page text, or when text marked as another
    /// language turns out to hold Arabic after all.
    fn done(self) -> Option<SourceBlock> {
        let text = self.block.text.trim();
        if text.is_empty() {
            return None;
        }
        let translate = self.free > 0 || (self.foreign > 0 && load::has_arabic(text));
        Some(SourceBlock {
            text: text.to_string(),
            translate,
            ..self.block
        })
    }
}

#[derive(Default)]
struct Walker<'a> {
    blocks: Vec<Building>,
    target: Option<Target>,
    frames: Vec<Frame<'a>>,
    lists: Vec<List>,
    tables: Vec<Table>,
    next_table: u32,
    quotes: usize,
}

impl<'a> Walker<'a> {
    fn walk(&mut self, root: ElementRef<'a>) {
        visit(root, |step| match step {
            Visit::Enter(el) => self.enter(el),
            Visit::Text(text) => {
                self.text(text);
                true
            }
            Visit::Exit(el) => {
                self.exit(el);
                true
            }
        });
        self.frames.clear();
        self.target = None;
    }

    fn finish(self) -> Vec<SourceBlock> {
        self.blocks.into_iter().filter_map(Building::done).collect()
    }

    fn enter(&mut self, el: ElementRef<'a>) -> bool {
        let name = el.value().name();
        // Numbered before the furniture is dropped, so paths match the source's.
        let segment = self.frames.last_mut().map(|parent| parent.number(name));
        if is_furniture(el) {
            return false;
        }
        let mut frame = match (segment, self.frames.last()) {
            (Some(segment), Some(parent)) => {
                Frame::new(el, format!("{}/{segment}", parent.path), parent.context)
            }
            _ => {
                let outside = el.parent().and_then(ElementRef::wrap).map(Context::of);
                Frame::new(el, path_of(el), outside.unwrap_or_default())
            }
        };
        match name {
            "br" => self.push_newline(),
            "a" => frame.link = self.open_link(el),
            "ul" | "ol" | "menu" => {
                self.lists.push(List {
                    ordered: name == "ol",
                    next: int_attr(el, "start").unwrap_or(1),
                });
                frame.saved = Some(self.target.take());
            }
            "table" => {
                self.tables.push(Table {
                    index: self.next_table,
                    rows: 0,
                    row: 0,
                    column: 0,
                    head: false,
                });
                self.next_table = self.next_table.saturating_add(1);
                frame.saved = Some(self.target.take());
            }
            "tr" => {
                self.next_row();
                frame.saved = Some(self.target.take());
            }
            "thead" => self.set_head(true),
            "td" | "th" => {
                let role = self.cell_role(el);
                frame.saved = Some(self.start_owner(role, &frame.path));
            }
            "li" => {
                let role = self.item_role(el);
                frame.saved = Some(self.start_owner(role, &frame.path));
            }
            _ => self.open_block(&mut frame, name),
        }
        self.frames.push(frame);
        true
    }

    fn exit(&mut self, el: ElementRef<'a>) {
        let Some(frame) = self.frames.pop() else {
            return;
        };
        if let Some(link) = frame.link {
            self.close_link(link);
        }
        if frame.merged {
            self.push_newline();
        }
        match el.value().name() {
            "ul" | "ol" | "menu" => {
                self.lists.pop();
            }
            "table" => {
                self.tables.pop();
            }
            "thead" => self.set_head(false),
            "blockquote" => self.quotes = self.quotes.saturating_sub(1),
            _ => {}
        }
        if let Some(previous) = frame.saved {
            self.resume(previous);
        }
    }

    /// A block-level element that is not part of a list or table: its own block
    /// (`p`, `h2`), the end of the container's current lines (`div`), or, inside a
    /// list item or cell, more lines of that item.
    fn open_block(&mut self, frame: &mut Frame<'a>, name: &str) {
        if name == "blockquote" {
            self.quotes += 1;
        }
        if !frame.block {
            return;
        }
        if self.target.is_some_and(|t| !t.anonymous) {
            self.push_newline();
            frame.merged = true;
            return;
        }
        let role = match name {
            "p" if self.quotes > 0 => Some(Role::Quote),
            "p" | "pre" | "listing" => Some(Role::Paragraph),
            "caption" | "figcaption" => Some(Role::Caption),
            _ => heading_level(name).map(|level| Role::Heading { level }),
        };
        frame.saved = Some(match role {
            Some(role) => self.start_owner(role, &frame.path),
            None => self.target.take(),
        });
    }

    /// Starts the block of an element's whole content; returns the target it replaces.
    fn start_owner(&mut self, role: Role, path: &str) -> Option<Target> {
        let index = self.new_block(role, path);
        self.target.replace(Target {
            index,
            anonymous: false,
        })
    }

    fn new_block(&mut self, role: Role, path: &str) -> usize {
        self.blocks.push(Building {
            block: SourceBlock::new(role, "").at(path),
            free: 0,
            foreign: 0,
            kept: 0,
        });
        self.blocks.len() - 1
    }

    /// After a nested list or table, a list item's (or cell's) own text goes on; lines
    /// of a container do not, as a browser starts a new line after a block.
    fn resume(&mut self, previous: Option<Target>) {
        self.target = previous.filter(|t| !t.anonymous);
        if let Some(t) = self.target {
            let text = &mut self.blocks[t.index].block.text;
            if !text.is_empty() && !text.ends_with([' ', '\n']) {
                text.push(' ');
            }
        }
    }

    /// The block inline text goes to, starting one of the container's lines if none is open.
    fn ensure_target(&mut self) -> usize {
        if let Some(t) = self.target {
            return t.index;
        }
        let role = if self.quotes > 0 {
            Role::Quote
        } else {
            Role::Paragraph
        };
        let path = self
            .frames
            .iter()
            .rev()
            .find(|f| f.block)
            .or(self.frames.first())
            .map(|f| f.path.clone())
            .unwrap_or_default();
        let index = self.new_block(role, &path);
        self.target = Some(Target {
            index,
            anonymous: true,
        });
        index
    }

    fn text(&mut self, raw: &str) {
        let context = self.frames.last().map(|f| f.context).unwrap_or_default();
        let piece = if context.preformatted {
            Cow::Borrowed(raw)
        } else {
            Cow::Owned(collapse_whitespace(raw))
        };
        if self.target.is_none() && piece.trim().is_empty() {
            return;
        }
        let index = self.ensure_target();
        self.blocks[index].push(&piece, context);
    }

    fn push_newline(&mut self) {
        if let Some(t) = self.target {
            let text = &mut self.blocks[t.index].block.text;
            text.truncate(text.trim_end_matches(' ').len());
            if !text.is_empty() && !text.ends_with('\n') {
                text.push('\n');
            }
        }
    }

    fn open_link(&mut self, el: ElementRef) -> Option<OpenLink> {
        let href = el.value().attr("href")?.trim();
        if href.to_ascii_lowercase().starts_with("javascript:") {
            return None;
        }
        let block = self.ensure_target();
        Some(OpenLink {
            href: href.to_string(),
            block,
            start: self.blocks[block].block.text.len(),
        })
    }

    fn close_link(&mut self, link: OpenLink) {
        let Some(building) = self.blocks.get_mut(link.block) else {
            return;
        };
        let text = building.block.text.get(link.start..).unwrap_or("");
        let text = load::normalize(text).trim().to_string();
        if !text.is_empty() {
            building.block.links.push(Link {
                text,
                href: link.href,
            });
        }
    }

    fn item_role(&mut self, el: ElementRef) -> Role {
        let depth = u8::try_from(self.lists.len().saturating_sub(1)).unwrap_or(u8::MAX);
        let Some(list) = self.lists.last_mut().filter(|l| l.ordered) else {
            return Role::ListItem {
                ordered: false,
                depth,
                number: None,
            };
        };
        if let Some(value) = int_attr(el, "value") {
            list.next = value;
        }
        let number = u32::try_from(list.next).ok();
        list.next = list.next.saturating_add(1);
        Role::ListItem {
            ordered: true,
            depth,
            number,
        }
    }

    fn next_row(&mut self) {
        if let Some(t) = self.tables.last_mut() {
            t.row = t.rows;
            t.rows = t.rows.saturating_add(1);
            t.column = 0;
        }
    }

    fn set_head(&mut self, head: bool) {
        if let Some(t) = self.tables.last_mut() {
            t.head = head;
        }
    }

    fn cell_role(&mut self, el: ElementRef) -> Role {
        let header_cell = el.value().name() == "th";
        let Some(t) = self.tables.last_mut() else {
            return Role::Paragraph;
        };
        let column = t.column;
        let span = int_attr(el, "colspan").unwrap_or(1).clamp(1, 1000);
        t.column = t.column.saturating_add(u32::try_from(span).unwrap_or(1));
        Role::TableCell {
            table: t.index,
            row: t.row,
            column,
            header: header_cell || t.head,
        }
    }
}

fn int_attr(el: ElementRef, name: &str) -> Option<i64> {
    el.value().attr(name)?.trim().parse().ok()
}

/// Runs of HTML whitespace become one space, as a browser shows them; no-break
/// spaces are not HTML whitespace and stay (normalization turns them into spaces).
fn collapse_whitespace(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    let mut in_space = false;
    for c in raw.chars() {
        if matches!(c, ' ' | '\t' | '\n' | '\r' | '\x0C') {
            if !in_space {
                out.push(' ');
            }
            in_space = true;
        } else {
            out.push(c);
            in_space = false;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(page: &str) -> Vec<SourceBlock> {
        Html.read("page.html", page.as_bytes())
            .expect("reads")
            .blocks
    }

    fn texts(blocks: &[SourceBlock]) -> Vec<&str> {
        blocks.iter().map(|b| b.text.as_str()).collect()
    }

    fn body(content: &str) -> String {
        format!("<!DOCTYPE html><html lang=\"ar\" dir=\"rtl\"><head><title>عنوان</title></head><body>{content}</body></html>")
    }

    #[test]
    fn furniture_never_appears() {
        let page = body(
            "<header><span>اسم الموقع</span></header>\
             <nav><a href=\"/\">الرئيسية</a> <a href=\"/a\">عن الموقع</a></nav>\
             <style>p { content: \"تنسيق\" }</style>\
             <script>var s = \"رسالة البرنامج\";</script>\
             <form><label>البريد</label><input><button>اشترك</button></form>\
             <div hidden>مخفي</div><div aria-hidden=\"true\">مخفي أيضا</div>\
             <div role=\"navigation\">تنقل</div>\
             <p>نص المقال الوحيد.</p>\
             <aside><a href=\"/r\">أخبار ذات صلة</a></aside>\
             <footer>جميع الحقوق محفوظة</footer>",
        );
        let blocks = read(&page);
        assert_eq!(texts(&blocks), vec!["نص المقال الوحيد."]);
        assert_eq!(blocks[0].role, Role::Paragraph);
        assert_eq!(blocks[0].position.as_deref(), Some("body/p"));
    }

    #[test]
    fn a_page_wide_form_is_not_furniture() {
        let page = body(
            "<form id=\"aspnetForm\" method=\"post\"><input type=\"hidden\" name=\"__VIEWSTATE\">\
             <nav>القائمة</nav><div class=\"news\"><p>نص الخبر داخل النموذج.</p></div></form>",
        );
        assert_eq!(texts(&read(&page)), vec!["نص الخبر داخل النموذج."]);
    }

    #[test]
    fn list_items_stay_apart_with_depth_and_numbers() {
        let page = body(
            "<ol start=\"3\"><li>أولا</li><li>ثانيا<ul><li>فرعي <b>مهم</b></li></ul>\
             تكملة</li><li value=\"10\">عاشرا</li><li>تاليا</li></ol><ul><li>بند</li></ul>",
        );
        let got: Vec<_> = read(&page).into_iter().map(|b| (b.role, b.text)).collect();
        let item = |ordered, depth, number| Role::ListItem {
            ordered,
            depth,
            number,
        };
        assert_eq!(
            got,
            vec![
                (item(true, 0, Some(3)), "أولا".to_string()),
                (item(true, 0, Some(4)), "ثانيا تكملة".to_string()),
                (item(false, 1, None), "فرعي مهم".to_string()),
                (item(true, 0, Some(10)), "عاشرا".to_string()),
                (item(true, 0, Some(11)), "تاليا".to_string()),
                (item(false, 0, None), "بند".to_string()),
            ]
        );
    }

    #[test]
    fn table_cells_have_row_column_and_header() {
        let page = body(
            "<p>قبل الجدول.</p><table><thead><tr><th>الدولة</th><th colspan=\"2\">العاصمة</th></tr></thead>\
             <tbody><tr><td>قطر</td><td colspan=\"2\">الدوحة</td></tr>\
             <tr><th>عمان</th><td><p>مسقط</p><p>العاصمة</p></td><td>٣</td></tr></tbody></table>\
             <table><caption>جدول ثان</caption><tr><td>خلية</td></tr></table>",
        );
        let cells: Vec<_> = read(&page)
            .into_iter()
            .filter_map(|b| match b.role {
                Role::TableCell {
                    table,
                    row,
                    column,
                    header,
                } => Some((table, row, column, header, b.text)),
                Role::Caption => Some((9, 9, 9, false, b.text)),
                _ => None,
            })
            .collect();
        let cell = |t, r, c, h, s: &str| (t, r, c, h, s.to_string());
        assert_eq!(
            cells,
            vec![
                cell(0, 0, 0, true, "الدولة"),
                cell(0, 0, 1, true, "العاصمة"),
                cell(0, 1, 0, false, "قطر"),
                cell(0, 1, 1, false, "الدوحة"),
                cell(0, 2, 0, true, "عمان"),
                cell(0, 2, 1, false, "مسقط\nالعاصمة"),
                cell(0, 2, 2, false, "٣"),
                cell(9, 9, 9, false, "جدول ثان"),
                cell(1, 0, 0, false, "خلية"),
            ]
        );
    }

    #[test]
    fn links_keep_their_text_and_target() {
        let page = body(
            "<p>زوروا <a href=\"https://example.org/ar?a=1&amp;b=2\">موقع <em>الأمانة</em></a> و\
             <a href=\"javascript:void(0)\">هذا</a> و<a href=\"#top\">الأعلى</a>.</p>\
             <div>سطر <a href=\"/x\">رابط</a><br>سطر ثان</div>",
        );
        let blocks = read(&page);
        assert_eq!(blocks[0].text, "زوروا موقع الأمانة وهذا والأعلى.");
        let link = |text: &str, href: &str| Link {
            text: text.into(),
            href: href.into(),
        };
        assert_eq!(
            blocks[0].links,
            vec![
                link("موقع الأمانة", "https://example.org/ar?a=1&b=2"),
                link("الأعلى", "#top")
            ]
        );
        assert_eq!(blocks[1].text, "سطر رابط\nسطر ثان");
        assert_eq!(blocks[1].links, vec![link("رابط", "/x")]);
        assert_eq!(blocks[1].role, Role::Paragraph);
    }

    #[test]
    fn translate_no_code_and_foreign_languages_are_kept_as_is() {
        let page = body(
            "<p translate=\"no\">اسم العلامة</p>\
             <div translate=\"no\"><p>داخل <span translate=\"yes\">مترجم</span></p></div>\
             <p lang=\"en\">Press release</p>\
             <p lang=\"en-GB\">English with عربي inside</p>\
             <div lang=\"fr\"><p lang=\"ar-SA\">نص عربي</p></div>\
             <p>نص مع <code>ls -l</code> داخله.</p>\
             <pre>fn main() {\n    x();\n}</pre>\
             <div><code>x = 1</code></div>",
        );
        let got: Vec<_> = read(&page)
            .into_iter()
            .map(|b| (b.text, b.translate))
            .collect();
        let b = |t: &str, translate| (t.to_string(), translate);
        assert_eq!(
            got,
            vec![
                b("اسم العلامة", false),
                b("داخل مترجم", true),
                b("Press release", false),
                b("English with عربي inside", true),
                b("نص عربي", true),
                b("نص مع ls -l داخله.", true),
                b("fn main() {\n    x();\n}", false),
                b("x = 1", false),
            ]
        );
    }

    #[test]
    fn a_page_wide_translate_no_is_for_browsers_not_for_tarjama() {
        let page = "<html lang=\"ar\" translate=\"no\"><body translate=\"no\">\
                    <p>نص الخبر.</p><p><span translate=\"no\">اسم</span></p></body></html>";
        let got: Vec<_> = read(page).into_iter().map(|b| b.translate).collect();
        assert_eq!(got, vec![true, false]);
    }

    #[test]
    fn script_bodies_vanish_but_escaped_markup_is_text() {
        let page = body(
            "<script>document.write(\"<p>مدسوس</p>\")</script>\
             <p>اكتب &lt;script&gt;alert(\"x\")&lt;/script&gt; كما هو.</p>\
             <noscript><p>فعّل جافاسكربت</p></noscript>",
        );
        let blocks = read(&page);
        assert_eq!(
            texts(&blocks),
            vec!["اكتب <script>alert(\"x\")</script> كما هو."]
        );
    }

    #[test]
    fn windows_1256_pages_decode_by_their_declared_charset() {
        let text = "مجلس التعاون لدول الخليج العربية يؤكد أهمية العلاقات.";
        for head in [
            "<meta charset=\"windows-1256\">",
            "<meta http-equiv=\"Content-Type\" content=\"text/html; charset=windows-1256\">",
        ] {
            let page = format!(
                "<html><head>{head}<title>خبر</title></head><body><p>{text}</p></body></html>"
            );
            let (bytes, _, unmappable) = encoding_rs::WINDOWS_1256.encode(&page);
            assert!(!unmappable);
            assert!(std::str::from_utf8(&bytes).is_err(), "really legacy bytes");
            let blocks = Html.read("legacy.html", &bytes).expect("decodes").blocks;
            assert_eq!(texts(&blocks), vec![text]);
        }
        // Without a declaration, the UTF-8 error says which encoding it may be in.
        let (bytes, _, _) = encoding_rs::WINDOWS_1256.encode("<p>نص</p>");
        let err = Html.read("old.htm", &bytes).expect_err("not UTF-8");
        assert!(err.to_string().contains("Windows-1256"), "{err}");
    }

    #[test]
    fn byte_order_marks_and_stale_declarations_are_honoured() {
        let page =
            "<html><head><meta charset=\"windows-1256\"></head><body><p>نص عربي</p></body></html>";
        // Re-saved as UTF-8 with its old declaration: valid UTF-8 wins.
        assert_eq!(texts(&read(page)), vec!["نص عربي"]);
        let mut with_bom = b"\xEF\xBB\xBF".to_vec();
        with_bom.extend_from_slice(page.as_bytes());
        let blocks = Html.read("bom.html", &with_bom).expect("reads").blocks;
        assert_eq!(texts(&blocks), vec!["نص عربي"]);
        let mut utf16 = vec![0xFF, 0xFE];
        utf16.extend(page.encode_utf16().flat_map(u16::to_le_bytes));
        let blocks = Html.read("utf16.html", &utf16).expect("reads").blocks;
        assert_eq!(texts(&blocks), vec!["نص عربي"]);
    }

    #[test]
    fn the_article_beats_a_link_heavy_sidebar() {
        let related = "<p><a href=\"/n\">عنوان خبر آخر طويل بما يكفي ليعد فقرة كاملة هنا</a></p>";
        let page = body(&format!(
            "<div id=\"layout\"><div class=\"sidebar\">{}</div>\
             <div class=\"content\"><p>الفقرة الأولى من المقال وفيها ما يكفي من النص.</p>\
             <p>الفقرة الثانية من المقال وفيها أيضا ما يكفي من النص.</p></div></div>",
            related.repeat(6)
        ));
        let blocks = read(&page);
        assert_eq!(
            texts(&blocks),
            vec![
                "الفقرة الأولى من المقال وفيها ما يكفي من النص.",
                "الفقرة الثانية من المقال وفيها أيضا ما يكفي من النص."
            ]
        );
        assert_eq!(blocks[1].position.as_deref(), Some("body/div/div[2]/p[2]"));
    }

    #[test]
    fn a_title_above_the_article_is_kept_first() {
        let page = body(
            "<div class=\"title\"><h1>عنوان الخبر</h1></div>\
             <article><p>نص المقال.</p></article><div><p>خارج المقال.</p></div>",
        );
        let blocks = read(&page);
        assert_eq!(texts(&blocks), vec!["عنوان الخبر", "نص المقال."]);
        assert_eq!(blocks[0].role, Role::Heading { level: 1 });
        assert_eq!(blocks[0].position.as_deref(), Some("body/div[1]/h1"));
    }

    #[test]
    fn text_of_a_container_splits_at_its_blocks_and_quotes_keep_their_role() {
        let page = body(
            "<div>مقدمة <i>قصيرة</i><p>فقرة.</p>خاتمة</div>\
             <blockquote>قال الأمين:<p>نعمل معا.</p></blockquote><h3>عنوان فرعي</h3>",
        );
        let got: Vec<_> = read(&page).into_iter().map(|b| (b.role, b.text)).collect();
        let b = |role, t: &str| (role, t.to_string());
        assert_eq!(
            got,
            vec![
                b(Role::Paragraph, "مقدمة قصيرة"),
                b(Role::Paragraph, "فقرة."),
                b(Role::Paragraph, "خاتمة"),
                b(Role::Quote, "قال الأمين:"),
                b(Role::Quote, "نعمل معا."),
                b(Role::Heading { level: 3 }, "عنوان فرعي"),
            ]
        );
    }

    #[test]
    fn deeply_nested_pages_do_not_overflow_the_stack() {
        let depth = 5000;
        let page = body(&format!(
            "{}<p>نص عميق.</p>{}",
            "<div><span>".repeat(depth),
            "</span></div>".repeat(depth)
        ));
        assert_eq!(texts(&read(&page)), vec!["نص عميق."]);
    }

    #[test]
    fn an_empty_page_is_an_error_naming_the_file() {
        let page = body("<nav><a href=\"/\">الرئيسية</a></nav><script>load()</script>");
        let err = Html
            .read("news/empty.html", page.as_bytes())
            .expect_err("nothing to read");
        let message = err.to_string();
        assert!(
            message.starts_with("news/empty.html: no text found in the page's main content; "),
            "{message}"
        );
        assert!(!message.contains('\n'));
    }

    #[test]
    fn html_is_recognized_by_its_start() {
        assert!(Html.sniff(b"\xEF\xBB\xBF  \n<!DOCTYPE HTML><html>"));
        assert!(Html.sniff(b"<HTML lang=ar>"));
        assert!(!Html.sniff(b"<?xml version=\"1.0\"?><w:document>"));
        assert!(!Html.sniff("نص عادي".as_bytes()));
    }

    fn release_fixture() -> (Vec<SourceBlock>, String) {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/formats");
        let bytes = std::fs::read(dir.join("release.html")).expect("fixture");
        let expected =
            std::fs::read_to_string(dir.join("release.html.expected")).expect("expected blocks");
        let blocks = Html.read("release.html", &bytes).expect("reads").blocks;
        (blocks, expected)
    }

    #[test]
    fn fixture_release_reads_as_expected_without_its_furniture() {
        let (blocks, expected) = release_fixture();
        let got: Vec<String> = blocks
            .iter()
            .map(|b| load::normalize(&b.text).trim().to_string())
            .filter(|t| !t.is_empty())
            .collect();
        assert_eq!(got, expected.lines().collect::<Vec<_>>());
        for furniture in [
            "الرئيسية",
            "عن المجلس",
            "المركز الإعلامي",
            "اتصل بنا",
            "ابحث في الموقع",
            "أهلا بكم في البوابة",
            "خبر عاجل",
            "أخبار ذات صلة",
            "سفير اليابان",
            "وزراء المالية",
            "جميع الحقوق محفوظة",
            "شارك هذا الخبر",
        ] {
            assert!(got.iter().all(|t| !t.contains(furniture)), "{furniture}");
        }
        assert!(blocks.iter().all(|b| b.translate));
    }

    #[test]
    fn fixture_release_keeps_roles_positions_and_links() {
        let (blocks, _) = release_fixture();
        let position = |i: usize| blocks[i].position.as_deref();
        assert_eq!(blocks[0].role, Role::Heading { level: 1 });
        assert_eq!(position(0), Some("body/div/main/article/h1"));
        assert_eq!(position(3), Some("body/div/main/article/p[3]"));
        let bullet = Role::ListItem {
            ordered: false,
            depth: 0,
            number: None,
        };
        assert!(blocks[4..9].iter().all(|b| b.role == bullet));
        let cell = |row, column, header| Role::TableCell {
            table: 0,
            row,
            column,
            header,
        };
        assert_eq!(blocks[9].role, cell(0, 0, true));
        assert_eq!(blocks[13].role, cell(1, 1, false));
        assert_eq!(blocks[20].role, cell(3, 2, false));
        assert_eq!(blocks[21].role, Role::Heading { level: 2 });
        let with_link: Vec<_> = blocks.iter().filter(|b| !b.links.is_empty()).collect();
        assert_eq!(with_link.len(), 1);
        assert_eq!(
            with_link[0].links,
            vec![Link {
                text: "مذكرة تفاهم مشتركة".into(),
                href: "/ar/MediaCenter/News/Pages/mou-turkmenistan.aspx".into()
            }]
        );
    }
}
