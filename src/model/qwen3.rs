//! The Qwen3 decoder over quantized GGUF weights.
//!
//! Qwen2 without the query, key and value biases, with an RMS norm over each head of the
//! queries and keys before they are rotated, and a head size of its own
//! (`qwen3.attention.key_length`, not `hidden / heads`). Written after candle-transformers'
//! `quantized_qwen3`, with the key/value cache outside the model (see
//! [`super::transformer`]).

use candle_core::quantized::gguf_file;

use candle_core::{Device, Module, Result, Tensor};
use candle_transformers::quantized_nn::RmsNorm;

use super::embeddings::{embeddings_and_output, TokenEmbeddings, WeightSource};
use super::transformer::{
    attend, Activation, AttentionShape, Batch, Chunk, Decoder, Linear, Mlp, Rope, RopeStyle,
};

/// Shape of the network, read from the GGUF's own `qwen3.*` metadata.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub head_count: usize,
    pub head_count_kv: usize,
    /// `qwen3.attention.key_length`, else `embedding_length / head_count`.
    pub head_dim: usize,
    pub embedding_length: usize,
    pub context_length: usize,
    pub block_count: usize,
    pub rms_norm_eps: f64,
    pub rope_freq_base: f32,
}

impl Config {
    pub fn from_gguf(content: &gguf_file::Content) -> Result<Self> {
        let md = |key: &str| content.metadata.get(&format!("qwen3.{key}"));
        let get = |key: &str| match md(key) {
            Some(v) => Ok(v),
            None => candle_core::bail!("qwen3.{key} is missing from the GGUF metadata"),
        };
        let head_count = get("attention.head_count")?.to_u32()? as usize;
        let embedding_length = get("embedding_length")?.to_u32()? as usize;
        let head_dim = md("attention.key_length")
            .and_then(|v| v.to_u32().ok())
            .map_or(embedding_length / head_count, |d| d as usize);
        if let Some(value_dim) = md("attention.value_length").and_then(|v| v.to_u32().ok()) {
            if value_dim as usize != head_dim {
                candle_core::bail!(
                    "value heads of {value_dim} differ from key heads of {head_dim}"
                );
            }
        }
        if let Some(kind) = md("rope.scaling.type").and_then(|v| v.to_string().ok()) {
            if kind != "none" {
                candle_core::bail!("rope scaling {kind:?} is not supported");
            }
        }
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
        })
    }
}

struct Layer {
    wq: Linear,
    wk: Linear,
    wv: Linear,
    wo: Linear,
    /// Over each head of the queries and of the keys.
    q_norm: RmsNorm,
    k_norm: RmsNorm,
    attention_norm: RmsNorm,
    mlp: Mlp,
    ffn_norm: RmsNorm,
}

pub struct Qwen3 {
    cfg: Config,
    embeddings: TokenEmbeddings,
    layers: Vec<Layer>,
    norm: RmsNorm,
    output: Linear,
    rope: Rope,
    device: Device,
}

impl Qwen3 {
    pub fn new<R: WeightSource>(
        cfg: Config,
        content: &gguf_file::Content,
        reader: &mut R,
        device: &Device,
    ) -> Result<Self> {
        let (embeddings, output) = embeddings_and_output(content, reader, device)?;
        let mut tensor = |name: &str| content.tensor(reader, name, device);
        let eps = cfg.rms_norm_eps;
        let norm = RmsNorm::from_qtensor(tensor("output_norm.weight")?, eps)?;
        let mut layers = Vec::with_capacity(cfg.block_count);
        for i in 0..cfg.block_count {
            let mut w = |suffix: &str| tensor(&format!("blk.{i}.{suffix}"));
            layers.push(Layer {
                wq: Linear::new(w("attn_q.weight")?)?,
                wk: Linear::new(w("attn_k.weight")?)?,
                wv: Linear::new(w("attn_v.weight")?)?,
                wo: Linear::new(w("attn_output.weight")?)?,
                q_norm: RmsNorm::from_qtensor(w("attn_q_norm.weight")?, eps)?,
                k_norm: RmsNorm::from_qtensor(w("attn_k_norm.weight")?, eps)?,
                attention_norm: RmsNorm::from_qtensor(w("attn_norm.weight")?, eps)?,
                mlp: Mlp {
                    gate: Linear::new(w("ffn_gate.weight")?)?,
                    up: Linear::new(w("ffn_up.weight")?)?,
                    down: Linear::new(w("ffn_down.weight")?)?,
                    activation: Activation::Silu,
                },
                ffn_norm: RmsNorm::from_qtensor(w("ffn_norm.weight")?, eps)?,
            });
        }
        let rope = Rope::new(
            cfg.head_dim,
            cfg.rope_freq_base,
            cfg.context_length,
            None,
            1.0,
            RopeStyle::Halves,
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
            window: None,
        }
    }

