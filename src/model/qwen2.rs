//! The Qwen2 / Qwen2.5 decoder over quantized GGUF weights.
//!
//! Written after candle-transformers' `quantized_qwen2` (same weights, same kernels, same
//! numerics), with one difference that matters to tarjama: the key/value cache lives outside
//! the model, in a [`KvCache`] the caller owns. Every translation request starts with the
//! same system prompt and worked examples; the caller keeps their keys and values and
//! truncates the cache back to them instead of recomputing them for every segment.

use candle_core::quantized::{gguf_file, QMatMul};
use candle_core::{DType, Device, IndexOp, Module, Result, Tensor};
use candle_nn::Embedding;
use candle_transformers::quantized_nn::RmsNorm;
use candle_transformers::utils::{build_causal_mask, repeat_kv};

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

/// Keys and values of every token fed so far, per layer. Positions are implicit: the next
/// token fed sits at position [`KvCache::len`].
#[derive(Debug, Clone)]
pub struct KvCache {
    layers: Vec<Option<(Tensor, Tensor)>>,
    len: usize,
}

impl KvCache {
    pub fn new(cfg: &Config) -> Self {
        Self {
            layers: vec![None; cfg.block_count],
            len: 0,
        }
    }

    /// A cache with the same number of layers and nothing in it.
    pub fn empty_like(other: &KvCache) -> Self {
        Self {
            layers: vec![None; other.layers.len()],
            len: 0,
        }
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Forgets every token from position `len` on.
    pub fn truncate(&mut self, len: usize) -> Result<()> {
        if len >= self.len {
            return Ok(());
        }
        for layer in &mut self.layers {
            *layer = match layer.take() {
                Some((k, v)) if len > 0 => Some((k.narrow(2, 0, len)?, v.narrow(2, 0, len)?)),
                _ => None,
            };
        }
        self.len = len;
        Ok(())
    }
}

struct Mlp {
    gate: QMatMul,
    up: QMatMul,
    down: QMatMul,
}

impl Mlp {
    fn forward(&self, xs: &Tensor) -> Result<Tensor> {
        let gate = candle_nn::ops::silu(&self.gate.forward(xs)?)?;
        self.down.forward(&(gate * self.up.forward(xs)?)?)
    }
}

struct Layer {
    wq: QMatMul,
    wk: QMatMul,
    wv: QMatMul,
    bq: Tensor,
    bk: Tensor,
    bv: Tensor,
    wo: QMatMul,
    attention_norm: RmsNorm,
    mlp: Mlp,
    ffn_norm: RmsNorm,
}

pub struct Qwen2 {
    cfg: Config,
    embeddings: Embedding,
    layers: Vec<Layer>,
    norm: RmsNorm,
    output: QMatMul,
    cos: Tensor,
    sin: Tensor,
    neg_inf: Tensor,
}

/// Rotary-embedding tables for every position the model can attend to.
fn rope_tables(cfg: &Config, device: &Device) -> Result<(Tensor, Tensor)> {
    let head_dim = cfg.head_dim();
    let inv_freq: Vec<f32> = (0..head_dim)
        .step_by(2)
        .map(|i| 1.0 / cfg.rope_freq_base.powf(i as f32 / head_dim as f32))
        .collect();
    let inv_freq = Tensor::new(inv_freq.as_slice(), device)?;
    let angles = Tensor::arange(0, cfg.context_length as u32, device)?
        .to_dtype(DType::F32)?
        .reshape((cfg.context_length, 1))?
        .matmul(&inv_freq.reshape((1, inv_freq.elem_count()))?)?;
    Ok((angles.cos()?, angles.sin()?))
}

impl Qwen2 {
    pub fn new<R: std::io::Seek + std::io::Read>(
        cfg: Config,
        content: &gguf_file::Content,
        reader: &mut R,
        device: &Device,
    ) -> Result<Self> {
        let mut tensor = |name: &str| content.tensor(reader, name, device);
        let token_embd = tensor("token_embd.weight")?;
        let embeddings = Embedding::new(token_embd.dequantize(device)?, cfg.embedding_length);
        let output = match tensor("output.weight") {
            Ok(w) => QMatMul::from_qtensor(w)?,
            // Small Qwen2 models tie the output projection to the embeddings.
            Err(_) => QMatMul::from_qtensor(token_embd)?,
        };
        let norm = RmsNorm::from_qtensor(tensor("output_norm.weight")?, cfg.rms_norm_eps)?;
        let mut layers = Vec::with_capacity(cfg.block_count);
        for i in 0..cfg.block_count {
            let mut w = |suffix: &str| tensor(&format!("blk.{i}.{suffix}"));
            layers.push(Layer {
                wq: QMatMul::from_qtensor(w("attn_q.weight")?)?,
                wk: QMatMul::from_qtensor(w("attn_k.weight")?)?,
                wv: QMatMul::from_qtensor(w("attn_v.weight")?)?,
                bq: w("attn_q.bias")?.dequantize(device)?,
                bk: w("attn_k.bias")?.dequantize(device)?,
                bv: w("attn_v.bias")?.dequantize(device)?,
                wo: QMatMul::from_qtensor(w("attn_output.weight")?)?,
                attention_norm: RmsNorm::from_qtensor(w("attn_norm.weight")?, cfg.rms_norm_eps)?,
                mlp: Mlp {
                    gate: QMatMul::from_qtensor(w("ffn_gate.weight")?)?,
                    up: QMatMul::from_qtensor(w("ffn_up.weight")?)?,
                    down: QMatMul::from_qtensor(w("ffn_down.weight")?)?,
                },
                ffn_norm: RmsNorm::from_qtensor(w("ffn_norm.weight")?, cfg.rms_norm_eps)?,
            });
        }
        let (cos, sin) = rope_tables(&cfg, device)?;
        Ok(Self {
            embeddings,
            layers,
            norm,
            output,
            cos,
            sin,
            neg_inf: Tensor::new(f32::NEG_INFINITY, device)?,
            cfg,
        })
    }

