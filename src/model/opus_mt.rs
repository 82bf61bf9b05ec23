//! OPUS-MT translation models (Marian) from the files the Hugging Face hub serves: a
//! builder that hides the tokenizer, the weights and the decoding settings behind one
//! `translate_batch` call.
//!
//! A model directory holds `config.json`, `model.safetensors` or `pytorch_model.bin`,
//! `source.spm`, `target.spm`, `vocab.json` (and `target_vocab.json` for models with
//! separate vocabularies), and optionally `generation_config.json`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use serde::Deserialize;

use super::marian::{Config, DecoderState, Encoded, Marian};
use super::sentencepiece::SentencePiece;
use super::seq2seq::{Decoded, EarlyStopping, GenerationConfig, StepDecoder};
use super::{ModelError, Throughput};

fn bad_dir(dir: &Path, reason: impl Into<String>) -> ModelError {
    ModelError::MarianDir {
        path: dir.to_path_buf(),
        reason: reason.into(),
    }
}

fn read_json<T: for<'de> Deserialize<'de>>(path: &Path, dir: &Path) -> Result<T, ModelError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| bad_dir(dir, format!("cannot read {}: {e}", file_name(path))))?;
    serde_json::from_str(&text)
        .map_err(|e| bad_dir(dir, format!("{} is not valid: {e}", file_name(path))))
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| path.display().to_string())
}

/// The weights file of a model directory: safetensors first, as the hub prefers.
pub fn weights_file(dir: &Path) -> Option<PathBuf> {
    ["model.safetensors", "pytorch_model.bin"]
        .iter()
        .map(|f| dir.join(f))
        .find(|p| p.is_file())
}

/// Hugging Face `MarianTokenizer`: SentencePiece pieces mapped through `vocab.json`.
pub struct MarianTokenizer {
    source: SentencePiece,
    target: SentencePiece,
    source_ids: HashMap<String, u32>,
    /// Target ids to pieces (the shared vocabulary, or `target_vocab.json`).
    target_pieces: HashMap<u32, String>,
    eos_id: u32,
    unk_id: u32,
    pad_id: u32,
    /// Special tokens matched literally in text before segmentation, longest first.
    specials: Vec<(String, u32)>,
}

impl MarianTokenizer {
    pub fn load(dir: &Path) -> Result<Self, ModelError> {
        let spm = |name: &str| {
            SentencePiece::load(&dir.join(name)).map_err(|e| bad_dir(dir, format!("{name}: {e}")))
        };
        let source = spm("source.spm")?;
        let target = spm("target.spm")?;
        let source_ids: HashMap<String, u32> = read_json(&dir.join("vocab.json"), dir)?;
        let target_vocab = dir.join("target_vocab.json");
        let target_ids: HashMap<String, u32> = if target_vocab.is_file() {
            read_json(&target_vocab, dir)?
        } else {
            source_ids.clone()
        };
        let id = |token: &str| {
            source_ids
                .get(token)
                .copied()
                .ok_or_else(|| bad_dir(dir, format!("vocab.json has no {token}")))
        };
        let (eos_id, unk_id, pad_id) = (id("</s>")?, id("<unk>")?, id("<pad>")?);
        let mut specials = vec![
            ("</s>".to_string(), eos_id),
            ("<unk>".to_string(), unk_id),
            ("<pad>".to_string(), pad_id),
        ];
        specials.sort_by_key(|(s, _)| std::cmp::Reverse(s.len()));
        Ok(Self {
            source,
            target,
            source_ids,
            target_pieces: target_ids.into_iter().map(|(p, i)| (i, p)).collect(),
            eos_id,
            unk_id,
            pad_id,
            specials,
        })
    }

    pub fn pad_id(&self) -> u32 {
        self.pad_id
    }

    /// Source ids of `text`, ending with `</s>`, as `tokenizer(text).input_ids` gives them.
    pub fn encode(&self, text: &str) -> Vec<u32> {
        let mut ids = Vec::new();
        for (chunk, special) in self.split_specials(text) {
            match special {
                Some(id) => ids.push(id),
                None => ids.extend(self.encode_plain(chunk)),
            }
        }
        ids.push(self.eos_id);
        ids
    }

