//! The whole job (plan → engine → execute → written outputs) on temporary Arabic text
//! documents, with a scripted translator and summarizer instead of a model.

use std::cell::{Cell, RefCell};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::{Arc, Mutex, OnceLock};

use super::*;
use crate::document::{ModelRecord, TranslatedDocument};
use crate::settings::{testing, ModelChoice};
use crate::translate::testing::{Scripted, ScriptedChat};

/// The scripted model's identity, as a hashed model file would give it.
const SHA: &str = "5ca1ab1e5ca1ab1e5ca1ab1e5ca1ab1e5ca1ab1e5ca1ab1e5ca1ab1e5ca1ab1e";

const A1: &str = "عقد المجلس اجتماعه في الرياض.";
const A2: &str = "وناقش الوزراء التعاون الاقتصادي.";
const B1: &str = "افتتح الوزير المعرض في جدة.";
const B2: &str = "وحضر الافتتاح عدد من السفراء.";
const C1: &str = "وأكد الأمين العام أهمية الحوار.";

const PAIRS: &[(&str, &str)] = &[
    (A1, "The council held its meeting in Riyadh."),
    (A2, "The ministers discussed economic cooperation."),
    (B1, "The minister opened the exhibition in Jeddah."),
    (B2, "A number of ambassadors attended the opening."),
    (
        C1,
        "The Secretary-General stressed the importance of dialogue.",
    ),
];

const SUMMARY: &str = "The council held its meeting in Riyadh.";

/// A scripted engine, with what its translator is asked and its summarizer is told.
struct Scripts {
    asked: Rc<RefCell<Vec<String>>>,
    summarized: Rc<RefCell<Vec<String>>>,
}

fn scripted() -> (Engine, Scripts) {
    scripted_taking(Duration::ZERO)
}

/// A scripted engine that takes `delay` over each translation.
fn scripted_taking(delay: Duration) -> (Engine, Scripts) {
    let mut translator = Scripted::with_table(PAIRS);
    translator.delay = delay;
    let summarizer = ScriptedChat::new(SUMMARY);
    let scripts = Scripts {
        asked: translator.asked.clone(),
        summarized: summarizer.prompts.clone(),
    };
    translator.summarizer = Some(summarizer);
    let model = ModelRecord {
        name: "scripted".into(),
        file_sha256: SHA.into(),
    };
    (Engine::new(model, Box::new(translator)), scripts)
}

/// A loader that must not be called.
fn no_loading(called: &Cell<bool>) -> impl FnOnce(&RunSettings) -> anyhow::Result<Engine> + '_ {
    move |_| {
        called.set(true);
        anyhow::bail!("the engine was loaded")
    }
}

struct Fixture {
    _dir: tempfile::TempDir,
    inputs: PathBuf,
    out: PathBuf,
}

impl Fixture {
    /// Documents `(file name, bytes)` in an input directory.
    fn new(documents: &[(&str, &[u8])]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let inputs = dir.path().join("in");
        std::fs::create_dir(&inputs).unwrap();
        for (name, bytes) in documents {
            std::fs::write(inputs.join(name), bytes).unwrap();
        }
        let out = dir.path().join("out");
        Self {
            _dir: dir,
            inputs,
            out,
        }
    }

    fn job(&self, formats: &[Format]) -> JobSettings {
        let mut run = RunSettings::resolve(testing::choices("scripted")).unwrap();
        run.model = ModelChoice {
            spec: "scripted".into(),
            file: None,
            sha256: Some(SHA.into()),
        };
        JobSettings {
            run,
            inputs: vec![self.inputs.display().to_string()],
            out_dir: self.out.clone(),
            formats: formats.to_vec(),
            force: false,
            shard: None,
            progress_bar: false,
            progress_every: LOG_EVERY,
        }
    }

    fn record(&self, name: &str) -> TranslatedDocument {
        let json = std::fs::read_to_string(self.out.join(format!("{name}.json"))).unwrap();
        serde_json::from_str(&json).unwrap()
    }

    fn files(&self) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(&self.out)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }
}

fn text(lines: &[&str]) -> Vec<u8> {
    lines
        .iter()
        .map(|l| format!("{l}\n"))
        .collect::<String>()
        .into_bytes()
}

fn translations(doc: &TranslatedDocument) -> Vec<&str> {
    doc.paragraphs
        .iter()
        .map(|p| p.translation.as_str())
        .collect()
}

const DEFAULT_FORMATS: &[Format] = &[Format::Html, Format::Markdown, Format::Text, Format::Json];

