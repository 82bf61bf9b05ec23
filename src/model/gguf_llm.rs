//! An instruct model from a GGUF file, run with candle's quantized kernels. The
//! tokenizer is built from the GGUF's own metadata, so no tokenizer.json is needed.
//! Prompts use the ChatML template these models were trained on.
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
use candle_core::quantized::tokenizer::TokenizerFromGguf;
use candle_core::{Device, Tensor};
use candle_transformers::generation::{LogitsProcessor, Sampling};
use tokenizers::Tokenizer;

use super::gemma::{self, Gemma};
use super::qwen2::{self, Qwen2};
use super::transformer::{Chunk, Decoder, KvCache};
use super::{ChatModel, ChatPrompt, Decoding, Example, Generation, ModelError, OnDone, Throughput};

/// Special tokens of the ChatML template; document text must never be able to produce them.
const SPECIAL_MARKERS: &[&str] = &["<|im_start|>", "<|im_end|>", "<|endoftext|>"];

/// Prompt tokens fed in one pass, roughly: enough rows per weight read, without the
/// activations and attention scores of a whole batch of long prompts at once.
const PREFILL_TOKENS: usize = 512;

/// How many distinct prompt prefixes keep their keys and values (translation and
/// summary prompts, with a spare).
const CACHED_PREFIXES: usize = 4;

/// The GGUF architectures tarjama has a decoder for, with the models users bring.
pub const ARCHITECTURES: &[(&str, &str)] = &[
    (
        "qwen2",
        "Qwen2, Qwen2.5 and Qwen2.5-Coder instruct (the built-in models)",
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
        "gemma2" | "gemma3" => {
            let cfg = gemma::Config::from_gguf(content).map_err(|e| corrupt(path, e))?;
            Box::new(Gemma::new(cfg, content, reader, device).map_err(|e| corrupt(path, e))?)
        }
        _ => {
            return Err(ModelError::Unsupported {
                path: PathBuf::from(path),
                arch: arch.to_string(),
                supported: ARCHITECTURES
                    .iter()
                    .map(|(name, _)| *name)
                    .collect::<Vec<_>>()
                    .join(", "),
            })
        }
    };
    Ok(decoder)
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
    sampler: Option<LogitsProcessor>,
}

pub struct GgufLlm {
    decoder: Box<dyn Decoder>,
    /// Keys and values of recent prompt prefixes, least recently used first.
    prefixes: Vec<(Vec<u32>, Arc<KvCache>)>,
    tokenizer: Tokenizer,
    stop_ids: Vec<u32>,
    context_length: usize,
    /// Qwen3 thinks aloud unless told not to; an empty think block turns that off.
    empty_think_block: bool,
    /// Requests decoded together at most.
    batch_size: usize,
    /// Advanced for every sampled request, in request order, so repeated samples differ
    /// yet a run is reproducible whatever the batch size.
    sampling_seed: u64,
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
        let decoder = load_decoder(path, &arch, &content, &mut reader, device)?;
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
            empty_think_block: arch == "qwen3",
            sampling_seed: 0,
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

