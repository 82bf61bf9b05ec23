//! The run's digest: `index.html` and `digest.md`, one entry per document in input
//! order, each linking to that document's output, then the documents that failed.

use std::fmt::Write;
use std::path::{Path, PathBuf};

use html_escape::{encode_double_quoted_attribute, encode_text};

use super::markdown::{self, escape_line};
use super::{ensure_dir, html, one_line, sentences_count, write_file, Format, WriteError};
use crate::check::Warning;
use crate::document::{ExtractionMethod, TranslatedDocument};

pub const INDEX_HTML: &str = "index.html";
pub const DIGEST_MD: &str = "digest.md";

/// The failures of a run, kept beside its outputs so `tarjama digest` can merge them:
/// `failures.json`, or `failures.shard-I-of-N.json` for one shard of a run.
pub fn failures_file(shard: Option<(usize, usize)>) -> String {
    match shard {
        Some((index, count)) => format!("failures.shard-{index}-of-{count}.json"),
        None => "failures.json".to_string(),
    }
}

/// Writes a run's failures (an empty list included, so a rerun clears old ones).
pub fn write_failures(
    dir: &Path,
    shard: Option<(usize, usize)>,
    failures: &[DigestFailure],
) -> Result<(), WriteError> {
    let json = serde_json::to_string_pretty(failures).unwrap_or_else(|_| "[]".into());
    write_file(&dir.join(failures_file(shard)), json.as_bytes())
}

/// Everything the output directories `dirs` hold, for one digest written into `into`:
/// every document record, in source-path order, and every failure not since redone.
pub fn collect(dirs: &[PathBuf], into: &Path) -> (Vec<DigestEntry>, Vec<DigestFailure>) {
    let mut records: Vec<(TranslatedDocument, String)> = Vec::new();
    let mut failures: Vec<DigestFailure> = Vec::new();
    for dir in dirs {
        let prefix = relative_dir(into, dir);
        let Ok(entries) = std::fs::read_dir(dir) else {
            continue;
        };
        let mut files: Vec<PathBuf> = entries.flatten().map(|e| e.path()).collect();
        files.sort();
        for path in files {
            let Some(file) = path.file_name().and_then(|n| n.to_str()) else {
                continue;
            };
            if !file.ends_with(".json") {
                continue;
            }
            let Ok(bytes) = std::fs::read(&path) else {
                continue;
            };
            if file.starts_with("failures") {
                if let Ok(list) = serde_json::from_slice::<Vec<DigestFailure>>(&bytes) {
                    failures.extend(list);
                }
            } else if let Ok(doc) = serde_json::from_slice::<TranslatedDocument>(&bytes) {
                records.push((doc, prefix.clone()));
            }
        }
    }
    records.sort_by(|a, b| {
        Path::new(&a.0.source_path)
            .cmp(Path::new(&b.0.source_path))
            .then_with(|| a.0.name.cmp(&b.0.name))
    });
    failures.retain(|f| {
        !records
            .iter()
            .any(|(doc, _)| doc.source_path == f.source_path)
    });
    failures.sort_by(|a, b| Path::new(&a.source_path).cmp(Path::new(&b.source_path)));
    failures.dedup();
    let entries = records
        .iter()
        .map(|(doc, prefix)| DigestEntry {
            dir: prefix.clone(),
            ..DigestEntry::from(doc)
        })
        .collect();
    (entries, failures)
}

/// `dir` as seen from `from`, `/`-separated and ending in `/`; empty when they are the
/// same directory.
fn relative_dir(from: &Path, dir: &Path) -> String {
    let canon = |p: &Path| std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf());
    let (from, dir) = (canon(from), canon(dir));
    let common = from
        .components()
        .zip(dir.components())
        .take_while(|(a, b)| a == b)
        .count();
    let mut out = String::new();
    for _ in from.components().skip(common) {
        out.push_str("../");
    }
    for part in dir.components().skip(common) {
        out.push_str(&part.as_os_str().to_string_lossy());
        out.push('/');
    }
    out
}

