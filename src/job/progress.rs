//! How a run shows how far it got: a progress bar on a terminal; without one, a log line
//! every so often, so a nightly log shows that a run is alive and how far it is.
//!
//! Segments settle in batches, and one batch can take minutes, so the lines come from a
//! timer thread reading shared counters, not from the work itself.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::load::count_arabic_words;

/// How often a run without a progress bar logs its progress.
pub const LOG_EVERY: Duration = Duration::from_secs(30);

/// The progress of a run's segments, shown as a bar or as periodic log lines.
pub(super) struct Progress {
    bar: ProgressBar,
    counts: Arc<Counts>,
    ticker: Option<Ticker>,
}

/// What is done so far; the timer thread reads it while the run adds to it.
struct Counts {
    total: usize,
    segments: AtomicUsize,
    arabic_words: AtomicUsize,
    started: Instant,
    /// Work after the segments that the lines name (summaries), while it runs.
    stage: Mutex<Option<String>>,
}

/// The timer thread; it stops when its sender is dropped.
struct Ticker {
    stop: mpsc::Sender<()>,
    thread: JoinHandle<()>,
}

impl Progress {
    /// Progress over `total` segments: a bar when `bar`, else a log line every `every`.
    pub(super) fn new(bar: bool, total: usize, every: Duration) -> Progress {
        let counts = Arc::new(Counts {
            total,
            segments: AtomicUsize::new(0),
            arabic_words: AtomicUsize::new(0),
            started: Instant::now(),
            stage: Mutex::new(None),
        });
        if bar {
            return Progress {
                bar: progress_bar(total as u64),
                counts,
                ticker: None,
            };
        }
        Progress {
            bar: ProgressBar::hidden(),
            ticker: Ticker::start(counts.clone(), every),
            counts,
        }
    }

    /// One segment settled (translated, failed, or taken from the memory).
    pub(super) fn segment_done(&self, source: &str) {
        self.bar.inc(1);
        self.counts.segments.fetch_add(1, Ordering::Relaxed);
        self.counts
            .arabic_words
            .fetch_add(count_arabic_words(source), Ordering::Relaxed);
    }

    /// Names the work running past the segments (`summarizing 5 documents`) in the bar
    /// and the log lines, until `None`: a run whose segments are all done is not stuck.
    pub(super) fn set_stage(&self, stage: Option<String>) {
        if let Some(stage) = &stage {
            self.bar.set_message(stage.clone());
        }
        *self
            .counts
            .stage
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = stage;
    }

    /// What the bar says it is working on.
    pub(super) fn set_message(&self, message: String) {
        self.bar.set_message(message);
    }

    /// Runs `f`, which logs, with the bar out of the way.
    pub(super) fn suspend<R>(&self, f: impl FnOnce() -> R) -> R {
        self.bar.suspend(f)
    }

    /// A line for the record: above the bar, or logged when there is none.
    pub(super) fn note(&self, line: String) {
        if self.bar.is_hidden() {
            tracing::info!("{line}");
        } else {
            self.bar.println(line);
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.bar.finish_and_clear();
        if let Some(Ticker { stop, thread }) = self.ticker.take() {
            drop(stop);
            // A panicked timer thread only loses log lines.
            let _ = thread.join();
        }
    }
}

impl Ticker {
    /// Logs the progress every `every` until stopped; `None` (with a warning) if no
    /// thread can be started, since the run does not need one.
    fn start(counts: Arc<Counts>, every: Duration) -> Option<Ticker> {
        let (stop, stopped) = mpsc::channel::<()>();
        // The subscriber may be this thread's own (a test's), which a new thread would
        // not see.
        let dispatch = tracing::dispatcher::get_default(Clone::clone);
        let tick = move || {
            tracing::dispatcher::with_default(&dispatch, || {
                while let Err(RecvTimeoutError::Timeout) = stopped.recv_timeout(every) {
                    tracing::info!("{}", counts.line());
                }
            })
        };
        match std::thread::Builder::new()
            .name("progress".into())
            .spawn(tick)
        {
            Ok(thread) => Some(Ticker { stop, thread }),
            Err(e) => {
                tracing::warn!("no progress lines: cannot start their thread: {e}");
                None
            }
        }
    }
}

impl Counts {
    fn line(&self) -> String {
        let line = line(
            self.segments.load(Ordering::Relaxed),
            self.total,
            self.arabic_words.load(Ordering::Relaxed),
            self.started.elapsed(),
        );
        match self
            .stage
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .as_deref()
        {
            Some(stage) => format!("{line}; now {stage}"),
            None => line,
        }
    }
}

/// `progress: 57/126 segments (45%), 3.9 Arabic words/s, ETA 6m 12s`; the ETA assumes
/// the segments still to do go as fast as those done.
pub(super) fn line(done: usize, total: usize, arabic_words: usize, elapsed: Duration) -> String {
    let percent = (done * 100).checked_div(total).unwrap_or(100);
    let secs = elapsed.as_secs_f64();
    let words_per_sec = if secs > 0.0 {
        arabic_words as f64 / secs
    } else {
        0.0
    };
    let eta = if done == 0 {
        "unknown".to_string()
    } else {
        let left = secs * total.saturating_sub(done) as f64 / done as f64;
        clock(left.round() as u64)
    };
    format!(
        "progress: {done}/{total} segments ({percent}%), {words_per_sec:.1} Arabic words/s, ETA {eta}"
    )
}

/// `45s`, `6m 12s`, `2h 05m`.
fn clock(secs: u64) -> String {
    let (h, m, s) = (secs / 3600, secs / 60 % 60, secs % 60);
    match (h, m) {
        (0, 0) => format!("{s}s"),
        (0, _) => format!("{m}m {s:02}s"),
        _ => format!("{h}h {m:02}m"),
    }
}

fn progress_bar(total: u64) -> ProgressBar {
    let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
    bar.set_style(
        ProgressStyle::with_template(
            "{spinner} [{elapsed_precise}] {wide_bar} {pos}/{len} segments, ETA {eta}\n  {msg}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar.enable_steady_tick(Duration::from_millis(200));
    bar
}