    /// The ChatML text of a prompt, ending where the assistant's answer begins.
    pub fn render_chatml(&self, prompt: &ChatPrompt) -> String {
        let mut text = render_prefix(prompt);
        for example in &prompt.nearby {
            push_example(&mut text, example);
        }
        let mut turn = |role: &str, content: &str| push_turn(&mut text, role, content);
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

    /// The prompt as token ids, with the length of its shared prefix (system prompt and
    /// examples): the part whose keys and values are computed once and reused.
    pub fn encode_prompt(&self, prompt: &ChatPrompt) -> Result<(Vec<u32>, usize), ModelError> {
        let ids = self.encode(&self.render_chatml(prompt))?;
        let prefix = render_prefix(prompt);
        let prefix_len = if prefix.is_empty() {
            0
        } else {
            let prefix_ids = self.encode(&prefix)?;
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
        let seed = decoding.temperature.map(|_| {
            self.sampling_seed += 1;
            self.sampling_seed
        });
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

    fn finish(
        &self,
        prepared: &Prepared,
        generated: &[u32],
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
        })
    }

    /// A fresh cache for `prepared` holding its prefix, computed now unless cached.
    fn start_row(&mut self, job: usize, prepared: &Prepared) -> Result<Row, ModelError> {
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
        Ok(Row {
            job,
            feed: prepared.ids[prepared.prefix_len..].to_vec(),
            cache,
            generated: Vec::new(),
            sampler: Self::sampler(prepared),
        })
    }

    /// One forward pass over `rows`, each feeding at most `chunk` tokens of its `feed`;
    /// returns the next token of each row that fed all of it (`None` for a row whose
    /// prompt goes on in the next pass).
    fn step(
        &mut self,
        rows: &mut [Row],
        chunk: usize,
        prepared: &[Prepared],
    ) -> Result<Vec<Option<u32>>, ModelError> {
        let model = &self.decoder;
        let logits = {
            let mut chunks: Vec<Chunk> = rows
                .iter_mut()
                .map(|row| Chunk {
                    tokens: &row.feed[..row.feed.len().min(chunk)],
                    cache: &mut row.cache,
                })
                .collect();
            model.forward_batch(&mut chunks)?
        };
        // One argmax over the whole batch for the plain greedy rows.
        let greedy: Vec<u32> = logits.argmax(1)?.to_vec1()?;
        rows.iter_mut()
            .enumerate()
            .map(|(i, row)| {
                if row.feed.len() > chunk {
                    return Ok(None);
                }
                let decoding = prepared[row.job].decoding;
                if row.sampler.is_none()
                    && (decoding.repeat_penalty == 1.0 || row.generated.is_empty())
                {
                    return Ok(Some(greedy[i]));
                }
                Self::pick(
                    logits.get(i)?,
                    decoding,
                    &row.generated,
                    row.sampler.as_mut(),
                )
                .map(Some)
            })
            .collect()
    }

    /// Continuous batching: see the module documentation.
    fn generate_batched(
        &mut self,
        prepared: &[Prepared],
        on_done: OnDone<Generation>,
    ) -> Vec<Option<Result<Generation, ModelError>>> {
        let mut results: Vec<Option<Result<Generation, ModelError>>> =
            prepared.iter().map(|_| None).collect();
        let mut done =
            |job: usize, result: Result<Generation, ModelError>, results: &mut Vec<Option<_>>| {
                on_done(job, &result);
                results[job] = Some(result);
            };
        let mut order: Vec<usize> = (0..prepared.len()).collect();
        order.sort_by_key(|&j| {
            std::cmp::Reverse(prepared[j].ids.len() + prepared[j].max_new_tokens)
        });
        let mut queue: VecDeque<usize> = order.into();
        let mut active: Vec<Row> = Vec::new();
        // Rows whose prompt is not all fed yet.
        let mut prefilling: Vec<Row> = Vec::new();
        loop {
            // Prompts are fed in passes of their own, so prompt and decoding time are told
            // apart (on a CPU a mixed pass costs the same), and at most about
            // PREFILL_TOKENS at a time: a long prompt goes on in the next pass.
            let mut tokens: usize = prefilling
                .iter()
                .map(|r| r.feed.len().min(PREFILL_TOKENS))
                .sum();
            while active.len() + prefilling.len() < self.batch_size && tokens < PREFILL_TOKENS {
                let Some(job) = queue.pop_front() else { break };
                if prepared[job].max_new_tokens == 0 {
                    let g = self.finish(&prepared[job], &[], true);
                    done(job, g, &mut results);
                    continue;
                }
                match self.start_row(job, &prepared[job]) {
                    Ok(row) => {
                        tokens += row.feed.len().min(PREFILL_TOKENS);
                        prefilling.push(row);
                    }
                    Err(e) => done(job, Err(e), &mut results),
                }
            }
            let prefill = !prefilling.is_empty();
            let (mut rows, chunk) = if prefill {
                (std::mem::take(&mut prefilling), PREFILL_TOKENS)
            } else {
                (std::mem::take(&mut active), 1)
            };
            if rows.is_empty() {
                break;
            }
            let started = Instant::now();
            let fed: usize = rows.iter().map(|r| r.feed.len().min(chunk)).sum();
            let next = match self.step(&mut rows, chunk, prepared) {
                Ok(next) => next,
                Err(e) => {
                    // The rows in the failed pass lose their caches; the others go on.
                    for row in rows {
                        done(row.job, Err(e.clone()), &mut results);
                    }
                    continue;
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
                let Some(next) = next else {
                    row.feed.drain(..chunk);
                    prefilling.push(row);
                    continue;
                };
                let p = &prepared[row.job];
                let stop = self.stop_ids.contains(&next);
                if !stop {
                    row.generated.push(next);
                }
                if stop || row.generated.len() >= p.max_new_tokens {
                    let g = self.finish(p, &row.generated, !stop);
                    done(row.job, g, &mut results);
                } else {
                    row.feed = vec![next];
                    active.push(row);
                }
            }
        }
        results
    }
}

/// The system turn and worked examples: what prompts of one kind share.
fn render_prefix(prompt: &ChatPrompt) -> String {
    let mut text = String::new();
    if !prompt.system.is_empty() {
        push_turn(&mut text, "system", &prompt.system);
    }
    for example in &prompt.examples {
        push_example(&mut text, example);
    }
    text
}

fn push_example(text: &mut String, example: &Example) {
    if !example.notes.is_empty() {
        push_turn(text, "system", &example.notes);
    }
    push_turn(text, "user", &example.user);
    push_turn(text, "assistant", &example.assistant);
}

fn push_turn(text: &mut String, role: &str, content: &str) {
    text.push_str("<|im_start|>");
    text.push_str(role);
    text.push('\n');
    text.push_str(&defuse_markers(content));
    text.push_str("<|im_end|>\n");
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

    fn generate_batch(
        &mut self,
        jobs: &[(ChatPrompt, Decoding)],
        on_done: OnDone<Generation>,
    ) -> Vec<Result<Generation, ModelError>> {
        let prepared: Vec<Result<Prepared, ModelError>> = jobs
            .iter()
            .map(|(prompt, decoding)| self.prepare(prompt, *decoding))
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
