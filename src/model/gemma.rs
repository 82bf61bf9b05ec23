//! The Gemma 2 and Gemma 3 text decoders over quantized GGUF weights, as llama.cpp's
//! converter writes them (architectures `gemma2` and `gemma3`; SILMA-9B is a Gemma 2).
//!
//! What sets the two apart from Qwen and Llama, following llama.cpp (`src/models/
//! gemma2-iswa.cpp`, `gemma3.cpp`, `load_hparams` in `llama-model.cpp`):
//! - the embeddings are multiplied by `sqrt(hidden)`;
//! - every block normalizes both before and after its attention and its feed-forward
//!   part (`attn_norm`, `post_attention_norm`, `ffn_norm`, `post_ffw_norm`). The files hold
//!   plain RMSNorm weights: Hugging Face's Gemma norms multiply by `1 + weight` and the
//!   converter adds the one when it writes them (`modify_tensors` of `Gemma2Model` and
//!   `Gemma3Model` in `convert_hf_to_gguf.py`);
//! - the feed-forward block is gated GELU (tanh approximation), rotary embeddings pair
//!   the halves of each head;
//! - layers alternate between a sliding window and global attention: Gemma 2 slides on
//!   even layers (`set_swa_pattern(2)`), Gemma 3 on five layers of every six
//!   (`set_swa_pattern(6)`: layers 5, 11, … are global). A sliding layer's query sees the
//!   `sliding_window` positions up to and including its own;
//! - Gemma 2 soft-caps attention scores (`cap * tanh(score / cap)`, 50 by default) and
//!   the final logits (30); Gemma 3 does neither, but normalizes each query and key head
//!   (`attn_q_norm`, `attn_k_norm`) before rotating it, and rotates its sliding layers
//!   with base 10 000 and its global layers with `rope.freq_base` and the linear
//!   `rope.scaling.factor`;
//! - queries are scaled by `1 / sqrt(head_dim)`, except in the 27B models (told apart by
//!   their layer count, as llama.cpp does), which use `1 / sqrt(hidden / heads)`.
//!
//! The output layer is the embedding matrix when the file has no `output.weight`.

use candle_core::quantized::gguf_file;
use candle_core::{Device, Module, Result, Tensor};
use candle_transformers::quantized_nn::RmsNorm;

use super::embeddings::{embeddings_and_output, TokenEmbeddings, WeightSource};
use super::transformer::{
    attend, Activation, AttentionShape, Batch, Chunk, Decoder, Linear, Mlp, Rope, RopeStyle,
};

/// Which Gemma.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Variant {
    Gemma2,
    Gemma3,
}

impl Variant {
    /// `general.architecture` and the prefix of the metadata keys.
    pub fn arch(self) -> &'static str {
        match self {
            Variant::Gemma2 => "gemma2",
            Variant::Gemma3 => "gemma3",
        }
    }

    pub fn from_arch(arch: &str) -> Option<Self> {
        match arch {
            "gemma2" => Some(Variant::Gemma2),
            "gemma3" => Some(Variant::Gemma3),
            _ => None,
        }
    }
}

/// Shape and options of the network, read from the GGUF's `gemma2.*` or `gemma3.*`
/// metadata with llama.cpp's defaults.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub variant: Variant,
    pub head_count: usize,
    pub head_count_kv: usize,
    pub head_dim: usize,
    pub embedding_length: usize,
    pub context_length: usize,
    pub block_count: usize,
    pub rms_norm_eps: f64,
    /// Rotary base of the global layers (of every layer in Gemma 2).
    pub rope_freq_base: f32,
    /// Linear rotary scaling of the global layers: positions are divided by it.
    pub rope_scale: f32,
    /// Rotary base of the sliding layers.
    pub rope_freq_base_local: f32,
    /// Positions a query of a sliding layer sees, itself included; `None`: no layer slides.
    pub sliding_window: Option<usize>,
    /// Of every `sliding_window_pattern` layers, all but the last slide.
    pub sliding_window_pattern: usize,
    pub attn_softcap: Option<f64>,
    pub final_softcap: Option<f64>,
    /// Attention scores are multiplied by this.
    pub query_scale: f64,
}