#[test]
fn every_document_is_written_in_every_format_asked() {
    let fx = Fixture::new(&[("a.txt", &text(&[A1, A2])), ("b.txt", &text(&[B1, B2]))]);
    let formats = [
        Format::Html,
        Format::Markdown,
        Format::Docx,
        Format::Text,
        Format::Json,
    ];
    let job = fx.job(&formats);
    let (engine, scripts) = scripted();
    let report = run(&job, |_| Ok(engine)).unwrap();
    assert_eq!(
        (report.done(), report.skipped(), report.failed()),
        (2, 0, 0)
    );
    let names = fx.files();
    for name in ["a", "b"] {
        for format in formats {
            let file = format.file_name(name);
            assert!(names.contains(&file), "{file} missing from {names:?}");
        }
    }
    assert!(names.contains(&"index.html".to_string()), "{names:?}");
    assert!(names.contains(&"digest.md".to_string()), "{names:?}");

    let a = fx.record("a");
    assert_eq!(translations(&a), [PAIRS[0].1, PAIRS[1].1]);
    assert_eq!(translations(&fx.record("b")), [PAIRS[2].1, PAIRS[3].1]);
    assert_eq!(a.model.file_sha256, SHA);
    assert_eq!(a.settings, job.run.fingerprint());
    assert_eq!(a.title, PAIRS[0].1);
    let mut asked = scripts.asked.borrow().clone();
    asked.sort();
    let mut all = vec![A1, A2, B1, B2];
    all.sort();
    assert_eq!(asked, all);
    assert!(scripts.summarized.borrow().len() >= 2);
}

#[test]
fn the_summary_is_written_by_the_engine_or_not_at_all() {
    let fx = Fixture::new(&[("a.txt", &text(&[A1, A2]))]);
    let (engine_on, on) = scripted();
    run(&fx.job(DEFAULT_FORMATS), |_| Ok(engine_on)).unwrap();
    assert_eq!(fx.record("a").summary.as_deref(), Some(SUMMARY));
    // The summarizer was given the English, not the Arabic.
    let prompts = on.summarized.borrow();
    assert!(prompts[0].contains(PAIRS[0].1), "{prompts:?}");
    assert!(!prompts[0].contains(A1), "{prompts:?}");

    let mut job = fx.job(DEFAULT_FORMATS);
    job.run.summary_model = None;
    let (engine_off, off) = scripted();
    let report = run(&job, |_| Ok(engine_off)).unwrap();
    // A run without summaries is another setting: the document is redone.
    assert_eq!(report.done(), 1);
    assert_eq!(fx.record("a").summary, None);
    assert!(off.summarized.borrow().is_empty());
}

#[test]
fn a_bad_document_fails_alone_and_nothing_of_it_is_written() {
    let fx = Fixture::new(&[
        ("a.txt", &text(&[A1, A2])),
        ("bad.txt", b"\xd8\xa7\xd9\x84\nok\n\xff\xfe broken\n"),
        ("empty.txt", b"  \n\n"),
    ]);
    let (engine, _) = scripted();
    let report = run(&fx.job(DEFAULT_FORMATS), |_| Ok(engine)).unwrap();
    assert_eq!((report.done(), report.failed()), (1, 2));
    let errors: Vec<&str> = report
        .outcomes
        .iter()
        .filter_map(|(_, o)| match o {
            Outcome::Failed { error } => Some(error.as_str()),
            _ => None,
        })
        .collect();
    assert!(
        errors[0].contains("bad.txt") && errors[0].contains("UTF-8"),
        "{errors:?}"
    );
    assert!(errors[1].contains("empty.txt"), "{errors:?}");
    let names = fx.files();
    assert!(names.contains(&"a.json".to_string()), "{names:?}");
    assert!(
        names
            .iter()
            .all(|n| !n.starts_with("bad.") && !n.starts_with("empty.") && !n.starts_with(".tmp")),
        "{names:?}"
    );
    let digest = std::fs::read_to_string(fx.out.join("digest.md")).unwrap();
    assert!(
        digest.contains("bad.txt") && digest.contains("empty.txt"),
        "{digest}"
    );
}

#[test]
fn a_rerun_skips_up_to_date_documents_without_loading_the_engine() {
    let fx = Fixture::new(&[("a.txt", &text(&[A1, A2])), ("b.txt", &text(&[B1, B2]))]);
    let job = fx.job(DEFAULT_FORMATS);
    let (engine, _) = scripted();
    assert_eq!(run(&job, |_| Ok(engine)).unwrap().done(), 2);
    let written = std::fs::read(fx.out.join("a.json")).unwrap();

    let loaded = Cell::new(false);
    let report = run(&job, no_loading(&loaded)).unwrap();
    assert!(
        !loaded.get(),
        "the engine was loaded for up-to-date documents"
    );
    assert_eq!(
        (report.done(), report.skipped(), report.failed()),
        (0, 2, 0)
    );
    assert_eq!(std::fs::read(fx.out.join("a.json")).unwrap(), written);

    // A missing output makes its document pending again.
    std::fs::remove_file(fx.out.join("b.md")).unwrap();
    let (engine, scripts) = scripted();
    let report = run(&job, |_| Ok(engine)).unwrap();
    assert_eq!((report.done(), report.skipped()), (1, 1));
    assert!(!scripts.asked.borrow().contains(&A1.to_string()));
}