    /// Self-attention of layer `index` for every chunk; `xs` is `(tokens, hidden)`.
    fn attention(
        &self,
        index: usize,
        xs: &Tensor,
        (cos, sin): (&Tensor, &Tensor),
        chunks: &mut [Chunk],
        batch: &Batch,
    ) -> Result<Tensor> {
        let layer = &self.layers[index];
        let tokens = xs.dim(0)?;
        let shape = self.attention_shape();
        // `(1, tokens, heads, head_dim)`; the norm is over the last dimension, each head.
        let [q, k, v] = Linear::forward_shared([&layer.wq, &layer.wk, &layer.wv], xs)?;
        let shaped = |x: Tensor, n: usize| x.reshape((1, tokens, n, shape.head_dim));
        let q = layer.q_norm.forward(&shaped(q, shape.heads)?)?;
        let k = layer.k_norm.forward(&shaped(k, shape.kv_heads)?)?;
        let q = self.rope.apply(&q, cos, sin)?;
        let k = self.rope.apply(&k, cos, sin)?;
        let v = shaped(v, shape.kv_heads)?;
        let out = attend(index, &shape, (&q, &k, &v), chunks, batch)?;
        layer.wo.forward(&out)
    }
}

impl Decoder for Qwen3 {
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

    /// The bytes of a random tiny Qwen3 GGUF; its heads (64) are not `hidden / heads`
    /// (256 / 8 = 32), as in the real models.
    fn tiny_gguf(quantization: Quantization, tied_output: bool) -> Vec<u8> {
        let shape = Shape {
            heads: 8,
            kv_heads: 2,
            quantization,
            ..Shape::tiny()
        };
        let mut bytes = Cursor::new(Vec::new());
        let extras = Extras {
            tied_output,
            ..Extras::default()
        };
        random_gguf::write_with(Arch::Qwen3, &shape, extras, 4, &mut bytes).unwrap();
        bytes.into_inner()
    }

    fn load(bytes: &[u8]) -> Qwen3 {
        let mut reader = Cursor::new(bytes);
        let content = gguf_file::Content::read(&mut reader).unwrap();
        let cfg = Config::from_gguf(&content).unwrap();
        assert_eq!((cfg.head_dim, cfg.head_count), (64, 8));
        Qwen3::new(cfg, &content, &mut reader, &Device::Cpu).unwrap()
    }

    /// Ours and candle's `quantized_qwen3` on the same GGUF bytes, 20 greedy steps.
    fn parity_with_candle(bytes: &[u8]) -> Parity {
        let model = load(bytes);
        let mut reader = Cursor::new(bytes);
        let mut content = gguf_file::Content::read(&mut reader).unwrap();
        // candle builds its rotary tables in f16 unless `general.dtype` says f32
        // (llama.cpp writes no such key), which is candle's rounding, not the model's; the
        // tensors read are the same bytes.
        content
            .metadata
            .insert("general.dtype".into(), gguf_file::Value::U32(0));
        let mut reference = candle_transformers::models::quantized_qwen3::ModelWeights::from_gguf(
            content,
            &mut reader,
            &Device::Cpu,
        )
        .unwrap();
        let prompt = [3u32, 72, 101, 108, 108, 111, 44, 32, 119, 111, 114];
        let parity = greedy_parity(&model, |x, pos| reference.forward(x, pos), &prompt, 20);
        assert_eq!(
            parity.ours, parity.reference,
            "greedy tokens differ: {parity:?}"
        );
        parity
    }

    #[test]
    fn greedy_tokens_and_logits_match_candles_quantized_qwen3() {
        for tied_output in [false, true] {
            for quantization in [Quantization::Q8, Quantization::Q4KM] {
                let parity = parity_with_candle(&tiny_gguf(quantization, tied_output));
                // candle attends on the CPU with its own fused kernels, and multiplies a
                // single row by Q6_K weights through the GGUF blocks, where tarjama uses the
                // tiles, whose kernels apply the sub-block scales in another order (vendored
                // candle-core, eleventh change). A last-bit difference can move an
                // activation a whole step when it is re-quantized to 8 bits for the next
                // product, and this tiny random model amplifies it: measured on a Zen 4
                // EPYC (AVX-512), 0.48 on logits spanning 39.2 (Q4_K_M, untied; 1e-5 before
                // that change), and on an AVX2-only EPYC, where gemm's attention products
                // sum in another order too, 0.27 on 39.8 (Q8_0, tied). The greedy tokens
                // stay identical, which is what the assertion above holds.
                let tolerance = 3e-2;
                assert!(
                    parity.max_diff / parity.min_range < tolerance,
                    "{quantization:?}, tied {tied_output}: {parity:?}"
                );
            }
        }
    }

    #[test]
    fn a_batched_forward_pass_gives_each_sequence_its_unbatched_logits() {
        assert_batched_equals_alone(&load(&tiny_gguf(Quantization::Q4KM, false)));
    }

    #[test]
    fn the_batch_size_does_not_change_what_gguf_llm_generates() {
        crate::model::gguf_llm::assert_batch_size_keeps_generations(Arch::Qwen3);
    }
}