/// What the digest shows of one translated document.
#[derive(Debug, Clone, PartialEq)]
pub struct DigestEntry {
    /// Output stem: the entry links to `NAME.html`, `NAME.md`, ...
    pub name: String,
    pub source_path: String,
    pub title: String,
    /// Why the sentence the title comes from is doubted; empty when it is not.
    pub title_warnings: Vec<Warning>,
    pub summary: Option<String>,
    /// Why the summary is doubted; empty when it is not.
    pub summary_warnings: Vec<Warning>,
    pub arabic_words: usize,
    /// Sentences with an error-severity warning: the reader should review them.
    pub flagged: usize,
    /// 0 to 1: the document's confidence; `None` when the model reported none.
    pub confidence: Option<f32>,
    /// 0 to 1: the share of its sentences below the confidence floor.
    pub low_confidence_share: f64,
    /// "read by OCR" or "damaged PDF text layer" when the Arabic itself may be wrong;
    /// empty when the source was read as it is.
    pub caution: String,
    /// Where the document's files are, relative to the digest: empty when beside it,
    /// else ending in `/` (digests merged from several output directories).
    pub dir: String,
}

impl From<&TranslatedDocument> for DigestEntry {
    fn from(doc: &TranslatedDocument) -> Self {
        DigestEntry {
            name: doc.name.clone(),
            source_path: doc.source_path.clone(),
            title: doc.title.clone(),
            title_warnings: doc.title_warnings.clone(),
            summary: doc.summary.clone(),
            summary_warnings: doc.summary_warnings.clone(),
            arabic_words: doc.arabic_words,
            flagged: doc.flagged_sentences(),
            confidence: doc.confidence,
            low_confidence_share: doc.low_confidence_share(),
            caution: caution(doc),
            dir: String::new(),
        }
    }
}

fn caution(doc: &TranslatedDocument) -> String {
    match doc.extraction.as_ref().map(|e| e.method) {
        Some(ExtractionMethod::Ocr) => "read by OCR".to_string(),
        Some(ExtractionMethod::Degraded) => "damaged PDF text layer".to_string(),
        Some(ExtractionMethod::TextLayer) | None => String::new(),
    }
}

/// A document of the run that produced no output.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct DigestFailure {
    pub source_path: String,
    /// Shown on one line; line breaks are folded into spaces.
    pub error: String,
}

/// Writes `index.html` and `digest.md` into `dir`, each atomically; returns their paths.
pub fn write_digest(
    dir: &Path,
    entries: &[DigestEntry],
    failures: &[DigestFailure],
    formats: &[Format],
) -> Result<Vec<PathBuf>, WriteError> {
    ensure_dir(dir)?;
    let files = [
        (INDEX_HTML, render_index_html(entries, failures, formats)),
        (DIGEST_MD, render_digest_md(entries, failures, formats)),
    ];
    let mut written = Vec::new();
    for (file, contents) in files {
        let path = dir.join(file);
        write_file(&path, contents.as_bytes())?;
        written.push(path);
    }
    Ok(written)
}

/// The digest as a self-contained HTML page, linking each document's best page.
pub fn render_index_html(
    entries: &[DigestEntry],
    failures: &[DigestFailure],
    formats: &[Format],
) -> String {
    let target = link_target(formats, Format::Html);
    let mut body = String::new();
    let _ = write!(
        body,
        "<header>\n<h1>Translation digest</h1>\n<p class=\"meta\">{}</p>\n</header>\n",
        encode_text(&counts(entries.len(), failures.len()))
    );
    if let Some(line) = flagged_total(entries) {
        let _ = writeln!(body, "<p class=\"flags\">{}</p>", encode_text(&line));
    }
    if !entries.is_empty() {
        body.push_str("<ol class=\"digest\">\n");
        for entry in entries {
            html_entry(&mut body, entry, target);
        }
        body.push_str("</ol>\n");
    }
    if !failures.is_empty() {
        body.push_str("<section class=\"failures\">\n<h2>Not translated</h2>\n<ul>\n");
        for failure in failures {
            let _ = writeln!(
                body,
                "<li><code>{}</code>: {}</li>",
                encode_text(&failure.source_path),
                encode_text(&one_line(&failure.error))
            );
        }
        body.push_str("</ul>\n</section>\n");
    }
    html::page("Translation digest", &body)
}

