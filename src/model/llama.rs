//! The Llama decoder over quantized GGUF weights, as llama.cpp stores the models of
//! architecture `llama`: Llama 3.x, Mistral 7B and Nemo, ALLaM and their fine-tunes.
//!
//! Written after candle-transformers' `quantized_llama` (same weights, same kernels, same
//! numerics) and, where that one stops, after llama.cpp: the head size may differ from
//! `hidden / heads` (Mistral Nemo), Llama 3.1's frequency factors (`rope_freqs.weight`)
//! divide the rotary frequencies, linear rope scaling divides positions, and a sliding
//! window is honoured when the file declares one. Rotary pairs are interleaved: llama.cpp's
//! converter permutes the query and key rows of these models into that order. The
//! key/value cache lives outside the model (see [`super::transformer`]).

use candle_core::quantized::gguf_file;

use candle_core::{Device, Module, Result, Tensor};
use candle_transformers::quantized_nn::RmsNorm;

use super::embeddings::{embeddings_and_output, TokenEmbeddings, WeightSource};
use super::transformer::{
    attend, Activation, AttentionShape, Batch, Chunk, Decoder, Linear, Mlp, Rope, RopeStyle,
};

/// Shape of the network, read from the GGUF's own `llama.*` metadata.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub head_count: usize,
    pub head_count_kv: usize,
    /// `llama.attention.key_length`, else `embedding_length / head_count`.
    pub head_dim: usize,
    pub embedding_length: usize,
    pub context_length: usize,
    pub block_count: usize,
    pub rms_norm_eps: f64,
    pub rope_freq_base: f32,
    /// Linear rope scaling: positions are divided by this (1 without scaling).
    pub rope_scale: f32,
    /// `llama.attention.sliding_window`, when the file has one.
    pub sliding_window: Option<usize>,
}

impl Config {
    pub fn from_gguf(content: &gguf_file::Content) -> Result<Self> {
        let md = |key: &str| content.metadata.get(&format!("llama.{key}"));
        let get = |key: &str| match md(key) {
            Some(v) => Ok(v),
            None => candle_core::bail!("llama.{key} is missing from the GGUF metadata"),
        };
        let optional_u32 = |key: &str| md(key).and_then(|v| v.to_u32().ok());
        if optional_u32("expert_count").unwrap_or(0) > 1 {
            candle_core::bail!("mixture-of-experts Llama models (Mixtral) are not supported");
        }
        let head_count = get("attention.head_count")?.to_u32()? as usize;
        let embedding_length = get("embedding_length")?.to_u32()? as usize;
        let head_dim = optional_u32("attention.key_length")
            .map_or(embedding_length / head_count, |d| d as usize);
        if let Some(value_dim) = optional_u32("attention.value_length") {
            if value_dim as usize != head_dim {
                candle_core::bail!(
                    "value heads of {value_dim} differ from key heads of {head_dim}"
                );
            }
        }
        // llama.cpp refuses a Llama whose rotation does not cover the whole head.
        if let Some(rope_dim) = optional_u32("rope.dimension_count") {
            if rope_dim as usize != head_dim {
                candle_core::bail!("rope over {rope_dim} dimensions of heads of {head_dim}");
            }
        }
        let scaling = md("rope.scaling.type").and_then(|v| v.to_string().ok());
        let factor = md("rope.scaling.factor")
            .or_else(|| md("rope.scale_linear"))
            .and_then(|v| v.to_f32().ok())
            .filter(|&f| f > 0.0);
        let rope_scale = match scaling.map(String::as_str) {
            None | Some("linear") => factor.unwrap_or(1.0),
            Some("none") => 1.0,
            Some(other) => candle_core::bail!("rope scaling {other:?} is not supported"),
        };
        Ok(Self {
            head_count,
            head_count_kv: get("attention.head_count_kv")?.to_u32()? as usize,
            head_dim,
            embedding_length,
            context_length: get("context_length")?.to_u32()? as usize,
            block_count: get("block_count")?.to_u32()? as usize,
            rms_norm_eps: get("attention.layer_norm_rms_epsilon")?.to_f32()? as f64,
            rope_freq_base: md("rope.freq_base")
                .and_then(|v| v.to_f32().ok())
                .unwrap_or(10_000.0),
            rope_scale,
            sliding_window: optional_u32("attention.sliding_window")
                .filter(|&w| w > 0)
                .map(|w| w as usize),
        })
    }
}

struct Layer {
    wq: Linear,
    wk: Linear,
    wv: Linear,
    wo: Linear,
    attention_norm: RmsNorm,
    mlp: Mlp,
    ffn_norm: RmsNorm,
}

pub struct Llama {
    cfg: Config,
    embeddings: TokenEmbeddings,
    layers: Vec<Layer>,
    norm: RmsNorm,
    output: Linear,
    rope: Rope,
    device: Device,
}

