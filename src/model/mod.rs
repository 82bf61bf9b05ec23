//! Model backends. A translation backend implements [`crate::translate::Translator`];
//! a chat LLM implements [`ChatModel`], which the LLM translator and the summarizer share.

pub mod attention;
pub mod batch;
pub mod chat_template;
pub mod constraint;
pub mod embeddings;
pub mod exp;
pub mod gated;
pub mod gemma;
pub mod gguf_llm;
pub mod gguf_tokenizer;
pub mod kv_cache;
pub mod lanes;
pub mod llama;
pub mod logprob;
pub mod marian;
pub mod opus_mt;
pub mod qwen2;
pub mod qwen3;
pub mod random_gguf;
pub mod sentencepiece;
pub mod seq2seq;
pub mod transformer;
pub mod within;

use std::path::PathBuf;

pub use gguf_llm::GgufLlm;
pub use opus_mt::OpusMt;

#[derive(Debug, Clone, thiserror::Error)]
pub enum ModelError {
    #[error("{path}: not a usable GGUF model ({reason}); delete it and run `tarjama models fetch`, or pass another file to --model")]
    Corrupt { path: PathBuf, reason: String },
    #[error("{path}: GGUF architecture `{arch}` is not supported; tarjama runs {supported} (see `tarjama models list`)")]
    Unsupported {
        path: PathBuf,
        arch: String,
        supported: String,
    },
    #[error("{path}: cannot build a tokenizer from the GGUF metadata ({reason})")]
    Tokenizer { path: PathBuf, reason: String },
    #[error("{path}: not a usable OPUS-MT (Marian) model directory ({reason}); it needs config.json, model.safetensors or pytorch_model.bin, source.spm, target.spm and vocab.json as the Hugging Face hub serves them")]
    MarianDir { path: PathBuf, reason: String },
    #[error("model inference failed: {0}")]
    Inference(String),
    #[error("{0}")]
    Device(String),
}

impl From<candle_core::Error> for ModelError {
    fn from(e: candle_core::Error) -> Self {
        ModelError::Inference(e.to_string())
    }
}

/// Where the model runs: what `--device` chooses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum DeviceChoice {
    /// The GPU when this build has CUDA and one is present, else the CPU.
    #[default]
    Auto,
    Cpu,
    /// The first CUDA GPU; needs a build with `--features cuda`.
    Cuda,
}

impl DeviceChoice {
    pub fn resolve(self) -> Result<candle_core::Device, ModelError> {
        match self {
            DeviceChoice::Cpu => Ok(candle_core::Device::Cpu),
            DeviceChoice::Auto if candle_core::utils::cuda_is_available() => {
                if missing_cuda_library().is_some() {
                    return Ok(candle_core::Device::Cpu);
                }
                candle_core::Device::new_cuda(0).or(Ok(candle_core::Device::Cpu))
            }
            DeviceChoice::Auto => Ok(candle_core::Device::Cpu),
            DeviceChoice::Cuda if !candle_core::utils::cuda_is_available() => {
                Err(ModelError::Device(
                    "--device cuda: this tarjama was built without CUDA; rebuild it with \
                     `cargo build --release --features cuda` on a machine with the CUDA toolkit, \
                     or use --device cpu"
                        .into(),
                ))
            }
            DeviceChoice::Cuda => {
                if let Some(library) = missing_cuda_library() {
                    return Err(ModelError::Device(format!(
                        "--device cuda: {library} was not found on the library path; install the \
                         NVIDIA driver and the CUDA 13 libraries (scripts/build-cuda.sh says which), \
                         or use --device cpu"
                    )));
                }
                Self::open_gpu()
            }
        }
    }

    fn open_gpu() -> Result<candle_core::Device, ModelError> {
        candle_core::Device::new_cuda(0).map_err(|e| {
                ModelError::Device(format!(
                "--device cuda: no usable GPU ({e}); check the driver with nvidia-smi, or use --device cpu"
            ))
        })
    }
}

/// The first CUDA library a CUDA build loads at run time that this machine lacks. A
/// CUDA build loads the driver and libraries only when a GPU is asked for (so it starts
/// anywhere), and cudarc aborts on a missing one: check them all first.
#[cfg(feature = "cuda")]
fn missing_cuda_library() -> Option<&'static str> {
    use candle_core::cuda_backend::cudarc;
    // SAFETY: each check only tries to open the library by name.
    let present: [(&str, unsafe fn() -> bool); 5] = [
        (
            "the NVIDIA driver (libcuda.so.1)",
            cudarc::driver::sys::is_culib_present,
        ),
        (
            "cuBLAS (libcublas.so.13)",
            cudarc::cublas::sys::is_culib_present,
        ),
        (
            "cuBLASLt (libcublasLt.so.13)",
            cudarc::cublaslt::sys::is_culib_present,
        ),
        (
            "cuRAND (libcurand.so.10)",
            cudarc::curand::sys::is_culib_present,
        ),
        (
            "NVRTC (libnvrtc.so.13)",
            cudarc::nvrtc::sys::is_culib_present,
        ),
    ];
    present
        .into_iter()
        .find(|(_, check)| !unsafe { check() })
        .map(|(name, _)| name)
}