    /// Cuts `text` around literal special tokens (`</s>`, `<unk>`, `<pad>`), which the
    /// reference tokenizer matches before segmentation and keeps as single tokens; the
    /// whitespace around them stays with the neighbouring text.
    fn split_specials<'t>(&self, text: &'t str) -> Vec<(&'t str, Option<u32>)> {
        let mut parts: Vec<(&'t str, Option<u32>)> = Vec::new();
        let mut plain_start = 0;
        let mut i = 0;
        while i < text.len() {
            let rest = &text[i..];
            match self
                .specials
                .iter()
                .find(|(s, _)| rest.starts_with(s.as_str()))
            {
                Some((special, id)) => {
                    if plain_start < i {
                        parts.push((&text[plain_start..i], None));
                    }
                    parts.push(("", Some(*id)));
                    i += special.len();
                    plain_start = i;
                }
                None => i += rest.chars().next().map_or(1, char::len_utf8),
            }
        }
        if plain_start < text.len() {
            parts.push((&text[plain_start..], None));
        }
        parts
    }

    fn encode_plain(&self, text: &str) -> Vec<u32> {
        let (code, text) = split_language_code(text);
        let mut ids: Vec<u32> = code.map(|c| self.piece_id(c)).into_iter().collect();
        ids.extend(self.source.encode(&text).iter().map(|p| self.piece_id(p)));
        ids
    }

    fn piece_id(&self, piece: &str) -> u32 {
        self.source_ids.get(piece).copied().unwrap_or(self.unk_id)
    }

    /// Number of source tokens, `</s>` included.
    pub fn count(&self, text: &str) -> usize {
        self.encode(text).len()
    }

    /// English text of target ids, as `decode(ids, skip_special_tokens=True)` gives it.
    pub fn decode(&self, ids: &[u32]) -> String {
        let pieces: Vec<&str> = ids
            .iter()
            .filter(|&&id| id != self.eos_id && id != self.unk_id && id != self.pad_id)
            .filter_map(|id| self.target_pieces.get(id).map(String::as_str))
            .collect();
        self.target.decode_pieces(&pieces).trim().to_string()
    }
}

/// Multilingual Marian models take a target language code such as `>>eng<<` first; the
/// reference tokenizer keeps a leading code as one token and deletes codes elsewhere.
fn split_language_code(text: &str) -> (Option<&str>, std::borrow::Cow<'_, str>) {
    let mut code = None;
    let mut out = String::new();
    let mut changed = false;
    for (n, line) in text.split_inclusive('\n').enumerate() {
        // `>>.+<<` without DOTALL: the longest span on one line.
        let (body, newline) = match line.strip_suffix('\n') {
            Some(b) => (b, "\n"),
            None => (line, ""),
        };
        let span = body.find(">>").and_then(|start| {
            body.rfind("<<")
                .filter(|&end| end > start + 2)
                .map(|end| (start, end + 2))
        });
        match span {
            Some((start, end)) => {
                if n == 0 && start == 0 {
                    code = Some(&text[..end]);
                }
                out.push_str(&body[..start]);
                out.push_str(&body[end..]);
                changed = true;
            }
            None => out.push_str(body),
        }
        out.push_str(newline);
    }
    if changed {
        (code, std::borrow::Cow::Owned(out))
    } else {
        (None, std::borrow::Cow::Borrowed(text))
    }
}

/// `config.json` fields that set decoding defaults (older models keep them there).
#[derive(Debug, Default, Deserialize)]
struct DecodingFields {
    max_length: Option<usize>,
    num_beams: Option<usize>,
    length_penalty: Option<f64>,
    early_stopping: Option<serde_json::Value>,
    bad_words_ids: Option<Vec<Vec<u32>>>,
    forced_eos_token_id: Option<u32>,
    min_length: Option<usize>,
    decoder_start_token_id: Option<u32>,
    eos_token_id: Option<serde_json::Value>,
    pad_token_id: Option<u32>,
}

