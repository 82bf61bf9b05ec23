//! An instruct model from a GGUF file, run with candle's quantized kernels. The
//! tokenizer ([`super::gguf_tokenizer`]) and the chat template ([`super::chat_template`])
//! come from the GGUF's own metadata, as llama.cpp takes them, so no tokenizer.json or
//! prompt format is needed beside the file.
//!
//! Every family runs on tarjama's own decoders (one file each, behind
//! [`super::transformer::Decoder`]) with continuous batching: up to `batch_size` requests
//! decode together, one token each per forward pass, and a finished request's place goes
//! to the next one waiting. Requests are started longest first, so the long ones do not
//! straggle at the end. Every request reads the cached keys and values of its prompt
//! prefix (the system prompt and worked examples, computed once and shared, not copied),
//! as llama.cpp's prompt cache does.

use std::collections::VecDeque;
use std::fs::File;
use std::io::{BufReader, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use candle_core::quantized::gguf_file;
use candle_core::{Device, Tensor};
use candle_transformers::generation::{LogitsProcessor, Sampling};
use tokenizers::Tokenizer;

use super::chat_template::{self, ChatTemplate};
use super::constraint::Constraints;
use super::gemma::{self, Gemma};
use super::gguf_tokenizer;
use super::llama::{self, Llama};
use super::logprob::log_prob;
use super::qwen2::{self, Qwen2};
use super::qwen3::{self, Qwen3};
use super::transformer::{Chunk, Decoder, KvCache, KvSlab};
use super::{ChatModel, ChatPrompt, Decoding, Generation, ModelError, OnDone, Throughput};

/// Prompt tokens fed in one pass, roughly: enough rows per weight read, without the
/// activations and attention scores of a whole batch of long prompts at once. Any size
/// gives the same numbers (every position attends in one fixed order, however its prompt
/// is cut), so `TARJAMA_PREFILL_TOKENS` may set another for experiments and for the test
/// that runs the model as other machines would (`tests/same_everywhere.rs`).
fn prefill_tokens() -> usize {
    static TOKENS: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *TOKENS.get_or_init(|| {
        std::env::var("TARJAMA_PREFILL_TOKENS")
            .ok()
            .and_then(|v| v.parse().ok())
            .filter(|&n| n > 0)
            .unwrap_or(512)
    })
}

/// How many distinct prompt prefixes keep their keys and values (translation and
/// summary prompts, with a spare).
const CACHED_PREFIXES: usize = 4;

/// The GGUF architectures tarjama has a decoder for, with the models users bring.
pub const ARCHITECTURES: &[(&str, &str)] = &[
    (
        "qwen2",
        "Qwen2, Qwen2.5 and Qwen2.5-Coder instruct (the built-in models)",
    ),
    ("qwen3", "Qwen3 instruct"),
    (
        "llama",
        "Llama 3.1/3.2 Instruct, ALLaM, Mistral 7B / Nemo (Llama layout)",
    ),
    ("gemma2", "Gemma 2 instruct, SILMA"),
    ("gemma3", "Gemma 3 instruct (text)"),
];

/// The decoder for `arch`, its weights read from `reader`.
fn load_decoder(
    path: &Path,
    arch: &str,
    content: &gguf_file::Content,
    reader: &mut BufReader<File>,
    device: &Device,
) -> Result<Box<dyn Decoder>, ModelError> {
    let decoder: Box<dyn Decoder> = match arch {
        "qwen2" => {
            let cfg = qwen2::Config::from_gguf(content).map_err(|e| corrupt(path, e))?;
            Box::new(Qwen2::new(cfg, content, reader, device).map_err(|e| corrupt(path, e))?)
        }
        "qwen3" => {
            let cfg = qwen3::Config::from_gguf(content).map_err(|e| corrupt(path, e))?;
            Box::new(Qwen3::new(cfg, content, reader, device).map_err(|e| corrupt(path, e))?)
        }
        "gemma2" | "gemma3" => {
            let cfg = gemma::Config::from_gguf(content).map_err(|e| corrupt(path, e))?;
            Box::new(Gemma::new(cfg, content, reader, device).map_err(|e| corrupt(path, e))?)
        }
        "llama" => {
            let cfg = llama::Config::from_gguf(content).map_err(|e| corrupt(path, e))?;
            Box::new(Llama::new(cfg, content, reader, device).map_err(|e| corrupt(path, e))?)
        }
        _ => return Err(unsupported(path, arch)),
    };
    Ok(decoder)
}

/// The decoder of the GGUF at `path`, without tokenizer or template: for measuring a
/// family's speed on random weights.
pub fn load_decoder_file(path: &Path, device: &Device) -> Result<Box<dyn Decoder>, ModelError> {
    let (content, mut reader) = read_header(path)?;
    let arch = metadata_str(&content, "general.architecture").unwrap_or_default();
    check_complete(path, &content, &mut reader)?;
    load_decoder(path, &arch, &content, &mut reader, device)
}

fn unsupported(path: &Path, arch: &str) -> ModelError {
    ModelError::Unsupported {
        path: PathBuf::from(path),
        arch: arch.to_string(),
        supported: ARCHITECTURES
            .iter()
            .map(|(name, _)| *name)
            .collect::<Vec<_>>()
            .join(", "),
    }
}

/// A request tokenized and ready to decode.
struct Prepared {
    ids: Vec<u32>,
    /// Leading tokens of `ids` that are the prompt's shared prefix.
    prefix_len: usize,
    max_new_tokens: usize,
    decoding: Decoding,
    seed: Option<u64>,
}

/// A request being decoded.
struct Row {
    job: usize,
    /// Tokens for the next forward pass: the prompt after its prefix, then one at a time.
    feed: Vec<u32>,
    cache: KvCache,
    generated: Vec<u32>,
    /// The log-probability of each generated token.
    logprobs: Vec<f32>,
    sampler: Option<LogitsProcessor>,
    constraints: Constraints,
}

pub struct GgufLlm {
    decoder: Box<dyn Decoder>,
    /// Keys and values of recent prompt prefixes, least recently used first.
    prefixes: Vec<(Vec<u32>, Arc<KvCache>)>,
    tokenizer: Tokenizer,
    template: ChatTemplate,
    /// The token put before a prompt whose template does not write it itself.
    bos: Option<u32>,
    stop_ids: Vec<u32>,
    context_length: usize,
    /// Requests decoded together at most.
    batch_size: usize,
    throughput: Throughput,
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
    gguf_tokenizer::tokenizer_from_gguf(content).map_err(|e| ModelError::Tokenizer {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })
}

/// The BOS token a prompt needs before it, when the vocabulary asks for one.
fn bos_token(content: &gguf_file::Content) -> Option<u32> {
    chat_template::add_bos_token(&content.metadata)
        .then(|| metadata_u32(content, "tokenizer.ggml.bos_token_id"))
        .flatten()
}

impl GgufLlm {
    pub fn load(path: &Path, device: &Device) -> Result<Self, ModelError> {
        let (content, mut reader) = read_header(path)?;
        let arch = metadata_str(&content, "general.architecture").unwrap_or_default();
        // Before anything else is read: an unsupported family is the error to report.
        if !ARCHITECTURES.iter().any(|(name, _)| *name == arch) {
            return Err(unsupported(path, &arch));
        }
        check_complete(path, &content, &mut reader)?;
        let tokenizer = tokenizer_from(path, &content)?;
        let context_length =
            metadata_u32(&content, &format!("{arch}.context_length")).unwrap_or(4096) as usize;
        // Qwen3 thinks aloud unless told not to; its template's empty think block (or
        // the fallback's) turns that off.
        let template = ChatTemplate::for_gguf(&content, arch == "qwen3").map_err(|e| {
            ModelError::Tokenizer {
                path: path.to_path_buf(),
                reason: format!("chat template: {e}"),
            }
        })?;
        tracing::debug!(
            "{}: {} chat template, {}",
            path.display(),
            if template.is_model_template() {
                "the model's"
            } else {
                "no template in the file; ChatML"
            },
            template.strategy()
        );
        let stop_ids = chat_template::stop_token_ids(&content.metadata);
        if stop_ids.is_empty() {
            return Err(ModelError::Tokenizer {
                path: path.to_path_buf(),
                reason: "no end-of-turn token in the vocabulary: not an instruct model".into(),
            });
        }
        let bos = bos_token(&content);
        let decoder = load_decoder(path, &arch, &content, &mut reader, device)?;
        Ok(Self {
            template,
            bos,
            batch_size: 1,
            throughput: Throughput::default(),
            decoder,
            prefixes: Vec::new(),
            tokenizer,
            stop_ids,
            context_length,
        })
    }

    pub fn tokenizer(&self) -> &Tokenizer {
        &self.tokenizer
    }

    /// How many requests decode together (1: one at a time). Larger batches read the
    /// weights once for several tokens; each request gets the same tokens either way.
    pub fn with_batch_size(mut self, batch_size: usize) -> Self {
        self.batch_size = batch_size.max(1);
        self
    }

    /// Tokens that end an answer.
    pub fn stop_ids(&self) -> &[u32] {
        &self.stop_ids
    }

    pub fn batch_size(&self) -> usize {
        self.batch_size
    }

    /// Tokens fed and generated, and the time spent on each, since the model was loaded.
    pub fn throughput(&self) -> Throughput {
        self.throughput
    }

    /// The prompt as the model's chat template writes it, ending where the assistant's
    /// answer begins.
    pub fn render_prompt(&self, prompt: &ChatPrompt) -> Result<String, ModelError> {
        self.template
            .render_prompt(prompt)
            .map_err(|e| ModelError::Inference(format!("chat template: {e}")))
    }

    /// The prompt as token ids, with the length of its shared prefix (system prompt and
    /// examples): the part whose keys and values are computed once and reused.
    pub fn encode_prompt(&self, prompt: &ChatPrompt) -> Result<(Vec<u32>, usize), ModelError> {
        let (text, prefix_bytes) = self
            .template
            .split_prompt(prompt)
            .map_err(|e| ModelError::Inference(format!("chat template: {e}")))?;
        let bos = self.bos.filter(|_| self.template.needs_bos(&text, true));
        let with_bos = |ids: Vec<u32>| match bos {
            Some(bos) => std::iter::once(bos).chain(ids).collect(),
            None => ids,
        };
        let ids = with_bos(self.encode(&text)?);
        let prefix_len = if prefix_bytes == 0 {
            0
        } else {
            let prefix_ids = with_bos(self.encode(&text[..prefix_bytes])?);
            // Only when the prefix tokenizes the same on its own (it ends at a turn
            // boundary, so it does): at least one token is always left to feed.
            if ids.starts_with(&prefix_ids) {
                prefix_ids.len().min(ids.len().saturating_sub(1))
            } else {
                0
            }
        };
        Ok((ids, prefix_len))
    }

    fn encode(&self, text: &str) -> Result<Vec<u32>, ModelError> {
        self.tokenizer
            .encode(text, false)
            .map(|e| e.get_ids().to_vec())
            .map_err(|e| ModelError::Inference(format!("tokenizer: {e}")))
    }

    /// Tokenizes a request and sizes its answer to the context left.
    fn prepare(&mut self, prompt: &ChatPrompt, decoding: Decoding) -> Result<Prepared, ModelError> {
        let (ids, prefix_len) = self.encode_prompt(prompt)?;
        let budget = self.context_length.saturating_sub(ids.len());
        let seed = decoding.temperature.map(|_| decoding.seed);
        Ok(Prepared {
            max_new_tokens: decoding.max_new_tokens.min(budget),
            ids,
            prefix_len,
            decoding,
            seed,
        })
    }

    fn sampler(prepared: &Prepared) -> Option<LogitsProcessor> {
        let temperature = prepared.decoding.temperature?;
        Some(LogitsProcessor::from_sampling(
            prepared.seed.unwrap_or(0),
            Sampling::TopP {
                p: 0.9,
                temperature,
            },
        ))
    }

    /// Picks the next token from `logits`: greedy, or sampled when `sampler` is given.
    fn pick(
        logits: Tensor,
        decoding: &Decoding,
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

    fn finish(
        &self,
        prepared: &Prepared,
        generated: &[u32],
        logprobs: Vec<f32>,
        hit_cap: bool,
    ) -> Result<Generation, ModelError> {
        let text = self
            .tokenizer
            .decode(generated, true)
            .map_err(|e| ModelError::Inference(format!("tokenizer: {e}")))?;
        Ok(Generation {
            text: text.trim().to_string(),
            prompt_tokens: prepared.ids.len(),
            generated_tokens: generated.len(),
            hit_cap,
            tokens: generated.to_vec(),
            token_logprobs: logprobs,
        })
    }

    /// A token's text as it reads inside an answer.
    fn piece(&self, token: u32) -> String {
        self.tokenizer.decode(&[token], false).unwrap_or_default()
    }

    /// A fresh cache for `prepared` holding its prefix, computed now unless cached, in a
    /// slot of `slab` when it has one free.
    fn start_row(
        &mut self,
        job: usize,
        prepared: &Prepared,
        slab: Option<&Arc<KvSlab>>,
    ) -> Result<Row, ModelError> {
        let (model, prefixes) = (&self.decoder, &mut self.prefixes);
        let capacity = prepared.ids.len() + prepared.max_new_tokens;
        let prefix = &prepared.ids[..prepared.prefix_len];
        let cache = if prefix.is_empty() {
            KvCache::new(model.block_count(), capacity)
        } else {
            let hit = prefixes.iter().position(|(tokens, _)| tokens == prefix);
            let entry = match hit {
                Some(i) => prefixes.remove(i),
                None => {
                    let started = Instant::now();
                    let mut cache = KvCache::new(model.block_count(), prefix.len());
                    model.forward(prefix, &mut cache)?;
                    self.throughput.prompt_tokens += prefix.len();
                    self.throughput.prompt_seconds += started.elapsed().as_secs_f64();
                    (prefix.to_vec(), Arc::new(cache))
                }
            };
            let cache = KvCache::after(entry.1.clone(), capacity - prefix.len())?;
            prefixes.push(entry);
            if prefixes.len() > CACHED_PREFIXES {
                prefixes.remove(0);
            }
            cache
        };
        let cache = match slab {
            Some(slab) => cache.placed_in(slab),
            None => cache,
        };
        Ok(Row {
            job,
            feed: prepared.ids[prepared.prefix_len..].to_vec(),
            cache,
            generated: Vec::new(),
            logprobs: Vec::new(),
            sampler: Self::sampler(prepared),
            constraints: Constraints::new(&prepared.decoding.required, |t| self.encode(t))?,
        })
    }

    /// One forward pass over `rows`, each feeding at most `chunk` tokens of its `feed`;
    /// returns the next token of each row that fed all of it, with its log-probability
    /// (`None` for a row whose prompt goes on in the next pass).
    fn step(
        &mut self,
        rows: &mut [Row],
        chunk: usize,
        prepared: &[Prepared],
    ) -> Result<Vec<Option<(u32, f32)>>, ModelError> {
        let model = &self.decoder;
        let logits = {
            let mut chunks: Vec<Chunk> = rows
                .iter_mut()
                .map(|row| Chunk::new(&row.feed[..row.feed.len().min(chunk)], &mut row.cache))
                .collect();
            model.forward_batch(&mut chunks)?
        };
        // One argmax over the whole batch for the plain greedy rows.
        let greedy: Vec<u32> = logits.argmax(1)?.to_vec1()?;
        let each: Vec<Vec<f32>> = logits.to_vec2()?;
        let piece = |t: u32| self.piece(t);
        let stop = |t: u32| self.stop_ids.contains(&t);
        rows.iter_mut()
            .enumerate()
            .map(|(i, row)| {
                if row.feed.len() > chunk {
                    return Ok(None);
                }
                let decoding = &prepared[row.job].decoding;
                let chosen = if row.sampler.is_none()
                    && (decoding.repeat_penalty == 1.0 || row.generated.is_empty())
                {
                    greedy[i]
                } else {
                    Self::pick(
                        logits.get(i)?,
                        decoding,
                        &row.generated,
                        row.sampler.as_mut(),
                    )?
                };
                let next = if row.constraints.is_done() {
                    chosen
                } else {
                    row.constraints
                        .steer(&each[i], chosen, &row.generated, &piece, &stop)
                };
                Ok(Some((next, log_prob(&each[i], next))))
            })
            .collect()
    }

    /// Continuous batching: see the module documentation.
    fn generate_batched(
        &mut self,
        prepared: &[Prepared],
        on_done: OnDone<Generation>,
    ) -> Vec<Option<Result<Generation, ModelError>>> {
        let mut schedule = Schedule::new(prepared, on_done);
        // Sequences decoding together keep their caches side by side, so each decoding
        // step attends over all of them at once.
        let own_capacity = prepared
            .iter()
            .map(|p| p.ids.len() - p.prefix_len + p.max_new_tokens)
            .max()
            .unwrap_or(1);
        let slab = (self.batch_size > 1)
            .then(|| KvSlab::new(self.decoder.block_count(), self.batch_size, own_capacity));
        loop {
            self.admit(&mut schedule, prepared, slab.as_ref());
            // Prompts are fed in passes of their own, so prompt and decoding time are told
            // apart (on a CPU a mixed pass costs the same), and at most about
            // `prefill_tokens()` at a time: a long prompt goes on in the next pass.
            let prefill = !schedule.prefilling.is_empty();
            let (rows, chunk) = if prefill {
                (std::mem::take(&mut schedule.prefilling), prefill_tokens())
            } else {
                (std::mem::take(&mut schedule.active), 1)
            };
            if rows.is_empty() {
                break;
            }
            self.pass(rows, chunk, prefill, prepared, &mut schedule);
        }
        schedule.results
    }

    /// Starts waiting requests while the batch has room and the next prefill pass has
    /// fewer than about `prefill_tokens()` prompt tokens.
    fn admit(
        &mut self,
        schedule: &mut Schedule,
        prepared: &[Prepared],
        slab: Option<&Arc<KvSlab>>,
    ) {
        let mut tokens: usize = schedule
            .prefilling
            .iter()
            .map(|r| r.feed.len().min(prefill_tokens()))
            .sum();
        while schedule.active.len() + schedule.prefilling.len() < self.batch_size
            && tokens < prefill_tokens()
        {
            let Some(job) = schedule.queue.pop_front() else {
                break;
            };
            if prepared[job].max_new_tokens == 0 {
                let g = self.finish(&prepared[job], &[], Vec::new(), true);
                schedule.done(job, g);
                continue;
            }
            match self.start_row(job, &prepared[job], slab) {
                Ok(row) => {
                    tokens += row.feed.len().min(prefill_tokens());
                    schedule.prefilling.push(row);
                }
                Err(e) => schedule.done(job, Err(e)),
            }
        }
    }

    /// One forward pass over `rows`, each feeding at most `chunk` tokens; each row then
    /// goes on prefilling, goes on decoding, or is done.
    fn pass(
        &mut self,
        mut rows: Vec<Row>,
        chunk: usize,
        prefill: bool,
        prepared: &[Prepared],
        schedule: &mut Schedule,
    ) {
        let started = Instant::now();
        let fed: usize = rows.iter().map(|r| r.feed.len().min(chunk)).sum();
        let next = match self.step(&mut rows, chunk, prepared) {
            Ok(next) => next,
            Err(e) => {
                // The rows in the failed pass lose their caches; the others go on.
                for row in rows {
                    schedule.done(row.job, Err(e.clone()));
                }
                return;
            }
        };
        let seconds = started.elapsed().as_secs_f64();
        if prefill {
            self.throughput.prompt_tokens += fed;
            self.throughput.prompt_seconds += seconds;
        } else {
            self.throughput.generated_tokens += fed;
            self.throughput.decode_seconds += seconds;
        }
        for (mut row, next) in rows.into_iter().zip(next) {
            let Some((next, logprob)) = next else {
                row.feed.drain(..chunk);
                schedule.prefilling.push(row);
                continue;
            };
            let p = &prepared[row.job];
            let stop = self.stop_ids.contains(&next);
            if !stop {
                row.generated.push(next);
                row.logprobs.push(logprob);
            }
            if stop || row.generated.len() >= p.max_new_tokens {
                let logprobs = std::mem::take(&mut row.logprobs);
                let g = self.finish(p, &row.generated, logprobs, !stop);
                schedule.done(row.job, g);
            } else {
                row.feed = vec![next];
                schedule.active.push(row);
            }
        }
    }
    /// The log-probability of each token of `answer`, and of the end of the turn after
    /// it, under `prompt`: the answer is fed after the prompt (in passes of about
    /// `prefill_tokens()`) and the logits of the positions before each of its tokens are
    /// kept. On the CPU each equals the log-probability the token would get if it had
    /// been decoded (a prompt gives the same numbers whole or token by token).
    fn score(&mut self, prompt: &ChatPrompt, answer: &str) -> Result<Vec<f32>, ModelError> {
        let end_of_turn = *self
            .stop_ids
            .first()
            .ok_or_else(|| ModelError::Inference("no end-of-turn token".into()))?;
        let mut targets = self.encode(answer)?;
        targets.push(end_of_turn);
        self.score_tokens(prompt, &targets)
    }

    /// The log-probability of each of `targets` after `prompt` and the targets before it.
    fn score_tokens(
        &mut self,
        prompt: &ChatPrompt,
        targets: &[u32],
    ) -> Result<Vec<f32>, ModelError> {
        let started = Instant::now();
        let (mut ids, prefix_len) = self.encode_prompt(prompt)?;
        if targets.is_empty() {
            return Ok(Vec::new());
        }
        // The last target itself is never fed: nothing after it is scored.
        ids.extend_from_slice(&targets[..targets.len() - 1]);
        let prepared = Prepared {
            max_new_tokens: 0,
            prefix_len,
            decoding: Decoding::greedy(0),
            seed: None,
            ids,
        };
        let mut row = self.start_row(0, &prepared, None)?;
        // Positions whose logits predict a target: the last `targets.len()` fed.
        let first_scored = prepared.ids.len() - targets.len();
        let mut fed = prepared.prefix_len;
        let mut logprobs = Vec::with_capacity(targets.len());
        while !row.feed.is_empty() {
            let take = row.feed.len().min(prefill_tokens());
            let end = fed + take;
            let scored = end.saturating_sub(first_scored.max(fed));
            let logits = {
                let mut chunk = Chunk::new(&row.feed[..take], &mut row.cache);
                chunk.scored = scored.max(1);
                self.decoder
                    .forward_batch(std::slice::from_mut(&mut chunk))?
            };
            if scored > 0 {
                let rows: Vec<Vec<f32>> = logits.to_vec2()?;
                let at = end - scored - first_scored;
                for (row_logits, &target) in rows.iter().zip(&targets[at..at + scored]) {
                    logprobs.push(log_prob(row_logits, target));
                }
            }
            row.feed.drain(..take);
            fed = end;
        }
        self.throughput.prompt_tokens += prepared.ids.len() - prepared.prefix_len;
        self.throughput.prompt_seconds += started.elapsed().as_secs_f64();
        Ok(logprobs)
    }
}

/// The requests of one `generate_batch` call: waiting (longest first, so the long ones
/// do not straggle at the end), feeding their prompts, decoding, or done.
struct Schedule<'a> {
    queue: VecDeque<usize>,
    /// Rows whose prompt is not all fed yet.
    prefilling: Vec<Row>,
    active: Vec<Row>,
    results: Vec<Option<Result<Generation, ModelError>>>,
    on_done: OnDone<'a, Generation>,
}

impl<'a> Schedule<'a> {
    fn new(prepared: &[Prepared], on_done: OnDone<'a, Generation>) -> Self {
        let mut order: Vec<usize> = (0..prepared.len()).collect();
        order.sort_by_key(|&j| {
            std::cmp::Reverse(prepared[j].ids.len() + prepared[j].max_new_tokens)
        });
        Self {
            queue: order.into(),
            prefilling: Vec::new(),
            active: Vec::new(),
            results: prepared.iter().map(|_| None).collect(),
            on_done,
        }
    }

    fn done(&mut self, job: usize, result: Result<Generation, ModelError>) {
        (self.on_done)(job, &result);
        self.results[job] = Some(result);
    }
}

impl ChatModel for GgufLlm {
    fn count_tokens(&self, text: &str) -> Result<usize, ModelError> {
        Ok(self.encode(text)?.len())
    }

    fn throughput(&self) -> Throughput {
        GgufLlm::throughput(self)
    }

    fn batch_size(&self) -> usize {
        GgufLlm::batch_size(self)
    }

    fn context_length(&self) -> usize {
        self.context_length
    }

    fn generate(
        &mut self,
        prompt: &ChatPrompt,
        decoding: Decoding,
    ) -> Result<Generation, ModelError> {
        let mut results = self.generate_batch(&[(prompt.clone(), decoding)], &mut |_, _| {});
        results
            .pop()
            .unwrap_or_else(|| Err(ModelError::Inference("no result".into())))
    }

    fn score_batch(&mut self, jobs: &[(ChatPrompt, String)]) -> Vec<Result<Vec<f32>, ModelError>> {
        // One at a time: a translation prompt is a few hundred tokens, enough rows for
        // each weight read, and the logits of every scored position stay small.
        jobs.iter()
            .map(|(prompt, answer)| self.score(prompt, answer))
            .collect()
    }

    fn generate_batch(
        &mut self,
        jobs: &[(ChatPrompt, Decoding)],
        on_done: OnDone<Generation>,
    ) -> Vec<Result<Generation, ModelError>> {
        let prepared: Vec<Result<Prepared, ModelError>> = jobs
            .iter()
            .map(|(prompt, decoding)| self.prepare(prompt, decoding.clone()))
            .collect();
        let mut results: Vec<Option<Result<Generation, ModelError>>> =
            jobs.iter().map(|_| None).collect();
        let mut ready = Vec::new();
        let mut ready_jobs = Vec::new();
        for (job, p) in prepared.into_iter().enumerate() {
            match p {
                Ok(p) => {
                    ready.push(p);
                    ready_jobs.push(job);
                }
                Err(e) => {
                    on_done(job, &Err(e.clone()));
                    results[job] = Some(Err(e));
                }
            }
        }
        let mut report = |i: usize, g: &Result<Generation, ModelError>| on_done(ready_jobs[i], g);
        let generated = self.generate_batched(&ready, &mut report);
        for (g, &job) in generated.into_iter().zip(&ready_jobs) {
            results[job] = g;
        }
        results
            .into_iter()
            .map(|r| {
                r.unwrap_or_else(|| Err(ModelError::Inference("request was never decoded".into())))
            })
            .collect()
    }
}

/// The generations of `jobs` by the model at `path`, loaded as users' models are and
/// decoding `batch_size` requests at a time.
#[cfg(test)]
fn generations(path: &Path, jobs: &[(ChatPrompt, Decoding)], batch_size: usize) -> Vec<Generation> {
    let mut llm = GgufLlm::load(path, &Device::Cpu)
        .unwrap()
        .with_batch_size(batch_size);
    llm.generate_batch(jobs, &mut |_, _| {})
        .into_iter()
        .map(Result::unwrap)
        .collect()
}

/// Writes a tiny random model of `arch` to a file and checks
/// [`assert_file_keeps_generations`] on it at batch size 4.
#[cfg(test)]
pub(crate) fn assert_batch_size_keeps_generations(arch: super::random_gguf::Arch) {
    use super::random_gguf::{self, Shape};
    let mut file = tempfile::NamedTempFile::new().unwrap();
    random_gguf::write(arch, &Shape::tiny(), 11, file.as_file_mut()).unwrap();
    assert_file_keeps_generations(file.path(), &["one", "a longer request", "3"], 6, 4);
}

/// Loads the model at `path` as users' models are loaded and checks that requests
/// sharing a system prompt, one per text of `users`, get the same generations (text,
/// prompt and answer lengths) decoded one at a time as `batch_size` at a time, and that
/// each generates something.
#[cfg(test)]
pub(crate) fn assert_file_keeps_generations(
    path: &Path,
    users: &[&str],
    max_new_tokens: usize,
    batch_size: usize,
) {
    let jobs: Vec<(ChatPrompt, Decoding)> = users
        .iter()
        .map(|user| {
            let prompt = ChatPrompt {
                system: "Translate.".into(),
                user: user.to_string(),
                ..ChatPrompt::default()
            };
            (prompt, Decoding::greedy(max_new_tokens))
        })
        .collect();
    let generate = |batch_size: usize| {
        generations(path, &jobs, batch_size)
            .into_iter()
            .map(|g| (g.text, g.prompt_tokens, g.generated_tokens, g.hit_cap))
            .collect::<Vec<_>>()
    };
    let one_at_a_time = generate(1);
    assert!(one_at_a_time.iter().all(|g| g.2 > 0), "{one_at_a_time:?}");
    assert_eq!(
        one_at_a_time,
        generate(batch_size),
        "{}: batching changed the generations",
        path.display()
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::random_gguf::{self, Arch, Shape};

    /// A tiny random Llama whose vocabulary and template are Llama 3.1's, written to a
    /// file and loaded as users' models are.
    fn tiny_llama_3_1() -> tempfile::NamedTempFile {
        let template = include_str!(
            "../../tests/fixtures/chat_templates/templates/meta-llama-Llama-3.1-8B-Instruct.jinja"
        );
        let specials = [
            "<|begin_of_text|>",
            "<|end_of_text|>",
            "<|start_header_id|>",
            "<|end_header_id|>",
            "<|eom_id|>",
            "<|eot_id|>",
        ];
        let chat = random_gguf::Chat {
            template: template.to_string(),
            specials: specials.iter().map(|t| t.to_string()).collect(),
            bos: "<|begin_of_text|>".into(),
            eos: "<|eot_id|>".into(),
            add_bos: true,
        };
        let extras = random_gguf::Extras {
            chat: Some(chat),
            ..Default::default()
        };
        let mut shape = Shape::tiny();
        shape.context = 2048;
        let mut file = tempfile::NamedTempFile::new().unwrap();
        random_gguf::write_with(Arch::Llama, &shape, extras, 5, file.as_file_mut()).unwrap();
        file
    }

    /// A tiny random Qwen2 in a file, loaded as users' models are.
    fn tiny_qwen2() -> tempfile::NamedTempFile {
        let mut file = tempfile::NamedTempFile::new().unwrap();
        random_gguf::write(Arch::Qwen2, &Shape::tiny(), 11, file.as_file_mut()).unwrap();
        file
    }

    fn translate_prompt(user: &str) -> ChatPrompt {
        ChatPrompt {
            system: "Translate.".into(),
            user: user.to_string(),
            ..ChatPrompt::default()
        }
    }

    #[test]
    fn scoring_an_answer_gives_the_log_probs_it_was_decoded_with() {
        let file = tiny_qwen2();
        let mut llm = GgufLlm::load(file.path(), &Device::Cpu).unwrap();
        for user in ["one", "a longer request"] {
            let prompt = translate_prompt(user);
            let g = llm.generate(&prompt, Decoding::greedy(6)).unwrap();
            assert_eq!(g.token_logprobs.len(), g.tokens.len());
            assert!(g
                .token_logprobs
                .iter()
                .all(|lp| *lp <= 0.0 && lp.is_finite()));
            let scored = llm.score_tokens(&prompt, &g.tokens).unwrap();
            // Bit for bit: a prompt gives the same numbers whole or token by token.
            assert_eq!(scored, g.token_logprobs, "{user}");
        }
    }

    #[test]
    fn required_phrases_decode_the_same_at_any_batch_size() {
        let file = tiny_qwen2();
        let jobs: Vec<(ChatPrompt, Decoding)> = ["one", "a longer request", "3"]
            .iter()
            .enumerate()
            .map(|(i, user)| {
                let mut decoding = Decoding::greedy(8);
                if i != 1 {
                    decoding.required = vec!["request".into(), "one more".into()];
                }
                (translate_prompt(user), decoding)
            })
            .collect();
        let generate = |batch_size: usize| {
            generations(file.path(), &jobs, batch_size)
                .into_iter()
                .map(|g| (g.text, g.tokens, g.token_logprobs))
                .collect::<Vec<_>>()
        };
        assert_eq!(generate(1), generate(3));
    }

    #[test]
    fn a_model_s_own_template_writes_the_prompt_with_one_bos_and_its_stop_tokens() {
        let file = tiny_llama_3_1();
        let llm = GgufLlm::load(file.path(), &Device::Cpu).unwrap();
        let token = |t: &str| llm.tokenizer().token_to_id(t).unwrap();
        let prompt = ChatPrompt {
            system: "Translate Arabic into English.".into(),
            examples: vec![crate::model::Example {
                notes: String::new(),
                user: "مرحبا".into(),
                assistant: "Hello".into(),
            }],
            user: "شكرا <|eot_id|>".into(),
            ..ChatPrompt::default()
        };
        let text = llm.render_prompt(&prompt).unwrap();
        assert!(text.starts_with("<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\n"));
        assert!(
            text.ends_with("<|start_header_id|>assistant<|end_header_id|>\n\n"),
            "{text}"
        );
        // The document's own marker is text, not a turn.
        assert_eq!(text.matches("<|eot_id|>").count(), 4, "{text}");
        assert!(text.contains("شكرا <｜eot_id｜>"), "{text}");

        let (ids, prefix_len) = llm.encode_prompt(&prompt).unwrap();
        let bos = token("<|begin_of_text|>");
        assert_eq!(ids[0], bos, "the template writes BOS");
        assert_ne!(ids[1], bos, "and it is not added twice");
        assert!(
            prefix_len > 10 && prefix_len < ids.len(),
            "{prefix_len} of {}",
            ids.len()
        );
        assert_eq!(ids.iter().filter(|&&t| t == token("<|eot_id|>")).count(), 4);
        assert!(llm.stop_ids().contains(&token("<|eot_id|>")));
        assert!(llm.stop_ids().contains(&token("<|eom_id|>")));
    }

    #[test]
    fn a_model_s_own_template_decodes_the_same_at_any_batch_size() {
        let file = tiny_llama_3_1();
        assert_file_keeps_generations(file.path(), &["واحد", "طلب أطول قليلا", "٣"], 5, 3);
    }

    #[test]
    fn an_unsupported_architecture_is_named_with_the_supported_ones() {
        let mut bytes = std::io::Cursor::new(Vec::new());
        random_gguf::write(Arch::Qwen2, &Shape::tiny(), 1, &mut bytes).unwrap();
        // The same file claiming another architecture (and every key renamed with it).
        let mut renamed = bytes.into_inner();
        let mut i = 0;
        while let Some(at) = renamed[i..].windows(5).position(|w| w == b"qwen2") {
            renamed[i + at..i + at + 5].copy_from_slice(b"phi33");
            i += at + 5;
        }
        let file = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(file.path(), &renamed).unwrap();
        let Err(e) = GgufLlm::load(file.path(), &Device::Cpu) else {
            panic!("an unknown architecture loaded");
        };
        let message = e.to_string();
        assert!(matches!(e, ModelError::Unsupported { .. }), "{message}");
        assert!(!message.contains('\n'), "{message}");
        assert!(message.contains("`phi33`"), "{message}");
        for (arch, _) in ARCHITECTURES {
            assert!(message.contains(arch), "{arch} missing: {message}");
        }
    }
}