#[test]
fn a_changed_setting_invalidates_the_outputs() {
    let fx = Fixture::new(&[("a.txt", &text(&[A1, A2]))]);
    let job = fx.job(DEFAULT_FORMATS);
    let (engine, _) = scripted();
    run(&job, |_| Ok(engine)).unwrap();

    let mut changed = job.clone();
    changed.run.max_new_tokens = 256;
    let loaded = Cell::new(false);
    let report = run(&changed, |_| {
        loaded.set(true);
        Ok(scripted().0)
    })
    .unwrap();
    assert!(loaded.get());
    assert_eq!(report.done(), 1);
    assert_eq!(fx.record("a").settings.max_new_tokens, 256);

    // So does another model, and --force redoes whatever the settings.
    let mut other = changed.clone();
    other.run.model.sha256 = Some("0".repeat(64));
    let loaded = Cell::new(false);
    let report = run(&other, no_loading(&loaded)).unwrap();
    assert!(loaded.get());
    assert_eq!(report.failed(), 1);
    let mut forced = changed;
    forced.force = true;
    let (engine, _) = scripted();
    assert_eq!(run(&forced, |_| Ok(engine)).unwrap().done(), 1);
}

#[test]
fn segments_in_the_translation_memory_are_not_sent_to_the_translator() {
    let fx = Fixture::new(&[("a.txt", &text(&[A1, A2]))]);
    let mut job = fx.job(DEFAULT_FORMATS);
    job.run.memory = Some(fx.out.with_file_name("memory.sqlite"));
    let (engine, first) = scripted();
    let report = run(&job, |_| Ok(engine)).unwrap();
    assert_eq!(report.memory_hits, Some(0));
    assert_eq!(first.asked.borrow().len(), 2);

    // A new document that shares a sentence with the first one.
    std::fs::write(fx.inputs.join("c.txt"), text(&[A1, C1])).unwrap();
    let (engine, second) = scripted();
    let report = run(&job, |_| Ok(engine)).unwrap();
    assert_eq!((report.done(), report.skipped()), (1, 1));
    assert_eq!(report.memory_hits, Some(1));
    assert_eq!(*second.asked.borrow(), [C1]);
    assert_eq!(translations(&fx.record("c")), [PAIRS[0].1, PAIRS[4].1]);

    // Another setting is another key: nothing is taken from the memory.
    let mut other = job.clone();
    other.run.max_new_tokens = 256;
    other.force = true;
    let (engine, third) = scripted();
    let report = run(&other, |_| Ok(engine)).unwrap();
    assert_eq!(report.memory_hits, Some(0));
    assert_eq!(third.asked.borrow().len(), 4);
}

#[test]
fn a_model_that_cannot_be_loaded_fails_every_pending_document() {
    let fx = Fixture::new(&[("a.txt", &text(&[A1])), ("b.txt", &text(&[B1]))]);
    let report = run(&fx.job(DEFAULT_FORMATS), |_| anyhow::bail!("no such model")).unwrap();
    assert_eq!((report.done(), report.failed()), (0, 2));
    assert!(report
        .outcomes
        .iter()
        .all(|(_, o)| matches!(o, Outcome::Failed { error } if error.contains("no such model"))));
    assert!(!fx.out.join("a.json").exists());
}

#[test]
fn a_segment_the_translator_fails_fails_its_document_only() {
    // The scripted translator knows no English for this sentence: an inference error.
    let fx = Fixture::new(&[
        ("a.txt", &text(&[A1, A2])),
        ("z.txt", &text(&["جملة لا يعرفها المترجم."])),
    ]);
    let (engine, _) = scripted();
    let report = run(&fx.job(DEFAULT_FORMATS), |_| Ok(engine)).unwrap();
    assert_eq!((report.done(), report.failed()), (1, 1));
    let (name, outcome) = &report.outcomes[1];
    assert!(name.ends_with("z.txt"), "{name}");
    assert!(
        matches!(outcome, Outcome::Failed { error } if error.contains("no scripted answer")),
        "{outcome:?}"
    );
    assert!(!fx.out.join("z.json").exists());
    assert!(Path::new(&fx.out.join("a.json")).is_file());
}

