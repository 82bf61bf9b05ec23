//! What every decoder-only family tarjama runs has in common, and the one trait the
//! batching loop in [`super::gguf_llm`] is written against.
//!
//! A family file (`qwen2.rs`, `llama.rs`, …) reads its `Config` from the GGUF metadata,
//! loads its weights in `new`, and implements [`Decoder::forward_batch`] with the pieces
//! here and re-exported from their own files: the caller-owned [`KvCache`] (and the
//! [`KvSlab`] that sequences decoded together share), the [`Batch`] layout of several
//! sequences' tokens, rotary tables, quantized [`Linear`] layers and [`attend`].

use std::sync::Arc;

use candle_core::quantized::{GgmlDType, QMatMul, QTensor};
use candle_core::{DType, Device, Module, Result, Tensor};

pub use super::attention::{attend, AttentionShape};
pub use super::batch::{Batch, Chunk};
pub use super::kv_cache::{KvCache, KvSlab};

/// A decoder-only transformer that feeds several sequences in one forward pass.
pub trait Decoder {
    /// Layers, each with its own keys and values in a [`KvCache`].
    fn block_count(&self) -> usize;
    /// Positions the model can attend to.
    fn context_length(&self) -> usize;
    /// One forward pass over several sequences, each feeding its own tokens after those
    /// already in its cache; returns the logits of each chunk's last `scored` tokens,
    /// chunk after chunk, shape `(Σ scored, vocab)`. A sequence gets the same numbers
    /// whatever it is batched with.
    fn forward_batch(&self, chunks: &mut [Chunk]) -> Result<Tensor>;

    /// Feeds `tokens` after those already in `cache`; the logits of the last one.
    fn forward(&self, tokens: &[u32], cache: &mut KvCache) -> Result<Tensor> {
        self.forward_batch(&mut [Chunk::new(tokens, cache)])?
            .squeeze(0)
    }
}

/// How a family pairs the dimensions a rotary embedding turns together.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RopeStyle {
    /// Dimension `i` with `i + head_dim / 2` (Qwen, Gemma: llama.cpp's "neox").
    Halves,
    /// Dimension `2i` with `2i + 1` (Llama and Mistral as llama.cpp converts them).
    Interleaved,
}

/// Rotary-embedding tables for every position the model can attend to.
pub struct Rope {
    cos: Tensor,
    sin: Tensor,
    style: RopeStyle,
}

impl Rope {
    /// `freq_factors` divide the frequencies one by one (Llama 3.1's long-context
    /// scaling, stored as `rope_freqs.weight`); `scale` divides every position (linear
    /// scaling, Gemma 3's global layers).
    pub fn new(
        head_dim: usize,
        base: f32,
        context_length: usize,
        freq_factors: Option<&[f32]>,
        scale: f32,
        style: RopeStyle,
        device: &Device,
    ) -> Result<Self> {
        let inv_freq: Vec<f32> = (0..head_dim)
            .step_by(2)
            .enumerate()
            .map(|(k, i)| {
                let factor = freq_factors.and_then(|f| f.get(k)).copied().unwrap_or(1.0);
                1.0 / base.powf(i as f32 / head_dim as f32) / factor / scale
            })
            .collect();
        let inv_freq = Tensor::new(inv_freq.as_slice(), device)?;
        let angles = Tensor::arange(0, context_length as u32, device)?
            .to_dtype(DType::F32)?
            .reshape((context_length, 1))?
            .matmul(&inv_freq.reshape((1, inv_freq.elem_count()))?)?;
        Ok(Self {
            cos: angles.cos()?,
            sin: angles.sin()?,
            style,
        })
    }

    /// The tables' rows for `positions`.
    pub fn at(&self, positions: &Tensor) -> Result<(Tensor, Tensor)> {
        Ok((
            self.cos.index_select(positions, 0)?,
            self.sin.index_select(positions, 0)?,
        ))
    }

    /// Rotates `xs`, shaped `(1, tokens, heads, head_dim)`, each token by its own
    /// position (`cos` and `sin` from [`Rope::at`]).
    pub fn apply(&self, xs: &Tensor, cos: &Tensor, sin: &Tensor) -> Result<Tensor> {
        match self.style {
            RopeStyle::Halves => candle_nn::rotary_emb::rope_thd(&xs.contiguous()?, cos, sin),
            RopeStyle::Interleaved => {
                let by_head = xs.transpose(1, 2)?.contiguous()?;
                candle_nn::rotary_emb::rope_i(&by_head, cos, sin)?.transpose(1, 2)
            }
        }
    }
}

/// A quantized weight matrix, applied to `(tokens, features)` rows.
///
/// On x86-64 a weight the linear layer owns alone is packed into candle's tiled layout at
/// load and its GGUF blocks are freed (our candle-core patch), so it is held once; every
/// product, whatever its row count, then runs on the same tiled kernel.
///
/// Where the blocks are kept (other CPUs, a weight shared with the embeddings), candle
/// multiplies a single row by Q6_K weights with another kernel than several rows, and the
/// two round differently in the last bits; through 28 layers that is enough to change a
/// greedy token now and then. A single row is then multiplied as two, so a sequence gets
/// the same numbers whether it is decoded alone or in a batch.
pub struct Linear {
    weights: QMatMul,
    pad_single_row: bool,
}