impl Llama {
    pub fn new<R: WeightSource>(
        cfg: Config,
        content: &gguf_file::Content,
        reader: &mut R,
        device: &Device,
    ) -> Result<Self> {
        // Llama 3.2 1B and 3B tie the output projection to the embeddings.
        let (embeddings, output) = embeddings_and_output(content, reader, device)?;
        let mut tensor = |name: &str| content.tensor(reader, name, device);
        let freq_factors = if content.tensor_infos.contains_key("rope_freqs.weight") {
            let factors: Vec<f32> = tensor("rope_freqs.weight")?
                .dequantize(&Device::Cpu)?
                .flatten_all()?
                .to_vec1()?;
            if factors.len() != cfg.head_dim / 2 {
                candle_core::bail!(
                    "rope_freqs.weight has {} factors for heads of {}",
                    factors.len(),
                    cfg.head_dim
                );
            }
            Some(factors)
        } else {
            None
        };
        let norm = RmsNorm::from_qtensor(tensor("output_norm.weight")?, cfg.rms_norm_eps)?;
        let mut layers = Vec::with_capacity(cfg.block_count);
        for i in 0..cfg.block_count {
            let mut w = |suffix: &str| tensor(&format!("blk.{i}.{suffix}"));
            layers.push(Layer {
                wq: Linear::new(w("attn_q.weight")?)?,
                wk: Linear::new(w("attn_k.weight")?)?,
                wv: Linear::new(w("attn_v.weight")?)?,
                wo: Linear::new(w("attn_output.weight")?)?,
                attention_norm: RmsNorm::from_qtensor(w("attn_norm.weight")?, cfg.rms_norm_eps)?,
                mlp: Mlp {
                    gate: Linear::new(w("ffn_gate.weight")?)?,
                    up: Linear::new(w("ffn_up.weight")?)?,
                    down: Linear::new(w("ffn_down.weight")?)?,
                    activation: Activation::Silu,
                },
                ffn_norm: RmsNorm::from_qtensor(w("ffn_norm.weight")?, cfg.rms_norm_eps)?,
            });
        }
        let rope = Rope::new(
            cfg.head_dim,
            cfg.rope_freq_base,
            cfg.context_length,
            freq_factors.as_deref(),
            cfg.rope_scale,
            RopeStyle::Interleaved,
            device,
        )?;
        Ok(Self {
            embeddings,
            layers,
            norm,
            output,
            rope,
            device: device.clone(),
            cfg,
        })
    }

    pub fn config(&self) -> &Config {
        &self.cfg
    }

    fn attention_shape(&self) -> AttentionShape {
        let head_dim = self.cfg.head_dim;
        AttentionShape {
            heads: self.cfg.head_count,
            kv_heads: self.cfg.head_count_kv,
            head_dim,
            scale: 1.0 / (head_dim as f64).sqrt(),
            softcap: None,
            window: self.cfg.sliding_window,
        }
    }

    /// The rotated queries and keys and the values of layer `index` for `xs`
    /// (`(tokens, hidden)`), each `(1, tokens, heads, head_dim)`.
    fn qkv(
        &self,
        index: usize,
        xs: &Tensor,
        (cos, sin): (&Tensor, &Tensor),
    ) -> Result<(Tensor, Tensor, Tensor)> {
        let layer = &self.layers[index];
        let tokens = xs.dim(0)?;
        let shape = self.attention_shape();
        let [q, k, v] = Linear::forward_shared([&layer.wq, &layer.wk, &layer.wv], xs)?;
        let shaped = |x: Tensor, n: usize| x.reshape((1, tokens, n, shape.head_dim));
        let q = self.rope.apply(&shaped(q, shape.heads)?, cos, sin)?;
        let k = self.rope.apply(&shaped(k, shape.kv_heads)?, cos, sin)?;
        let v = shaped(v, shape.kv_heads)?;
        Ok((q, k, v))
    }

    /// Self-attention of layer `index` for every chunk; `xs` is `(tokens, hidden)`.
    fn attention(
        &self,
        index: usize,
        xs: &Tensor,
        rope: (&Tensor, &Tensor),
        chunks: &mut [Chunk],
        batch: &Batch,
    ) -> Result<Tensor> {
        let (q, k, v) = self.qkv(index, xs, rope)?;
        let out = attend(index, &self.attention_shape(), (&q, &k, &v), chunks, batch)?;
        self.layers[index].wo.forward(&out)
    }
}

impl Decoder for Llama {
    fn block_count(&self) -> usize {
        self.cfg.block_count
    }

    fn context_length(&self) -> usize {
        self.cfg.context_length
    }

