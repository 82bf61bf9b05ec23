//! Self-attention over the key/value caches: per sequence for prompts, and for a
//! decoding step over every sequence of a [`KvSlab`] at once, with a softmax that stops
//! at each row's own length so padding never changes a number.
//!
//! [`KvSlab`]: super::kv_cache::KvSlab

use candle_core::{CpuStorage, CustomOp1, Device, Layout, Result, Shape, Tensor, WithDType};

use super::batch::{hidden_from, Batch, Chunk, DecodePlan};

/// The shape and options of one layer's attention.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AttentionShape {
    pub heads: usize,
    pub kv_heads: usize,
    pub head_dim: usize,
    /// Scores are multiplied by this (usually `1 / sqrt(head_dim)`).
    pub scale: f64,
    /// Scores become `cap * tanh(scores / cap)` (Gemma 2).
    pub softcap: Option<f64>,
    /// A query sees only this many positions, itself included (sliding-window layers).
    pub window: Option<usize>,
}

/// Self-attention of layer `layer` for every chunk against its own cache. `q` is
/// `(1, tokens, heads, head_dim)`, `k` and `v` `(1, tokens, kv_heads, head_dim)`, already
/// rotated; returns `(tokens, heads * head_dim)`, before the output projection.
///
/// A decoding step whose sequences share a slab runs as one set of products over all of
/// them ([`attend_together`]); anything else, prompts above all, runs per sequence. Both
/// give a sequence the same numbers, bit for bit.
pub fn attend(
    layer: usize,
    shape: &AttentionShape,
    qkv: (&Tensor, &Tensor, &Tensor),
    chunks: &mut [Chunk],
    batch: &Batch,
) -> Result<Tensor> {
    match &batch.decode {
        Some(plan) => attend_together(layer, shape, qkv, plan),
        None => attend_each(layer, shape, qkv, chunks, &batch.spans),
    }
}

/// Attention per sequence, so no row is ever padded or masked for another's sake.
fn attend_each(
    layer: usize,
    shape: &AttentionShape,
    (q, k, v): (&Tensor, &Tensor, &Tensor),
    chunks: &mut [Chunk],
    spans: &[(usize, usize)],
) -> Result<Tensor> {
    let AttentionShape {
        heads,
        kv_heads,
        head_dim,
        ..
    } = *shape;
    let groups = heads / kv_heads;
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
        let q = own(q)?.reshape((kv_heads, groups * len, head_dim))?;
        let pos = chunk.cache.len();
        let (base, (k, v)) = chunk.cache.append(layer, &own(k)?, &own(v)?)?;
        let kv_len = pos + len;
        // Scores against the shared prefix and the sequence's own positions sit side by
        // side, in position order, exactly as one cache's would.
        let own_scores = q.matmul(&k.t()?)?;
        let scores = match &base {
            Some((base_k, _)) => Tensor::cat(&[&q.matmul(&base_k.t()?)?, &own_scores], 2)?,
            None => own_scores,
        };
        let mut scores = (scores * shape.scale)?;
        if let Some(cap) = shape.softcap {
            scores = ((scores / cap)?.tanh()? * cap)?;
        }
        if let Some(mask) = mask(len, pos, shape.window, q.device())? {
            let full = (kv_heads, groups, len, kv_len);
            let neg_inf = Tensor::new(f32::NEG_INFINITY, q.device())?.broadcast_as(full)?;
            scores = mask
                .broadcast_as(full)?
                .where_cond(&neg_inf, &scores.reshape(full)?)?
                .reshape((kv_heads, groups * len, kv_len))?;
        }
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
                .reshape((len, heads * head_dim))?,
        );
    }
    if outs.len() == 1 {
        Ok(outs.swap_remove(0))
    } else {
        Tensor::cat(&outs, 0)
    }
}

/// Which of `len` new queries (at positions `pos..pos + len`) may not see which of the
/// `pos + len` positions: 1 for hidden. `None` when every query sees everything.
fn mask(len: usize, pos: usize, window: Option<usize>, device: &Device) -> Result<Option<Tensor>> {
    let kv_len = pos + len;
    let window = window.filter(|&w| w < kv_len);
    if len == 1 && window.is_none() {
        return Ok(None);
    }
    let hidden: Vec<u8> = (0..len)
        .flat_map(|i| {
            let query = pos + i;
            (0..kv_len).map(move |key| u8::from(hidden_from(query, key, window)))
        })
        .collect();
    Ok(Some(Tensor::from_vec(hidden, (len, kv_len), device)?))
}