impl Linear {
    pub fn new(mut weights: QTensor) -> Result<Self> {
        weights.pack_and_release_blocks()?;
        Self::shared(Arc::new(weights))
    }

    pub fn shared(weights: Arc<QTensor>) -> Result<Self> {
        let pad_single_row = weights.dtype() == GgmlDType::Q6K && !weights.blocks_released();
        Ok(Self {
            weights: QMatMul::from_arc(weights)?,
            pad_single_row,
        })
    }
}

impl Linear {
    /// Several products of the same rows (gate and up; q, k and v): one quantization of
    /// the rows and one parallel region where the vendored candle has a fused kernel for
    /// them (x86-64, blocks released, whatever their types); one by one otherwise. The
    /// numbers are the same either way: released weights always run the tile code the
    /// fused kernel runs.
    pub fn forward_shared<const N: usize>(
        layers: [&Linear; N],
        xs: &Tensor,
    ) -> Result<[Tensor; N]> {
        if let Some(outs) = Self::fused(&layers, xs)? {
            if let Ok(outs) = <[Tensor; N]>::try_from(outs) {
                return Ok(outs);
            }
        }
        let outs = layers
            .iter()
            .map(|layer| layer.forward(xs))
            .collect::<Result<Vec<_>>>()?;
        <[Tensor; N]>::try_from(outs)
            .map_err(|_| candle_core::Error::Msg("one product per layer".to_string()))
    }

