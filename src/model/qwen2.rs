//! The Qwen2 / Qwen2.5 decoder over quantized GGUF weights.
//!
//! Written after candle-transformers' `quantized_qwen2` (same weights, same kernels, same
//! numerics), with one difference that matters to tarjama: the key/value cache lives outside
//! the model, in a [`KvCache`] the caller owns. Every translation request starts with the
//! same system prompt and worked examples; the caller keeps their keys and values and
//! truncates the cache back to them instead of recomputing them for every segment.

use candle_core::quantized::{gguf_file, GgmlDType, QMatMul, QTensor};
use std::sync::Arc;

use candle_core::{DType, Device, Module, Result, Tensor};
use candle_transformers::quantized_nn::RmsNorm;
use candle_transformers::utils::build_causal_mask;

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

/// Keys and values of every token one sequence has fed so far, per layer, in buffers
/// allocated once with room to grow: appending a token writes in place instead of copying
/// the whole history. A cache can start after a shared, read-only `base` (the cached
/// prompt prefix), whose keys and values every request reads and none copies. Positions
/// are implicit: the next token fed sits at [`KvCache::len`].
#[derive(Debug, Clone)]
pub struct KvCache {
    base: Option<Arc<KvCache>>,
    /// Per layer, this cache's own keys and values, shaped `(kv_heads, capacity, head_dim)`.
    layers: Vec<Option<(Tensor, Tensor)>>,
    /// Own positions written.
    own: usize,
    capacity: usize,
}

/// One layer's cached keys and values: the shared base's, if any, and the sequence's own.
type LayerKv = (Option<(Tensor, Tensor)>, (Tensor, Tensor));

impl KvCache {
    /// An empty cache that holds `capacity` positions before it has to grow.
    pub fn new(cfg: &Config, capacity: usize) -> Self {
        Self {
            base: None,
            layers: vec![None; cfg.block_count],
            own: 0,
            capacity: capacity.max(1),
        }
    }

    /// An empty cache whose positions continue those of `base`, with room for
    /// `capacity` positions of its own.
    pub fn after(base: Arc<KvCache>, capacity: usize) -> Result<Self> {
        if base.base.is_some() {
            candle_core::bail!("a cache can only continue a cache without a base");
        }
        Ok(Self {
            layers: vec![None; base.layers.len()],
            base: Some(base),
            own: 0,
            capacity: capacity.max(1),
        })
    }

    pub fn len(&self) -> usize {
        self.base.as_ref().map_or(0, |b| b.len()) + self.own
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Makes room for `additional` more positions, before a forward pass writes any
    /// layer (growing mid-pass would lose the positions already written).
    fn reserve(&mut self, additional: usize) -> Result<()> {
        let needed = self.own + additional;
        if needed <= self.capacity {
            return Ok(());
        }
        let capacity = needed.max(self.capacity * 2);
        for slot in self.layers.iter_mut() {
            if let Some((k, v)) = slot.take() {
                *slot = Some((
                    copy_into_new(&k, self.own, capacity)?,
                    copy_into_new(&v, self.own, capacity)?,
                ));
            }
        }
        self.capacity = capacity;
        Ok(())
    }

    /// Writes the keys and values of `new` positions (each `(kv_heads, new, head_dim)`)
    /// of one layer after the cached ones, and returns every position of that layer.
    /// [`KvCache::advance`] moves the length once all layers are written.
    fn append(&mut self, layer: usize, k: &Tensor, v: &Tensor) -> Result<LayerKv> {
        let needed = self.own + k.dim(1)?;
        if needed > self.capacity {
            candle_core::bail!("key/value cache used without reserving room first");
        }
        let slot = &mut self.layers[layer];
        if slot.is_none() {
            let (kv_heads, _, head_dim) = k.dims3()?;
            let buffer =
                || Tensor::zeros((kv_heads, self.capacity, head_dim), k.dtype(), k.device());
            *slot = Some((buffer()?, buffer()?));
        }
        let Some((k_buf, v_buf)) = slot.as_ref() else {
            candle_core::bail!("key/value cache layer {layer} has no buffer")
        };
        k_buf.slice_set(k, 1, self.own)?;
        v_buf.slice_set(v, 1, self.own)?;
        let base = match &self.base {
            Some(base) if base.own > 0 => match &base.layers[layer] {
                Some((k, v)) => Some((k.narrow(1, 0, base.own)?, v.narrow(1, 0, base.own)?)),
                None => candle_core::bail!("the shared prefix cache has no layer {layer}"),
            },
            _ => None,
        };
        Ok((
            base,
            (k_buf.narrow(1, 0, needed)?, v_buf.narrow(1, 0, needed)?),
        ))
    }

    fn advance(&mut self, new: usize) {
        self.own += new;
    }
}

/// A `(kv_heads, capacity, head_dim)` buffer holding the first `len` positions of `src`.
fn copy_into_new(src: &Tensor, len: usize, capacity: usize) -> Result<Tensor> {
    let (kv_heads, _, head_dim) = src.dims3()?;
    let dst = Tensor::zeros((kv_heads, capacity, head_dim), src.dtype(), src.device())?;
    if len > 0 {
        dst.slice_set(&src.narrow(1, 0, len)?.contiguous()?, 1, 0)?;
    }
    Ok(dst)
}

/// A quantized weight matrix, applied to `(tokens, features)` rows.
///
/// candle multiplies a single row by Q6_K weights with another kernel than several rows,
/// and the two round differently in the last bits; through 28 layers that is enough to
/// change a greedy token now and then. A single row is therefore multiplied as two, so a
/// sequence gets the same numbers whether it is decoded alone or in a batch (it costs
/// about 1 % of a decoding step).
struct Linear {
    weights: QMatMul,
    pad_single_row: bool,
}

impl Linear {
    fn new(weights: QTensor) -> Result<Self> {
        Self::shared(Arc::new(weights))
    }

