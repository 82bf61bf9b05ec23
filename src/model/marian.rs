//! Marian encoder-decoder transformers (OPUS-MT), batched.
//!
//! Same weights and arithmetic as Hugging Face's `MarianMTModel` (post-norm layers,
//! sinusoidal positions, scaled embeddings, tied output projection plus
//! `final_logits_bias`), built for batches: the encoder takes padded sentences, and the
//! decoder advances every row one token per step against its own key/value cache. Rows
//! can be reordered or dropped between steps (beam search, finished sentences) with
//! [`DecoderState::select`].
//!
//! A sentence's numbers do not depend on what else is in its batch, to the last bit:
//! attention over source tokens runs per sentence on its own length (padding is cut
//! away rather than masked, so no reduction ever spans a different length), and linear
//! layers never multiply a single row, for which candle's CPU matmul takes a different
//! kernel than for several.
//!
//! candle-transformers ships a Marian model too, but it encodes one sentence at a time
//! without a padding mask and recomputes the cross-attention keys at every step.

use candle_core::{DType, Device, IndexOp, Module, Tensor};
use candle_nn::{Activation, Embedding, LayerNorm, Linear, VarBuilder};

/// The model's shape, read from its `config.json`.
#[derive(Debug, Clone, serde::Deserialize)]
pub struct Config {
    #[serde(default)]
    pub model_type: String,
    pub vocab_size: usize,
    pub decoder_vocab_size: Option<usize>,
    pub d_model: usize,
    pub encoder_layers: usize,
    pub decoder_layers: usize,
    pub encoder_attention_heads: usize,
    pub decoder_attention_heads: usize,
    pub encoder_ffn_dim: usize,
    pub decoder_ffn_dim: usize,
    pub max_position_embeddings: usize,
    pub activation_function: Activation,
    #[serde(default)]
    pub scale_embedding: bool,
    #[serde(default = "yes")]
    pub share_encoder_decoder_embeddings: bool,
    #[serde(default)]
    pub normalize_before: bool,
    #[serde(default)]
    pub normalize_embedding: bool,
    #[serde(default)]
    pub add_final_layer_norm: bool,
    pub pad_token_id: u32,
    pub eos_token_id: u32,
    pub decoder_start_token_id: u32,
}

fn yes() -> bool {
    true
}

impl Config {
    pub fn target_vocab_size(&self) -> usize {
        self.decoder_vocab_size.unwrap_or(self.vocab_size)
    }

    /// Why this model cannot be run, if it cannot: the variants Hugging Face's Marian
    /// code accepts but OPUS-MT models never use.
    pub fn unsupported(&self) -> Option<String> {
        if !self.model_type.is_empty() && self.model_type != "marian" {
            return Some(format!(
                "model_type is {:?}, not \"marian\"",
                self.model_type
            ));
        }
        if self.normalize_before || self.normalize_embedding || self.add_final_layer_norm {
            return Some("pre-norm Marian variants are not supported".into());
        }
        if !self.d_model.is_multiple_of(self.encoder_attention_heads)
            || !self.d_model.is_multiple_of(self.decoder_attention_heads)
        {
            return Some("d_model is not a multiple of the attention heads".into());
        }
        None
    }
}

/// The sinusoidal position table: sines of every even frequency in the first half, cosines
/// of the odd ones in the second, computed in f64 like the reference before rounding.
fn sinusoidal_positions(
    positions: usize,
    dim: usize,
    device: &Device,
) -> candle_core::Result<Tensor> {
    let sentinel = dim.div_ceil(2);
    let mut table = vec![0f32; positions * dim];
    for pos in 0..positions {
        let row = &mut table[pos * dim..(pos + 1) * dim];
        for j in 0..dim {
            let angle = pos as f64 / 10000f64.powf((2 * (j / 2)) as f64 / dim as f64);
            if j % 2 == 0 {
                row[j / 2] = angle.sin() as f32;
            } else {
                row[sentinel + j / 2] = angle.cos() as f32;
            }
        }
    }
    Tensor::from_vec(table, (positions, dim), device)
}

/// A linear layer whose every output row is the same whatever other rows it is given.
///
/// candle's CPU matmul (the `gemm` crate) picks its kernel by shape: a matrix-vector
/// kernel for one row, a horizontal kernel when rows × outputs ≤ 256, and smaller
/// depth blocks when rows and outputs are both ≤ 64. Each computes a row with a different
/// order of additions, so a sentence's last bits would depend on its batch. Inputs
/// with fewer rows than every such threshold are padded with copies of their first row.
struct RowLinear {
    linear: Linear,
    min_rows: usize,
}

