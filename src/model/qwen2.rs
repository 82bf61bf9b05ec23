//! The Qwen2 / Qwen2.5 decoder over quantized GGUF weights.
//!
//! Written after candle-transformers' `quantized_qwen2` (same weights, same kernels, same
//! numerics), with one difference that matters to tarjama: the key/value cache lives outside
//! the model, in a [`KvCache`] the caller owns, so prompt prefixes are shared and sequences
//! are batched (see [`super::transformer`]).

use candle_core::quantized::gguf_file;

use candle_core::{Device, Module, Result, Tensor};
use candle_transformers::quantized_nn::RmsNorm;

use super::embeddings::{embeddings_and_output, TokenEmbeddings, WeightSource};
use super::transformer::{
    attend, Activation, AttentionShape, Batch, Chunk, Decoder, Linear, Mlp, Rope, RopeStyle,
};

/// Shape of the network, read from the GGUF's own `qwen2.*` metadata.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub head_count: usize,
    pub head_count_kv: usize,
    pub embedding_length: usize,
    pub context_length: usize,
    pub block_count: usize,
    pub rms_norm_eps: f64,
    pub rope_freq_base: f32,
}

impl Config {
    pub fn from_gguf(content: &gguf_file::Content) -> Result<Self> {
        let get = |key: &str| match content.metadata.get(&format!("qwen2.{key}")) {
            Some(v) => Ok(v),
            None => candle_core::bail!("qwen2.{key} is missing from the GGUF metadata"),
        };
        Ok(Self {
            head_count: get("attention.head_count")?.to_u32()? as usize,
            head_count_kv: get("attention.head_count_kv")?.to_u32()? as usize,
            embedding_length: get("embedding_length")?.to_u32()? as usize,
            context_length: get("context_length")?.to_u32()? as usize,
            block_count: get("block_count")?.to_u32()? as usize,
            rms_norm_eps: get("attention.layer_norm_rms_epsilon")?.to_f32()? as f64,
            rope_freq_base: get("rope.freq_base")
                .and_then(|v| v.to_f32())
                .unwrap_or(10_000.0),
        })
    }

    fn head_dim(&self) -> usize {
        self.embedding_length / self.head_count
    }
}

struct Layer {
    wq: Linear,
    wk: Linear,
    wv: Linear,
    bq: Tensor,
    bk: Tensor,
    bv: Tensor,
    wo: Linear,
    attention_norm: RmsNorm,
    mlp: Mlp,
    ffn_norm: RmsNorm,
}

pub struct Qwen2 {
    cfg: Config,
    embeddings: TokenEmbeddings,
    layers: Vec<Layer>,
    norm: RmsNorm,
    output: Linear,
    rope: Rope,
    device: Device,
}