fn html_entry(out: &mut String, entry: &DigestEntry, target: Format) {
    let href = entry_href(entry, target);
    let _ = writeln!(
        out,
        "<li>\n<h2><a href=\"{}\">{}</a>{}</h2>",
        encode_double_quoted_attribute(&href),
        encode_text(&entry.title),
        html::flag_badge(&entry.title_warnings, "title flagged")
    );
    match &entry.summary {
        Some(summary) => {
            let _ = writeln!(
                out,
                "<p>{}{}</p>",
                encode_text(summary.trim()),
                html::flag_badge(&entry.summary_warnings, "summary flagged")
            );
        }
        None => out.push_str("<p class=\"none\">No summary.</p>\n"),
    }
    let _ = writeln!(
        out,
        "<p class=\"meta\">Source: <code>{}</code> · {}{}{}{}</p>\n</li>",
        encode_text(&entry.source_path),
        words(entry.arabic_words),
        match entry.flagged {
            0 => String::new(),
            n => format!(" · <strong>{}</strong>", flagged(n)),
        },
        confidence(entry)
            .map(|c| format!(" · {}", encode_text(&c)))
            .unwrap_or_default(),
        match entry.caution.as_str() {
            "" => String::new(),
            c => format!(" · <strong>{}</strong>", encode_text(c)),
        }
    );
}

/// The digest in Markdown, linking each document's Markdown file when there is one.
pub fn render_digest_md(
    entries: &[DigestEntry],
    failures: &[DigestFailure],
    formats: &[Format],
) -> String {
    let target = link_target(formats, Format::Markdown);
    let mut out = String::from("# Translation digest\n\n");
    let _ = writeln!(out, "{}\n", counts(entries.len(), failures.len()));
    if let Some(line) = flagged_total(entries) {
        let _ = writeln!(out, "**{line}**\n");
    }
    for (i, entry) in entries.iter().enumerate() {
        let href = entry_href(entry, target);
        let _ = writeln!(
            out,
            "{}. [{}]({href}){}",
            i + 1,
            escape_line(&entry.title),
            markdown::flag_note(&entry.title_warnings, "title flagged")
        );
        // Indented by the list marker's width so these lines stay inside the item.
        let indent = " ".repeat((i + 1).to_string().len() + 2);
        let summary = match &entry.summary {
            Some(summary) => format!(
                "{}{}",
                escape_line(summary),
                markdown::flag_note(&entry.summary_warnings, "summary flagged")
            ),
            None => "_No summary._".to_string(),
        };
        let _ = writeln!(out, "\n{indent}{summary}\n");
        let _ = writeln!(
            out,
            "{indent}_Source: {} · {}{}{}{}_\n",
            escape_line(&entry.source_path),
            words(entry.arabic_words),
            match entry.flagged {
                0 => String::new(),
                n => format!(" · ⚠️ {}", flagged(n)),
            },
            confidence(entry)
                .map(|c| format!(" · {}", escape_line(&c)))
                .unwrap_or_default(),
            match entry.caution.as_str() {
                "" => String::new(),
                c => format!(" · ⚠️ {c}"),
            }
        );
    }
    if !failures.is_empty() {
        out.push_str("## Not translated\n\n");
        for failure in failures {
            let _ = writeln!(
                out,
                "- {}: {}",
                escape_line(&failure.source_path),
                escape_line(&failure.error)
            );
        }
    }
    out
}