#[cfg(not(feature = "cuda"))]
fn missing_cuda_library() -> Option<&'static str> {
    None
}

/// One chat request: a system prompt, optional example exchanges, notes, then the user
/// turn.
#[derive(Debug, Clone, Default)]
pub struct ChatPrompt {
    pub system: String,
    /// Exchanges shown to the model before the real request, the same for every request
    /// of a kind (their keys and values are computed once).
    pub examples: Vec<Example>,
    /// Exchanges for this request only (a close match from the translation memory, the
    /// segment before it), shown after the shared ones.
    pub nearby: Vec<Example>,
    /// Instructions for this request only, given as a system turn right before it. Kept
    /// apart from `system` so prompts that differ only here share their whole beginning.
    pub notes: String,
    pub user: String,
}

/// A worked example: notes (as a system turn, like a request's), a user turn and the
/// answer the model should give.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Example {
    pub notes: String,
    pub user: String,
    pub assistant: String,
}

/// How to decode one answer.
#[derive(Debug, Clone, PartialEq)]
pub struct Decoding {
    pub max_new_tokens: usize,
    /// 1.0 = no penalty; above 1.0 discourages tokens already generated.
    pub repeat_penalty: f32,
    /// `None` decodes greedily; `Some(t)` samples (nucleus 0.9) at temperature `t`.
    pub temperature: Option<f64>,
    /// Seeds the sampler: the same request and seed give the same sample, whatever it is
    /// batched with and whatever was sampled before it.
    pub seed: u64,
    /// Phrases the answer must contain: each is forced in, whole, where the model gives
    /// its first word a fair chance (see [`constraint`]).
    pub required: Vec<String>,
}

impl Decoding {
    pub fn greedy(max_new_tokens: usize) -> Self {
        Self {
            max_new_tokens,
            repeat_penalty: 1.0,
            temperature: None,
            seed: 0,
            required: Vec::new(),
        }
    }
}

/// What one generation produced.
#[derive(Debug, Clone)]
pub struct Generation {
    pub text: String,
    pub prompt_tokens: usize,
    pub generated_tokens: usize,
    /// True when generation stopped at the token cap rather than at end-of-turn.
    pub hit_cap: bool,
    /// The generated tokens, end of turn excluded.
    pub tokens: Vec<u32>,
    /// The model's natural-log probability of each generated token (forced ones
    /// included), before any repeat penalty or sampling temperature; empty where the
    /// backend does not report them.
    pub token_logprobs: Vec<f32>,
}

/// Work done by a model and the time it took, for benchmarks.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Throughput {
    /// Prompt tokens computed (a cached prefix counts once, when it is computed).
    pub prompt_tokens: usize,
    pub prompt_seconds: f64,
    pub generated_tokens: usize,
    pub decode_seconds: f64,
}

/// Called with a request's index and result as soon as it is decoded.
pub type OnDone<'a, T> = &'a mut dyn FnMut(usize, &Result<T, ModelError>);

/// A local instruct LLM that answers chat prompts.
pub trait ChatModel {
    fn count_tokens(&self, text: &str) -> Result<usize, ModelError>;
    /// Tokens the model can attend to in one prompt plus answer.
    fn context_length(&self) -> usize;
    fn generate(
        &mut self,
        prompt: &ChatPrompt,
        decoding: Decoding,
    ) -> Result<Generation, ModelError>;
    /// Answers several requests, in whatever order and grouping the model runs best;
    /// results come back in request order. Each answer is the one [`ChatModel::generate`]
    /// would give.
    fn generate_batch(
        &mut self,
        jobs: &[(ChatPrompt, Decoding)],
        on_done: OnDone<Generation>,
    ) -> Vec<Result<Generation, ModelError>> {
        jobs.iter()
            .enumerate()
            .map(|(i, (prompt, decoding))| {
                let result = self.generate(prompt, decoding.clone());
                on_done(i, &result);
                result
            })
            .collect()
    }
    /// The natural-log probability of each token of each given answer under its prompt
    /// (teacher forcing), the end of the turn included as the last token. Models that
    /// cannot say return an error.
    fn score_batch(&mut self, jobs: &[(ChatPrompt, String)]) -> Vec<Result<Vec<f32>, ModelError>> {
        jobs.iter()
            .map(|_| {
                Err(ModelError::Inference(
                    "this model does not score given answers".into(),
                ))
            })
            .collect()
    }
    /// Work done so far and its time, for benchmarks.
    fn throughput(&self) -> Throughput {
        Throughput::default()
    }
    /// Requests decoded together.
    fn batch_size(&self) -> usize {
        1
    }
}