    /// The tokens of all chunks are stacked into one matrix for the weight products,
    /// which are most of the work and treat every row on its own.
    fn forward_batch(&self, chunks: &mut [Chunk]) -> Result<Tensor> {
        let batch = Batch::new(chunks, self.cfg.context_length, &self.device)?;
        let (cos, sin) = self.rope.at(&batch.positions)?;
        let mut xs = self.embeddings.forward(&batch.ids)?;
        for (i, layer) in self.layers.iter().enumerate() {
            let normed = layer.attention_norm.forward(&xs)?;
            let attn = self.attention(i, &normed, (&cos, &sin), chunks, &batch)?;
            let xs_attn = (attn + &xs)?;
            let mlp = layer.mlp.forward(&layer.ffn_norm.forward(&xs_attn)?)?;
            xs = (mlp + xs_attn)?;
        }
        batch.advance(chunks);
        self.output
            .forward(&self.norm.forward(&batch.scored_rows(&xs)?)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::random_gguf::{self, Arch, Extras, Quantization, Shape};
    use crate::model::transformer::{assert_batched_equals_alone, greedy_parity, Parity};
    use std::io::Cursor;

    /// The bytes of a random tiny Llama GGUF.
    fn tiny_gguf(extras: Extras) -> Vec<u8> {
        tiny_gguf_as(Quantization::Q4KM, extras)
    }

    fn tiny_gguf_as(quantization: Quantization, extras: Extras) -> Vec<u8> {
        let shape = Shape {
            quantization,
            ..Shape::tiny()
        };
        let mut bytes = Cursor::new(Vec::new());
        random_gguf::write_with(Arch::Llama, &shape, extras, 3, &mut bytes).unwrap();
        bytes.into_inner()
    }

    fn load(bytes: &[u8]) -> Llama {
        let mut reader = Cursor::new(bytes);
        let content = gguf_file::Content::read(&mut reader).unwrap();
        let cfg = Config::from_gguf(&content).unwrap();
        Llama::new(cfg, &content, &mut reader, &Device::Cpu).unwrap()
    }

    /// Ours and candle's `quantized_llama` on the same GGUF bytes, 20 greedy steps.
    fn parity_with_candle(bytes: &[u8]) -> Parity {
        let model = load(bytes);
        let mut reader = Cursor::new(bytes);
        let content = gguf_file::Content::read(&mut reader).unwrap();
        let mut reference = candle_transformers::models::quantized_llama::ModelWeights::from_gguf(
            content,
            &mut reader,
            &Device::Cpu,
        )
        .unwrap();
        let prompt = [1u32, 72, 101, 108, 108, 111, 44, 32, 119, 111, 114];
        let parity = greedy_parity(&model, |x, pos| reference.forward(x, pos), &prompt, 20);
        assert_eq!(
            parity.ours, parity.reference,
            "greedy tokens differ: {parity:?}"
        );
        parity
    }

    #[test]
    fn greedy_tokens_and_logits_match_candles_quantized_llama() {
        // Untied and tied output layers: both paths candle's loader takes too.
        for tied_output in [false, true] {
            let extras = Extras {
                tied_output,
                ..Extras::default()
            };
            // Every matrix Q8_0: the same kernels on the same rows as candle, so the
            // prompt's logits are the same to the bit. A decoding step's attention sums in
            // tarjama's own order (`model::within`), not candle's product's: measured
            // 7.6e-6 on logits spanning 38.7 on a Zen 4, but where another CPU's kernels
            // round a last bit so that an activation's 8-bit rounding flips, this random
            // model carries it to a few tenths (see the Qwen3 test), hence 1e-2.
            let parity = parity_with_candle(&tiny_gguf_as(Quantization::Q8, extras.clone()));
            assert_eq!(
                parity.prompt_diff, 0.0,
                "Q8_0, tied {tied_output}: {parity:?}"
            );
            assert!(
                parity.max_diff / parity.min_range < 1e-2,
                "Q8_0, tied {tied_output}: {parity:?}"
            );
            // Q4_K_M has Q6_K matrices, and tarjama multiplies a single row by those as
            // two rows (see `Linear`), candle as one: the two kernels differ by about
            // 1e-5, which a random model's large gains carry into later layers and
            // steps. Measured: max |diff| 1e-5 untied, 0.24 tied (one step of 20, at
            // token 293) on logits spanning at least 35; identical without the padding.
            let parity = parity_with_candle(&tiny_gguf_as(Quantization::Q4KM, extras));
            assert!(
                parity.max_diff / parity.min_range < 1e-2,
                "Q4_K_M, tied {tied_output}: {parity:?}"
            );
        }
    }

    #[test]
    fn frequency_factors_divide_each_rotary_frequency() {
        let base = 500_000f32;
        let factors = random_gguf::llama3_rope_freqs(64, base, 8.0);
        assert!(factors.contains(&1.0) && factors.contains(&8.0));
        let bytes = tiny_gguf(Extras {
            llama3_rope_factor: Some(8.0),
            ..Extras::default()
        });
        let with = load(&bytes);
        let without = load(&tiny_gguf(Extras::default()));
        // Same weights either way (the factors are drawn from no randomness).
        let positions = [0u32, 1, 7, 50, 127];
        let device = Device::Cpu;
        let xs = Tensor::randn(0f32, 1.0, (positions.len(), 256), &device).unwrap();
        let pos = Tensor::new(&positions, &device).unwrap();
        let (cos, sin) = with.rope.at(&pos).unwrap();
        let (q, _, _) = with.qkv(0, &xs, (&cos, &sin)).unwrap();
        // The same projection, unrotated, then rotated here directly: pair (2i, 2i + 1)
        // turned by position / (base^(2i / head_dim) * factor_i).
        let raw: Vec<Vec<f32>> = with.layers[0].wq.forward(&xs).unwrap().to_vec2().unwrap();
        let q: Vec<Vec<f32>> = q
            .reshape((positions.len(), 256))
            .unwrap()
            .to_vec2()
            .unwrap();
        let head_dim = 64;
        let mut max_diff = 0f64;
        for (t, &p) in positions.iter().enumerate() {
            for head in 0..4 {
                for (i, &factor) in factors.iter().enumerate() {
                    let freq =
                        1.0 / (base as f64).powf(2.0 * i as f64 / head_dim as f64) / factor as f64;
                    let (s, c) = (p as f64 * freq).sin_cos();
                    let at = head * head_dim + 2 * i;
                    let (x0, x1) = (raw[t][at] as f64, raw[t][at + 1] as f64);
                    let (y0, y1) = (x0 * c - x1 * s, x0 * s + x1 * c);
                    max_diff = max_diff
                        .max((y0 - q[t][at] as f64).abs())
                        .max((y1 - q[t][at + 1] as f64).abs());
                }
            }
        }
        assert!(max_diff < 1e-3, "rotation differs by {max_diff}");

        // The factors change the model's answers.
        let prompt: Vec<u32> = (0..100).map(|i| (i * 7 % 250) as u32).collect();
        let logits = |m: &Llama| -> Vec<f32> {
            let mut cache = crate::model::transformer::KvCache::new(2, 128);
            m.forward(&prompt, &mut cache).unwrap().to_vec1().unwrap()
        };
        let (a, b) = (logits(&with), logits(&without));
        assert_ne!(a, b, "rope_freqs.weight had no effect");
    }

    #[test]
    fn a_batched_forward_pass_gives_each_sequence_its_unbatched_logits() {
        assert_batched_equals_alone(&load(&tiny_gguf(Extras::default())));
    }

    #[test]
    fn the_batch_size_does_not_change_what_gguf_llm_generates() {
        crate::model::gguf_llm::assert_batch_size_keeps_generations(Arch::Llama);
    }

    #[test]
    fn heads_sized_apart_from_the_hidden_size_and_unsupported_files_are_read_right() {
        // As Mistral Nemo's 32 heads of 128 in a hidden size of 5120.
        let shape = Shape {
            hidden: 512,
            head_dim: 64,
            heads: 4,
            kv_heads: 2,
            ..Shape::tiny()
        };
        let mut bytes = Cursor::new(Vec::new());
        random_gguf::write(Arch::Llama, &shape, 5, &mut bytes).unwrap();
        let model = load(bytes.get_ref());
        assert_eq!(model.config().head_dim, 64);
        let mut cache = crate::model::transformer::KvCache::new(2, 8);
        let logits = model.forward(&[1, 2, 3], &mut cache).unwrap();
        assert_eq!(logits.dims(), &[320]);

        let mut content =
            gguf_file::Content::read(&mut Cursor::new(tiny_gguf(Extras::default()))).unwrap();
        let set = |content: &mut gguf_file::Content, key: &str, value| {
            content.metadata.insert(format!("llama.{key}"), value);
        };
        use gguf_file::Value;
        set(&mut content, "attention.sliding_window", Value::U32(16));
        set(
            &mut content,
            "rope.scaling.type",
            Value::String("linear".into()),
        );
        set(&mut content, "rope.scaling.factor", Value::F32(4.0));
        let cfg = Config::from_gguf(&content).unwrap();
        assert_eq!((cfg.sliding_window, cfg.rope_scale), (Some(16), 4.0));
        set(
            &mut content,
            "rope.scaling.type",
            Value::String("yarn".into()),
        );
        assert!(Config::from_gguf(&content).is_err());
        set(
            &mut content,
            "rope.scaling.type",
            Value::String("none".into()),
        );
        set(&mut content, "expert_count", Value::U32(8));
        let err = Config::from_gguf(&content).unwrap_err().to_string();
        assert!(err.contains("Mixtral"), "{err}");
    }
}