/// The file an entry links to: `preferred` if it was written, else the first written
/// format in [`Format::ALL`] order, else the JSON record, which is always written.
fn link_target(formats: &[Format], preferred: Format) -> Format {
    std::iter::once(preferred)
        .chain(Format::ALL)
        .find(|f| formats.contains(f))
        .unwrap_or(Format::Json)
}

/// The relative link to an entry's file in `target` format.
fn entry_href(entry: &DigestEntry, target: Format) -> String {
    let mut href: String = entry
        .dir
        .split('/')
        .filter(|s| !s.is_empty())
        .map(|segment| format!("{}/", percent_encode(segment)))
        .collect();
    href.push_str(&percent_encode(&target.file_name(&entry.name)));
    href
}

/// Percent-encodes everything but RFC 3986 unreserved characters, so that spaces,
/// quotes, `#`, `?` and non-ASCII names survive as a relative link.
fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

fn counts(translated: usize, failed: usize) -> String {
    let documents = if translated == 1 {
        "document"
    } else {
        "documents"
    };
    let mut line = format!("{translated} {documents} translated");
    if failed > 0 {
        let _ = write!(line, ", {failed} not translated");
    }
    line.push('.');
    line
}

/// "N sentence(s) flagged", for one document.
fn flagged(n: usize) -> String {
    format!("{} flagged", sentences_count(n))
}

/// "confidence 0.78 · 12 % low-confidence": how sure the model was of the document, and
/// how much of it it was unsure of; `None` when it reported no confidence.
fn confidence(entry: &DigestEntry) -> Option<String> {
    let confidence = entry.confidence?;
    Some(format!(
        "confidence {confidence:.2} · {} low-confidence",
        percent(entry.low_confidence_share)
    ))
}

/// A share as a whole percentage; "under 1 %" rather than "0 %" for a share that is not
/// nothing.
fn percent(share: f64) -> String {
    let rounded = (share * 100.0).round();
    if rounded == 0.0 && share > 0.0 {
        "under 1 %".to_string()
    } else {
        format!("{rounded} %")
    }
}

/// The run's flagged sentences and the documents they are in, when there are any.
fn flagged_total(entries: &[DigestEntry]) -> Option<String> {
    let total: usize = entries.iter().map(|e| e.flagged).sum();
    if total == 0 {
        return None;
    }
    let documents = entries.iter().filter(|e| e.flagged > 0).count();
    Some(format!(
        "{} flagged for review, in {documents} {}.",
        sentences_count(total),
        if documents == 1 {
            "document"
        } else {
            "documents"
        }
    ))
}