    /// Feeds `ids` (shape `(1, seq_len)`) after the tokens already in `cache` and returns
    /// the logits of the last one.
    pub fn forward(&self, ids: &Tensor, cache: &mut KvCache) -> Result<Tensor> {
        let (_, seq_len) = ids.dims2()?;
        let pos = cache.len();
        if pos + seq_len > self.cfg.context_length {
            candle_core::bail!(
                "{} tokens exceed the model's context of {}",
                pos + seq_len,
                self.cfg.context_length
            );
        }
        let mask = if seq_len > 1 {
            Some(build_causal_mask(seq_len, pos, ids.device())?)
        } else {
            None
        };
        let cos = self.cos.narrow(0, pos, seq_len)?;
        let sin = self.sin.narrow(0, pos, seq_len)?;
        let mut xs = self.embeddings.forward(ids)?;
        for (layer, kv) in self.layers.iter().zip(cache.layers.iter_mut()) {
            let attn = self.attention(
                layer,
                &layer.attention_norm.forward(&xs)?,
                mask.as_ref(),
                &cos,
                &sin,
                kv,
            )?;
            let xs_attn = (attn + &xs)?;
            let mlp = layer.mlp.forward(&layer.ffn_norm.forward(&xs_attn)?)?;
            xs = (mlp + xs_attn)?;
        }
        cache.len = pos + seq_len;
        let last = self.norm.forward(&xs)?.i((.., seq_len - 1, ..))?;
        self.output.forward(&last)
    }

    fn attention(
        &self,
        layer: &Layer,
        xs: &Tensor,
        mask: Option<&Tensor>,
        cos: &Tensor,
        sin: &Tensor,
        kv: &mut Option<(Tensor, Tensor)>,
    ) -> Result<Tensor> {
        let (b, seq_len, hidden) = xs.dims3()?;
        let head_dim = self.cfg.head_dim();
        let heads = |t: Tensor, n: usize| {
            t.reshape((b, seq_len, n, head_dim))?
                .transpose(1, 2)?
                .contiguous()
        };
        let q = heads(
            layer.wq.forward(xs)?.broadcast_add(&layer.bq)?,
            self.cfg.head_count,
        )?;
        let k = heads(
            layer.wk.forward(xs)?.broadcast_add(&layer.bk)?,
            self.cfg.head_count_kv,
        )?;
        let v = heads(
            layer.wv.forward(xs)?.broadcast_add(&layer.bv)?,
            self.cfg.head_count_kv,
        )?;
        let q = candle_nn::rotary_emb::rope(&q, cos, sin)?;
        let k = candle_nn::rotary_emb::rope(&k, cos, sin)?;
        let (k, v) = match kv.take() {
            Some((k_past, v_past)) => (
                Tensor::cat(&[&k_past, &k], 2)?,
                Tensor::cat(&[&v_past, &v], 2)?,
            ),
            None => (k, v),
        };
        *kv = Some((k.clone(), v.clone()));
        let groups = self.cfg.head_count / self.cfg.head_count_kv;
        let k = repeat_kv(k, groups)?;
        let v = repeat_kv(v, groups)?;
        let scores = (q.matmul(&k.t()?)? / (head_dim as f64).sqrt())?;
        let scores = match mask {
            Some(mask) => {
                let mask = mask.broadcast_as(scores.shape())?;
                mask.where_cond(&self.neg_inf.broadcast_as(scores.shape())?, &scores)?
            }
            None => scores,
        };
        let weights = candle_nn::ops::softmax_last_dim(&scores)?;
        let out = weights.matmul(&v.contiguous()?)?;
        layer
            .wo
            .forward(&out.transpose(1, 2)?.reshape((b, seq_len, hidden))?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncating_the_cache_keeps_the_first_positions() {
        let cfg = Config {
            head_count: 2,
            head_count_kv: 1,
            embedding_length: 8,
            context_length: 16,
            block_count: 2,
            rms_norm_eps: 1e-6,
            rope_freq_base: 10_000.0,
        };
        let mut cache = KvCache::new(&cfg);
        let keys = Tensor::arange(0f32, 20., &Device::Cpu)
            .and_then(|t| t.reshape((1, 1, 5, 4)))
            .unwrap();
        for layer in &mut cache.layers {
            *layer = Some((keys.clone(), keys.clone()));
        }
        cache.len = 5;

        cache.truncate(7).unwrap();
        assert_eq!(cache.len(), 5, "truncating past the end changes nothing");
        cache.truncate(3).unwrap();
        assert_eq!(cache.len(), 3);
        for layer in &cache.layers {
            let (k, v) = layer.as_ref().unwrap();
            assert_eq!(k.dims(), &[1, 1, 3, 4]);
            let first: Vec<f32> = v.flatten_all().unwrap().to_vec1().unwrap();
            assert_eq!(first, (0..12).map(|x| x as f32).collect::<Vec<_>>());
        }
        cache.truncate(0).unwrap();
        assert!(cache.is_empty());
        assert!(cache.layers.iter().all(Option::is_none));
        let fresh = KvCache::empty_like(&cache);
        assert_eq!(fresh.layers.len(), 2);
    }
}
