//! Markdown (`.md`): parsed as CommonMark with tables, so that no Markdown syntax
//! reaches the model and headings, lists, tables and quotes keep their roles.

use pulldown_cmark::{Event, HeadingLevel, Options, Parser, Tag, TagEnd};

use super::{text::decode, Extracted, Reader, SourceBlock};
use crate::document::{Link, Role};
use crate::load::LoadError;

pub struct Markdown;

impl Reader for Markdown {
    fn format(&self) -> &'static str {
        "markdown"
    }

    fn extensions(&self) -> &'static [&'static str] {
        &["md", "markdown"]
    }

    fn read(&self, path: &str, bytes: &[u8]) -> Result<Extracted, LoadError> {
        Ok(blocks(decode(path, bytes)?).into())
    }
}

/// Where the parser is, for deciding the role of the next block.
#[derive(Default)]
struct Context {
    /// Open lists, innermost last: the number the next item gets (`None`: unordered).
    lists: Vec<Option<u64>>,
    quotes: usize,
    tables: u32,
    row: u32,
    column: u32,
    in_table_head: bool,
    /// Open links, innermost last: where each points and where its text starts.
    links: Vec<(String, usize)>,
}

/// The block being collected.
struct Current {
    role: Role,
    text: String,
    line: usize,
    links: Vec<Link>,
    translate: bool,
}

fn blocks(source: &str) -> Vec<SourceBlock> {
    let line_of = |offset: usize| source[..offset.min(source.len())].matches('\n').count() + 1;
    let mut walker = Walker::default();
    let options = Options::ENABLE_TABLES | Options::ENABLE_STRIKETHROUGH;
    for (event, range) in Parser::new_ext(source, options).into_offset_iter() {
        let line = line_of(range.start);
        match event {
            Event::Start(tag) => walker.start_tag(tag, line),
            Event::End(end) => walker.end_tag(end),
            Event::Text(text) | Event::Code(text) => {
                let cx = &walker.cx;
                let block = walker
                    .current
                    .get_or_insert_with(|| start(role_here(cx), line));
                block.text.push_str(&text);
            }
            Event::SoftBreak => push_space(&mut walker.current),
            Event::HardBreak => {
                if let Some(c) = walker.current.as_mut() {
                    c.text.push('\n');
                }
            }
            // Raw HTML and rules are layout, not text to translate.
            _ => {}
        }
    }
    walker.flush();
    walker.out
}

/// The parser's events turned into blocks, one tag at a time.
#[derive(Default)]
struct Walker {
    cx: Context,
    current: Option<Current>,
    out: Vec<SourceBlock>,
}

impl Walker {
    fn flush(&mut self) {
        flush(&mut self.current, &mut self.out);
    }

    /// Starts a new block of `role`, ending the one being collected.
    fn begin(&mut self, role: Role, line: usize) {
        self.flush();
        self.current = Some(start(role, line));
    }

    fn start_tag(&mut self, tag: Tag, line: usize) {
        match tag {
            Tag::Heading { level, .. } => self.begin(
                Role::Heading {
                    level: level_number(level),
                },
                line,
            ),
            // A loose list item wraps its text in a paragraph: keep the item's role.
            Tag::Paragraph if self.current.is_none() => {
                self.current = Some(start(role_here(&self.cx), line));
            }
            Tag::List(first) => {
                self.flush();
                self.cx.lists.push(first);
            }
            Tag::Item => {
                self.flush();
                let role = item_role(&mut self.cx);
                self.current = Some(start(role, line));
            }
            Tag::BlockQuote(_) => {
                self.flush();
                self.cx.quotes += 1;
            }
            Tag::CodeBlock(_) => {
                self.begin(role_here(&self.cx), line);
                if let Some(block) = self.current.as_mut() {
                    block.translate = false;
                }
            }
            Tag::Table(_) => {
                self.flush();
                self.cx.row = 0;
            }
            Tag::TableHead => {
                self.cx.in_table_head = true;
                self.cx.column = 0;
            }
            Tag::TableRow => self.cx.column = 0,
            Tag::TableCell => {
                let role = Role::TableCell {
                    table: self.cx.tables,
                    row: self.cx.row,
                    column: self.cx.column,
                    header: self.cx.in_table_head,
                };
                self.current = Some(start(role, line));
            }
            Tag::Link { dest_url, .. } => {
                let at = self.current.as_ref().map_or(0, |c| c.text.len());
                self.cx.links.push((dest_url.to_string(), at));
            }
            _ => {}
        }
    }

    fn end_tag(&mut self, end: TagEnd) {
        match end {
            // Text after a nested paragraph of an item starts a new block of it.
            TagEnd::Heading(_) | TagEnd::Item | TagEnd::Paragraph | TagEnd::CodeBlock => {
                self.flush()
            }
            TagEnd::TableCell => {
                self.flush();
                self.cx.column += 1;
            }
            TagEnd::List(_) => {
                self.flush();
                self.cx.lists.pop();
            }
            TagEnd::BlockQuote(_) => {
                self.flush();
                self.cx.quotes = self.cx.quotes.saturating_sub(1);
            }
            TagEnd::TableHead => {
                self.cx.in_table_head = false;
                self.cx.row += 1;
            }
            TagEnd::TableRow => self.cx.row += 1,
            TagEnd::Table => self.cx.tables += 1,
            TagEnd::Link => self.end_link(),
            _ => {}
        }
    }

