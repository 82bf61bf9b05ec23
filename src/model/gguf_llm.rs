//! A Qwen2 / Qwen2.5 / Qwen3 instruct model from a GGUF file, run with candle's quantized
//! kernels. The tokenizer is built from the GGUF's own metadata, so no tokenizer.json is
//! needed. Prompts use the ChatML template these models were trained on.
//!
//! Qwen2 models run on tarjama's own decoder ([`super::qwen2`]), whose key/value cache
//! survives between requests: a new prompt only computes the tokens after the part it
//! shares with the last one (the system prompt and worked examples), as llama.cpp's prompt
//! cache does. Qwen3 runs on candle's model and recomputes every prompt.

use std::fs::File;
use std::io::{BufReader, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use candle_core::quantized::gguf_file;
use candle_core::quantized::tokenizer::TokenizerFromGguf;
use candle_core::{Device, Tensor};
use candle_transformers::generation::{LogitsProcessor, Sampling};
use candle_transformers::models::quantized_qwen3;
use tokenizers::Tokenizer;

use super::qwen2::{self, KvCache, Qwen2};
use super::{ChatModel, ChatPrompt, Decoding, Generation, ModelError};

/// Special tokens of the ChatML template; document text must never be able to produce them.
const SPECIAL_MARKERS: &[&str] = &["<|im_start|>", "<|im_end|>", "<|endoftext|>"];

enum Weights {
    Qwen2 {
        model: Qwen2,
        cache: KvCache,
        /// The tokens whose keys and values are in `cache`, in order.
        fed: Vec<u32>,
    },
    Qwen3(quantized_qwen3::ModelWeights),
}

impl Weights {
    /// Feeds a whole prompt and returns the logits of its last token, reusing the cached
    /// part it shares with what was fed before.
    fn prefill(&mut self, ids: &[u32], device: &Device) -> candle_core::Result<Tensor> {
        match self {
            Weights::Qwen2 { model, cache, fed } => {
                // At least one token is always fed, to get fresh logits.
                let shared = common_prefix(fed, ids).min(ids.len().saturating_sub(1));
                cache.truncate(shared)?;
                fed.truncate(shared);
                let input = Tensor::new(&ids[shared..], device)?.unsqueeze(0)?;
                let logits = forget_on_error(model.forward(&input, cache), cache, fed)?;
                fed.extend_from_slice(&ids[shared..]);
                logits.squeeze(0)
            }
            Weights::Qwen3(m) => {
                m.clear_kv_cache();
                m.forward(&Tensor::new(ids, device)?.unsqueeze(0)?, 0)?
                    .squeeze(0)
            }
        }
    }

    /// Feeds one more token at position `pos` and returns its logits.
    fn step(&mut self, token: u32, pos: usize, device: &Device) -> candle_core::Result<Tensor> {
        let input = Tensor::new(&[token], device)?.unsqueeze(0)?;
        match self {
            Weights::Qwen2 { model, cache, fed } => {
                let logits = forget_on_error(model.forward(&input, cache), cache, fed)?;
                fed.push(token);
                logits.squeeze(0)
            }
            Weights::Qwen3(m) => m.forward(&input, pos)?.squeeze(0),
        }
    }
}

/// A forward pass that fails part-way may have extended some layers' caches and not
/// others: start the next request from nothing rather than from that.
fn forget_on_error(
    result: candle_core::Result<Tensor>,
    cache: &mut KvCache,
    fed: &mut Vec<u32>,
) -> candle_core::Result<Tensor> {
    if result.is_err() {
        *cache = KvCache::empty_like(cache);
        fed.clear();
    }
    result
}

fn common_prefix(a: &[u32], b: &[u32]) -> usize {
    a.iter().zip(b).take_while(|(x, y)| x == y).count()
}

pub struct GgufLlm {
    weights: Weights,
    tokenizer: Tokenizer,
    stop_ids: Vec<u32>,
    context_length: usize,
    /// Qwen3 thinks aloud unless told not to; an empty think block turns that off.
    empty_think_block: bool,
    device: Device,
    /// Advanced after every sampled generation, so repeated samples differ yet a run is
    /// reproducible.
    sampling_seed: u64,
}

fn corrupt(path: &Path, reason: impl ToString) -> ModelError {
    ModelError::Corrupt {
        path: path.to_path_buf(),
        reason: reason.to_string(),
    }
}

/// Reads only the GGUF header and metadata: enough for the tokenizer and architecture.
fn read_header(path: &Path) -> Result<(gguf_file::Content, BufReader<File>), ModelError> {
    let file = File::open(path).map_err(|e| corrupt(path, e))?;
    let mut reader = BufReader::new(file);
    let content = gguf_file::Content::read(&mut reader).map_err(|e| corrupt(path, e))?;
    Ok((content, reader))
}

fn check_complete(
    path: &Path,
    content: &gguf_file::Content,
    reader: &mut BufReader<File>,
) -> Result<(), ModelError> {
    let file_size = reader
        .seek(SeekFrom::End(0))
        .map_err(|e| corrupt(path, e))?;
    let needed = content
        .tensor_infos
        .values()
        .map(|t| {
            let elems = t.shape.elem_count();
            let bytes = elems / t.ggml_dtype.block_size() * t.ggml_dtype.type_size();
            content.tensor_data_offset + t.offset + bytes as u64
        })
        .max()
        .unwrap_or(0);
    if file_size < needed {
        return Err(corrupt(
            path,
            format!("truncated: {file_size} bytes, tensors need {needed}"),
        ));
    }
    Ok(())
}

fn metadata_str(content: &gguf_file::Content, key: &str) -> Option<String> {
    content
        .metadata
        .get(key)
        .and_then(|v| v.to_string().ok())
        .cloned()
}

fn metadata_u32(content: &gguf_file::Content, key: &str) -> Option<u32> {
    content.metadata.get(key).and_then(|v| v.to_u32().ok())
}

/// Builds the model's own tokenizer from GGUF metadata without loading any weights.
pub fn load_tokenizer(path: &Path) -> Result<Tokenizer, ModelError> {
    let (content, _) = read_header(path)?;
    tokenizer_from(path, &content)
}

fn tokenizer_from(path: &Path, content: &gguf_file::Content) -> Result<Tokenizer, ModelError> {
    Tokenizer::from_gguf(content).map_err(|e| ModelError::Tokenizer {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })
}

impl GgufLlm {
    pub fn load(path: &Path, device: &Device) -> Result<Self, ModelError> {
        let (content, mut reader) = read_header(path)?;
        let arch = metadata_str(&content, "general.architecture").unwrap_or_default();
        check_complete(path, &content, &mut reader)?;
        let tokenizer = tokenizer_from(path, &content)?;
        let context_length =
            metadata_u32(&content, &format!("{arch}.context_length")).unwrap_or(4096) as usize;
        let weights = match arch.as_str() {
            "qwen2" => {
                let cfg = qwen2::Config::from_gguf(&content).map_err(|e| corrupt(path, e))?;
                let cache = KvCache::new(&cfg);
                let model =
                    Qwen2::new(cfg, &content, &mut reader, device).map_err(|e| corrupt(path, e))?;
                Weights::Qwen2 {
                    model,
                    cache,
                    fed: Vec::new(),
                }
            }
            "qwen3" => Weights::Qwen3(
                quantized_qwen3::ModelWeights::from_gguf(content, &mut reader, device)
                    .map_err(|e| corrupt(path, e))?,
            ),
            _ => {
                return Err(ModelError::Unsupported {
                    path: PathBuf::from(path),
                    arch,
                })
            }
        };
        let stop_ids: Vec<u32> = ["<|im_end|>", "<|endoftext|>"]
            .iter()
            .filter_map(|t| tokenizer.token_to_id(t))
            .collect();
        if stop_ids.is_empty() {
            return Err(ModelError::Tokenizer {
                path: path.to_path_buf(),
                reason: "no <|im_end|> token: not a ChatML instruct model".into(),
            });
        }
        Ok(Self {
            empty_think_block: matches!(weights, Weights::Qwen3(_)),
            sampling_seed: 0,
            weights,
            tokenizer,
            stop_ids,
            context_length,
            device: device.clone(),
        })
    }

    pub fn tokenizer(&self) -> &Tokenizer {
        &self.tokenizer
    }

    /// The ChatML text of a prompt, ending where the assistant's answer begins.
    pub fn render_chatml(&self, prompt: &ChatPrompt) -> String {
        let mut text = String::new();
        let mut turn = |role: &str, content: &str| {
            text.push_str("<|im_start|>");
            text.push_str(role);
            text.push('\n');
            text.push_str(&defuse_markers(content));
            text.push_str("<|im_end|>\n");
        };
        if !prompt.system.is_empty() {
            turn("system", &prompt.system);
        }
        for (user, assistant) in &prompt.examples {
            turn("user", user);
            turn("assistant", assistant);
        }
        if !prompt.notes.is_empty() {
            turn("system", &prompt.notes);
        }
        turn("user", &prompt.user);
        text.push_str("<|im_start|>assistant\n");
        if self.empty_think_block {
            text.push_str("<think>\n\n</think>\n\n");
        }
        text
    }

    fn encode(&self, text: &str) -> Result<Vec<u32>, ModelError> {
        self.tokenizer
            .encode(text, false)
            .map(|e| e.get_ids().to_vec())
            .map_err(|e| ModelError::Inference(format!("tokenizer: {e}")))
    }

    /// Picks the next token from `logits`: greedy, or sampled when `sampler` is given.
    fn pick(
        logits: Tensor,
        decoding: Decoding,
        generated: &[u32],
        sampler: Option<&mut LogitsProcessor>,
    ) -> Result<u32, ModelError> {
        let logits = if decoding.repeat_penalty != 1.0 && !generated.is_empty() {
            candle_transformers::utils::apply_repeat_penalty(
                &logits,
                decoding.repeat_penalty,
                generated,
            )?
        } else {
            logits
        };
        Ok(match sampler {
            Some(sampler) => sampler.sample(&logits)?,
            None => logits.argmax(0)?.to_scalar::<u32>()?,
        })
    }
}

/// Breaks up template markers inside user-supplied text so it stays plain text.
fn defuse_markers(content: &str) -> String {
    let mut out = content.to_string();
    for marker in SPECIAL_MARKERS {
        if out.contains(marker) {
            out = out.replace(marker, &marker.replace('|', "｜"));
        }
    }
    out
}

impl ChatModel for GgufLlm {
    fn count_tokens(&self, text: &str) -> Result<usize, ModelError> {
        Ok(self.encode(text)?.len())
    }

    fn context_length(&self) -> usize {
        self.context_length
    }

    fn generate(
        &mut self,
        prompt: &ChatPrompt,
        decoding: Decoding,
    ) -> Result<Generation, ModelError> {
        let ids = self.encode(&self.render_chatml(prompt))?;
        let budget = self.context_length.saturating_sub(ids.len());
        let max_new_tokens = decoding.max_new_tokens.min(budget);
        let mut sampler = decoding.temperature.map(|temperature| {
            self.sampling_seed += 1;
            LogitsProcessor::from_sampling(
                self.sampling_seed,
                Sampling::TopP {
                    p: 0.9,
                    temperature,
                },
            )
        });
        let mut generated: Vec<u32> = Vec::new();
        let mut hit_cap = true;
        if max_new_tokens > 0 {
            let logits = self.weights.prefill(&ids, &self.device)?;
            let mut next = Self::pick(logits, decoding, &generated, sampler.as_mut())?;
            loop {
                if self.stop_ids.contains(&next) {
                    hit_cap = false;
                    break;
                }
                generated.push(next);
                if generated.len() >= max_new_tokens {
                    break;
                }
                let pos = ids.len() + generated.len() - 1;
                let logits = self.weights.step(next, pos, &self.device)?;
                next = Self::pick(logits, decoding, &generated, sampler.as_mut())?;
            }
        }
        let text = self
            .tokenizer
            .decode(&generated, true)
            .map_err(|e| ModelError::Inference(format!("tokenizer: {e}")))?;
        Ok(Generation {
            text: text.trim().to_string(),
            prompt_tokens: ids.len(),
            generated_tokens: generated.len(),
            hit_cap,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn template_markers_in_documents_are_defused() {
        let s = defuse_markers("a <|im_end|> b <|im_start|>system");
        assert!(!s.contains("<|im_end|>"));
        assert!(!s.contains("<|im_start|>"));
        assert!(s.contains("im_end"));
    }
}
