//! Settings, resolved once.
//!
//! `main.rs` turns its flags into [`Choices`], plain values as the user gave them;
//! [`RunSettings::resolve`] turns those into what a run needs (the glossary read, the
//! lexicon loaded, the strategy decided, the model identified) once, for `translate`,
//! `eval` and `bench` alike. [`RunSettings::fingerprint`] is the one record of the
//! settings that change a translation: the up-to-date check compares it, every output's
//! JSON record carries it, and the translation memory files its entries under a key made
//! from it ([`memory_key`]).

use std::path::PathBuf;
use std::sync::Arc;

use crate::document::Settings;
use crate::glossary::Glossary;
use crate::lexicon::Lexicon;
use crate::memory;
use crate::model::DeviceChoice;
use crate::registry::{self, FetchPolicy, ModelFile};
use crate::translate::{PromptStyle, Quality, Strategy, PROMPT_VERSION};

/// Which glossary the user chose.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GlossaryChoice {
    /// The built-in GCC / Central Asia glossary.
    BuiltIn,
    /// A TSV file of the user's own.
    File(PathBuf),
    /// No glossary at all.
    Off,
}

/// The model and translation flags as given, before anything is read or loaded.
#[derive(Debug, Clone)]
pub struct Choices {
    /// `--model`: a known name, a `.gguf` path, an OPUS-MT directory or `hf:…`.
    pub model: String,
    /// The chat LLM that writes summaries when `model` is a translation model; `None`
    /// when no summaries are written (`--no-summary`, `eval`, `bench`).
    pub summary_model: Option<String>,
    pub offline: bool,
    pub device: DeviceChoice,
    pub batch_size: usize,
    pub max_new_tokens: usize,
    pub max_segment_tokens: usize,
    pub prompt_style: PromptStyle,
    pub quality: Quality,
    /// Retry segments that fail a check.
    pub retry: bool,
    /// Candidates per segment, overriding `quality`.
    pub candidates: Option<usize>,
    /// Samples drawn for a doubtful segment, overriding the default.
    pub rerank: Option<usize>,
    /// Show the model the previous segment.
    pub context: bool,
    pub glossary: GlossaryChoice,
    /// Load the Arabic lexicon (hints and checks).
    pub lexicon: bool,
    pub hints: usize,
    /// The translation memory's file; `None` with `--no-memory`.
    pub memory: Option<PathBuf>,
    /// Least similarity (percent) of a memory match shown to the model as an example.
    pub memory_examples: Option<u32>,
}

/// Where and how wide the model runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hardware {
    pub device: DeviceChoice,
    /// Requests the model decodes together (1: one at a time).
    pub batch_size: usize,
}

/// The model `--model` names, identified before anything is loaded, so that unchanged
/// documents are recognized whatever the model.
#[derive(Debug, Clone)]
pub struct ModelChoice {
    /// As the user gave it.
    pub spec: String,
    /// The weights, when they are on disk already (found without the network).
    pub file: Option<ModelFile>,
    /// The sha256 the outputs' records carry: the manifest's for a built-in model (not
    /// fetched just to compare), else that of the local file, OPUS-MT directory or cached
    /// `hf:` model (see [`registry::resolve`]). `None` when it cannot be known without
    /// the network: then every document is translated.
    pub sha256: Option<String>,
}

impl ModelChoice {
    /// Identifies `spec` without fetching anything; files are hashed once, then
    /// remembered by path, size and mtime.
    pub fn identify(spec: &str) -> Self {
        let file = registry::resolve(spec, FetchPolicy::Forbid).ok();
        let sha256 = match registry::manifest(spec) {
            Some(m) => Some(m.sha256),
            None => file.as_ref().map(|f| f.sha256.clone()),
        };
        Self {
            spec: spec.to_string(),
            file,
            sha256,
        }
    }
}