/// A subscriber that hears nothing, alive for good. tracing caches, per call site and
/// for the whole process, whether anyone listens; while only one subscriber is alive, a
/// call site first reached on another test's thread (which has none) is cached as heard
/// by no one, and `logged` would miss it. With two alive, the cache asks both.
static SILENT: OnceLock<tracing::Dispatch> = OnceLock::new();

/// What `f` logs at info level, from this thread and from the threads that take this
/// thread's subscriber (as the progress timer does).
fn logged<T>(f: impl FnOnce() -> T) -> (T, String) {
    SILENT.get_or_init(|| tracing::Dispatch::new(tracing::subscriber::NoSubscriber::default()));
    let buffer: Arc<Mutex<Vec<u8>>> = Arc::default();
    let writer = buffer.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || Captured(writer.clone()))
        .with_ansi(false)
        .with_target(false)
        .without_time()
        .finish();
    let out = tracing::subscriber::with_default(subscriber, f);
    let text = String::from_utf8_lossy(&buffer.lock().unwrap()).into_owned();
    (out, text)
}

struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// `(done, total)` of a line `progress: DONE/TOTAL segments (…), … words/s, ETA …`.
fn progress_of(line: &str) -> Option<(usize, usize)> {
    let (_, rest) = line.split_once("progress: ")?;
    let (counts, rest) = rest.split_once(" segments (")?;
    assert!(rest.contains("Arabic words/s, ETA "), "{line}");
    let (done, total) = counts.split_once('/')?;
    Some((done.parse().ok()?, total.parse().ok()?))
}

#[test]
fn a_run_without_a_terminal_logs_its_progress_and_each_finished_document() {
    let fx = Fixture::new(&[("a.txt", &text(&[A1, A2])), ("b.txt", &text(&[B1, B2, C1]))]);
    let mut job = fx.job(DEFAULT_FORMATS);
    job.progress_every = Duration::from_millis(20);
    // Five segments of 100 ms each: the run takes half a second, all in one batch.
    let (engine, _) = scripted_taking(Duration::from_millis(100));
    let (report, log) = logged(|| run(&job, |_| Ok(engine)).unwrap());
    assert_eq!(report.done(), 2);

    let progress: Vec<(usize, usize)> = log.lines().filter_map(progress_of).collect();
    assert!(progress.len() >= 3, "{log}");
    assert!(progress.iter().all(|&(_, total)| total == 5), "{log}");
    assert!(progress.windows(2).all(|w| w[0].0 <= w[1].0), "{log}");
    // A line while the batch was part-way, with an estimate of the time left.
    assert!(
        log.lines()
            .any(|l| matches!(progress_of(l), Some((1..=4, _))) && !l.ends_with("ETA unknown")),
        "{log}"
    );

    for (name, segments) in [("a.txt", 2), ("b.txt", 3)] {
        let done = format!("{name}: done ({segments} segments, ");
        let lines: Vec<&str> = log.lines().filter(|l| l.contains(&done)).collect();
        assert_eq!(lines.len(), 1, "{done} in\n{log}");
        assert!(lines[0].contains(" Arabic words, ") && lines[0].contains(" flagged, "));
    }
}

#[test]
fn progress_lines_name_the_work_running_after_the_segments() {
    let (_, log) = logged(|| {
        let progress = progress::Progress::new(false, 2, Duration::from_millis(10));
        progress.segment_done("جملة");
        progress.segment_done("جملة");
        progress.set_stage(Some("summarizing 2 documents".into()));
        std::thread::sleep(Duration::from_millis(60));
        progress.set_stage(None);
        std::thread::sleep(Duration::from_millis(60));
    });
    let lines: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("progress: 2/2"))
        .collect();
    let named = lines
        .iter()
        .position(|l| l.ends_with("; now summarizing 2 documents"));
    let cleared = lines.iter().rposition(|l| l.ends_with("ETA 0s"));
    assert!(
        matches!((named, cleared), (Some(a), Some(b)) if a < b),
        "{log}"
    );
}

#[test]
fn a_progress_line_gives_segments_done_words_per_second_and_the_time_left() {
    assert_eq!(
        progress::line(57, 126, 1000, Duration::from_secs(256)),
        "progress: 57/126 segments (45%), 3.9 Arabic words/s, ETA 5m 10s"
    );
    assert_eq!(
        progress::line(0, 10, 0, Duration::from_secs(5)),
        "progress: 0/10 segments (0%), 0.0 Arabic words/s, ETA unknown"
    );
    assert_eq!(
        progress::line(1, 100, 12, Duration::from_secs(100)),
        "progress: 1/100 segments (1%), 0.1 Arabic words/s, ETA 2h 45m"
    );
    assert!(progress::line(10, 10, 5, Duration::from_secs(2))
        .ends_with("(100%), 2.5 Arabic words/s, ETA 0s"));
}