impl DecodingFields {
    /// `self` where set, `other` otherwise.
    fn or(self, other: DecodingFields) -> DecodingFields {
        DecodingFields {
            max_length: self.max_length.or(other.max_length),
            num_beams: self.num_beams.or(other.num_beams),
            length_penalty: self.length_penalty.or(other.length_penalty),
            early_stopping: self.early_stopping.or(other.early_stopping),
            bad_words_ids: self.bad_words_ids.or(other.bad_words_ids),
            forced_eos_token_id: self.forced_eos_token_id.or(other.forced_eos_token_id),
            min_length: self.min_length.or(other.min_length),
            decoder_start_token_id: self.decoder_start_token_id.or(other.decoder_start_token_id),
            eos_token_id: self.eos_token_id.or(other.eos_token_id),
            pad_token_id: self.pad_token_id.or(other.pad_token_id),
        }
    }
}

fn generation_config(dir: &Path, cfg: &Config) -> Result<GenerationConfig, ModelError> {
    let from_config: DecodingFields = read_json(&dir.join("config.json"), dir)?;
    let path = dir.join("generation_config.json");
    let fields = if path.is_file() {
        read_json::<DecodingFields>(&path, dir)?.or(from_config)
    } else {
        from_config
    };
    let eos_token_id = match &fields.eos_token_id {
        Some(serde_json::Value::Number(n)) => n.as_u64().map(|n| n as u32),
        Some(serde_json::Value::Array(a)) => a.first().and_then(|n| n.as_u64()).map(|n| n as u32),
        _ => None,
    }
    .unwrap_or(cfg.eos_token_id);
    let early_stopping = match &fields.early_stopping {
        Some(serde_json::Value::Bool(true)) => EarlyStopping::Always,
        Some(serde_json::Value::String(s)) if s == "never" => EarlyStopping::Never,
        _ => EarlyStopping::Heuristic,
    };
    let mut bad_words = Vec::new();
    for word in fields.bad_words_ids.unwrap_or_default() {
        match word.as_slice() {
            [token] => bad_words.push(*token),
            _ => tracing::warn!(
                "{}: multi-token bad_words_ids are not applied",
                dir.display()
            ),
        }
    }
    Ok(GenerationConfig {
        // transformers' own default when neither file sets one.
        max_length: fields
            .max_length
            .unwrap_or(20)
            .min(cfg.max_position_embeddings),
        num_beams: fields.num_beams.unwrap_or(1).max(1),
        length_penalty: fields.length_penalty.unwrap_or(1.0),
        early_stopping,
        decoder_start_token_id: fields
            .decoder_start_token_id
            .unwrap_or(cfg.decoder_start_token_id),
        eos_token_id,
        pad_token_id: fields.pad_token_id.unwrap_or(cfg.pad_token_id),
        bad_words,
        forced_eos_token_id: fields.forced_eos_token_id,
        min_length: fields.min_length.unwrap_or(0),
    })
}

/// One translated sentence.
#[derive(Debug, Clone, PartialEq)]
pub struct MtOutput {
    pub text: String,
    /// Target ids, end-of-sentence included when produced.
    pub tokens: Vec<u32>,
    pub source_tokens: usize,
    /// The output reached the model's maximum length.
    pub hit_cap: bool,
}

/// A loaded OPUS-MT model, ready to translate batches of sentences.
pub struct OpusMt {
    dir: PathBuf,
    tokenizer: MarianTokenizer,
    model: Marian,
    generation: GenerationConfig,
    max_source_tokens: usize,
    batch_size: usize,
    throughput: Throughput,
}