    fn shared(weights: Arc<QTensor>) -> Result<Self> {
        let pad_single_row = weights.dtype() == GgmlDType::Q6K;
        Ok(Self {
            weights: QMatMul::from_arc(weights)?,
            pad_single_row,
        })
    }
}

impl Module for Linear {
    fn forward(&self, xs: &Tensor) -> Result<Tensor> {
        if self.pad_single_row && xs.dim(0)? == 1 {
            let two = Tensor::cat(&[xs, xs], 0)?;
            return self.weights.forward(&two)?.narrow(0, 0, 1);
        }
        self.weights.forward(xs)
    }
}

struct Mlp {
    gate: Linear,
    up: Linear,
    down: Linear,
}

impl Mlp {
    fn forward(&self, xs: &Tensor) -> Result<Tensor> {
        let gate = candle_nn::ops::silu(&self.gate.forward(xs)?)?;
        self.down.forward(&(gate * self.up.forward(xs)?)?)
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
    /// Kept quantized: a lookup dequantizes only the rows it needs (the f32 table of a
    /// 150k-token vocabulary alone would take about 0.9 GB).
    embeddings: QMatMul,
    layers: Vec<Layer>,
    norm: RmsNorm,
    output: Linear,
    cos: Tensor,
    sin: Tensor,
    neg_inf: Tensor,
}

/// One sequence's part of a batched forward pass: its next tokens and its cache.
pub struct Chunk<'a> {
    pub tokens: &'a [u32],
    pub cache: &'a mut KvCache,
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
        let token_embd = Arc::new(tensor("token_embd.weight")?);
        let embeddings = QMatMul::from_arc(token_embd.clone())?;
        let output = match tensor("output.weight") {
            Ok(w) => Linear::new(w)?,
            // Small Qwen2 models tie the output projection to the embeddings.
            Err(_) => Linear::shared(token_embd)?,
        };
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

    pub fn config(&self) -> &Config {
        &self.cfg
    }

    /// Feeds `tokens` after those already in `cache` and returns the logits of the last
    /// one, shape `(vocab,)`.
    pub fn forward(&self, tokens: &[u32], cache: &mut KvCache) -> Result<Tensor> {
        self.forward_batch(&mut [Chunk { tokens, cache }])?
            .squeeze(0)
    }