impl RowLinear {
    fn new(weight: Tensor, bias: Option<Tensor>) -> candle_core::Result<Self> {
        let (outputs, inputs) = weight.dims2()?;
        let mut min_rows = (256 / outputs.max(1) + 1).max(2);
        if outputs <= 64 && inputs > 512 {
            min_rows = 65;
        }
        Ok(Self {
            linear: Linear::new(weight, bias),
            min_rows,
        })
    }

    fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        let dims = x.dims().to_vec();
        let input = dims[dims.len() - 1];
        let rows = x.elem_count() / input.max(1);
        let flat = x.reshape((rows, input))?;
        let y = if rows < self.min_rows {
            let first = flat.narrow(0, 0, 1)?;
            let filler = first.repeat((self.min_rows - rows, 1))?;
            let padded = Tensor::cat(&[&flat, &filler], 0)?;
            self.linear.forward(&padded)?.narrow(0, 0, rows)?
        } else {
            self.linear.forward(&flat)?
        };
        let mut out_dims = dims;
        let last = out_dims.len() - 1;
        out_dims[last] = y.dim(1)?;
        y.reshape(out_dims)
    }
}

fn linear(input: usize, output: usize, vb: VarBuilder) -> candle_core::Result<RowLinear> {
    let weight = vb.get((output, input), "weight")?;
    let bias = vb.get(output, "bias")?;
    RowLinear::new(weight, Some(bias))
}

fn layer_norm(dim: usize, vb: VarBuilder) -> candle_core::Result<LayerNorm> {
    let weight = vb.get(dim, "weight")?;
    let bias = vb.get(dim, "bias")?;
    Ok(LayerNorm::new(weight, bias, 1e-5))
}

/// Softmax attention of (heads, queries, head_dim) over (heads, keys, head_dim).
fn attention(q: &Tensor, keys: &Tensor, values: &Tensor) -> candle_core::Result<Tensor> {
    let scores = q.matmul(&keys.t()?)?;
    candle_nn::ops::softmax_last_dim(&scores)?.matmul(values)
}

struct Attention {
    q: RowLinear,
    k: RowLinear,
    v: RowLinear,
    out: RowLinear,
    heads: usize,
    head_dim: usize,
    scaling: f64,
}

impl Attention {
    fn new(dim: usize, heads: usize, vb: VarBuilder) -> candle_core::Result<Self> {
        let head_dim = dim / heads;
        Ok(Self {
            q: linear(dim, dim, vb.pp("q_proj"))?,
            k: linear(dim, dim, vb.pp("k_proj"))?,
            v: linear(dim, dim, vb.pp("v_proj"))?,
            out: linear(dim, dim, vb.pp("out_proj"))?,
            heads,
            head_dim,
            scaling: (head_dim as f64).powf(-0.5),
        })
    }

    /// (batch, len, dim) → (batch, heads, len, head_dim)
    fn split_heads(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        let (b, t, _) = x.dims3()?;
        x.reshape((b, t, self.heads, self.head_dim))?
            .transpose(1, 2)?
            .contiguous()
    }

    /// Keys and values of each sentence's first `lengths[b]` positions, each
    /// (heads, length, head_dim).
    fn keys_values(
        &self,
        x: &Tensor,
        lengths: &[usize],
    ) -> candle_core::Result<Vec<(Tensor, Tensor)>> {
        let k = self.split_heads(&self.k.forward(x)?)?;
        let v = self.split_heads(&self.v.forward(x)?)?;
        lengths
            .iter()
            .enumerate()
            .map(|(b, &len)| {
                Ok((
                    k.i(b)?.narrow(1, 0, len)?.contiguous()?,
                    v.i(b)?.narrow(1, 0, len)?.contiguous()?,
                ))
            })
            .collect()
    }

    /// Encoder self-attention over a padded (batch, source, dim) input, each sentence on
    /// its own length; padding positions come out as zeros.
    fn encoder_self(&self, x: &Tensor, lengths: &[usize]) -> candle_core::Result<Tensor> {
        let (_, source, dim) = x.dims3()?;
        let q = self.split_heads(&(self.q.forward(x)? * self.scaling)?)?;
        let kv = self.keys_values(x, lengths)?;
        let mut sentences = Vec::with_capacity(lengths.len());
        for (b, (&len, (keys, values))) in lengths.iter().zip(&kv).enumerate() {
            let q = q.i(b)?.narrow(1, 0, len)?.contiguous()?;
            let context = attention(&q, keys, values)?
                .transpose(0, 1)?
                .reshape((len, dim))?;
            let context = if len < source {
                let padding =
                    Tensor::zeros((source - len, dim), context.dtype(), context.device())?;
                Tensor::cat(&[&context, &padding], 0)?
            } else {
                context
            };
            sentences.push(context);
        }
        self.out.forward(&Tensor::stack(&sentences, 0)?)
    }