impl OpusMt {
    pub fn load(dir: &Path, device: &Device) -> Result<Self, ModelError> {
        if !dir.is_dir() {
            return Err(bad_dir(dir, "not a directory"));
        }
        let cfg: Config = read_json(&dir.join("config.json"), dir)?;
        if let Some(reason) = cfg.unsupported() {
            return Err(bad_dir(dir, reason));
        }
        let generation = generation_config(dir, &cfg)?;
        let tokenizer = MarianTokenizer::load(dir)?;
        let weights = weights_file(dir)
            .ok_or_else(|| bad_dir(dir, "no model.safetensors or pytorch_model.bin"))?;
        let vb = if weights.extension().is_some_and(|e| e == "safetensors") {
            // SAFETY: the file is mapped read-only and not modified while the model lives.
            unsafe { VarBuilder::from_mmaped_safetensors(&[&weights], DType::F32, device) }
        } else {
            VarBuilder::from_pth(&weights, DType::F32, device)
        }
        .map_err(|e| bad_dir(dir, format!("{}: {e}", file_name(&weights))))?;
        let model = Marian::new(&cfg, vb)
            .map_err(|e| bad_dir(dir, format!("{}: {e}", file_name(&weights))))?;
        Ok(Self {
            dir: dir.to_path_buf(),
            tokenizer,
            model,
            generation,
            max_source_tokens: cfg.max_position_embeddings,
            batch_size: 8,
            throughput: Throughput::default(),
        })
    }

    /// Sentences encoded and decoded together (at least 1).
    pub fn with_batch_size(mut self, batch_size: usize) -> Self {
        self.batch_size = batch_size.max(1);
        self
    }