impl Config {
    pub fn from_gguf(content: &gguf_file::Content) -> Result<Self> {
        let arch = content
            .metadata
            .get("general.architecture")
            .and_then(|v| v.to_string().ok())
            .cloned()
            .unwrap_or_default();
        let Some(variant) = Variant::from_arch(&arch) else {
            candle_core::bail!("`{arch}` is not a Gemma 2 or Gemma 3 architecture")
        };
        let a = variant.arch();
        let get = |key: &str| match content.metadata.get(&format!("{a}.{key}")) {
            Some(v) => Ok(v),
            None => candle_core::bail!("{a}.{key} is missing from the GGUF metadata"),
        };
        let u = |key: &str| get(key).and_then(|v| v.to_u32()).map(|v| v as usize);
        let f = |key: &str| get(key).and_then(|v| v.to_f32());
        let head_count = u("attention.head_count")?;
        let embedding_length = u("embedding_length")?;
        let block_count = u("block_count")?;
        let head_dim = u("attention.key_length").unwrap_or(embedding_length / head_count);
        let rope_scale = match f("rope.scaling.factor") {
            Ok(factor) if factor > 0.0 => factor,
            _ => 1.0,
        };
        let (sliding_window, pattern, attn_softcap, final_softcap, big) = match variant {
            Variant::Gemma2 => (
                // llama.cpp's defaults when the converter wrote none.
                Some(u("attention.sliding_window").unwrap_or(4096)),
                2,
                Some(f("attn_logit_softcapping").unwrap_or(50.0) as f64),
                Some(f("final_logit_softcapping").unwrap_or(30.0) as f64),
                block_count == 46,
            ),
            Variant::Gemma3 => {
                let window = u("attention.sliding_window").ok().filter(|&w| w > 0);
                // llama.cpp soft-caps the logits of a Gemma 3 only when no layer slides
                // (its graph with sliding layers has no final soft-capping).
                let final_softcap = match window {
                    None => f("final_logit_softcapping")
                        .ok()
                        .filter(|&c| c > 0.0)
                        .map(f64::from),
                    Some(_) => None,
                };
                (window, 6, None, final_softcap, block_count == 62)
            }
        };
        let query_scale = if big {
            1.0 / ((embedding_length / head_count) as f64).sqrt()
        } else {
            1.0 / (head_dim as f64).sqrt()
        };
        Ok(Self {
            variant,
            head_count,
            head_count_kv: u("attention.head_count_kv")?,
            head_dim,
            embedding_length,
            context_length: u("context_length")?,
            block_count,
            rms_norm_eps: f("attention.layer_norm_rms_epsilon")? as f64,
            rope_freq_base: f("rope.freq_base").unwrap_or(match variant {
                Variant::Gemma2 => 10_000.0,
                Variant::Gemma3 => 1_000_000.0,
            }),
            rope_scale: match variant {
                Variant::Gemma2 => 1.0,
                Variant::Gemma3 => rope_scale,
            },
            rope_freq_base_local: match variant {
                Variant::Gemma2 => f("rope.freq_base").unwrap_or(10_000.0),
                Variant::Gemma3 => 10_000.0,
            },
            sliding_window,
            sliding_window_pattern: pattern,
            attn_softcap,
            final_softcap,
            query_scale,
        })
    }

    /// Whether layer `index` attends through the sliding window.
    pub fn slides(&self, index: usize) -> bool {
        let n = self.sliding_window_pattern;
        self.sliding_window.is_some() && index % n < n - 1
    }
}

struct Layer {
    wq: Linear,
    wk: Linear,
    wv: Linear,
    wo: Linear,
    /// Gemma 3's per-head query and key norms.
    q_norm: Option<RmsNorm>,
    k_norm: Option<RmsNorm>,
    attn_norm: RmsNorm,
    post_attn_norm: RmsNorm,
    ffn_norm: RmsNorm,
    post_ffn_norm: RmsNorm,
    mlp: Mlp,
    shape: AttentionShape,
    /// Index into [`Gemma::ropes`].
    rope: usize,
}

pub struct Gemma {
    cfg: Config,
    embeddings: TokenEmbeddings,
    layers: Vec<Layer>,
    norm: RmsNorm,
    output: Linear,
    /// The global layers' rotation first, then the sliding layers' if it differs.
    ropes: Vec<Rope>,
    device: Device,
}

impl Gemma {
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
        let rope = |base: f32, scale: f32| {
            Rope::new(
                cfg.head_dim,
                base,
                cfg.context_length,
                None,
                scale,
                RopeStyle::Halves,
                device,
            )
        };
        let mut ropes = vec![rope(cfg.rope_freq_base, cfg.rope_scale)?];
        let local_differs = cfg.rope_freq_base_local != cfg.rope_freq_base || cfg.rope_scale != 1.0;
        if cfg.sliding_window.is_some() && local_differs {
            ropes.push(rope(cfg.rope_freq_base_local, 1.0)?);
        }
        let mut layers = Vec::with_capacity(cfg.block_count);
        for i in 0..cfg.block_count {
            let mut w = |suffix: &str| tensor(&format!("blk.{i}.{suffix}"));
            let slides = cfg.slides(i);
            let (q_norm, k_norm) = match cfg.variant {
                Variant::Gemma2 => (None, None),
                Variant::Gemma3 => (
                    Some(RmsNorm::from_qtensor(w("attn_q_norm.weight")?, eps)?),
                    Some(RmsNorm::from_qtensor(w("attn_k_norm.weight")?, eps)?),
                ),
            };
            layers.push(Layer {
                wq: Linear::new(w("attn_q.weight")?)?,
                wk: Linear::new(w("attn_k.weight")?)?,
                wv: Linear::new(w("attn_v.weight")?)?,
                wo: Linear::new(w("attn_output.weight")?)?,
                q_norm,
                k_norm,
                attn_norm: RmsNorm::from_qtensor(w("attn_norm.weight")?, eps)?,
                post_attn_norm: RmsNorm::from_qtensor(w("post_attention_norm.weight")?, eps)?,
                ffn_norm: RmsNorm::from_qtensor(w("ffn_norm.weight")?, eps)?,
                post_ffn_norm: RmsNorm::from_qtensor(w("post_ffw_norm.weight")?, eps)?,
                mlp: Mlp {
                    gate: Linear::new(w("ffn_gate.weight")?)?,
                    up: Linear::new(w("ffn_up.weight")?)?,
                    down: Linear::new(w("ffn_down.weight")?)?,
                    activation: Activation::GeluTanh,
                },
                shape: AttentionShape {
                    heads: cfg.head_count,
                    kv_heads: cfg.head_count_kv,
                    head_dim: cfg.head_dim,
                    scale: cfg.query_scale,
                    softcap: cfg.attn_softcap,
                    window: if slides { cfg.sliding_window } else { None },
                },
                rope: if slides { ropes.len() - 1 } else { 0 },
            });
        }
        Ok(Self {
            embeddings,
            layers,
            norm,
            output,
            ropes,
            device: device.clone(),
            cfg,
        })
    }

    pub fn config(&self) -> &Config {
        &self.cfg
    }

    /// Self-attention of layer `index` for every chunk; `xs` is `(tokens, hidden)`,
    /// `tables` the rotary `(cos, sin)` rows of each of [`Gemma::ropes`].
    fn attention(
        &self,
        index: usize,
        xs: &Tensor,
        tables: &[(Tensor, Tensor)],
        chunks: &mut [Chunk],
        batch: &Batch,
    ) -> Result<Tensor> {
        let layer = &self.layers[index];
        let tokens = xs.dim(0)?;
        let shape = &layer.shape;
        let (cos, sin) = &tables[layer.rope];
        let rope = &self.ropes[layer.rope];
        // `(1, tokens, heads, head_dim)`, normalized per head (Gemma 3) and rotated by
        // each token's own position.
        let [q, k, v] = Linear::forward_shared([&layer.wq, &layer.wk, &layer.wv], xs)?;
        let project = |x: Tensor, norm: &Option<RmsNorm>, n: usize| {
            let x = x.reshape((1, tokens, n, shape.head_dim))?;
            let x = match norm {
                Some(norm) => norm.forward(&x)?,
                None => x,
            };
            rope.apply(&x, cos, sin)
        };
        let q = project(q, &layer.q_norm, shape.heads)?;
        let k = project(k, &layer.k_norm, shape.kv_heads)?;
        let v = v.reshape((1, tokens, shape.kv_heads, shape.head_dim))?;
        let out = attend(index, shape, (&q, &k, &v), chunks, batch)?;
        layer.wo.forward(&out)
    }

    /// The feed-forward activation of every layer (tests compare with candle's Gemma 3,
    /// which uses SiLU there).
    #[cfg(test)]
    fn set_activation(&mut self, activation: Activation) {
        for layer in &mut self.layers {
            layer.mlp.activation = activation;
        }
    }
}