fn words(n: usize) -> String {
    if n == 1 {
        "1 Arabic word".to_string()
    } else {
        format!("{n} Arabic words")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::write::fixture;

    fn entry(name: &str, title: &str) -> DigestEntry {
        DigestEntry {
            name: name.to_string(),
            source_path: format!("press/{name}.txt"),
            title: title.to_string(),
            title_warnings: Vec::new(),
            summary: Some(format!("Summary of {title}.")),
            summary_warnings: Vec::new(),
            arabic_words: 120,
            flagged: 0,
            confidence: None,
            low_confidence_share: 0.0,
            caution: String::new(),
            dir: String::new(),
        }
    }

    fn sample() -> (Vec<DigestEntry>, Vec<DigestFailure>) {
        let entries = vec![
            entry("zeta", "Ministry announces new budget"),
            entry("alpha", "GCC council meets in Riyadh"),
            DigestEntry {
                summary: None,
                ..entry("mid", "Health ministry campaign")
            },
        ];
        let failures = vec![DigestFailure {
            source_path: "press/broken.docx".to_string(),
            error: "not a valid DOCX file:\nmissing word/document.xml".to_string(),
        }];
        (entries, failures)
    }

    fn positions(text: &str, needles: &[&str]) -> Vec<usize> {
        needles.iter().map(|n| text.find(n).unwrap()).collect()
    }

    #[test]
    fn entry_from_document() {
        let doc = fixture::document();
        let e = DigestEntry::from(&doc);
        assert_eq!(e.name, doc.name);
        assert_eq!(e.title, doc.title);
        assert_eq!(e.summary, doc.summary);
        assert_eq!(e.source_path, doc.source_path);
        assert_eq!(e.arabic_words, 42);
    }

    #[test]
    fn entry_counts_flagged_sentences() {
        assert_eq!(DigestEntry::from(&fixture::document()).flagged, 0);
        assert_eq!(DigestEntry::from(&fixture::flagged_document()).flagged, 1);
    }

    #[test]
    fn flagged_counts_per_document_and_in_total() {
        let (mut entries, _) = sample();
        entries[0].flagged = 2;
        entries[2].flagged = 1;
        let html = render_index_html(&entries, &[], &Format::ALL);
        assert!(
            html.contains("<p class=\"flags\">3 sentences flagged for review, in 2 documents.</p>")
        );
        assert!(html.find("class=\"flags\"").unwrap() < html.find("<ol").unwrap());
        assert!(html.contains(
            "<p class=\"meta\">Source: <code>press/zeta.txt</code> · 120 Arabic words · \
             <strong>2 sentences flagged</strong></p>"
        ));
        assert!(html.contains(
            "<p class=\"meta\">Source: <code>press/mid.txt</code> · 120 Arabic words · \
             <strong>1 sentence flagged</strong></p>"
        ));
        assert!(html.contains(
            "<p class=\"meta\">Source: <code>press/alpha.txt</code> · 120 Arabic words</p>"
        ));

        let md = render_digest_md(&entries, &[], &Format::ALL);
        assert!(md.contains("\n**3 sentences flagged for review, in 2 documents.**\n"));
        assert!(md.find("flagged for review").unwrap() < md.find("1. [").unwrap());
        assert!(md
            .contains("   _Source: press/zeta.txt · 120 Arabic words · ⚠️ 2 sentences flagged_\n"));
        assert!(
            md.contains("   _Source: press/mid.txt · 120 Arabic words · ⚠️ 1 sentence flagged_\n")
        );
        assert!(md.contains("   _Source: press/alpha.txt · 120 Arabic words_\n"));

        let one = [DigestEntry {
            flagged: 1,
            ..entry("one", "One")
        }];
        assert!(render_digest_md(&one, &[], &Format::ALL)
            .contains("**1 sentence flagged for review, in 1 document.**"));

        let scanned = [DigestEntry {
            caution: "read by OCR".into(),
            ..entry("scan", "Scan")
        }];
        assert!(render_digest_md(&scanned, &[], &Format::ALL)
            .contains("_Source: press/scan.txt · 120 Arabic words · ⚠️ read by OCR_"));
        assert!(render_index_html(&scanned, &[], &Format::ALL)
            .contains("120 Arabic words · <strong>read by OCR</strong></p>"));
    }

    #[test]
    fn entry_counts_errors_only_and_takes_the_confidence() {
        let doc = fixture::review_document();
        let e = DigestEntry::from(&doc);
        assert_eq!(e.flagged, 1, "the noted sentence is not flagged");
        assert_eq!(e.confidence, doc.confidence);
        assert!(e.confidence.is_some());
        // Of the four sentences with a confidence, two are below the floor.
        assert_eq!(e.low_confidence_share, 0.5);
        let shown = format!(
            "confidence {:.2} · 50 % low-confidence",
            doc.confidence.unwrap_or_default()
        );
        let html = render_index_html(std::slice::from_ref(&e), &[], &Format::ALL);
        assert!(
            html.contains(&format!(
                "· <strong>1 sentence flagged</strong> · {shown}</p>"
            )),
            "{html}"
        );
        let md = render_digest_md(&[e], &[], &Format::ALL);
        assert!(
            md.contains(&format!("· ⚠️ 1 sentence flagged · {shown}_\n")),
            "{md}"
        );
    }

    #[test]
    fn confidence_and_low_confidence_share_beside_the_flags() {
        let (mut entries, _) = sample();
        entries[0].confidence = Some(0.78);
        entries[0].low_confidence_share = 0.12;
        entries[0].flagged = 2;
        entries[1].confidence = Some(0.9);
        entries[1].low_confidence_share = 0.001;
        entries[1].caution = "read by OCR".into();
        let html = render_index_html(&entries, &[], &Format::ALL);
        assert!(html.contains(
            "<p class=\"meta\">Source: <code>press/zeta.txt</code> · 120 Arabic words · \
             <strong>2 sentences flagged</strong> · confidence 0.78 · 12 % low-confidence</p>"
        ));
        assert!(html.contains(
            "<p class=\"meta\">Source: <code>press/alpha.txt</code> · 120 Arabic words · \
             confidence 0.90 · under 1 % low-confidence · <strong>read by OCR</strong></p>"
        ));
        // A model that reports no confidence: nothing is said of it.
        assert!(html.contains(
            "<p class=\"meta\">Source: <code>press/mid.txt</code> · 120 Arabic words</p>"
        ));
        let md = render_digest_md(&entries, &[], &Format::ALL);
        assert!(md.contains(
            "   _Source: press/zeta.txt · 120 Arabic words · ⚠️ 2 sentences flagged · \
             confidence 0.78 · 12 % low-confidence_\n"
        ));
        assert!(md.contains(
            "   _Source: press/alpha.txt · 120 Arabic words · confidence 0.90 · \
             under 1 % low-confidence · ⚠️ read by OCR_\n"
        ));
        assert!(md.contains("   _Source: press/mid.txt · 120 Arabic words_\n"));
    }

    #[test]
    fn no_flag_lines_without_flags() {
        let (entries, failures) = sample();
        let html = render_index_html(&entries, &failures, &Format::ALL);
        assert!(!html.contains("flagged"), "{html}");
        let md = render_digest_md(&entries, &failures, &Format::ALL);
        assert!(!md.contains("flagged"), "{md}");
        assert!(!md.contains("⚠️"));
    }

    #[test]
    fn entries_keep_input_order() {
        let (entries, failures) = sample();
        let titles = ["Ministry announces", "GCC council", "Health ministry"];
        let html = render_index_html(&entries, &failures, &Format::ALL);
        let at = positions(&html, &titles);
        assert!(at.windows(2).all(|w| w[0] < w[1]), "{html}");
        let md = render_digest_md(&entries, &failures, &Format::ALL);
        let at = positions(&md, &titles);
        assert!(at.windows(2).all(|w| w[0] < w[1]), "{md}");
        assert!(md.contains("1. [Ministry announces new budget](zeta.md)"));
        assert!(md.contains("3. [Health ministry campaign](mid.md)"));
    }

    #[test]
    fn links_fall_back_through_the_formats() {
        use Format::*;
        let (entries, _) = sample();
        let cases: [(&[Format], &str, &str); 6] = [
            (&[Html, Markdown, Text, Json], "zeta.html", "zeta.md"),
            (&[Html], "zeta.html", "zeta.html"),
            (&[Markdown, Json], "zeta.md", "zeta.md"),
            (&[Text, Json], "zeta.en.txt", "zeta.en.txt"),
            (&[Json], "zeta.json", "zeta.json"),
            (&[], "zeta.json", "zeta.json"),
        ];
        for (formats, html_link, md_link) in cases {
            let html = render_index_html(&entries, &[], formats);
            assert!(
                html.contains(&format!("<a href=\"{html_link}\">")),
                "{formats:?}: {html}"
            );
            let md = render_digest_md(&entries, &[], formats);
            assert!(md.contains(&format!("]({md_link})")), "{formats:?}: {md}");
        }
    }

    #[test]
    fn titles_and_links_are_escaped() {
        let evil = r#"<script>alert("x")</script> & [co]"#;
        let mut e = entry("a \"quoted\" name#1", evil);
        e.summary = Some(evil.to_string());
        e.source_path = evil.to_string();
        let failures = [DigestFailure {
            source_path: evil.to_string(),
            error: evil.to_string(),
        }];
        let html = render_index_html(std::slice::from_ref(&e), &failures, &[Format::Html]);
        assert!(!html.contains("<script"), "{html}");
        assert!(html.contains("<a href=\"a%20%22quoted%22%20name%231.html\">"));
        assert!(html.contains("&lt;script&gt;alert(\"x\")&lt;/script&gt; &amp; [co]</a>"));

        let md = render_digest_md(std::slice::from_ref(&e), &failures, &[Format::Markdown]);
        assert!(!md.contains("<script"), "{md}");
        assert!(md.contains(
            "1. [&lt;script&gt;alert(\"x\")&lt;/script&gt; &amp; \\[co\\]](a%20%22quoted%22%20name%231.md)"
        ));
    }

    #[test]
    fn arabic_names_are_percent_encoded() {
        let html = render_index_html(&[entry("بيان", "Statement")], &[], &[Format::Html]);
        assert!(
            html.contains("href=\"%D8%A8%D9%8A%D8%A7%D9%86.html\""),
            "{html}"
        );
    }

    #[test]
    fn failures_listed_at_the_end_on_one_line() {
        let (entries, failures) = sample();
        let html = render_index_html(&entries, &failures, &Format::ALL);
        let section = html.find("<h2>Not translated</h2>").unwrap();
        assert!(section > html.find("Health ministry").unwrap());
        assert!(html.contains(
            "<li><code>press/broken.docx</code>: not a valid DOCX file: missing word/document.xml</li>"
        ));
        assert!(html.contains("3 documents translated, 1 not translated."));

        let md = render_digest_md(&entries, &failures, &Format::ALL);
        let section = md.find("## Not translated").unwrap();
        assert!(section > md.find("Health ministry").unwrap());
        assert!(
            md.contains("- press/broken.docx: not a valid DOCX file: missing word/document.xml\n")
        );

        let html = render_index_html(&entries, &[], &Format::ALL);
        assert!(!html.contains("Not translated"));
        assert!(!render_digest_md(&entries, &[], &Format::ALL).contains("Not translated"));
    }

    #[test]
    fn summaries_or_a_note() {
        let (entries, _) = sample();
        let html = render_index_html(&entries, &[], &Format::ALL);
        assert!(html.contains("<p>Summary of GCC council meets in Riyadh.</p>"));
        assert!(html.contains("No summary."));
        assert!(html.contains("<meta charset=\"utf-8\">"));
        assert!(html.contains("press/alpha.txt"));
        let md = render_digest_md(&entries, &[], &Format::ALL);
        assert!(md.contains("   Summary of GCC council meets in Riyadh.\n"));
        assert!(md.contains("   _No summary._\n"));
    }

    #[test]
    fn writes_both_files_atomically() {
        let dir = tempfile::tempdir().unwrap();
        let (entries, failures) = sample();
        let paths = write_digest(dir.path(), &entries, &failures, &Format::ALL).unwrap();
        assert_eq!(
            paths,
            [dir.path().join(INDEX_HTML), dir.path().join(DIGEST_MD)]
        );
        let mut names: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        assert_eq!(names, ["digest.md", "index.html"]);
        assert_eq!(
            std::fs::read_to_string(&paths[0]).unwrap(),
            render_index_html(&entries, &failures, &Format::ALL)
        );

        let missing = dir.path().join("missing");
        let err = write_digest(&missing, &entries, &failures, &Format::ALL).unwrap_err();
        assert!(matches!(err, WriteError::MissingDir { .. }));
    }
}
