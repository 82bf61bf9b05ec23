//! Marian encoder-decoder transformers (OPUS-MT), batched.
//!
//! Same weights and arithmetic as Hugging Face's `MarianMTModel` (post-norm layers,
//! sinusoidal positions, scaled embeddings, tied output projection plus
//! `final_logits_bias`), built for batches: the encoder takes padded sentences with a
//! padding mask, and the decoder advances every row one token per step against its own
//! key/value cache. Rows can be reordered or dropped between steps (beam search, finished
//! sentences) with [`DecoderState::select`].
//!
//! candle-transformers ships a Marian model too, but it encodes one sentence at a time
//! without a padding mask and recomputes the cross-attention keys at every step.

use candle_core::{DType, Device, Module, Tensor};
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
        if self.d_model % self.encoder_attention_heads != 0
            || self.d_model % self.decoder_attention_heads != 0
        {
            return Some("d_model is not a multiple of the attention heads".into());
        }
        None
    }
}

/// The sinusoidal position table: sines of every even frequency in the first half, cosines
/// of the odd ones in the second, computed in f64 like the reference before rounding.
fn sinusoidal_positions(positions: usize, dim: usize, device: &Device) -> candle_core::Result<Tensor> {
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

fn linear(input: usize, output: usize, vb: VarBuilder) -> candle_core::Result<Linear> {
    let weight = vb.get((output, input), "weight")?;
    let bias = vb.get(output, "bias")?;
    Ok(Linear::new(weight, Some(bias)))
}

fn layer_norm(dim: usize, vb: VarBuilder) -> candle_core::Result<LayerNorm> {
    let weight = vb.get(dim, "weight")?;
    let bias = vb.get(dim, "bias")?;
    Ok(LayerNorm::new(weight, bias, 1e-5))
}

/// An additive attention bias from a (batch, source) mask of 1 (token) and 0 (padding):
/// 0 for tokens, the lowest f32 for padding, shaped (batch, 1, 1, source).
pub fn padding_bias(mask: &Tensor) -> candle_core::Result<Tensor> {
    let (b, s) = mask.dims2()?;
    let mask = mask.to_dtype(DType::F32)?;
    let bias = ((mask.ones_like()? - mask)? * f64::from(f32::MIN))?;
    bias.reshape((b, 1, 1, s))
}

struct Attention {
    q: Linear,
    k: Linear,
    v: Linear,
    out: Linear,
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

    fn keys_values(&self, x: &Tensor) -> candle_core::Result<(Tensor, Tensor)> {
        Ok((
            self.split_heads(&self.k.forward(x)?)?,
            self.split_heads(&self.v.forward(x)?)?,
        ))
    }

    /// Attention of `x`'s queries over `keys`/`values` (already split into heads), with an
    /// optional additive `bias` broadcast over (batch, heads, queries, keys).
    fn attend(
        &self,
        x: &Tensor,
        keys: &Tensor,
        values: &Tensor,
        bias: Option<&Tensor>,
    ) -> candle_core::Result<Tensor> {
        let (b, t, dim) = x.dims3()?;
        let q = self.split_heads(&(self.q.forward(x)? * self.scaling)?)?;
        let scores = q.matmul(&keys.t()?)?;
        let scores = match bias {
            Some(bias) => scores.broadcast_add(bias)?,
            None => scores,
        };
        let weights = candle_nn::ops::softmax_last_dim(&scores)?;
        let context = weights.matmul(values)?;
        let context = context.transpose(1, 2)?.reshape((b, t, dim))?;
        self.out.forward(&context)
    }
}

struct FeedForward {
    fc1: Linear,
    fc2: Linear,
    activation: Activation,
}

impl FeedForward {
    fn new(dim: usize, hidden: usize, activation: Activation, vb: &VarBuilder) -> candle_core::Result<Self> {
        Ok(Self {
            fc1: linear(dim, hidden, vb.pp("fc1"))?,
            fc2: linear(hidden, dim, vb.pp("fc2"))?,
            activation,
        })
    }

    fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        self.fc2.forward(&self.activation.forward(&self.fc1.forward(x)?)?)
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

    fn forward(&self, x: &Tensor, bias: &Tensor) -> candle_core::Result<Tensor> {
        let (k, v) = self.self_attn.keys_values(x)?;
        let x = (x + self.self_attn.attend(x, &k, &v, Some(bias))?)?;
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

/// One decoder layer's keys and values: its own past tokens, and the encoder output.
struct LayerCache {
    self_keys: Option<Tensor>,
    self_values: Option<Tensor>,
    cross_keys: Tensor,
    cross_values: Tensor,
}

/// Everything the decoder keeps between steps for a batch of rows.
pub struct DecoderState {
    layers: Vec<LayerCache>,
    /// (rows, 1, 1, source) additive padding bias for cross-attention.
    cross_bias: Tensor,
    /// Tokens decoded so far per row (the same for every row).
    position: usize,
}

impl DecoderState {
    pub fn rows(&self) -> candle_core::Result<usize> {
        self.cross_bias.dim(0)
    }

    /// Keeps the rows at `rows` (in that order, repeats allowed): beam reordering and
    /// dropping finished sentences.
    pub fn select(&mut self, rows: &[u32]) -> candle_core::Result<()> {
        let device = self.cross_bias.device().clone();
        let index = Tensor::new(rows, &device)?;
        let pick = |t: &Tensor| t.index_select(&index, 0);
        for layer in &mut self.layers {
            layer.self_keys = layer.self_keys.as_ref().map(pick).transpose()?;
            layer.self_values = layer.self_values.as_ref().map(pick).transpose()?;
            layer.cross_keys = pick(&layer.cross_keys)?;
            layer.cross_values = pick(&layer.cross_values)?;
        }
        self.cross_bias = pick(&self.cross_bias)?;
        Ok(())
    }
}

/// The encoder's output for a padded batch.
pub struct Encoded {
    /// (batch, source, d_model)
    pub hidden: Tensor,
    /// (batch, source): 1 for tokens, 0 for padding.
    pub mask: Tensor,
}

pub struct Marian {
    encoder_embed: Embedding,
    decoder_embed: Embedding,
    positions: Tensor,
    embed_scale: f64,
    encoder: Vec<EncoderLayer>,
    decoder: Vec<DecoderLayer>,
    lm_head: Linear,
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
            lm_head: Linear::new(lm_head_weights, None),
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

    /// Encodes a padded batch: `ids` and `mask` are (batch, source).
    pub fn encode(&self, ids: &Tensor, mask: &Tensor) -> candle_core::Result<Encoded> {
        let (_, len) = ids.dims2()?;
        if len > self.max_positions()? {
            candle_core::bail!(
                "{len} source tokens exceed the model's {} positions",
                self.max_positions()?
            );
        }
        let x = (self.encoder_embed.forward(ids)? * self.embed_scale)?;
        let mut x = x.broadcast_add(&self.positions.narrow(0, 0, len)?.unsqueeze(0)?)?;
        let bias = padding_bias(mask)?;
        for layer in &self.encoder {
            x = layer.forward(&x, &bias)?;
        }
        Ok(Encoded {
            hidden: x,
            mask: mask.clone(),
        })
    }

    /// A fresh decoder state for every encoded sentence (one row each).
    pub fn start_decoder(&self, encoded: &Encoded) -> candle_core::Result<DecoderState> {
        let layers = self
            .decoder
            .iter()
            .map(|layer| {
                let (cross_keys, cross_values) = layer.cross_attn.keys_values(&encoded.hidden)?;
                Ok(LayerCache {
                    self_keys: None,
                    self_values: None,
                    cross_keys,
                    cross_values,
                })
            })
            .collect::<candle_core::Result<_>>()?;
        Ok(DecoderState {
            layers,
            cross_bias: padding_bias(&encoded.mask)?,
            position: 0,
        })
    }

    /// Feeds one token per row and returns each row's next-token logits, (rows, vocab).
    pub fn decode_step(&self, tokens: &[u32], state: &mut DecoderState) -> candle_core::Result<Tensor> {
        let rows = tokens.len();
        if state.position >= self.max_positions()? {
            candle_core::bail!("the decoder ran past its {} positions", self.max_positions()?);
        }
        let ids = Tensor::from_slice(tokens, (rows, 1), &self.device)?;
        let x = (self.decoder_embed.forward(&ids)? * self.embed_scale)?;
        let position = self.positions.narrow(0, state.position, 1)?.unsqueeze(0)?;
        let mut x = x.broadcast_add(&position)?;
        for (layer, cache) in self.decoder.iter().zip(&mut state.layers) {
            let (k, v) = layer.self_attn.keys_values(&x)?;
            let (k, v) = match (&cache.self_keys, &cache.self_values) {
                (Some(pk), Some(pv)) => (Tensor::cat(&[pk, &k], 2)?, Tensor::cat(&[pv, &v], 2)?),
                _ => (k, v),
            };
            let attended = layer.self_attn.attend(&x, &k, &v, None)?;
            cache.self_keys = Some(k);
            cache.self_values = Some(v);
            x = layer.self_attn_norm.forward(&(x + attended)?)?;
            let attended = layer.cross_attn.attend(
                &x,
                &cache.cross_keys,
                &cache.cross_values,
                Some(&state.cross_bias),
            )?;
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