    /// Decoder self-attention of one new token per row, (rows, 1, dim), over `keys` and
    /// `values`, (rows, heads, steps, head_dim).
    fn decoder_self(
        &self,
        x: &Tensor,
        keys: &Tensor,
        values: &Tensor,
    ) -> candle_core::Result<Tensor> {
        let (rows, _, dim) = x.dims3()?;
        let q = self.split_heads(&(self.q.forward(x)? * self.scaling)?)?;
        let context = q.matmul(&keys.t()?)?;
        let context = candle_nn::ops::softmax_last_dim(&context)?.matmul(values)?;
        self.out
            .forward(&context.transpose(1, 2)?.reshape((rows, 1, dim))?)
    }

    /// Cross-attention of one token per row, (rows, 1, dim), over the source of the
    /// row's sentence; a sentence's rows (its beams) are adjacent and attend together.
    fn cross(
        &self,
        x: &Tensor,
        sources: &[(Tensor, Tensor)],
        row_sentence: &[usize],
    ) -> candle_core::Result<Tensor> {
        let (rows, _, dim) = x.dims3()?;
        let q = (self.q.forward(x)? * self.scaling)?.reshape((rows, self.heads, self.head_dim))?;
        let mut contexts = Vec::new();
        let mut start = 0;
        while start < rows {
            let sentence = row_sentence[start];
            let n = row_sentence[start..]
                .iter()
                .take_while(|&&s| s == sentence)
                .count();
            let (keys, values) = &sources[sentence];
            let q = q.narrow(0, start, n)?.transpose(0, 1)?.contiguous()?;
            let context = attention(&q, keys, values)?
                .transpose(0, 1)?
                .reshape((n, dim))?;
            contexts.push(context);
            start += n;
        }
        self.out
            .forward(&Tensor::cat(&contexts, 0)?.reshape((rows, 1, dim))?)
    }
}

struct FeedForward {
    fc1: RowLinear,
    fc2: RowLinear,
    activation: Activation,
}

impl FeedForward {
    fn new(
        dim: usize,
        hidden: usize,
        activation: Activation,
        vb: &VarBuilder,
    ) -> candle_core::Result<Self> {
        Ok(Self {
            fc1: linear(dim, hidden, vb.pp("fc1"))?,
            fc2: linear(hidden, dim, vb.pp("fc2"))?,
            activation,
        })
    }

    fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        self.fc2
            .forward(&self.activation.forward(&self.fc1.forward(x)?)?)
    }
}

struct EncoderLayer {
    self_attn: Attention,
    self_attn_norm: LayerNorm,
    ffn: FeedForward,
    final_norm: LayerNorm,
}

impl EncoderLayer {
    fn new(cfg: &Config, vb: VarBuilder) -> candle_core::Result<Self> {
        let d = cfg.d_model;
        Ok(Self {
            self_attn: Attention::new(d, cfg.encoder_attention_heads, vb.pp("self_attn"))?,
            self_attn_norm: layer_norm(d, vb.pp("self_attn_layer_norm"))?,
            ffn: FeedForward::new(d, cfg.encoder_ffn_dim, cfg.activation_function, &vb)?,
            final_norm: layer_norm(d, vb.pp("final_layer_norm"))?,
        })
    }

    fn forward(&self, x: &Tensor, lengths: &[usize]) -> candle_core::Result<Tensor> {
        let x = (x + self.self_attn.encoder_self(x, lengths)?)?;
        let x = self.self_attn_norm.forward(&x)?;
        let x = (&x + self.ffn.forward(&x)?)?;
        self.final_norm.forward(&x)
    }
}

struct DecoderLayer {
    self_attn: Attention,
    self_attn_norm: LayerNorm,
    cross_attn: Attention,
    cross_attn_norm: LayerNorm,
    ffn: FeedForward,
    final_norm: LayerNorm,
}

impl DecoderLayer {
    fn new(cfg: &Config, vb: VarBuilder) -> candle_core::Result<Self> {
        let d = cfg.d_model;
        let heads = cfg.decoder_attention_heads;
        Ok(Self {
            self_attn: Attention::new(d, heads, vb.pp("self_attn"))?,
            self_attn_norm: layer_norm(d, vb.pp("self_attn_layer_norm"))?,
            cross_attn: Attention::new(d, heads, vb.pp("encoder_attn"))?,
            cross_attn_norm: layer_norm(d, vb.pp("encoder_attn_layer_norm"))?,
            ffn: FeedForward::new(d, cfg.decoder_ffn_dim, cfg.activation_function, &vb)?,
            final_norm: layer_norm(d, vb.pp("final_layer_norm"))?,
        })
    }
}