    /// One forward pass over several sequences at once, each feeding its own number of
    /// tokens at its own positions; returns the logits of each chunk's last token, shape
    /// `(chunks, vocab)`.
    ///
    /// The tokens of all chunks are stacked into one matrix for the weight products,
    /// which are most of the work and treat every row on its own: a sequence gets the
    /// same numbers whatever it is batched with. Attention is done per sequence, against
    /// its own cache, so no row is ever padded or masked for another's sake.
    pub fn forward_batch(&self, chunks: &mut [Chunk]) -> Result<Tensor> {
        let device = self.cos.device();
        let mut ids = Vec::new();
        let mut positions = Vec::new();
        let mut spans = Vec::with_capacity(chunks.len());
        for chunk in chunks.iter_mut() {
            let start = chunk.cache.len();
            let end = start + chunk.tokens.len();
            if chunk.tokens.is_empty() {
                candle_core::bail!("a sequence in the batch has no token to feed");
            }
            if end > self.cfg.context_length {
                candle_core::bail!(
                    "{end} tokens exceed the model's context of {}",
                    self.cfg.context_length
                );
            }
            chunk.cache.reserve(chunk.tokens.len())?;
            spans.push((ids.len(), chunk.tokens.len()));
            ids.extend_from_slice(chunk.tokens);
            positions.extend((start..end).map(|p| p as u32));
        }
        let positions = Tensor::new(positions.as_slice(), device)?;
        let cos = self.cos.index_select(&positions, 0)?;
        let sin = self.sin.index_select(&positions, 0)?;
        let mut xs = self
            .embeddings
            .embedding(&Tensor::new(ids.as_slice(), device)?)?;
        for (i, layer) in self.layers.iter().enumerate() {
            let normed = layer.attention_norm.forward(&xs)?;
            let attn = self.attention(i, layer, &normed, &cos, &sin, chunks, &spans)?;
            let xs_attn = (attn + &xs)?;
            let mlp = layer.mlp.forward(&layer.ffn_norm.forward(&xs_attn)?)?;
            xs = (mlp + xs_attn)?;
        }
        for (chunk, &(_, len)) in chunks.iter_mut().zip(&spans) {
            chunk.cache.advance(len);
        }
        let last: Vec<u32> = spans
            .iter()
            .map(|&(start, len)| (start + len - 1) as u32)
            .collect();
        let last = xs.index_select(&Tensor::new(last.as_slice(), device)?, 0)?;
        self.output.forward(&self.norm.forward(&last)?)
    }