impl Decoder for Gemma {
    fn block_count(&self) -> usize {
        self.cfg.block_count
    }

    fn context_length(&self) -> usize {
        self.cfg.context_length
    }

    fn forward_batch(&self, chunks: &mut [Chunk]) -> Result<Tensor> {
        let batch = Batch::new(chunks, self.cfg.context_length, &self.device)?;
        let tables = self
            .ropes
            .iter()
            .map(|rope| rope.at(&batch.positions))
            .collect::<Result<Vec<_>>>()?;
        let mut xs =
            (self.embeddings.forward(&batch.ids)? * (self.cfg.embedding_length as f64).sqrt())?;
        for (i, layer) in self.layers.iter().enumerate() {
            let normed = layer.attn_norm.forward(&xs)?;
            let attn = self.attention(i, &normed, &tables, chunks, &batch)?;
            let xs_attn = (layer.post_attn_norm.forward(&attn)? + &xs)?;
            let mlp = layer.mlp.forward(&layer.ffn_norm.forward(&xs_attn)?)?;
            xs = (layer.post_ffn_norm.forward(&mlp)? + xs_attn)?;
        }
        batch.advance(chunks);
        let logits = self
            .output
            .forward(&self.norm.forward(&batch.scored_rows(&xs)?)?)?;
        match self.cfg.final_softcap {
            Some(cap) => (logits / cap)?.tanh()? * cap,
            None => Ok(logits),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::Cursor;

    use candle_core::quantized::gguf_file::Value;
    use candle_core::quantized::{GgmlDType, QTensor};

    use super::*;
    use crate::model::random_gguf::{self, Arch, Shape};
    use crate::model::transformer::KvCache;

    fn random_bytes(arch: Arch, shape: &Shape, seed: u64) -> Vec<u8> {
        let mut bytes = Cursor::new(Vec::new());
        random_gguf::write(arch, shape, seed, &mut bytes).unwrap();
        bytes.into_inner()
    }

    fn load(bytes: &[u8]) -> Gemma {
        let mut reader = Cursor::new(bytes);
        let content = gguf_file::Content::read(&mut reader).unwrap();
        let cfg = Config::from_gguf(&content).unwrap();
        Gemma::new(cfg, &content, &mut reader, &Device::Cpu).unwrap()
    }

    /// The same GGUF with every tensor dequantized and stored as F32, which candle
    /// multiplies in f32: the decoder's arithmetic, without the quantized kernels'
    /// rounding of the activations.
    fn as_f32(bytes: &[u8]) -> Vec<u8> {
        let mut reader = Cursor::new(bytes);
        let content = gguf_file::Content::read(&mut reader).unwrap();
        let tensors: Vec<(String, QTensor)> = content
            .tensor_infos
            .keys()
            .map(|name| {
                let t = content.tensor(&mut reader, name, &Device::Cpu).unwrap();
                let t = t.dequantize(&Device::Cpu).unwrap();
                (name.clone(), QTensor::quantize(&t, GgmlDType::F32).unwrap())
            })
            .collect();
        let metadata: Vec<(&str, &Value)> = content
            .metadata
            .iter()
            .map(|(k, v)| (k.as_str(), v))
            .collect();
        let tensors: Vec<(&str, &QTensor)> = tensors.iter().map(|(n, t)| (n.as_str(), t)).collect();
        let mut out = Cursor::new(Vec::new());
        gguf_file::write(&mut out, &metadata, &tensors).unwrap();
        out.into_inner()
    }

    /// Six layers, so Gemma 3 has a global layer (the sixth) besides its sliding ones.
    fn tiny_gemma3() -> Shape {
        Shape {
            layers: 6,
            ..Shape::tiny()
        }
    }

    fn values(t: &Tensor) -> Vec<f32> {
        t.flatten_all().unwrap().to_vec1().unwrap()
    }

    fn max_diff(a: &[f32], b: &[f32]) -> f32 {
        assert_eq!(a.len(), b.len());
        a.iter()
            .zip(b)
            .map(|(x, y)| (x - y).abs())
            .fold(0f32, f32::max)
    }

    /// The largest magnitude among `rows`, to set a difference against.
    fn largest(rows: &[Vec<f32>]) -> f32 {
        rows.iter().flatten().map(|v| v.abs()).fold(0f32, f32::max)
    }

    fn argmax(v: &[f32]) -> u32 {
        let mut best = 0;
        for (i, x) in v.iter().enumerate() {
            if *x > v[best] {
                best = i;
            }
        }
        best as u32
    }

    /// Greedy decoding one token at a time through tarjama's decoder: the generated
    /// tokens and the logits after the prompt and after each step.
    fn greedy(model: &Gemma, prompt: &[u32], steps: usize) -> (Vec<u32>, Vec<Vec<f32>>) {
        let mut cache = KvCache::new(model.block_count(), 4);
        let mut logits = vec![values(&model.forward(prompt, &mut cache).unwrap())];
        let mut tokens = Vec::new();
        for _ in 0..steps {
            let next = argmax(logits.last().unwrap());
            tokens.push(next);
            logits.push(values(&model.forward(&[next], &mut cache).unwrap()));
        }
        (tokens, logits)
    }

    /// The logits after `prompt` and after each of `tokens`, fed one at a time whatever
    /// the model would have chosen.
    fn forced(model: &Gemma, prompt: &[u32], tokens: &[u32]) -> Vec<Vec<f32>> {
        let mut cache = KvCache::new(model.block_count(), 4);
        let mut logits = vec![values(&model.forward(prompt, &mut cache).unwrap())];
        for &token in tokens {
            logits.push(values(&model.forward(&[token], &mut cache).unwrap()));
        }
        logits
    }

    #[test]
    fn configs_follow_llama_cpp_layer_patterns_scales_and_defaults() {
        let metadata = |arch: &str, layers: u32, extra: Vec<(&str, Value)>| {
            let mut m: Vec<(String, Value)> = vec![
                ("general.architecture".into(), Value::String(arch.into())),
                (format!("{arch}.attention.head_count"), Value::U32(32)),
                (format!("{arch}.attention.head_count_kv"), Value::U32(16)),
                (format!("{arch}.embedding_length"), Value::U32(4608)),
                (format!("{arch}.block_count"), Value::U32(layers)),
                (format!("{arch}.context_length"), Value::U32(8192)),
                (format!("{arch}.attention.key_length"), Value::U32(128)),
                (
                    format!("{arch}.attention.layer_norm_rms_epsilon"),
                    Value::F32(1e-6),
                ),
            ];
            m.extend(extra.into_iter().map(|(k, v)| (format!("{arch}.{k}"), v)));
            let refs: Vec<(&str, &Value)> = m.iter().map(|(k, v)| (k.as_str(), v)).collect();
            let mut bytes = Cursor::new(Vec::new());
            gguf_file::write(&mut bytes, &refs, &[]).unwrap();
            bytes.set_position(0);
            Config::from_gguf(&gguf_file::Content::read(&mut bytes).unwrap()).unwrap()
        };
        // Gemma 2 without the optional keys: llama.cpp's defaults; even layers slide.
        let g2 = metadata("gemma2", 42, vec![]);
        assert_eq!(g2.sliding_window, Some(4096));
        assert_eq!(
            (g2.attn_softcap, g2.final_softcap),
            (Some(50.0), Some(30.0))
        );
        assert_eq!((g2.rope_freq_base, g2.rope_scale), (10_000.0, 1.0));
        let slides: Vec<bool> = (0..4).map(|i| g2.slides(i)).collect();
        assert_eq!(slides, [true, false, true, false]);
        assert_eq!(g2.query_scale, 1.0 / 128f64.sqrt());
        // Gemma 2 27B (46 layers): 1 / sqrt(hidden / heads), as llama.cpp decides.
        let g2_27b = metadata("gemma2", 46, vec![]);
        assert_eq!(g2_27b.query_scale, 1.0 / 144f64.sqrt());

        // Gemma 3: five sliding layers, then a global one; local base 10 000, global
        // base and linear scaling from the file; no soft-capping at all.
        let g3 = metadata(
            "gemma3",
            34,
            vec![
                ("attention.sliding_window", Value::U32(1024)),
                ("rope.freq_base", Value::F32(1e6)),
                ("rope.scaling.factor", Value::F32(8.0)),
                ("final_logit_softcapping", Value::F32(30.0)),
            ],
        );
        let slides: Vec<usize> = (0..12).filter(|&i| !g3.slides(i)).collect();
        assert_eq!(slides, [5, 11]);
        assert_eq!(g3.sliding_window, Some(1024));
        assert_eq!((g3.rope_freq_base, g3.rope_scale), (1e6, 8.0));
        assert_eq!(g3.rope_freq_base_local, 10_000.0);
        assert_eq!((g3.attn_softcap, g3.final_softcap), (None, None));
        assert_eq!(g3.query_scale, 1.0 / 128f64.sqrt());
        assert_eq!(
            metadata("gemma3", 62, vec![]).query_scale,
            1.0 / 144f64.sqrt()
        );
        // A Gemma 3 whose layers all attend globally (no window): llama.cpp then
        // soft-caps the logits if the file says so.
        let global = metadata(
            "gemma3",
            26,
            vec![("final_logit_softcapping", Value::F32(30.0))],
        );
        assert_eq!(global.sliding_window, None);
        assert!(!global.slides(0));
        assert_eq!(global.final_softcap, Some(30.0));
    }

    /// candle-transformers' `quantized_gemma3` on the same bytes, greedy, one token at a
    /// time: its tokens and logits.
    fn candle_gemma3(bytes: &[u8], prompt: &[u32], steps: usize) -> (Vec<u32>, Vec<Vec<f32>>) {
        use candle_transformers::models::quantized_gemma3::ModelWeights;
        let mut reader = Cursor::new(bytes);
        let content = gguf_file::Content::read(&mut reader).unwrap();
        let mut model = ModelWeights::from_gguf(content, &mut reader, &Device::Cpu).unwrap();
        let mut run = |tokens: &[u32], pos: usize| {
            let input = Tensor::new(tokens, &Device::Cpu)
                .unwrap()
                .unsqueeze(0)
                .unwrap();
            values(&model.forward(&input, pos).unwrap())
        };
        let mut logits = vec![run(prompt, 0)];
        let mut tokens = Vec::new();
        for step in 0..steps {
            let next = argmax(logits.last().unwrap());
            tokens.push(next);
            logits.push(run(&[next], prompt.len() + step));
        }
        (tokens, logits)
    }

    /// Against candle's Gemma 3 on a Q4_K_M-like file: the prompt's logits within 1e-4
    /// (measured: 1.2e-7, with logits up to 2.2), then candle's 20 greedy tokens fed to
    /// both, each step's logits within 0.1. A decoding step's attention reduces in
    /// tarjama's own order (`model::within`), not candle's product's, and a last-bit
    /// difference that flips one activation's 8-bit rounding moves this random model's
    /// logits by 0.02-0.04 from then on (measured), so its greedy tokens part at a near
    /// tie; a decoding position off by one moves them by 0.17-0.36 (measured).
    ///
    /// candle 0.11's `quantized_gemma3` differs from llama.cpp and from Hugging Face in
    /// two places, so the comparison steps around them and
    /// [`gemma3_matches_a_plain_reference_past_the_sliding_window`] proves those parts:
    /// its feed-forward block uses SiLU where Gemma uses GELU (tanh), so tarjama's
    /// decoder is switched to SiLU here; and its sliding window lets a query see
    /// `window + 1` positions while prompting and every position while decoding, so the
    /// window (64) is longer than the sequence (30) here.
    #[test]
    fn gemma3_matches_candle_transformers_quantized_gemma3() {
        let shape = Shape {
            sliding_window: 64,
            ..tiny_gemma3()
        };
        let bytes = random_bytes(Arch::Gemma3, &shape, 3);
        let prompt = [7u32, 100, 42, 250, 3, 99, 180, 12, 64, 201];
        let steps = 20;
        let (expected_tokens, expected) = candle_gemma3(&bytes, &prompt, steps);

        let mut model = load(&bytes);
        let (gelu_tokens, gelu) = greedy(&model, &prompt, steps);
        model.set_activation(Activation::Silu);
        let logits = forced(&model, &prompt, &expected_tokens);
        let diffs: Vec<f32> = expected
            .iter()
            .zip(&logits)
            .map(|(a, b)| max_diff(a, b))
            .collect();
        let prompt_diff = diffs[0];
        let decoding_diff = diffs[1..].iter().cloned().fold(0f32, f32::max);
        let gelu_diff = max_diff(&expected[0], &gelu[0]);
        eprintln!(
            "gemma3 vs candle quantized_gemma3: prompt logits max |diff| {prompt_diff:.3e}, \
             {steps} decoding steps on candle's tokens ({expected_tokens:?}) {decoding_diff:.3e} \
             (logits up to {:.2}); with Gemma's GELU instead of candle's SiLU the prompt's \
             logits differ by {gelu_diff:.3} (tokens {gelu_tokens:?})",
            largest(&expected)
        );
        assert!(
            prompt_diff < 1e-4,
            "prompt logits differ from candle's by {prompt_diff}"
        );
        assert!(
            decoding_diff < 0.1,
            "decoding logits differ from candle's by {decoding_diff}"
        );
        let distinct: std::collections::BTreeSet<_> = expected_tokens.iter().collect();
        assert!(distinct.len() >= 3, "a degenerate greedy run proves little");
    }

    /// Gemma 2 and 3 written out as plain loops over f32 weights, after Hugging Face's
    /// `modeling_gemma2.py` / `modeling_gemma3.py` (with the norm weights as the GGUF
    /// holds them, the one already added), one whole sequence at a time: no cache, no
    /// batching, no tensor library but for dequantizing the weights.
    struct Plain {
        gemma3: bool,
        hidden: usize,
        heads: usize,
        kv_heads: usize,
        head_dim: usize,
        eps: f32,
        window: usize,
        global_base: f32,
        attn_cap: Option<f32>,
        final_cap: Option<f32>,
        embd: Vec<f32>,
        norm: Vec<f32>,
        layers: Vec<PlainLayer>,
    }

    struct PlainLayer {
        /// `(rows, weights)`, each row `columns` long.
        q: Vec<f32>,
        k: Vec<f32>,
        v: Vec<f32>,
        o: Vec<f32>,
        gate: Vec<f32>,
        up: Vec<f32>,
        down: Vec<f32>,
        q_norm: Vec<f32>,
        k_norm: Vec<f32>,
        attn_norm: Vec<f32>,
        post_attn: Vec<f32>,
        ffn_norm: Vec<f32>,
        post_ffn: Vec<f32>,
    }

    /// `w` (rows × x.len()) times `x`.
    fn matvec(w: &[f32], x: &[f32]) -> Vec<f32> {
        w.chunks(x.len())
            .map(|row| row.iter().zip(x).map(|(a, b)| a * b).sum())
            .collect()
    }

    fn rms_norm(x: &[f32], w: &[f32], eps: f32) -> Vec<f32> {
        let ms = x.iter().map(|v| v * v).sum::<f32>() / x.len() as f32;
        let r = 1.0 / (ms + eps).sqrt();
        x.iter().zip(w).map(|(v, w)| v * r * w).collect()
    }

    fn gelu_tanh(x: f32) -> f32 {
        let c = (2.0 / std::f32::consts::PI).sqrt();
        0.5 * x * (1.0 + (c * (x + 0.044715 * x * x * x)).tanh())
    }

    /// Rotates one head at `pos`, pairing dimension `i` with `i + head_dim / 2`.
    fn rotate(x: &mut [f32], pos: usize, base: f32) {
        let half = x.len() / 2;
        for i in 0..half {
            let freq = 1.0 / base.powf((2 * i) as f32 / x.len() as f32);
            let (sin, cos) = (pos as f32 * freq).sin_cos();
            let (a, b) = (x[i], x[i + half]);
            x[i] = a * cos - b * sin;
            x[i + half] = b * cos + a * sin;
        }
    }

    impl Plain {
        fn load(bytes: &[u8]) -> Plain {
            let mut reader = Cursor::new(bytes);
            let content = gguf_file::Content::read(&mut reader).unwrap();
            let arch = content.metadata["general.architecture"]
                .to_string()
                .unwrap()
                .clone();
            let meta = |key: &str| content.metadata.get(&format!("{arch}.{key}"));
            let u = |key: &str| meta(key).unwrap().to_u32().unwrap() as usize;
            let f = |key: &str| meta(key).map(|v| v.to_f32().unwrap());
            let mut t = |name: &str| -> Vec<f32> {
                let q = content.tensor(&mut reader, name, &Device::Cpu).unwrap();
                values(&q.dequantize(&Device::Cpu).unwrap())
            };
            let gemma3 = arch == "gemma3";
            let mut layers = Vec::new();
            for i in 0..u("block_count") {
                let mut w = |s: &str| t(&format!("blk.{i}.{s}.weight"));
                layers.push(PlainLayer {
                    q: w("attn_q"),
                    k: w("attn_k"),
                    v: w("attn_v"),
                    o: w("attn_output"),
                    gate: w("ffn_gate"),
                    up: w("ffn_up"),
                    down: w("ffn_down"),
                    q_norm: if gemma3 { w("attn_q_norm") } else { vec![] },
                    k_norm: if gemma3 { w("attn_k_norm") } else { vec![] },
                    attn_norm: w("attn_norm"),
                    post_attn: w("post_attention_norm"),
                    ffn_norm: w("ffn_norm"),
                    post_ffn: w("post_ffw_norm"),
                });
            }
            Plain {
                gemma3,
                hidden: u("embedding_length"),
                heads: u("attention.head_count"),
                kv_heads: u("attention.head_count_kv"),
                head_dim: u("attention.key_length"),
                eps: f("attention.layer_norm_rms_epsilon").unwrap(),
                window: u("attention.sliding_window"),
                global_base: f("rope.freq_base").unwrap_or(10_000.0),
                attn_cap: if gemma3 {
                    None
                } else {
                    f("attn_logit_softcapping")
                },
                final_cap: if gemma3 {
                    None
                } else {
                    f("final_logit_softcapping")
                },
                embd: t("token_embd.weight"),
                norm: t("output_norm.weight"),
                layers,
            }
        }

        /// The logits of the last of `tokens`.
        fn logits(&self, tokens: &[u32]) -> Vec<f32> {
            let (hd, n) = (self.head_dim, tokens.len());
            let mut xs: Vec<Vec<f32>> = tokens
                .iter()
                .map(|&t| {
                    let row = &self.embd[t as usize * self.hidden..][..self.hidden];
                    row.iter()
                        .map(|v| v * (self.hidden as f32).sqrt())
                        .collect()
                })
                .collect();
            for (l, layer) in self.layers.iter().enumerate() {
                // Hugging Face: Gemma 2 slides on even layers; Gemma 3 on all but every
                // sixth, which rotates with the file's base, the others with 10 000.
                let (sliding, base) = if self.gemma3 {
                    let sliding = (l + 1) % 6 != 0;
                    (sliding, if sliding { 10_000.0 } else { self.global_base })
                } else {
                    (l % 2 == 0, self.global_base)
                };
                let mut qs = Vec::new();
                let mut ks = Vec::new();
                let mut vs = Vec::new();
                for (pos, x) in xs.iter().enumerate() {
                    let h = rms_norm(x, &layer.attn_norm, self.eps);
                    let heads = |w: &[f32], norm: &[f32], count: usize| -> Vec<Vec<f32>> {
                        let all = matvec(w, &h);
                        (0..count)
                            .map(|i| {
                                let mut head = all[i * hd..][..hd].to_vec();
                                if self.gemma3 {
                                    head = rms_norm(&head, norm, self.eps);
                                }
                                rotate(&mut head, pos, base);
                                head
                            })
                            .collect()
                    };
                    qs.push(heads(&layer.q, &layer.q_norm, self.heads));
                    ks.push(heads(&layer.k, &layer.k_norm, self.kv_heads));
                    let v = matvec(&layer.v, &h);
                    vs.push(v.chunks(hd).map(|c| c.to_vec()).collect::<Vec<_>>());
                }
                for i in 0..n {
                    let mut attn = vec![0f32; self.heads * hd];
                    for head in 0..self.heads {
                        let kv = head / (self.heads / self.kv_heads);
                        let seen: Vec<usize> = (0..=i)
                            .filter(|&j| !sliding || i - j < self.window)
                            .collect();
                        let scores: Vec<f32> = seen
                            .iter()
                            .map(|&j| {
                                let dot: f32 =
                                    qs[i][head].iter().zip(&ks[j][kv]).map(|(a, b)| a * b).sum();
                                let s = dot / (hd as f32).sqrt();
                                match self.attn_cap {
                                    Some(cap) => cap * (s / cap).tanh(),
                                    None => s,
                                }
                            })
                            .collect();
                        let max = scores.iter().cloned().fold(f32::NEG_INFINITY, f32::max);
                        let exps: Vec<f32> = scores.iter().map(|s| (s - max).exp()).collect();
                        let total: f32 = exps.iter().sum();
                        for (&j, e) in seen.iter().zip(&exps) {
                            for d in 0..hd {
                                attn[head * hd + d] += e / total * vs[j][kv][d];
                            }
                        }
                    }
                    let o = rms_norm(&matvec(&layer.o, &attn), &layer.post_attn, self.eps);
                    let x: Vec<f32> = xs[i].iter().zip(&o).map(|(a, b)| a + b).collect();
                    let h = rms_norm(&x, &layer.ffn_norm, self.eps);
                    let gated: Vec<f32> = matvec(&layer.gate, &h)
                        .iter()
                        .zip(matvec(&layer.up, &h))
                        .map(|(g, u)| gelu_tanh(*g) * u)
                        .collect();
                    let m = rms_norm(&matvec(&layer.down, &gated), &layer.post_ffn, self.eps);
                    xs[i] = x.iter().zip(&m).map(|(a, b)| a + b).collect();
                }
                // Keys and values of this layer were all computed from its input above.
            }
            let last = rms_norm(&xs[n - 1], &self.norm, self.eps);
            matvec(&self.embd, &last)
                .into_iter()
                .map(|l| match self.final_cap {
                    Some(cap) => cap * (l / cap).tanh(),
                    None => l,
                })
                .collect()
        }
    }

    /// tarjama's decoder (one token at a time through its cache) against [`Plain`]
    /// (every step recomputed from scratch) on an F32 copy of a random model, over a
    /// sequence three times the sliding window: tokens identical, logits within 1e-4
    /// (measured: 3e-6, with logits up to 3). The window, and Gemma 3's rotary bases,
    /// move the last logits a hundred times more than that.
    fn matches_plain_reference(arch: Arch, shape: &Shape) {
        let bytes = as_f32(&random_bytes(arch, shape, 11));
        let model = load(&bytes);
        let mut plain = Plain::load(&bytes);
        let prompt = [5u32, 77, 140, 3, 260, 31, 9, 188, 45, 2, 120, 66];
        let steps = 14;
        assert!(prompt.len() + steps > 3 * shape.sliding_window);
        let (tokens, logits) = greedy(&model, &prompt, steps);
        let mut seq = prompt.to_vec();
        let mut worst = 0f32;
        for (step, got) in logits.iter().enumerate() {
            let expected = plain.logits(&seq);
            worst = worst.max(max_diff(got, &expected));
            if step < steps {
                assert_eq!(tokens[step], argmax(&expected), "{arch:?} step {step}");
                seq.push(tokens[step]);
            }
        }
        eprintln!(
            "{arch:?} vs plain f32 reference: {steps} greedy tokens identical ({tokens:?}), \
             logits max |diff| {worst:.3e} (logits up to {:.2})",
            largest(&logits)
        );
        assert!(worst < 1e-4, "{arch:?}: logits differ by {worst}");

        // What getting the window or the rotary bases wrong would cost.
        let last = logits.last().unwrap();
        let window = plain.window;
        plain.window = usize::MAX;
        let no_window = max_diff(last, &plain.logits(&seq));
        plain.window = window;
        plain.global_base = 10_000.0;
        let one_base = max_diff(last, &plain.logits(&seq));
        eprintln!(
            "{arch:?}: without the sliding window the last logits move by {no_window:.3}, \
             with one rotary base for all layers by {one_base:.3}"
        );
        assert!(no_window > 100.0 * worst.max(1e-6));
        if arch == Arch::Gemma3 {
            assert!(one_base > 100.0 * worst.max(1e-6));
        }
    }

    #[test]
    fn gemma3_matches_a_plain_reference_past_the_sliding_window() {
        matches_plain_reference(Arch::Gemma3, &tiny_gemma3());
    }

    #[test]
    fn gemma2_matches_a_plain_reference_past_the_sliding_window() {
        matches_plain_reference(Arch::Gemma2, &Shape::tiny());
    }

    /// Against Hugging Face transformers' `Gemma2ForCausalLM` (eager attention, f32) on
    /// the tiny model scripts/gemma2_reference.py wrote into a GGUF: a 16-token prompt
    /// and 10 greedy steps, past the sliding window of 8, with both soft-cappings.
    #[test]
    fn gemma2_matches_hugging_face_transformers() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/gemma2");
        let bytes = std::fs::read(dir.join("tiny.gguf")).unwrap();
        let reference: serde_json::Value =
            serde_json::from_slice(&std::fs::read(dir.join("reference.json")).unwrap()).unwrap();
        let ids = |key: &str| -> Vec<u32> {
            reference[key]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_u64().unwrap() as u32)
                .collect()
        };
        let (prompt, expected_tokens) = (ids("prompt"), ids("generated"));
        let expected: Vec<Vec<f32>> = reference["logits"]
            .as_array()
            .unwrap()
            .iter()
            .map(|row| {
                row.as_array()
                    .unwrap()
                    .iter()
                    .map(|v| v.as_f64().unwrap() as f32)
                    .collect()
            })
            .collect();
        let model = load(&bytes);
        assert_eq!(model.config().sliding_window, Some(8));
        let (tokens, logits) = greedy(&model, &prompt, expected_tokens.len());
        assert_eq!(
            tokens, expected_tokens,
            "greedy tokens differ from transformers'"
        );
        let diff = expected
            .iter()
            .zip(&logits)
            .map(|(a, b)| max_diff(a, b))
            .fold(0f32, f32::max);
        eprintln!(
            "gemma2 vs transformers: {} greedy tokens identical ({tokens:?}), logits max \
             |diff| {diff:.3e} (logits up to {:.2}; leaving out a Gemma 2 detail moves them \
             by {})",
            tokens.len(),
            largest(&expected),
            reference["sensitivity"]
        );
        assert!(diff < 1e-3, "logits differ from transformers' by {diff}");
    }

