//! What happened to each document of a run, and the line printed at its end.

use std::time::Duration;

/// What happened to one document.
#[derive(Debug, Clone)]
pub enum Outcome {
    Translated {
        arabic_words: usize,
        seconds: f64,
        /// Sentences whose translation failed a check even after a retry.
        flagged: usize,
    },
    /// Outputs were up to date.
    Skipped,
    Failed {
        error: String,
    },
}

/// Seconds the run spent in the model's two stages, summed over its groups: translating
/// segments (checks, retries and repairs included) and summarizing documents.
#[derive(Debug, Default, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct StageSeconds {
    #[serde(rename = "translate_s")]
    pub translate: f64,
    #[serde(rename = "summarize_s")]
    pub summarize: f64,
}

/// The end-of-run report.
#[derive(Debug, Default)]
pub struct Report {
    pub outcomes: Vec<(String, Outcome)>,
    pub warnings: Vec<String>,
    pub model_load_seconds: Option<f64>,
    /// Segments found in the translation memory (`None` without one).
    pub memory_hits: Option<usize>,
    /// Segments shown a close memory match as an example (`None` unless asked for).
    pub memory_examples: Option<usize>,
    pub stages: StageSeconds,
    pub wall: Duration,
}

impl Report {
    fn count(&self, f: impl Fn(&Outcome) -> bool) -> usize {
        self.outcomes.iter().filter(|(_, o)| f(o)).count()
    }
    pub fn done(&self) -> usize {
        self.count(|o| matches!(o, Outcome::Translated { .. }))
    }
    pub fn skipped(&self) -> usize {
        self.count(|o| matches!(o, Outcome::Skipped))
    }
    pub fn failed(&self) -> usize {
        self.count(|o| matches!(o, Outcome::Failed { .. }))
    }
    pub fn flagged(&self) -> usize {
        self.outcomes
            .iter()
            .map(|(_, o)| match o {
                Outcome::Translated { flagged, .. } => *flagged,
                _ => 0,
            })
            .sum()
    }
    pub fn arabic_words(&self) -> usize {
        self.outcomes
            .iter()
            .map(|(_, o)| match o {
                Outcome::Translated { arabic_words, .. } => *arabic_words,
                _ => 0,
            })
            .sum()
    }

    /// The lines printed at the end of a run.
    pub fn render(&self) -> String {
        let secs = self.wall.as_secs_f64();
        let words = self.arabic_words();
        let mut out = format!(
            "tarjama: {} translated, {} skipped (up to date), {} failed; {} Arabic words in {:.1} s ({:.2} words/s)",
            self.done(),
            self.skipped(),
            self.failed(),
            words,
            secs,
            if secs > 0.0 { words as f64 / secs } else { 0.0 }
        );
        if let Some(load) = self.model_load_seconds {
            out.push_str(&format!("; model loaded in {load:.1} s"));
        }
        if let Some(hits) = self.memory_hits {
            out.push_str(&format!("; {hits} segment(s) from the translation memory"));
        }
        if let Some(shown) = self.memory_examples {
            out.push_str(&format!("; {shown} shown a close memory match"));
        }
        if self.flagged() > 0 {
            out.push_str(&format!(
                "\n  {} sentence(s) flagged for review:",
                self.flagged()
            ));
            for (name, outcome) in &self.outcomes {
                if let Outcome::Translated { flagged, .. } = outcome {
                    if *flagged > 0 {
                        out.push_str(&format!("\n    {name}: {flagged}"));
                    }
                }
            }
        }
        // Every error already names its file.
        for (_, outcome) in &self.outcomes {
            if let Outcome::Failed { error } = outcome {
                out.push_str(&format!("\n  failed: {error}"));
            }
        }
        out
    }
}