/// One decoding step of every sequence in `plan`'s slab: this step's keys and values are
/// scattered into the slab, then scores, softmax and weighted sums run once over slab
/// rows `0..plan.rows`, a row's positions past its length masked out.
fn attend_together(
    layer: usize,
    shape: &AttentionShape,
    (q, k, v): (&Tensor, &Tensor, &Tensor),
    plan: &DecodePlan,
) -> Result<Tensor> {
    let AttentionShape {
        heads,
        kv_heads,
        head_dim,
        ..
    } = *shape;
    let (rows, groups) = (plan.rows, heads / kv_heads);
    let (k_slab, v_slab) = plan
        .slab
        .layer(layer, (kv_heads, head_dim), k.dtype(), k.device())?;
    let in_rows = |t: &Tensor| -> Result<Tensor> {
        let t = t.squeeze(0)?.contiguous()?;
        match &plan.take {
            Some(take) => {
                Tensor::cat(&[&t, &t.narrow(0, 0, 1)?.zeros_like()?], 0)?.index_select(take, 0)
            }
            None => Ok(t),
        }
    };
    let at = plan.write_index(kv_heads, head_dim)?;
    let slab_rows = |t: &Tensor| t.narrow(0, 0, rows);
    slab_rows(&k_slab)?.scatter_set(&at, &in_rows(k)?.unsqueeze(2)?, 2)?;
    slab_rows(&v_slab)?.scatter_set(&at, &in_rows(v)?.unsqueeze(2)?, 2)?;

    // Query heads that share a key/value head sit together, as in `attend_each`.
    let q = in_rows(q)?.reshape((rows, kv_heads, groups, head_dim))?;
    let own_len = plan.max_len();
    let keys = slab_rows(&k_slab)?.narrow(2, 0, own_len)?;
    let values = slab_rows(&v_slab)?.narrow(2, 0, own_len)?;
    let own_scores = q.matmul(&keys.t()?)?;
    let base = match &plan.base {
        Some(base) if base.own_len() > 0 => Some(base.written(layer)?),
        _ => None,
    };
    // Every row's queries of one key/value head stacked, to meet the shared base at once.
    let by_head = |t: &Tensor, width: usize| {
        t.transpose(0, 1)?
            .contiguous()?
            .reshape((kv_heads, rows * groups, width))
    };
    let from_heads =
        |t: Tensor, width: usize| t.reshape((kv_heads, rows, groups, width))?.transpose(0, 1);
    let base_len = plan.base_len();
    let scores = match &base {
        Some((base_k, _)) => {
            let on_base = from_heads(by_head(&q, head_dim)?.matmul(&base_k.t()?)?, base_len)?;
            Tensor::cat(&[&on_base, &own_scores], 3)?
        }
        None => own_scores,
    };
    let mut scores = (scores * shape.scale)?;
    if let Some(cap) = shape.softcap {
        scores = ((scores / cap)?.tanh()? * cap)?;
    }
    let scores = scores.broadcast_add(&plan.mask(shape.window)?)?;
    let visible: Vec<usize> = plan.lengths.iter().map(|&len| base_len + len).collect();
    let weights = softmax_within(&scores, &visible)?;
    let on_own = weights.narrow(3, base_len, own_len)?.matmul(&values)?;
    let out = match &base {
        Some((_, base_v)) => {
            let weights = by_head(&weights.narrow(3, 0, base_len)?, base_len)?;
            (from_heads(weights.matmul(base_v)?, head_dim)? + on_own)?
        }
        None => on_own,
    };
    let out = out.reshape((rows, heads * head_dim))?;
    match &plan.give {
        Some(give) => out.index_select(give, 0),
        None => Ok(out),
    }
}

/// Softmax over the last dimension of `(rows, …, width)` scores, row `r` over its first
/// `visible[r]` entries only; the rest become 0. On the CPU each row is reduced exactly
/// as candle's softmax reduces a row of that length, so a sequence decoded beside longer
/// ones gets the same numbers as alone. Elsewhere the masked entries (minus infinity)
/// already weigh nothing.
fn softmax_within(scores: &Tensor, visible: &[usize]) -> Result<Tensor> {
    if scores.device().is_cpu() {
        scores.contiguous()?.apply_op1_no_bwd(&SoftmaxWithin {
            visible: visible.to_vec(),
        })
    } else {
        candle_nn::ops::softmax_last_dim(scores)
    }
}

struct SoftmaxWithin {
    visible: Vec<usize>,
}

