//! The bilingual pages as a reader sees them: headless Chromium renders a translated
//! document and the run's index, and a probe reads the rendered DOM.
//!
//! The document comes through the real Markdown reader; its translation is made up here
//! (this tests the writers, not the model). Screenshots are left under the test's
//! output directory (`target/tmp/browser/`) for a person to look at.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;
use tarjama::check::{CheckKind, Warning};
use tarjama::document::{
    ModelRecord, ParagraphKind, Settings, Timings, TranslatedDocument, TranslatedParagraph,
    TranslatedSentence,
};
use tarjama::write::{self, DigestEntry, Format};

const SOURCE: &str = "# قمة الرياض\n\n\
الرياض – الأمانة العامة\n\n\
أكد الأمين العام أهمية العلاقات. وأضاف أن اللقاء الخامس عقد في 2024.\n\n\
- قطر\n- عمان\n\n\
| الدولة | العاصمة |\n| --- | --- |\n| قطر | الدوحة |\n| عمان | مسقط |\n\n\
نص فيه \\<script>window.__pwned = 1\\</script> كتب في المصدر.\n";

/// Made-up English for each block, in order; the second sentence of the body is flagged.
const ENGLISH: &[&str] = &[
    "Riyadh summit",
    "Riyadh – General Secretariat",
    "The Secretary-General stressed the importance of relations.|He added that the fifth meeting was held in 2023.",
    "Qatar",
    "Oman",
    "Country",
    "Capital",
    "Qatar",
    "Doha",
    "Oman",
    "Muscat",
    "A text with <script>window.__pwned = 2</script> written in the source.",
];

fn chromium() -> PathBuf {
    for name in ["chromium", "chromium-browser", "google-chrome"] {
        if let Ok(out) = Command::new("which").arg(name).output() {
            if out.status.success() {
                return PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
            }
        }
    }
    panic!("headless Chromium is needed for this test: install it with `apt-get install chromium`");
}

fn translated() -> TranslatedDocument {
    let doc = tarjama::load::load_bytes("release.md", SOURCE.as_bytes()).expect("loads");
    assert_eq!(doc.paragraphs.len(), ENGLISH.len(), "{:#?}", doc.paragraphs);
    let paragraphs: Vec<TranslatedParagraph> = doc
        .paragraphs
        .iter()
        .zip(ENGLISH)
        .map(|(p, english)| paragraph(p, english))
        .collect();
    TranslatedDocument {
        name: "release".into(),
        source_path: "release.md".into(),
        source_sha256: doc.source_sha256.clone(),
        format: doc.format.into(),
        extraction: None,
        model: ModelRecord {
            name: "scripted".into(),
            file_sha256: "0".repeat(64),
        },
        settings: Settings {
            max_new_tokens: 256,
            max_segment_tokens: 200,
            summary: true,
            prompt_version: 1,
            glossary_sha256: None,
            prompt_style: "instructed".into(),
            retry: true,
            candidates: 1,
            rerank: 0,
            context: false,
            lexicon: true,
            hints: 8,
            memory_examples: None,
        },
        title: "Riyadh summit <script>window.__pwned = 3</script>".into(),
        title_warnings: Vec::new(),
        summary: Some("The summit met.".into()),
        summary_warnings: Vec::new(),
        arabic_words: doc.arabic_words(),
        confidence: None,
        warnings: TranslatedDocument::collect_warnings(&paragraphs),
        paragraphs,
        timings: Timings::default(),
    }
}

/// One block translated sentence by sentence (`|` separates the English sentences); the
/// sentence stating the wrong year is flagged, as the numbers check would.
fn paragraph(p: &tarjama::document::Paragraph, english: &str) -> TranslatedParagraph {
    let arabic: Vec<&str> = if english.contains('|') {
        p.text.split_inclusive(". ").map(str::trim).collect()
    } else {
        vec![p.text.as_str()]
    };
    let sentences: Vec<TranslatedSentence> = arabic
        .iter()
        .zip(english.split('|'))
        .map(|(a, e)| TranslatedSentence {
            source: a.to_string(),
            translation: e.to_string(),
            warnings: if e.contains("2023") {
                vec![Warning::error(
                    CheckKind::Numbers,
                    "number(s) from the source missing: 2024",
                )]
            } else {
                Vec::new()
            },
            confidence: None,
        })
        .collect();
    TranslatedParagraph {
        kind: p.kind,
        source: p.text.clone(),
        translation: english.replace('|', " "),
        sentences,
        block: p.block.clone(),
    }
}

/// Reads the rendered DOM of `page` with `probe` (a JavaScript expression that returns
/// a JSON-serializable value), run after the page has loaded.
fn probe(browser: &Path, page: &Path, probe: &str) -> Value {
    let html = std::fs::read_to_string(page).expect("page");
    let script = format!(
        "<script>document.body.setAttribute('data-probe', JSON.stringify((() => {{ {probe} }})()));</script>"
    );
    let probed = page.with_extension("probe.html");
    std::fs::write(
        &probed,
        html.replace("</body>", &format!("{script}</body>")),
    )
    .expect("write");
    let out = Command::new(browser)
        .args(headless_flags(page))
        .args(["--dump-dom", "--virtual-time-budget=3000"])
        .arg(format!("file://{}", probed.display()))
        .output()
        .expect("chromium runs");
    let dom = String::from_utf8_lossy(&out.stdout);
    let start = dom
        .find("data-probe=\"")
        .unwrap_or_else(|| panic!("no probe result: {}", String::from_utf8_lossy(&out.stderr)))
        + "data-probe=\"".len();
    let end = start + dom[start..].find('"').expect("closing quote");
    let json = dom[start..end]
        .replace("&quot;", "\"")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&");
    serde_json::from_str(&json).unwrap_or_else(|e| panic!("probe JSON {json}: {e}"))
}

