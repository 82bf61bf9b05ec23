//! Self-attention over the key/value caches: per sequence for prompts, and for a
//! decoding step over every sequence of a [`KvSlab`] at once, with scores, softmax and
//! weighted sums that stop at each row's own length ([`super::within`]) so padding never
//! changes a number. On the CPU both split their work by key/value head over candle's
//! worker threads ([`on_every_core`]).
//!
//! [`KvSlab`]: super::kv_cache::KvSlab

use std::sync::OnceLock;

use candle_core::{Device, Result, Tensor};

use super::batch::{hidden_from, Batch, Chunk, DecodePlan};
use super::within::{scores_within, softmax_within, sums_within};

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

/// Attention per sequence, so no row is ever padded or masked for another's sake. On
/// the CPU each key/value head of each sequence is one item of work, spread over candle's
/// worker threads, which would otherwise wait at their barrier while one thread did all
/// of a prompt's attention; elsewhere a sequence's heads go together, one set of kernels.
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
    let mut sequences = Vec::with_capacity(chunks.len());
    for (chunk, &(start, len)) in chunks.iter_mut().zip(spans) {
        let own = |t: &Tensor| {
            t.squeeze(0)?
                .narrow(0, start, len)?
                .transpose(0, 1)?
                .contiguous()
        };
        let pos = chunk.cache.len();
        let (base, own_kv) = chunk.cache.append(layer, &own(k)?, &own(v)?)?;
        sequences.push(SequenceAttention {
            // Query heads that share a key/value head are stacked, so grouped-query
            // attention needs no copy of the keys and values per query head.
            q: own(q)?.reshape((kv_heads, (heads / kv_heads) * len, head_dim))?,
            base,
            own: own_kv,
            mask: mask(len, pos, shape.window, q.device())?,
            len,
        });
    }
    let parts = head_parts(q.device(), kv_heads);
    let outs = on_every_core(q.device(), sequences.len() * parts.len(), |item| {
        sequences[item / parts.len()].attend(parts[item % parts.len()].clone(), shape)
    })?;
    let mut rows = Vec::with_capacity(sequences.len());
    for (sequence, outs) in sequences.iter().zip(outs.chunks(parts.len())) {
        rows.push(
            Tensor::cat(outs, 0)?
                .reshape((heads, sequence.len, head_dim))?
                .transpose(0, 1)?
                .reshape((sequence.len, heads * head_dim))?,
        );
    }
    if rows.len() == 1 {
        Ok(rows.swap_remove(0))
    } else {
        Tensor::cat(&rows, 0)
    }
}

/// One sequence's prompt attention, its cache already appended to.
struct SequenceAttention {
    /// `(kv_heads, groups * len, head_dim)`.
    q: Tensor,
    /// The shared prefix's keys and values, `(kv_heads, base_len, head_dim)` each.
    base: Option<(Tensor, Tensor)>,
    /// The sequence's own keys and values, new positions included.
    own: (Tensor, Tensor),
    /// `(len, kv_len)`, 1 where a query may not see a key.
    mask: Option<Tensor>,
    len: usize,
}

impl SequenceAttention {
    /// The output of the key/value heads `kv_heads`, `(kv_heads.len(), groups * len,
    /// head_dim)`: every head's numbers are the same whichever others it is computed with.
    fn attend(&self, kv_heads: std::ops::Range<usize>, shape: &AttentionShape) -> Result<Tensor> {
        let count = kv_heads.len();
        let of_heads = |t: &Tensor| t.narrow(0, kv_heads.start, count);
        let q = of_heads(&self.q)?;
        let (k, v) = (of_heads(&self.own.0)?, of_heads(&self.own.1)?);
        let base = match &self.base {
            Some((base_k, base_v)) => Some((of_heads(base_k)?, of_heads(base_v)?)),
            None => None,
        };
        // A decoding step (one query) reduces as a slab's decoding step does, so a
        // sequence decoded alone and one decoded beside others agree bit for bit; a
        // prompt's many queries go through candle's products.
        let decoding = self.len == 1;
        let scores_on = |keys: &Tensor| -> Result<Tensor> {
            if decoding {
                scores_within(&q.unsqueeze(0)?, keys, &[keys.dim(1)?])?.squeeze(0)
            } else {
                q.matmul(&keys.t()?)
            }
        };
        let sums_on = |weights: &Tensor, values: &Tensor| -> Result<Tensor> {
            if decoding {
                sums_within(&weights.unsqueeze(0)?, values, &[values.dim(1)?])?.squeeze(0)
            } else {
                weights.matmul(values)
            }
        };
        // Scores against the shared prefix and the sequence's own positions sit side by
        // side, in position order, exactly as one cache's would.
        let own_scores = scores_on(&k)?;
        let scores = match &base {
            Some((base_k, _)) => Tensor::cat(&[&scores_on(base_k)?, &own_scores], 2)?,
            None => own_scores,
        };
        let mut scores = (scores * shape.scale)?;
        if let Some(cap) = shape.softcap {
            scores = ((scores / cap)?.tanh()? * cap)?;
        }
        let kv_len = scores.dim(2)?;
        if let Some(mask) = &self.mask {
            let groups = shape.heads / shape.kv_heads;
            let full = (count, groups, self.len, kv_len);
            let neg_inf = Tensor::new(f32::NEG_INFINITY, q.device())?.broadcast_as(full)?;
            scores = mask
                .broadcast_as(full)?
                .where_cond(&neg_inf, &scores.reshape(full)?)?
                .reshape((count, groups * self.len, kv_len))?;
        }
        // Every row whole: candle's softmax, without handing the rows to rayon's pool
        // (one thread, which every core would queue on).
        let weights = softmax_within(&scores, &vec![kv_len; count])?;
        match &base {
            Some((_, base_v)) => {
                let base_len = base_v.dim(1)?;
                let on_base = sums_on(&weights.narrow(2, 0, base_len)?, base_v)?;
                let on_own = sums_on(&weights.narrow(2, base_len, kv_len - base_len)?, &v)?;
                on_base + on_own
            }
            None => sums_on(&weights, &v),
        }
    }
}