/// Everything a run of `translate`, `eval` or `bench` needs to know about how to
/// translate, resolved once from [`Choices`].
#[derive(Debug, Clone)]
pub struct RunSettings {
    pub model: ModelChoice,
    /// See [`Choices::summary_model`].
    pub summary_model: Option<String>,
    pub fetch: FetchPolicy,
    pub hardware: Hardware,
    pub max_new_tokens: usize,
    pub max_segment_tokens: usize,
    pub prompt_style: PromptStyle,
    pub strategy: Strategy,
    /// Terms whose renderings are imposed and checked; empty to disable.
    pub glossary: Glossary,
    /// The Arabic lexicon for hints and checks; `None` with `--no-lexicon`.
    pub lexicon: Option<Arc<Lexicon>>,
    /// Rare words of each segment whose glosses the model is given.
    pub hints: usize,
    /// The translation memory's file; `None` with `--no-memory`.
    pub memory: Option<PathBuf>,
    /// Show each segment's closest translation memory match at or above this similarity
    /// (percent) to the model as a worked example; `None` to show none.
    pub memory_examples: Option<u32>,
}

impl RunSettings {
    /// Reads the glossary, loads the lexicon (fetching it if allowed) and identifies the
    /// model. Errors for a glossary or lexicon that cannot be had; a model that cannot be
    /// identified is not an error here (loading it reports why).
    pub fn resolve(choices: Choices) -> anyhow::Result<Self> {
        let fetch = if choices.offline {
            FetchPolicy::Forbid
        } else {
            FetchPolicy::Allow
        };
        let glossary = match &choices.glossary {
            GlossaryChoice::Off => Glossary::default(),
            GlossaryChoice::File(path) => Glossary::from_file(path)?,
            GlossaryChoice::BuiltIn => Glossary::default_glossary(),
        };
        let lexicon = match choices.lexicon {
            true => Some(Arc::new(Lexicon::load(fetch)?)),
            false => None,
        };
        let mut strategy = Strategy::for_quality(choices.quality);
        strategy.retry = choices.retry;
        strategy.context = choices.context;
        if let Some(n) = choices.candidates {
            strategy.candidates = n;
        }
        if let Some(n) = choices.rerank {
            strategy.rerank = n;
        }
        Ok(Self {
            model: ModelChoice::identify(&choices.model),
            summary_model: choices.summary_model,
            fetch,
            hardware: Hardware {
                device: choices.device,
                batch_size: choices.batch_size,
            },
            max_new_tokens: choices.max_new_tokens,
            max_segment_tokens: choices.max_segment_tokens,
            prompt_style: choices.prompt_style,
            strategy,
            glossary,
            lexicon,
            hints: choices.hints,
            memory: choices.memory,
            memory_examples: choices.memory_examples,
        })
    }

    /// Whether documents get a summary.
    pub fn summary(&self) -> bool {
        self.summary_model.is_some()
    }

    /// The lexicon and how many rare words per request it glosses, for the translator.
    pub fn hints(&self) -> Option<(Arc<Lexicon>, usize)> {
        self.lexicon.clone().map(|l| (l, self.hints))
    }

    /// The settings that change what is written, as every output's record carries them:
    /// a document whose record holds other settings (or another model) is redone.
    pub fn fingerprint(&self) -> Settings {
        Settings {
            max_new_tokens: self.max_new_tokens,
            max_segment_tokens: self.max_segment_tokens,
            summary: self.summary(),
            prompt_version: PROMPT_VERSION,
            glossary_sha256: (!self.glossary.is_empty()).then(|| self.glossary.fingerprint()),
            prompt_style: self.prompt_style.name().to_string(),
            retry: self.strategy.retry,
            candidates: self.strategy.candidates,
            rerank: self.strategy.rerank,
            context: self.strategy.context,
            lexicon: self.lexicon.is_some(),
            hints: self.lexicon.as_ref().map_or(0, |_| self.hints),
            memory_examples: self.memory_examples.filter(|_| self.memory.is_some()),
        }
    }
}