    fn fused(layers: &[&Linear], xs: &Tensor) -> Result<Option<Vec<Tensor>>> {
        let mut weights = Vec::with_capacity(layers.len());
        for layer in layers {
            match &layer.weights {
                QMatMul::QTensor(w) if w.blocks_released() => weights.push(w.as_ref()),
                _ => return Ok(None),
            }
        }
        QTensor::gemv_fused_shared_lhs(&weights, xs)
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

/// The activation of a gated feed-forward block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Activation {
    Silu,
    /// GELU, tanh approximation (Gemma).
    GeluTanh,
}

/// A gated feed-forward block: `down(act(gate(x)) * up(x))`.
pub struct Mlp {
    pub gate: Linear,
    pub up: Linear,
    pub down: Linear,
    pub activation: Activation,
}

impl Mlp {
    pub fn forward(&self, xs: &Tensor) -> Result<Tensor> {
        let [gate, up] = Linear::forward_shared([&self.gate, &self.up], xs)?;
        let gated = match self.activation {
            Activation::Silu => super::gated::silu_times(gate, &up)?,
            Activation::GeluTanh => (gate.gelu()? * up)?,
        };
        self.down.forward(&gated)
    }
}

/// Checks a decoder the way every family is checked: sequences continuing one shared
/// prefix, decoded together with different prompt lengths and one joining a step late,
/// get exactly the logits each gets decoded alone.
#[cfg(test)]
pub(crate) fn assert_batched_equals_alone(model: &dyn Decoder) {
    let values = |t: &Tensor| -> Vec<f32> { t.flatten_all().unwrap().to_vec1().unwrap() };
    let prefix = [11u32, 12, 13, 14, 15];
    let mut shared = KvCache::new(model.block_count(), 8);
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
    // between its prefill and the others' decoding. Each step lists (sequence, tokens).
    let steps: [&[(usize, &[u32])]; 4] = [
        &[(0, prompts[0]), (2, prompts[2])],
        &[(0, &[99]), (1, prompts[1]), (2, &[99])],
        &[(0, &[98]), (1, &[99]), (2, &[98])],
        &[(1, &[98])],
    ];
    // Their caches share a slab, so the decoding steps attend over all three at once
    // (the last step, with two slots held by sequences outside it, cannot). The slots
    // run opposite to the sequences and slot 0 is left free, so rows are reordered and a
    // free row is computed and dropped.
    let slab = KvSlab::new(model.block_count(), 4, 16);
    let hole = KvCache::new(model.block_count(), 16).placed_in(&slab);
    let mut caches: Vec<KvCache> = (0..3)
        .map(|_| KvCache::after(shared.clone(), 16).unwrap().placed_in(&slab))
        .collect();
    caches.reverse();
    drop(hole);
    let mut together: Vec<Vec<Vec<f32>>> = vec![Vec::new(); 3];
    for step in steps {
        let mut chunks: Vec<Chunk> = caches
            .iter_mut()
            .enumerate()
            .filter_map(|(i, cache)| {
                let &(_, tokens) = step.iter().find(|(s, _)| *s == i)?;
                Some(Chunk::new(tokens, cache))
            })
            .collect();
        let out = model.forward_batch(&mut chunks).unwrap();
        assert_eq!(out.dim(0).unwrap(), step.len());
        for (row, &(sequence, _)) in step.iter().enumerate() {
            together[sequence].push(values(&out.get(row).unwrap()));
        }
    }
    for (i, (a, b)) in alone.iter().zip(&together).enumerate() {
        assert_eq!(
            a, b,
            "sequence {i}: batched logits differ from unbatched ones"
        );
    }
}

/// How a decoder's greedy run compares with a reference implementation's.
#[cfg(test)]
#[derive(Debug)]
pub(crate) struct Parity {
    pub ours: Vec<u32>,
    pub reference: Vec<u32>,
    /// Largest difference of one logit after the prompt (one pass through both).
    pub prompt_diff: f32,
    /// Largest difference of one logit, over every step compared.
    pub max_diff: f32,
    /// Smallest spread (max - min) of the reference's logits at one step.
    pub min_range: f32,
}

/// Decodes `steps` tokens greedily after `prompt` with `model` (through a [`KvCache`])
/// and with `reference`, called as candle's one-sequence models are: the whole prompt at
/// position 0, then one token at a time at its position, returning `(1, vocab)` logits.
/// Logits are compared while the two agree on the tokens fed.
#[cfg(test)]
pub(crate) fn greedy_parity(
    model: &dyn Decoder,
    mut reference: impl FnMut(&Tensor, usize) -> Result<Tensor>,
    prompt: &[u32],
    steps: usize,
) -> Parity {
    let device = Device::Cpu;
    let values = |t: &Tensor| -> Vec<f32> { t.flatten_all().unwrap().to_vec1().unwrap() };
    let argmax = |v: &[f32]| {
        v.iter()
            .enumerate()
            .fold((0, f32::NEG_INFINITY), |best, (i, &x)| {
                if x > best.1 {
                    (i, x)
                } else {
                    best
                }
            })
            .0 as u32
    };
    let mut cache = KvCache::new(model.block_count(), prompt.len() + steps);
    let (mut ours, mut theirs) = (Vec::new(), Vec::new());
    let (mut prompt_diff, mut max_diff, mut min_range) = (0f32, 0f32, f32::INFINITY);
    let mut feed_ours = prompt.to_vec();
    let mut feed_theirs = prompt.to_vec();
    let mut position = 0;
    for _ in 0..steps {
        let a = values(&model.forward(&feed_ours, &mut cache).unwrap());
        let input = Tensor::new(feed_theirs.as_slice(), &device)
            .unwrap()
            .unsqueeze(0)
            .unwrap();
        let b = values(&reference(&input, position).unwrap());
        assert_eq!(a.len(), b.len(), "vocabulary sizes differ");
        if feed_ours == feed_theirs {
            for (x, y) in a.iter().zip(&b) {
                max_diff = max_diff.max((x - y).abs());
            }
            if position == 0 {
                prompt_diff = max_diff;
            }
            let (lo, hi) = b
                .iter()
                .fold((f32::INFINITY, f32::NEG_INFINITY), |(lo, hi), &x| {
                    (lo.min(x), hi.max(x))
                });
            min_range = min_range.min(hi - lo);
        }
        position += feed_theirs.len();
        ours.push(argmax(&a));
        theirs.push(argmax(&b));
        feed_ours = vec![argmax(&a)];
        feed_theirs = vec![argmax(&b)];
    }
    Parity {
        ours,
        reference: theirs,
        prompt_diff,
        max_diff,
        min_range,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interleaved_and_halves_rotations_agree_once_dimensions_are_paired_alike() {
        let device = Device::Cpu;
        let (tokens, heads, head_dim) = (3, 2, 8);
        let xs = Tensor::randn(0f32, 1.0, (1, tokens, heads, head_dim), &device).unwrap();
        let positions = Tensor::new(&[0u32, 5, 9], &device).unwrap();
        let halves = Rope::new(
            head_dim,
            10_000.0,
            16,
            None,
            1.0,
            RopeStyle::Halves,
            &device,
        )
        .unwrap();
        let interleaved = Rope::new(
            head_dim,
            10_000.0,
            16,
            None,
            1.0,
            RopeStyle::Interleaved,
            &device,
        )
        .unwrap();
        let (cos, sin) = halves.at(&positions).unwrap();
        let by_halves = halves.apply(&xs, &cos, &sin).unwrap();
        // Reorder dimensions (0, 4, 1, 5, …) so interleaved pairs are the halves' pairs.
        let order: Vec<u32> = (0..head_dim / 2)
            .flat_map(|i| [i as u32, (i + head_dim / 2) as u32])
            .collect();
        let order = Tensor::new(order.as_slice(), &device).unwrap();
        let shuffled = xs.index_select(&order, 3).unwrap();
        let by_pairs = interleaved.apply(&shuffled, &cos, &sin).unwrap();
        let expected = by_halves.index_select(&order, 3).unwrap();
        let diff = (by_pairs - expected)
            .unwrap()
            .abs()
            .unwrap()
            .flatten_all()
            .unwrap()
            .max(0)
            .unwrap()
            .to_scalar::<f32>()
            .unwrap();
        assert!(diff < 1e-5, "rotations differ by {diff}");
    }
}