/// How a sequence's key/value heads are split into items of work: one head per item on
/// the CPU, where [`on_every_core`] spreads them over the cores; all heads in one item
/// elsewhere, so a GPU launches one set of kernels per sequence.
fn head_parts(device: &Device, kv_heads: usize) -> Vec<std::ops::Range<usize>> {
    if device.is_cpu() {
        (0..kv_heads).map(|head| head..head + 1).collect()
    } else {
        std::iter::once(0..kv_heads).collect()
    }
}

/// `work(0..items)`, in order, spread over candle's CPU worker threads (the calling thread
/// among them), or one after the other on any other device. A candle operation that
/// itself runs on those workers (a quantized product, a large elementwise op) runs inline
/// on whichever thread took the item (the vendored candle-core's sixth change).
fn on_every_core<T: Send + Sync>(
    device: &Device,
    items: usize,
    work: impl Fn(usize) -> Result<T> + Sync,
) -> Result<Vec<T>> {
    if !device.is_cpu() || items < 2 {
        return (0..items).map(work).collect();
    }
    let done: Vec<OnceLock<Result<T>>> = (0..items).map(|_| OnceLock::new()).collect();
    candle_core::utils::barrier_pool().execute_chunked(items, |range| {
        for item in range {
            let _ = done[item].set(work(item));
        }
    });
    done.into_iter()
        .map(|slot| match slot.into_inner() {
            Some(result) => result,
            None => candle_core::bail!("an attention item was never computed"),
        })
        .collect()
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
/// rows `0..plan.rows`, a row's positions past its length masked out. On the CPU each
/// key/value head is one item of work for candle's worker threads, as in [`attend_each`].
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

    let own_len = plan.max_len();
    let base_len = plan.base_len();
    let step = DecodeStep {
        // Query heads that share a key/value head sit together, as in `attend_each`.
        q: in_rows(q)?.reshape((rows, kv_heads, groups, head_dim))?,
        keys: slab_rows(&k_slab)?.narrow(2, 0, own_len)?,
        values: slab_rows(&v_slab)?.narrow(2, 0, own_len)?,
        base: match &plan.base {
            Some(base) if base.own_len() > 0 => Some(base.written(layer)?),
            _ => None,
        },
        mask: plan.mask(shape.window)?,
        visible: plan.lengths.iter().map(|&len| base_len + len).collect(),
        base_len,
    };
    let parts = head_parts(q.device(), kv_heads);
    let outs = on_every_core(q.device(), parts.len(), |part| {
        step.attend(parts[part].clone(), shape)
    })?;
    let out = Tensor::cat(&outs, 1)?.reshape((rows, heads * head_dim))?;
    match &plan.give {
        Some(give) => out.index_select(give, 0),
        None => Ok(out),
    }
}

/// One decoding step's attention over slab rows, their keys and values already written.
struct DecodeStep {
    /// `(rows, kv_heads, groups, head_dim)`.
    q: Tensor,
    /// `(rows, kv_heads, own_len, head_dim)` each.
    keys: Tensor,
    values: Tensor,
    /// The shared prefix's keys and values, `(kv_heads, base_len, head_dim)` each.
    base: Option<(Tensor, Tensor)>,
    /// Added to the scores: minus infinity past a row's length or outside its window.
    mask: Tensor,
    /// Per row, how many scores the softmax reduces: the base and the row's own length.
    visible: Vec<usize>,
    base_len: usize,
}

impl DecodeStep {
    /// The output of the key/value heads `kv_heads`, `(rows, kv_heads.len(), groups,
    /// head_dim)`: every head's numbers are the same whichever others it is computed with.
    fn attend(&self, kv_heads: std::ops::Range<usize>, shape: &AttentionShape) -> Result<Tensor> {
        let (count, base_len) = (kv_heads.len(), self.base_len);
        let of_heads = |t: &Tensor, dim: usize| t.narrow(dim, kv_heads.start, count);
        let q = of_heads(&self.q, 1)?;
        let values = of_heads(&self.values, 1)?;
        let own_len = values.dim(2)?;
        let own_visible: Vec<usize> = self.visible.iter().map(|n| n - base_len).collect();
        let base_visible = vec![base_len; own_visible.len()];
        let base = match &self.base {
            Some((base_k, base_v)) => Some((of_heads(base_k, 0)?, of_heads(base_v, 0)?)),
            None => None,
        };
        let own_scores = scores_within(&q, &of_heads(&self.keys, 1)?, &own_visible)?;
        let scores = match &base {
            Some((base_k, _)) => Tensor::cat(
                &[&scores_within(&q, base_k, &base_visible)?, &own_scores],
                3,
            )?,
            None => own_scores,
        };
        let mut scores = (scores * shape.scale)?;
        if let Some(cap) = shape.softcap {
            scores = ((scores / cap)?.tanh()? * cap)?;
        }
        let scores = scores.broadcast_add(&self.mask)?;
        let weights = softmax_within(&scores, &self.visible)?;
        let on_own = sums_within(
            &weights.narrow(3, base_len, own_len)?,
            &values,
            &own_visible,
        )?;
        match &base {
            Some((_, base_v)) => {
                sums_within(&weights.narrow(3, 0, base_len)?, base_v, &base_visible)? + on_own
            }
            None => Ok(on_own),
        }
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
}