fn headless_flags(page: &Path) -> Vec<String> {
    let profile = page.parent().expect("dir").join("chromium-profile");
    vec![
        "--headless".into(),
        "--no-sandbox".into(),
        "--disable-gpu".into(),
        "--disable-dev-shm-usage".into(),
        "--hide-scrollbars".into(),
        format!("--user-data-dir={}", profile.display()),
    ]
}

fn screenshot(browser: &Path, page: &Path, png: &Path) {
    let status = Command::new(browser)
        .args(headless_flags(page))
        .arg(format!("--screenshot={}", png.display()))
        .arg("--window-size=1280,1400")
        .arg(format!("file://{}", page.display()))
        .output()
        .expect("chromium runs");
    let size = std::fs::metadata(png).map(|m| m.len()).unwrap_or(0);
    assert!(
        size > 10_000,
        "no screenshot {}: {}",
        png.display(),
        String::from_utf8_lossy(&status.stderr)
    );
}

const DOCUMENT_PROBE: &str = r#"
const arabicCells = [...document.querySelectorAll('td[lang="ar"], th[lang="ar"]')];
const marks = [...document.querySelectorAll('mark.flag')];
const sourceTables = [...document.querySelectorAll('td[lang="ar"] table.source-table')];
return {
  arabicCells: arabicCells.length,
  arabicRtl: arabicCells.filter(c => getComputedStyle(c).direction === 'rtl').length,
  arabicRight: arabicCells.filter(c => getComputedStyle(c).textAlign === 'right').length,
  marks: marks.length,
  marksHighlighted: marks.filter(m => getComputedStyle(m).backgroundColor !== 'rgba(0, 0, 0, 0)').length,
  markTitle: marks.length ? marks[0].title : '',
  scripts: document.scripts.length,
  pwned: typeof window.__pwned,
  scriptShownAsText: document.body.innerText.includes('<script>window.__pwned = 1<\/script>'),
  englishScriptShown: document.body.innerText.includes('<script>window.__pwned = 2<\/script>'),
  titleShown: document.querySelector('h1').innerText,
  headings: document.querySelectorAll('tr.heading h2').length,
  listItems: document.querySelectorAll('td[lang="ar"] ul li').length,
  sourceTableRows: sourceTables.map(t => [...t.rows].map(r => [...r.cells].map(c => c.innerText))),
  sourceTablesRtl: sourceTables.filter(t => getComputedStyle(t).direction === 'rtl').length,
};
"#;

const INDEX_PROBE: &str = r#"
const link = document.querySelector('a[href="release.html"]');
return {
  scripts: document.scripts.length,
  pwned: typeof window.__pwned,
  link: link ? link.innerText : null,
  flaggedShown: document.body.innerText.includes('1 sentence'),
};
"#;

#[test]
fn bilingual_pages_render_right_to_left_with_flags_and_tables_and_no_script_runs() {
    let browser = chromium();
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("browser");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("output dir");
    let doc = translated();
    write::write_document(&dir, &doc, &[Format::Html]).expect("written");
    write::write_digest(&dir, &[DigestEntry::from(&doc)], &[], &[Format::Html]).expect("digest");
    let page = dir.join("release.html");
    let index = dir.join("index.html");

    let got = probe(&browser, &page, DOCUMENT_PROBE);
    let cells = got["arabicCells"].as_u64().expect("count");
    assert!(cells >= 8, "{got}");
    assert_eq!(
        got["arabicRtl"], cells,
        "every Arabic cell right-to-left: {got}"
    );
    assert_eq!(got["arabicRight"], cells, "{got}");
    assert_eq!(got["marks"], 2, "the flagged sentence on both sides: {got}");
    assert_eq!(got["marksHighlighted"], 2, "{got}");
    assert!(got["markTitle"]
        .as_str()
        .expect("title")
        .contains("numbers"));
    assert_eq!(got["scripts"], 1, "only the probe is a script: {got}");
    assert_eq!(
        got["pwned"], "undefined",
        "a script from the source ran: {got}"
    );
    assert_eq!(got["scriptShownAsText"], true, "{got}");
    assert_eq!(got["englishScriptShown"], true, "{got}");
    assert!(got["titleShown"]
        .as_str()
        .expect("h1")
        .contains("<script>window.__pwned = 3</script>"));
    assert_eq!(got["headings"], 2, "the heading, on both sides: {got}");
    assert_eq!(got["listItems"], 2, "{got}");
    assert_eq!(
        got["sourceTableRows"],
        serde_json::json!([
            [["الدولة", "العاصمة"]],
            [["قطر", "الدوحة"]],
            [["عمان", "مسقط"]]
        ]),
        "the table keeps its rows and cells: {got}"
    );
    assert_eq!(got["sourceTablesRtl"], 3, "{got}");

    let got = probe(&browser, &index, INDEX_PROBE);
    assert_eq!(got["scripts"], 1, "{got}");
    assert_eq!(got["pwned"], "undefined", "{got}");
    assert!(
        got["link"]
            .as_str()
            .is_some_and(|l| l.contains("Riyadh summit <script>")),
        "{got}"
    );
    assert_eq!(got["flaggedShown"], true, "{got}");

    screenshot(&browser, &page, &dir.join("release.png"));
    screenshot(&browser, &index, &dir.join("index.png"));
    assert_eq!(doc.paragraphs[0].kind, ParagraphKind::Heading);
}