    /// Records the link that just closed on the block, with the text it spans.
    fn end_link(&mut self) {
        if let (Some((href, at)), Some(c)) = (self.cx.links.pop(), self.current.as_mut()) {
            let text = c.text.get(at..).unwrap_or("").trim().to_string();
            if !text.is_empty() {
                c.links.push(Link { text, href });
            }
        }
    }
}

fn start(role: Role, line: usize) -> Current {
    Current {
        role,
        text: String::new(),
        line,
        links: Vec::new(),
        translate: true,
    }
}

fn push_space(current: &mut Option<Current>) {
    if let Some(c) = current.as_mut() {
        c.text.push(' ');
    }
}

fn flush(current: &mut Option<Current>, out: &mut Vec<SourceBlock>) {
    if let Some(c) = current.take() {
        if c.text.trim().is_empty() {
            return;
        }
        out.push(SourceBlock {
            role: c.role,
            text: c.text,
            position: Some(format!("line {}", c.line)),
            links: c.links,
            translate: c.translate,
        });
    }
}

/// The role of running text at this point: a quote inside a block quote, else a paragraph.
fn role_here(cx: &Context) -> Role {
    if cx.quotes > 0 {
        Role::Quote
    } else {
        Role::Paragraph
    }
}

fn item_role(cx: &mut Context) -> Role {
    let depth = cx.lists.len().saturating_sub(1).min(u8::MAX as usize) as u8;
    match cx.lists.last_mut() {
        Some(Some(next)) => {
            let number = u32::try_from(*next).ok();
            *next += 1;
            Role::ListItem {
                ordered: true,
                depth,
                number,
            }
        }
        _ => Role::ListItem {
            ordered: false,
            depth,
            number: None,
        },
    }
}

fn level_number(level: HeadingLevel) -> u8 {
    match level {
        HeadingLevel::H1 => 1,
        HeadingLevel::H2 => 2,
        HeadingLevel::H3 => 3,
        HeadingLevel::H4 => 4,
        HeadingLevel::H5 => 5,
        HeadingLevel::H6 => 6,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn roles_and_texts(md: &str) -> Vec<(Role, String)> {
        blocks(md)
            .into_iter()
            .map(|b| (b.role, b.text.trim().to_string()))
            .collect()
    }

    #[test]
    fn headings_paragraphs_and_emphasis_lose_their_syntax() {
        let got = roles_and_texts("# قمة **الرياض**\n\nنص *الفقرة* الأولى\nتكملة.\n");
        assert_eq!(
            got,
            vec![
                (Role::Heading { level: 1 }, "قمة الرياض".to_string()),
                (Role::Paragraph, "نص الفقرة الأولى تكملة.".to_string()),
            ]
        );
    }

    #[test]
    fn list_items_stay_apart_and_are_numbered() {
        let got = roles_and_texts("1. أولاً\n2. ثانياً\n   - فرعي\n\n- بند\n");
        let item = |ordered, depth, number| Role::ListItem {
            ordered,
            depth,
            number,
        };
        assert_eq!(
            got,
            vec![
                (item(true, 0, Some(1)), "أولاً".to_string()),
                (item(true, 0, Some(2)), "ثانياً".to_string()),
                (item(false, 1, None), "فرعي".to_string()),
                (item(false, 0, None), "بند".to_string()),
            ]
        );
    }

    #[test]
    fn tables_become_cells_with_row_and_column() {
        let got = blocks("| الدولة | العاصمة |\n| --- | --- |\n| قطر | الدوحة |\n");
        let cells: Vec<_> = got
            .iter()
            .map(|b| match b.role {
                Role::TableCell {
                    table,
                    row,
                    column,
                    header,
                } => (table, row, column, header, b.text.trim()),
                ref other => panic!("not a cell: {other:?}"),
            })
            .collect();
        assert_eq!(
            cells,
            vec![
                (0, 0, 0, true, "الدولة"),
                (0, 0, 1, true, "العاصمة"),
                (0, 1, 0, false, "قطر"),
                (0, 1, 1, false, "الدوحة"),
            ]
        );
    }

    #[test]
    fn links_keep_text_and_target_and_code_is_not_translated() {
        let got = blocks(
            "زوروا [موقع الأمانة](https://example.org/ar) اليوم.\n\n```\nرمز\n```\n\n> قال الأمين\n",
        );
        assert_eq!(got[0].text, "زوروا موقع الأمانة اليوم.");
        assert_eq!(
            got[0].links,
            vec![Link {
                text: "موقع الأمانة".into(),
                href: "https://example.org/ar".into()
            }]
        );
        assert!(!got[1].translate);
        assert_eq!(got[2].role, Role::Quote);
        assert_eq!(got[2].position.as_deref(), Some("line 7"));
    }
}
