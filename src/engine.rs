//! The loaded model: the one place where weights are found (fetched if allowed) and
//! loaded, for `translate`, `eval` and `bench`.
//!
//! An [`Engine`] is the translator, with the chat LLM that writes summaries behind it
//! ([`Engine::summarizer`]), and the record of which model it is. The job is handed one
//! and never loads a model itself.

use std::time::Instant;

use crate::document::ModelRecord;
use crate::model::{ChatModel, GgufLlm, OpusMt};
use crate::registry::{self, ModelFile, ModelKind};
use crate::settings::RunSettings;
use crate::translate::{LlmTranslator, MtTranslator, Translator};

/// A loaded model, ready to translate and summarize.
pub struct Engine {
    /// Which model this is, as every output's record names it.
    pub model: ModelRecord,
    pub translator: Box<dyn Translator>,
    /// Seconds spent loading it (`None` for one not loaded from disk).
    pub load_seconds: Option<f64>,
}

impl Engine {
    /// An engine around a translator that is already there (a test double, or a model
    /// loaded some other way).
    pub fn new(model: ModelRecord, translator: Box<dyn Translator>) -> Self {
        Self {
            model,
            translator,
            load_seconds: None,
        }
    }

    /// The chat LLM that writes summaries: the translator itself for an LLM, the
    /// `--summary-model` for a translation model, none without one.
    pub fn summarizer(&mut self) -> Option<&mut dyn ChatModel> {
        self.translator.chat_model()
    }
}

/// Loads the model `settings` name (fetching it if allowed): a chat LLM, which also
/// writes summaries, or an OPUS-MT model with `settings.summary_model`, a GGUF LLM,
/// for summaries.
pub fn load(settings: &RunSettings) -> anyhow::Result<Engine> {
    let started = Instant::now();
    let file = model_file(settings)?;
    let device = settings.hardware.device.resolve()?;
    let batch_size = settings.hardware.batch_size;
    let translator: Box<dyn Translator> = match file.kind {
        ModelKind::Gguf => {
            let llm = GgufLlm::load(&file.path, &device)?.with_batch_size(batch_size);
            let mut translator =
                LlmTranslator::new(llm, settings.max_new_tokens, settings.prompt_style);
            if let Some((lexicon, count)) = settings.hints() {
                translator = translator.with_hints(lexicon, count);
            }
            Box::new(translator)
        }
        ModelKind::Marian => {
            let mt = OpusMt::load(&file.path, &device)?.with_batch_size(batch_size);
            let summarizer = match &settings.summary_model {
                Some(spec) => Some(load_summarizer(settings, spec, &device)?),
                None => None,
            };
            Box::new(MtTranslator::new(mt, summarizer))
        }
    };
    let seconds = started.elapsed().as_secs_f64();
    tracing::info!(
        "model {} loaded in {seconds:.1} s (batch size {batch_size})",
        file.name
    );
    Ok(Engine {
        model: ModelRecord {
            name: file.name,
            file_sha256: file.sha256,
        },
        translator,
        load_seconds: Some(seconds),
    })
}

/// Loads the model `settings` name as a GGUF chat LLM translator, for work that needs
/// its prompts (`bench --export-requests`).
pub fn load_llm(settings: &RunSettings) -> anyhow::Result<(ModelFile, LlmTranslator<GgufLlm>)> {
    let file = model_file(settings)?;
    if file.kind != ModelKind::Gguf {
        anyhow::bail!(
            "{}: this needs a chat LLM (.gguf), not a translation model",
            settings.model.spec
        );
    }
    let device = settings.hardware.device.resolve()?;
    let llm = GgufLlm::load(&file.path, &device)?.with_batch_size(settings.hardware.batch_size);
    let mut translator = LlmTranslator::new(llm, settings.max_new_tokens, settings.prompt_style);
    if let Some((lexicon, count)) = settings.hints() {
        translator = translator.with_hints(lexicon, count);
    }
    Ok((file, translator))
}

/// The weights: those identified when the settings were resolved, else found now
/// (fetched if allowed).
fn model_file(settings: &RunSettings) -> anyhow::Result<ModelFile> {
    Ok(match &settings.model.file {
        Some(file) => file.clone(),
        None => registry::resolve(&settings.model.spec, settings.fetch)?,
    })
}

fn load_summarizer(
    settings: &RunSettings,
    spec: &str,
    device: &candle_core::Device,
) -> anyhow::Result<GgufLlm> {
    let file = registry::resolve(spec, settings.fetch)?;
    if file.kind != ModelKind::Gguf {
        anyhow::bail!(
            "--summary-model {spec}: summaries need a chat LLM (.gguf), not a translation model"
        );
    }
    Ok(GgufLlm::load(&file.path, device)?.with_batch_size(settings.hardware.batch_size))
}