/// One decoder layer's keys and values: each row's past tokens, and each sentence's
/// encoder output.
struct LayerCache {
    self_keys: Option<Tensor>,
    self_values: Option<Tensor>,
    /// Per sentence: (heads, source length, head_dim) keys and values.
    sources: Vec<(Tensor, Tensor)>,
}

/// Everything the decoder keeps between steps for a batch of rows.
pub struct DecoderState {
    layers: Vec<LayerCache>,
    /// The sentence each row decodes.
    row_sentence: Vec<usize>,
    /// Tokens decoded so far per row (the same for every row).
    position: usize,
}

impl DecoderState {
    pub fn rows(&self) -> usize {
        self.row_sentence.len()
    }

    /// Keeps the rows at `rows` (in that order, repeats allowed): beam reordering and
    /// dropping finished sentences.
    pub fn select(&mut self, rows: &[u32]) -> candle_core::Result<()> {
        let row_sentence = rows
            .iter()
            .map(|&r| {
                self.row_sentence
                    .get(r as usize)
                    .copied()
                    .ok_or_else(|| candle_core::Error::Msg(format!("no decoder row {r}")))
            })
            .collect::<candle_core::Result<Vec<usize>>>()?;
        if let Some(first) = self.layers.first().and_then(|l| l.self_keys.as_ref()) {
            let index = Tensor::new(rows, first.device())?;
            for layer in &mut self.layers {
                let pick = |t: &Tensor| t.index_select(&index, 0);
                layer.self_keys = layer.self_keys.as_ref().map(pick).transpose()?;
                layer.self_values = layer.self_values.as_ref().map(pick).transpose()?;
            }
        }
        self.row_sentence = row_sentence;
        Ok(())
    }
}

/// The encoder's output for a padded batch.
pub struct Encoded {
    /// (batch, source, d_model); positions past a sentence's length are padding.
    pub hidden: Tensor,
    /// Tokens per sentence.
    pub lengths: Vec<usize>,
}

pub struct Marian {
    encoder_embed: Embedding,
    decoder_embed: Embedding,
    positions: Tensor,
    embed_scale: f64,
    encoder: Vec<EncoderLayer>,
    decoder: Vec<DecoderLayer>,
    lm_head: RowLinear,
    final_logits_bias: Tensor,
    device: Device,
}

impl Marian {
    pub fn new(cfg: &Config, vb: VarBuilder) -> candle_core::Result<Self> {
        if let Some(reason) = cfg.unsupported() {
            candle_core::bail!("{reason}");
        }
        let d = cfg.d_model;
        let target_vocab = cfg.target_vocab_size();
        let m = vb.pp("model");
        // Tied weights may be stored under any one of their names: the hub's safetensors
        // files keep one copy, pytorch_model.bin files keep all.
        let first_of = |names: &[&str], shape: (usize, usize)| -> candle_core::Result<Tensor> {
            for name in names {
                if vb.contains_tensor(name) {
                    return vb.get(shape, name);
                }
            }
            vb.get(shape, names[0])
        };
        let encoder_weights = first_of(
            &[
                "model.shared.weight",
                "model.encoder.embed_tokens.weight",
                "model.decoder.embed_tokens.weight",
                "lm_head.weight",
            ],
            (cfg.vocab_size, d),
        )?;
        let decoder_weights = if cfg.share_encoder_decoder_embeddings {
            encoder_weights.clone()
        } else {
            first_of(
                &["model.decoder.embed_tokens.weight", "lm_head.weight"],
                (target_vocab, d),
            )?
        };
        let lm_head_weights = if vb.contains_tensor("lm_head.weight") {
            vb.get((target_vocab, d), "lm_head.weight")?
        } else {
            decoder_weights.clone()
        };
        // Not stored in current files (and identical where older files store it).
        let positions = sinusoidal_positions(cfg.max_position_embeddings, d, vb.device())?;
        let encoder = (0..cfg.encoder_layers)
            .map(|i| EncoderLayer::new(cfg, m.pp("encoder.layers").pp(i)))
            .collect::<candle_core::Result<_>>()?;
        let decoder = (0..cfg.decoder_layers)
            .map(|i| DecoderLayer::new(cfg, m.pp("decoder.layers").pp(i)))
            .collect::<candle_core::Result<_>>()?;
        let final_logits_bias = if vb.contains_tensor("final_logits_bias") {
            vb.get((1, target_vocab), "final_logits_bias")?
        } else {
            Tensor::zeros((1, target_vocab), DType::F32, vb.device())?
        };
        Ok(Self {
            encoder_embed: Embedding::new(encoder_weights, d),
            decoder_embed: Embedding::new(decoder_weights, d),
            positions,
            embed_scale: if cfg.scale_embedding {
                (d as f64).sqrt()
            } else {
                1.0
            },
            encoder,
            decoder,
            lm_head: RowLinear::new(lm_head_weights, None)?,
            final_logits_bias,
            device: vb.device().clone(),
        })
    }