impl CustomOp1 for SoftmaxWithin {
    fn name(&self) -> &'static str {
        "softmax-within"
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> Result<(CpuStorage, Shape)> {
        let CpuStorage::F32(all) = storage else {
            candle_core::bail!("softmax-within takes f32 scores")
        };
        let Some((start, end)) = layout.contiguous_offsets() else {
            candle_core::bail!("softmax-within takes contiguous scores")
        };
        let dims = layout.dims();
        let (Some(&width), Some(&rows)) = (dims.last(), dims.first()) else {
            candle_core::bail!("softmax-within takes scores of rank 2 or more")
        };
        if rows != self.visible.len() || self.visible.iter().any(|&n| n == 0 || n > width) {
            candle_core::bail!("softmax-within: visible lengths do not fit the scores")
        }
        let src = &all[start..end];
        let per_row = src.len() / rows;
        let mut dst = vec![0f32; src.len()];
        for ((src, dst), &n) in src
            .chunks(per_row)
            .zip(dst.chunks_mut(per_row))
            .zip(&self.visible)
        {
            for (src, dst) in src.chunks(width).zip(dst.chunks_mut(width)) {
                softmax_row(&src[..n], &mut dst[..n]);
            }
        }
        Ok((f32::to_cpu_storage_owned(dst), layout.shape().clone()))
    }
}

/// candle-nn's softmax of one row, reduction for reduction.
fn softmax_row(src: &[f32], dst: &mut [f32]) {
    let n = src.len();
    let mut max = f32::NEG_INFINITY;
    // SAFETY: both reductions read exactly `n` elements of slices of length `n`.
    unsafe {
        <f32 as candle_core::cpu::kernels::VecOps>::vec_reduce_max(src.as_ptr(), &mut max, n)
    };
    for (s, d) in src.iter().zip(dst.iter_mut()) {
        *d = (*s - max).exp();
    }
    let mut sum = 0f32;
    // SAFETY: as above; `dst` has the length of `src`.
    unsafe {
        <f32 as candle_core::cpu::kernels::VecOps>::vec_reduce_sum(dst.as_ptr(), &mut sum, n)
    };
    for d in dst.iter_mut() {
        *d /= sum;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows(t: &Tensor) -> Vec<Vec<u8>> {
        t.to_vec2().unwrap()
    }

    #[test]
    fn masks_hide_the_future_and_what_lies_beyond_the_window() {
        let device = Device::Cpu;
        assert!(mask(1, 7, None, &device).unwrap().is_none());
        assert!(mask(1, 3, Some(4), &device).unwrap().is_none());
        let causal = mask(2, 1, None, &device).unwrap().unwrap();
        assert_eq!(rows(&causal), vec![vec![0, 0, 1], vec![0, 0, 0]]);
        // A window of 2: the query at position 3 sees positions 2 and 3 only.
        let windowed = mask(1, 3, Some(2), &device).unwrap().unwrap();
        assert_eq!(rows(&windowed), vec![vec![1, 1, 0, 0]]);
        let both = mask(2, 1, Some(2), &device).unwrap().unwrap();
        assert_eq!(rows(&both), vec![vec![0, 0, 1], vec![1, 0, 0]]);
    }

    #[test]
    fn a_row_softmaxed_within_its_length_is_candle_s_softmax_of_that_row_bit_for_bit() {
        let device = Device::Cpu;
        // Widths past candle's 32-wide vector step, so the tail reductions differ if padded.
        let scores = Tensor::randn(0f32, 3.0, (2, 3, 77), &device).unwrap();
        let within = softmax_within(&scores, &[45, 77]).unwrap();
        for (row, n) in [(0, 45), (1, 77)] {
            let row_scores = scores.get(row).unwrap().narrow(1, 0, n).unwrap();
            let alone =
                candle_nn::ops::softmax_last_dim(&row_scores.contiguous().unwrap()).unwrap();
            let ours = within.get(row).unwrap();
            assert_eq!(
                ours.narrow(1, 0, n).unwrap().to_vec2::<f32>().unwrap(),
                alone.to_vec2::<f32>().unwrap()
            );
            let rest: Vec<Vec<f32>> = ours.narrow(1, n, 77 - n).unwrap().to_vec2().unwrap();
            assert!(rest.iter().flatten().all(|&w| w == 0.0));
        }
        assert!(softmax_within(&scores, &[0, 77]).is_err());
        assert!(softmax_within(&scores, &[78, 77]).is_err());
    }
}