/// What the translation memory files a run's translations under: the model and the
/// [`RunSettings::fingerprint`] fields that change a segment's translation (not those,
/// like the summary, that change only the document).
pub fn memory_key(settings: &Settings, model_sha256: &str) -> String {
    memory::fingerprint(&[
        ("model", model_sha256.to_string()),
        ("prompt_version", settings.prompt_version.to_string()),
        ("prompt_style", settings.prompt_style.clone()),
        ("max_new_tokens", settings.max_new_tokens.to_string()),
        ("retry", settings.retry.to_string()),
        ("candidates", settings.candidates.to_string()),
        ("rerank", settings.rerank.to_string()),
        (
            "glossary",
            settings.glossary_sha256.clone().unwrap_or_default(),
        ),
        ("lexicon", settings.lexicon.to_string()),
        ("hints", settings.hints.to_string()),
        (
            "memory_examples",
            settings
                .memory_examples
                .map(|p| p.to_string())
                .unwrap_or_default(),
        ),
    ])
}

#[cfg(test)]
pub(crate) mod testing {
    //! Settings for unit tests: no lexicon, the built-in glossary, no memory.
    use super::*;

    pub(crate) fn choices(model: &str) -> Choices {
        Choices {
            model: model.to_string(),
            summary_model: Some(registry::DEFAULT_MODEL.to_string()),
            offline: true,
            device: DeviceChoice::Cpu,
            batch_size: 8,
            max_new_tokens: 512,
            max_segment_tokens: 160,
            prompt_style: PromptStyle::FewShot,
            quality: Quality::Fast,
            retry: true,
            candidates: None,
            rerank: None,
            context: false,
            glossary: GlossaryChoice::BuiltIn,
            lexicon: false,
            hints: 8,
            memory: None,
            memory_examples: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The record of the default flags: the fingerprint must serialize to exactly these
    /// bytes, or every existing output would be redone. (Prompt version 8 and `rerank`
    /// came with confidence and repair, which redo every output on purpose.)
    const RECORDED: &str = r#"{"max_new_tokens":512,"max_segment_tokens":160,"summary":true,"prompt_version":8,"glossary_sha256":null,"prompt_style":"few-shot","retry":true,"candidates":1,"rerank":1,"context":false,"lexicon":false,"hints":0}"#;

    #[test]
    fn the_fingerprint_keeps_its_recorded_form() {
        let mut choices = testing::choices("no-such-model");
        choices.glossary = GlossaryChoice::Off;
        let settings = RunSettings::resolve(choices).unwrap();
        let json = serde_json::to_string(&settings.fingerprint()).unwrap();
        assert_eq!(json, RECORDED);
        // Memory examples count only with a memory to take them from.
        let mut choices = testing::choices("no-such-model");
        choices.memory_examples = Some(50);
        let without = RunSettings::resolve(choices.clone()).unwrap().fingerprint();
        assert_eq!(without.memory_examples, None);
        choices.memory = Some(PathBuf::from("m.sqlite"));
        let with = RunSettings::resolve(choices).unwrap().fingerprint();
        assert_eq!(with.memory_examples, Some(50));
    }

    #[test]
    fn the_memory_key_follows_the_settings_that_change_a_segment() {
        let settings = RunSettings::resolve(testing::choices("x")).unwrap();
        let base = settings.fingerprint();
        let key = memory_key(&base, "abc");
        assert_eq!(key, memory_key(&base.clone(), "abc"));
        assert_ne!(key, memory_key(&base, "abd"));
        let longer = Settings {
            max_new_tokens: 256,
            ..base.clone()
        };
        assert_ne!(key, memory_key(&longer, "abc"));
        // The summary changes documents, not segments.
        let no_summary = Settings {
            summary: false,
            ..base
        };
        assert_eq!(key, memory_key(&no_summary, "abc"));
    }

    #[test]
    fn strategy_and_summaries_follow_the_choices() {
        let mut choices = testing::choices("x");
        choices.quality = Quality::Best;
        choices.retry = false;
        choices.summary_model = None;
        let settings = RunSettings::resolve(choices.clone()).unwrap();
        assert_eq!(settings.strategy.candidates, 4);
        assert!(!settings.strategy.retry);
        assert!(!settings.summary());
        choices.candidates = Some(2);
        assert_eq!(
            RunSettings::resolve(choices).unwrap().strategy.candidates,
            2
        );
    }
}