    pub fn batch_size(&self) -> usize {
        self.batch_size
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn tokenizer(&self) -> &MarianTokenizer {
        &self.tokenizer
    }

    pub fn model(&self) -> &Marian {
        &self.model
    }

    /// The decoding settings from the model's files.
    pub fn generation(&self) -> &GenerationConfig {
        &self.generation
    }

    pub fn throughput(&self) -> Throughput {
        self.throughput
    }

    /// Source ids for `text`, cut to the model's positions (`</s>` kept last).
    fn source_ids(&self, text: &str) -> Vec<u32> {
        let mut ids = self.tokenizer.encode(text);
        if ids.len() > self.max_source_tokens {
            tracing::warn!(
                "a segment of {} tokens was cut to the model's {} positions",
                ids.len(),
                self.max_source_tokens
            );
            ids.truncate(self.max_source_tokens - 1);
            ids.push(self.tokenizer.eos_id);
        }
        ids
    }

    /// Translates `texts` with `generation`, `batch_size` sentences at a time (longest
    /// first, so each batch pads little); results in input order. `on_done(i, result)`
    /// is called as each one is ready.
    pub fn translate_batch(
        &mut self,
        texts: &[&str],
        generation: &GenerationConfig,
        on_done: super::OnDone<MtOutput>,
    ) -> Vec<Result<MtOutput, ModelError>> {
        let encoded: Vec<Vec<u32>> = texts.iter().map(|t| self.source_ids(t)).collect();
        let mut order: Vec<usize> = (0..texts.len()).collect();
        order.sort_by_key(|&i| std::cmp::Reverse(encoded[i].len()));
        let mut results: Vec<Option<Result<MtOutput, ModelError>>> =
            texts.iter().map(|_| None).collect();
        for chunk in order.chunks(self.batch_size) {
            let batch: Vec<&[u32]> = chunk.iter().map(|&i| encoded[i].as_slice()).collect();
            match self.timed_decode(&batch, generation) {
                Ok(outputs) => {
                    for (&i, out) in chunk.iter().zip(outputs) {
                        let result = Ok(MtOutput {
                            text: self.tokenizer.decode(&out.tokens),
                            source_tokens: encoded[i].len(),
                            tokens: out.tokens,
                            hit_cap: out.hit_cap,
                        });
                        on_done(i, &result);
                        results[i] = Some(result);
                    }
                }
                Err(e) => {
                    for &i in chunk {
                        let result = Err(e.clone());
                        on_done(i, &result);
                        results[i] = Some(result);
                    }
                }
            }
        }
        results
            .into_iter()
            .map(|r| r.unwrap_or_else(|| Err(ModelError::Inference("not translated".into()))))
            .collect()
    }

    /// Encodes and decodes one batch of source ids.
    pub fn decode_ids(
        &self,
        batch: &[&[u32]],
        generation: &GenerationConfig,
    ) -> Result<Vec<Decoded>, ModelError> {
        if batch.is_empty() {
            return Ok(Vec::new());
        }
        let (ids, mask) = self.pad(batch)?;
        let encoded = self.model.encode(&ids, &mask)?;
        self.search(&encoded, batch.len(), generation)
    }

    /// [`OpusMt::decode_ids`], with the encoder's time counted as prompt time.
    fn timed_decode(
        &mut self,
        batch: &[&[u32]],
        generation: &GenerationConfig,
    ) -> Result<Vec<Decoded>, ModelError> {
        let started = Instant::now();
        let (ids, mask) = self.pad(batch)?;
        let encoded = self.model.encode(&ids, &mask)?;
        // Reading one value waits for the encoder on devices that run asynchronously.
        encoded.hidden.flatten_all()?.get(0)?.to_scalar::<f32>()?;
        let encoded_at = Instant::now();
        let outputs = self.search(&encoded, batch.len(), generation)?;
        self.throughput.prompt_tokens += batch.iter().map(|b| b.len()).sum::<usize>();
        self.throughput.prompt_seconds += (encoded_at - started).as_secs_f64();
        self.throughput.generated_tokens += outputs.iter().map(|o| o.tokens.len()).sum::<usize>();
        self.throughput.decode_seconds += encoded_at.elapsed().as_secs_f64();
        Ok(outputs)
    }

    fn search(
        &self,
        encoded: &Encoded,
        sentences: usize,
        generation: &GenerationConfig,
    ) -> Result<Vec<Decoded>, ModelError> {
        if sentences == 0 {
            return Ok(Vec::new());
        }
        let state = self.model.start_decoder(encoded)?;
        let mut step = MarianStep {
            model: &self.model,
            state,
        };
        generation.decode(&mut step, sentences)
    }

    /// A (batch, longest) id tensor padded with `<pad>`, and its 1/0 mask.
    pub fn pad(&self, batch: &[&[u32]]) -> Result<(Tensor, Tensor), ModelError> {
        let longest = batch.iter().map(|b| b.len()).max().unwrap_or(0);
        let mut ids = Vec::with_capacity(batch.len() * longest);
        let mut mask = Vec::with_capacity(batch.len() * longest);
        for row in batch {
            ids.extend_from_slice(row);
            ids.extend(std::iter::repeat_n(
                self.tokenizer.pad_id,
                longest - row.len(),
            ));
            mask.extend(std::iter::repeat_n(1u32, row.len()));
            mask.extend(std::iter::repeat_n(0u32, longest - row.len()));
        }
        let device = self.model.device();
        Ok((
            Tensor::from_vec(ids, (batch.len(), longest), device)?,
            Tensor::from_vec(mask, (batch.len(), longest), device)?,
        ))
    }
}

/// The Marian decoder as the search sees it.
struct MarianStep<'m> {
    model: &'m Marian,
    state: DecoderState,
}

impl StepDecoder for MarianStep<'_> {
    fn step(&mut self, tokens: &[u32]) -> Result<Tensor, ModelError> {
        Ok(self.model.decode_step(tokens, &mut self.state)?)
    }

    fn select(&mut self, rows: &[u32]) -> Result<(), ModelError> {
        Ok(self.state.select(rows)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn language_codes_are_kept_first_and_dropped_elsewhere() {
        let (code, text) = split_language_code(">>eng<< مرحبا");
        assert_eq!(code, Some(">>eng<<"));
        assert_eq!(text, " مرحبا");
        let (code, text) = split_language_code("مرحبا >>fra<< بكم");
        assert_eq!(code, None);
        assert_eq!(text, "مرحبا  بكم");
        let (code, text) = split_language_code("لا رمز هنا");
        assert_eq!(code, None);
        assert_eq!(text, "لا رمز هنا");
    }
}