    /// Self-attention of layer `index` for every chunk; `xs` is `(tokens, hidden)`.
    #[allow(clippy::too_many_arguments)]
    fn attention(
        &self,
        index: usize,
        layer: &Layer,
        xs: &Tensor,
        cos: &Tensor,
        sin: &Tensor,
        chunks: &mut [Chunk],
        spans: &[(usize, usize)],
    ) -> Result<Tensor> {
        let (tokens, hidden) = xs.dims2()?;
        let head_dim = self.cfg.head_dim();
        let heads = self.cfg.head_count;
        let kv_heads = self.cfg.head_count_kv;
        let groups = heads / kv_heads;
        // `(1, tokens, heads, head_dim)`, rotated by each token's own position.
        let project = |w: &Linear, b: &Tensor, n: usize| {
            w.forward(xs)?
                .broadcast_add(b)?
                .reshape((1, tokens, n, head_dim))
        };
        let q = candle_nn::rotary_emb::rope_thd(&project(&layer.wq, &layer.bq, heads)?, cos, sin)?;
        let k =
            candle_nn::rotary_emb::rope_thd(&project(&layer.wk, &layer.bk, kv_heads)?, cos, sin)?;
        let v = project(&layer.wv, &layer.bv, kv_heads)?;
        let scale = (head_dim as f64).sqrt();
        let mut outs = Vec::with_capacity(chunks.len());
        for (chunk, &(start, len)) in chunks.iter_mut().zip(spans) {
            let own = |t: &Tensor| {
                t.squeeze(0)?
                    .narrow(0, start, len)?
                    .transpose(0, 1)?
                    .contiguous()
            };
            // Query heads that share a key/value head are stacked, so grouped-query
            // attention needs no copy of the keys and values per query head.
            let q = own(&q)?.reshape((kv_heads, groups * len, head_dim))?;
            let pos = chunk.cache.len();
            let (base, (k, v)) = chunk.cache.append(index, &own(&k)?, &own(&v)?)?;
            let kv_len = pos + len;
            // Scores against the shared prefix and the sequence's own positions sit side by
            // side, in position order, exactly as one cache's would.
            let own_scores = q.matmul(&k.t()?)?;
            let scores = match &base {
                Some((base_k, _)) => Tensor::cat(&[&q.matmul(&base_k.t()?)?, &own_scores], 2)?,
                None => own_scores,
            };
            let scores = (scores / scale)?;
            let scores = if len > 1 {
                let mask = build_causal_mask(len, pos, q.device())?;
                let shape = (kv_heads, groups, len, kv_len);
                let scores = scores.reshape(shape)?;
                let mask = mask.broadcast_as(shape)?;
                mask.where_cond(&self.neg_inf.broadcast_as(shape)?, &scores)?
                    .reshape((kv_heads, groups * len, kv_len))?
            } else {
                scores
            };
            let weights = candle_nn::ops::softmax_last_dim(&scores)?;
            let out = match &base {
                Some((_, base_v)) => {
                    let base_len = base_v.dim(1)?;
                    let on_base = weights.narrow(2, 0, base_len)?.matmul(base_v)?;
                    let on_own = weights.narrow(2, base_len, kv_len - base_len)?.matmul(&v)?;
                    (on_base + on_own)?
                }
                None => weights.matmul(&v)?,
            };
            outs.push(
                out.reshape((heads, len, head_dim))?
                    .transpose(0, 1)?
                    .reshape((len, hidden))?,
            );
        }
        let out = if outs.len() == 1 {
            outs.swap_remove(0)
        } else {
            Tensor::cat(&outs, 0)?
        };
        layer.wo.forward(&out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
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
        let cfg = tiny_config();
        let (hidden, vocab, ffn) = (cfg.embedding_length, 320, 512);
        let kv = cfg.head_count_kv * (hidden / cfg.head_count);
        let random = |shape: &[usize], dtype: GgmlDType| {
            let t = Tensor::randn(0f32, 0.5, shape, &Device::Cpu).unwrap();
            QTensor::quantize(&t, dtype).unwrap()
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
        let mut whole = KvCache::new(model.config(), 2);
        let reference = values(&model.forward(&prompt, &mut whole).unwrap());
        assert_eq!(whole.len(), 6);

        // Fed in three pieces through a cache that has to grow twice.
        let mut pieces = KvCache::new(model.config(), 1);
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
        let mut prefix = KvCache::new(model.config(), 4);
        model.forward(&prompt[..4], &mut prefix).unwrap();
        let prefix = Arc::new(prefix);
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
            KvCache::after(Arc::new(first), 4).is_err(),
            "one level of sharing only"
        );
        assert!(KvCache::new(model.config(), 1).is_empty());
    }

    #[test]
    fn a_batched_forward_pass_gives_each_sequence_its_unbatched_logits() {
        let device = Device::Cpu;
        let model = tiny_model(&device);
        let prefix = [11u32, 12, 13, 14, 15];
        let mut shared = KvCache::new(model.config(), 8);
        model.forward(&prefix, &mut shared).unwrap();
        let shared = Arc::new(shared);
        let prompts: [&[u32]; 3] = [&[20, 21, 22], &[30], &[40, 41, 42, 43, 44, 45, 46]];

        // Alone: prefill, then two decode steps each.
        let mut alone = Vec::new();
        for p in prompts {
            let mut cache = KvCache::after(shared.clone(), 16).unwrap();
            let mut logits = vec![values(&model.forward(p, &mut cache).unwrap())];
            for token in [99u32, 98] {
                logits.push(values(&model.forward(&[token], &mut cache).unwrap()));
            }
            alone.push(logits);
        }

        // Together, with the second sequence joining one step late and so sharing a pass
        // between its prefill and the others' decoding.
        let mut caches: Vec<KvCache> = (0..3)
            .map(|_| KvCache::after(shared.clone(), 16).unwrap())
            .collect();
        let mut together: Vec<Vec<Vec<f32>>> = vec![Vec::new(); 3];
        let (first, rest) = caches.split_at_mut(1);
        let (second, third) = rest.split_at_mut(1);
        let step = |chunks: &mut [Chunk]| {
            let out = model.forward_batch(chunks).unwrap();
            (0..chunks.len())
                .map(|i| values(&out.get(i).unwrap()))
                .collect::<Vec<_>>()
        };
        let out = step(&mut [
            Chunk {
                tokens: prompts[0],
                cache: &mut first[0],
            },
            Chunk {
                tokens: prompts[2],
                cache: &mut third[0],
            },
        ]);
        together[0].push(out[0].clone());
        together[2].push(out[1].clone());
        let out = step(&mut [
            Chunk {
                tokens: &[99],
                cache: &mut first[0],
            },
            Chunk {
                tokens: prompts[1],
                cache: &mut second[0],
            },
            Chunk {
                tokens: &[99],
                cache: &mut third[0],
            },
        ]);
        together[0].push(out[0].clone());
        together[1].push(out[1].clone());
        together[2].push(out[2].clone());
        let out = step(&mut [
            Chunk {
                tokens: &[98],
                cache: &mut first[0],
            },
            Chunk {
                tokens: &[99],
                cache: &mut second[0],
            },
            Chunk {
                tokens: &[98],
                cache: &mut third[0],
            },
        ]);
        together[0].push(out[0].clone());
        together[1].push(out[1].clone());
        together[2].push(out[2].clone());
        let out = step(&mut [Chunk {
            tokens: &[98],
            cache: &mut second[0],
        }]);
        together[1].push(out[0].clone());

        for (i, (a, b)) in alone.iter().zip(&together).enumerate() {
            assert_eq!(
                a, b,
                "sequence {i}: batched logits differ from unbatched ones"
            );
        }
    }
}