    pub fn device(&self) -> &Device {
        &self.device
    }

    fn max_positions(&self) -> candle_core::Result<usize> {
        self.positions.dim(0)
    }

    /// Encodes a padded batch: `ids` and `mask` (1 for tokens, 0 for padding, which
    /// must come last) are (batch, source).
    pub fn encode(&self, ids: &Tensor, mask: &Tensor) -> candle_core::Result<Encoded> {
        let (_, len) = ids.dims2()?;
        let lengths: Vec<usize> = mask
            .to_dtype(DType::F32)?
            .sum(1)?
            .to_vec1::<f32>()?
            .into_iter()
            .map(|n| n as usize)
            .collect();
        if len > self.max_positions()? {
            candle_core::bail!(
                "{len} source tokens exceed the model's {} positions",
                self.max_positions()?
            );
        }
        let x = (self.encoder_embed.forward(ids)? * self.embed_scale)?;
        let mut x = x.broadcast_add(&self.positions.narrow(0, 0, len)?.unsqueeze(0)?)?;
        for layer in &self.encoder {
            x = layer.forward(&x, &lengths)?;
        }
        Ok(Encoded { hidden: x, lengths })
    }

    /// A fresh decoder state for every encoded sentence (one row each).
    pub fn start_decoder(&self, encoded: &Encoded) -> candle_core::Result<DecoderState> {
        let layers = self
            .decoder
            .iter()
            .map(|layer| {
                Ok(LayerCache {
                    self_keys: None,
                    self_values: None,
                    sources: layer
                        .cross_attn
                        .keys_values(&encoded.hidden, &encoded.lengths)?,
                })
            })
            .collect::<candle_core::Result<_>>()?;
        Ok(DecoderState {
            layers,
            row_sentence: (0..encoded.lengths.len()).collect(),
            position: 0,
        })
    }

    /// Feeds one token per row and returns each row's next-token logits, (rows, vocab).
    pub fn decode_step(
        &self,
        tokens: &[u32],
        state: &mut DecoderState,
    ) -> candle_core::Result<Tensor> {
        let rows = tokens.len();
        if rows != state.rows() {
            candle_core::bail!("{rows} tokens for {} decoder rows", state.rows());
        }
        if state.position >= self.max_positions()? {
            candle_core::bail!(
                "the decoder ran past its {} positions",
                self.max_positions()?
            );
        }
        let ids = Tensor::from_slice(tokens, (rows, 1), &self.device)?;
        let x = (self.decoder_embed.forward(&ids)? * self.embed_scale)?;
        let position = self.positions.narrow(0, state.position, 1)?.unsqueeze(0)?;
        let mut x = x.broadcast_add(&position)?;
        for (layer, cache) in self.decoder.iter().zip(&mut state.layers) {
            let k = layer
                .self_attn
                .split_heads(&layer.self_attn.k.forward(&x)?)?;
            let v = layer
                .self_attn
                .split_heads(&layer.self_attn.v.forward(&x)?)?;
            let (k, v) = match (&cache.self_keys, &cache.self_values) {
                (Some(pk), Some(pv)) => (Tensor::cat(&[pk, &k], 2)?, Tensor::cat(&[pv, &v], 2)?),
                _ => (k, v),
            };
            let attended = layer.self_attn.decoder_self(&x, &k, &v)?;
            cache.self_keys = Some(k);
            cache.self_values = Some(v);
            x = layer.self_attn_norm.forward(&(x + attended)?)?;
            let attended = layer
                .cross_attn
                .cross(&x, &cache.sources, &state.row_sentence)?;
            x = layer.cross_attn_norm.forward(&(x + attended)?)?;
            x = layer.final_norm.forward(&(&x + layer.ffn.forward(&x)?)?)?;
        }
        state.position += 1;
        let x = x.squeeze(1)?;
        self.lm_head
            .forward(&x)?
            .broadcast_add(&self.final_logits_bias)?
            .contiguous()
    }
}