    /// Sequences decoded together, sharing a prompt prefix and joining at different
    /// steps, get exactly the logits each gets alone, well past the sliding window.
    fn batched_equals_alone(model: &Gemma) {
        let prefix = [11u32, 12, 13, 14, 15, 16];
        let mut shared = KvCache::new(model.block_count(), 8);
        model.forward(&prefix, &mut shared).unwrap();
        let shared = std::sync::Arc::new(shared);
        // (prompt, the pass it joins at)
        let requests: [(&[u32], usize); 4] = [
            (&[20, 21, 22], 0),
            (&[30], 1),
            (&[40, 41, 42, 43, 44, 45, 46, 47, 48, 49], 0),
            (&[50, 51, 52, 53], 3),
        ];
        let steps = 12;
        let next = |step: usize| (97 + 13 * step % 200) as u32;

        let alone: Vec<Vec<Vec<f32>>> = requests
            .iter()
            .map(|(prompt, _)| {
                let mut cache = KvCache::after(shared.clone(), 2).unwrap();
                let mut logits = vec![values(&model.forward(prompt, &mut cache).unwrap())];
                for step in 0..steps {
                    logits.push(values(&model.forward(&[next(step)], &mut cache).unwrap()));
                }
                logits
            })
            .collect();

        let mut caches: Vec<KvCache> = requests
            .iter()
            .map(|_| KvCache::after(shared.clone(), 2).unwrap())
            .collect();
        let mut together: Vec<Vec<Vec<f32>>> = vec![Vec::new(); requests.len()];
        for pass in 0.. {
            let feeds: Vec<(usize, Vec<u32>)> = requests
                .iter()
                .enumerate()
                .filter_map(|(i, &(prompt, join))| {
                    let fed = together[i].len();
                    if pass < join || fed > steps {
                        None
                    } else if fed == 0 {
                        Some((i, prompt.to_vec()))
                    } else {
                        Some((i, vec![next(fed - 1)]))
                    }
                })
                .collect();
            if feeds.is_empty() {
                break;
            }
            let mut rest: Vec<Option<&mut KvCache>> = caches.iter_mut().map(Some).collect();
            let mut chunks: Vec<Chunk> = feeds
                .iter()
                .map(|(i, tokens)| Chunk::new(tokens, rest[*i].take().unwrap()))
                .collect();
            let out = model.forward_batch(&mut chunks).unwrap();
            for (row, (i, _)) in feeds.iter().enumerate() {
                together[*i].push(values(&out.get(row).unwrap()));
            }
        }
        for (i, (a, b)) in alone.iter().zip(&together).enumerate() {
            assert_eq!(a.len(), b.len());
            assert!(
                a == b,
                "sequence {i}: batched logits differ from unbatched ones"
            );
        }
    }

    #[test]
    fn gemma2_batched_decoding_gives_each_sequence_its_unbatched_logits() {
        batched_equals_alone(&load(&random_bytes(Arch::Gemma2, &Shape::tiny(), 5)));
    }

    #[test]
    fn gemma3_batched_decoding_gives_each_sequence_its_unbatched_logits() {
        batched_equals_alone(&load(&random_bytes(Arch::Gemma3, &tiny_gemma3(), 5)));
    }

    /// Through the whole chat model: three prompts sharing a system prompt generate the
    /// same text one at a time as four at a time.
    #[test]
    fn gemma_chat_models_generate_the_same_at_batch_sizes_one_and_four() {
        for (arch, shape) in [(Arch::Gemma2, Shape::tiny()), (Arch::Gemma3, tiny_gemma3())] {
            let file = tempfile::NamedTempFile::new().unwrap();
            std::fs::write(file.path(), random_bytes(arch, &shape, 9)).unwrap();
            let users = ["salam", "marhaba bikum", "ahlan"];
            crate::model::gguf_llm::assert_file_keeps_generations(file.path(), &users, 12, 4);
        }
    }
}