impl Qwen2 {
    pub fn new<R: WeightSource>(
        cfg: Config,
        content: &gguf_file::Content,
        reader: &mut R,
        device: &Device,
    ) -> Result<Self> {
        // Small Qwen2 models tie the output projection to the embeddings.
        let (embeddings, output) = embeddings_and_output(content, reader, device)?;
        let mut tensor = |name: &str| content.tensor(reader, name, device);
        let norm = RmsNorm::from_qtensor(tensor("output_norm.weight")?, cfg.rms_norm_eps)?;
        let mut layers = Vec::with_capacity(cfg.block_count);
        for i in 0..cfg.block_count {
            let mut w = |suffix: &str| tensor(&format!("blk.{i}.{suffix}"));
            layers.push(Layer {
                wq: Linear::new(w("attn_q.weight")?)?,
                wk: Linear::new(w("attn_k.weight")?)?,
                wv: Linear::new(w("attn_v.weight")?)?,
                bq: w("attn_q.bias")?.dequantize(device)?,
                bk: w("attn_k.bias")?.dequantize(device)?,
                bv: w("attn_v.bias")?.dequantize(device)?,
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
            cfg.head_dim(),
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
        let head_dim = self.cfg.head_dim();
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
        // `(1, tokens, heads, head_dim)`, rotated by each token's own position.
        let [q, k, v] = Linear::forward_shared([&layer.wq, &layer.wk, &layer.wv], xs)?;
        let shaped = |x: Tensor, b: &Tensor, n: usize| {
            x.broadcast_add(b)?.reshape((1, tokens, n, shape.head_dim))
        };
        let q = self
            .rope
            .apply(&shaped(q, &layer.bq, shape.heads)?, cos, sin)?;
        let k = self
            .rope
            .apply(&shaped(k, &layer.bk, shape.kv_heads)?, cos, sin)?;
        let v = shaped(v, &layer.bv, shape.kv_heads)?;
        let out = attend(index, &shape, (&q, &k, &v), chunks, batch)?;
        layer.wo.forward(&out)
    }
}

impl Decoder for Qwen2 {
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
    use crate::model::transformer::KvCache;
    use candle_core::quantized::{GgmlDType, QTensor};

    fn tiny_config() -> Config {
        Config {
            head_count: 4,
            head_count_kv: 2,
            embedding_length: 256,
            context_length: 64,
            block_count: 2,
            rms_norm_eps: 1e-6,
            rope_freq_base: 10_000.0,
        }
    }

    /// A random two-layer Qwen2 written as a GGUF, with the quantizations a Q4_K_M file
    /// mixes and a few more, loaded the way real models are.
    pub(crate) fn tiny_model(device: &Device) -> Qwen2 {
        tiny_model_stored(device, |dtype| dtype)
    }

    /// The random Qwen2 with every tensor stored as `store` maps its usual quantization.
    fn tiny_model_stored(device: &Device, store: impl Fn(GgmlDType) -> GgmlDType) -> Qwen2 {
        let cfg = tiny_config();
        let (hidden, vocab, ffn) = (cfg.embedding_length, 320, 512);
        let kv = cfg.head_count_kv * (hidden / cfg.head_count);
        let random = |shape: &[usize], dtype: GgmlDType| {
            let t = Tensor::randn(0f32, 0.5, shape, &Device::Cpu).unwrap();
            QTensor::quantize(&t, store(dtype)).unwrap()
        };
        let mut tensors = vec![
            (
                "token_embd.weight".to_string(),
                random(&[vocab, hidden], GgmlDType::Q4K),
            ),
            (
                "output_norm.weight".to_string(),
                random(&[hidden], GgmlDType::F32),
            ),
        ];
        for i in 0..cfg.block_count {
            let mut add = |name: &str, shape: &[usize], dtype| {
                tensors.push((format!("blk.{i}.{name}"), random(shape, dtype)))
            };
            add("attn_q.weight", &[hidden, hidden], GgmlDType::Q4K);
            add("attn_k.weight", &[kv, hidden], GgmlDType::Q4K);
            add("attn_v.weight", &[kv, hidden], GgmlDType::Q6K);
            add("attn_q.bias", &[hidden], GgmlDType::F32);
            add("attn_k.bias", &[kv], GgmlDType::F32);
            add("attn_v.bias", &[kv], GgmlDType::F32);
            add("attn_output.weight", &[hidden, hidden], GgmlDType::Q8_0);
            add("attn_norm.weight", &[hidden], GgmlDType::F32);
            add("ffn_gate.weight", &[ffn, hidden], GgmlDType::Q4K);
            add("ffn_up.weight", &[ffn, hidden], GgmlDType::Q4K);
            add("ffn_down.weight", &[hidden, ffn], GgmlDType::Q6K);
            add("ffn_norm.weight", &[hidden], GgmlDType::F32);
        }
        use gguf_file::Value;
        let metadata = [
            ("general.architecture", Value::String("qwen2".into())),
            (
                "qwen2.attention.head_count",
                Value::U32(cfg.head_count as u32),
            ),
            (
                "qwen2.attention.head_count_kv",
                Value::U32(cfg.head_count_kv as u32),
            ),
            ("qwen2.embedding_length", Value::U32(hidden as u32)),
            (
                "qwen2.context_length",
                Value::U32(cfg.context_length as u32),
            ),
            ("qwen2.block_count", Value::U32(cfg.block_count as u32)),
            ("qwen2.attention.layer_norm_rms_epsilon", Value::F32(1e-6)),
        ];
        let metadata: Vec<(&str, &Value)> = metadata.iter().map(|(k, v)| (*k, v)).collect();
        let tensors: Vec<(&str, &QTensor)> = tensors.iter().map(|(n, t)| (n.as_str(), t)).collect();
        let mut bytes = std::io::Cursor::new(Vec::new());
        gguf_file::write(&mut bytes, &metadata, &tensors).unwrap();
        bytes.set_position(0);
        let content = gguf_file::Content::read(&mut bytes).unwrap();
        let cfg = Config::from_gguf(&content).unwrap();
        assert_eq!(cfg.block_count, tiny_config().block_count);
        Qwen2::new(cfg, &content, &mut bytes, device).unwrap()
    }

    fn values(t: &Tensor) -> Vec<f32> {
        t.flatten_all().unwrap().to_vec1().unwrap()
    }

    #[test]
    fn the_cache_grows_and_continues_a_shared_prefix_without_losing_positions() {
        let device = Device::Cpu;
        let model = tiny_model(&device);
        let prompt = [1u32, 5, 9, 200, 7, 3];
        let mut whole = KvCache::new(model.block_count(), 2);
        let reference = values(&model.forward(&prompt, &mut whole).unwrap());
        assert_eq!(whole.len(), 6);

        // Fed in three pieces through a cache that has to grow twice.
        let mut pieces = KvCache::new(model.block_count(), 1);
        model.forward(&prompt[..2], &mut pieces).unwrap();
        model.forward(&prompt[2..3], &mut pieces).unwrap();
        let logits = values(&model.forward(&prompt[3..], &mut pieces).unwrap());
        let diff = reference
            .iter()
            .zip(&logits)
            .map(|(a, b)| (a - b).abs())
            .fold(0f32, f32::max);
        assert!(diff < 1e-3, "piecewise prefill drifted by {diff}");

        // Caches continuing a shared prefix agree with one that fed everything, give
        // each other identical logits, and leave the prefix alone.
        let mut prefix = KvCache::new(model.block_count(), 4);
        model.forward(&prompt[..4], &mut prefix).unwrap();
        let prefix = std::sync::Arc::new(prefix);
        let mut first = KvCache::after(prefix.clone(), 8).unwrap();
        let from_prefix = values(&model.forward(&prompt[4..], &mut first).unwrap());
        let diff = reference
            .iter()
            .zip(&from_prefix)
            .map(|(a, b)| (a - b).abs())
            .fold(0f32, f32::max);
        assert!(diff < 1e-3, "continuing a prefix drifted by {diff}");
        assert_eq!(first.len(), 6);
        let mut second = KvCache::after(prefix.clone(), 1).unwrap();
        assert_eq!(
            values(&model.forward(&prompt[4..], &mut second).unwrap()),
            from_prefix
        );
        assert_eq!(prefix.len(), 4);
        assert!(
            KvCache::after(std::sync::Arc::new(first), 4).is_err(),
            "one level of sharing only"
        );
        assert!(KvCache::new(model.block_count(), 1).is_empty());
    }

    #[test]
    fn a_batched_forward_pass_gives_each_sequence_its_unbatched_logits() {
        crate::model::transformer::assert_batched_equals_alone(&tiny_model(&Device::Cpu));
    }

    #[test]
    fn a_prompt_fed_in_pieces_gives_the_logits_of_one_pass() {
        // Long prompts are fed in passes of at most `prefill_tokens()`, and decoding steps
        // feed one token: where a prompt is cut must not change a number. Every position
        // attends in one fixed order however its prompt is cut, and every weight product
        // computes each row alone, so the logits are the same bit for bit, quantized
        // weights and all.
        use crate::model::transformer::Decoder;
        let model = tiny_model(&Device::Cpu);
        let tokens: Vec<u32> = (20..60).collect();
        let mut whole = KvCache::new(model.block_count(), 64);
        let expected = values(&model.forward(&tokens, &mut whole).unwrap());
        for piece in [1usize, 3, 16, 39] {
            let mut cache = KvCache::new(model.block_count(), 64);
            let mut logits = Vec::new();
            for chunk in tokens.chunks(piece) {
                logits = values(&model.forward(chunk, &mut cache).unwrap());
            }
            assert_eq!(logits, expected, "pieces of {piece} tokens");
        }
    }
}
