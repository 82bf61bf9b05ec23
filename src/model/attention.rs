//! Self-attention over the key/value caches: per sequence for prompts, and for a
//! decoding step over every sequence of a [`KvSlab`] at once. On the CPU both are rows of
//! queries whose scores, softmax and weighted sums stop at each row's own length, in one
//! fixed order ([`super::within`]): padding never changes a number, a prompt's position
//! gets what it would get decoded, and nothing depends on the CPU's caches, vector width
//! or thread count. Both split their work by key/value head over candle's worker threads
//! ([`on_every_core`]).
//!
//! [`KvSlab`]: super::kv_cache::KvSlab

use std::sync::OnceLock;

use candle_core::{Device, Result, Tensor};

use super::batch::{additive_mask, hidden_from, Batch, Chunk, DecodePlan};
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
/// the CPU a sequence's queries are the rows of a [`RowAttention`], each reduced in one
/// fixed order over exactly the positions it sees, as a decoding step reduces; so a
/// prompt gives every position the numbers it would get fed token by token, and none
/// depends on the CPU's caches or the thread count (candle's products choose their
/// blocking from both). Each key/value head of each sequence is one item of work spread
/// over candle's worker threads. Elsewhere a sequence's heads go together through the
/// device's products, one set of kernels.
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
    let on_cpu = q.device().is_cpu();
    let mut sequences = Vec::with_capacity(chunks.len());
    for (chunk, &(start, len)) in chunks.iter_mut().zip(spans) {
        let tokens = |t: &Tensor| t.squeeze(0)?.narrow(0, start, len);
        let own = |t: &Tensor| tokens(t)?.transpose(0, 1)?.contiguous();
        let pos = chunk.cache.len();
        let (base, own_kv) = chunk.cache.append(layer, &own(k)?, &own(v)?)?;
        sequences.push(if on_cpu {
            Sequence::Rows(RowAttention::of_prompt(
                tokens(q)?.reshape((len, kv_heads, groups, head_dim))?,
                base,
                own_kv,
                pos,
                shape.window,
            )?)
        } else {
            Sequence::Stacked(SequenceAttention {
                // Query heads that share a key/value head are stacked, so grouped-query
                // attention needs no copy of the keys and values per query head.
                q: own(q)?.reshape((kv_heads, groups * len, head_dim))?,
                base,
                own: own_kv,
                mask: mask(len, pos, shape.window, q.device())?,
                len,
            })
        });
    }
    let parts = head_parts(q.device(), kv_heads);
    let outs = on_every_core(q.device(), sequences.len() * parts.len(), |item| {
        let part = parts[item % parts.len()].clone();
        match &sequences[item / parts.len()] {
            Sequence::Rows(rows) => rows.attend(part, shape),
            Sequence::Stacked(stacked) => stacked.attend(part, shape),
        }
    })?;
    let mut rows = Vec::with_capacity(sequences.len());
    for (&(_, len), outs) in spans.iter().zip(outs.chunks(parts.len())) {
        let out = if on_cpu {
            // `(len, kv_heads, groups, head_dim)`: query heads in order, per position.
            Tensor::cat(outs, 1)?
        } else {
            Tensor::cat(outs, 0)?
                .reshape((heads, len, head_dim))?
                .transpose(0, 1)?
        };
        rows.push(out.reshape((len, heads * head_dim))?);
    }
    if rows.len() == 1 {
        Ok(rows.swap_remove(0))
    } else {
        Tensor::cat(&rows, 0)
    }
}

/// One sequence's prompt attention, as its device runs it.
enum Sequence {
    Rows(RowAttention),
    Stacked(SequenceAttention),
}

/// One sequence's prompt attention through the device's matrix products (off the CPU),
/// its cache already appended to.
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
    /// head_dim)`.
    fn attend(&self, kv_heads: std::ops::Range<usize>, shape: &AttentionShape) -> Result<Tensor> {
        let count = kv_heads.len();
        let of_heads = |t: &Tensor| t.narrow(0, kv_heads.start, count);
        let q = of_heads(&self.q)?;
        let (k, v) = (of_heads(&self.own.0)?, of_heads(&self.own.1)?);
        let base = match &self.base {
            Some((base_k, base_v)) => Some((of_heads(base_k)?, of_heads(base_v)?)),
            None => None,
        };
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
        let weights = candle_nn::ops::softmax_last_dim(&scores)?;
        match &base {
            Some((_, base_v)) => {
                let base_len = base_v.dim(1)?;
                let on_base = weights.narrow(2, 0, base_len)?.matmul(base_v)?;
                let on_own = weights.narrow(2, base_len, kv_len - base_len)?.matmul(&v)?;
                on_base + on_own
            }
            None => weights.matmul(&v),
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
    let step = RowAttention {
        // Query heads that share a key/value head sit together, as in `attend_each`.
        q: in_rows(q)?.reshape((rows, kv_heads, groups, head_dim))?,
        keys: slab_rows(&k_slab)?.narrow(2, 0, own_len)?,
        values: slab_rows(&v_slab)?.narrow(2, 0, own_len)?,
        base: match &plan.base {
            Some(base) if base.own_len() > 0 => Some(base.written(layer)?),
            _ => None,
        },
        mask: Some(plan.mask(shape.window)?),
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

/// Attention of rows of queries, each row reduced over its own first `visible` positions
/// in one fixed order: the sequences of a decoding step over their slab rows (keys and
/// values already written), or the queries of one sequence's prompt over its cache. A
/// query gets the same numbers either way, so a prompt fed whole, in pieces or token by
/// token, alone or beside others, computes every position alike.
struct RowAttention {
    /// `(rows, kv_heads, groups, head_dim)`.
    q: Tensor,
    /// `(rows, kv_heads, own_len, head_dim)` each (for a prompt one sequence's, seen by
    /// every row without a copy).
    keys: Tensor,
    values: Tensor,
    /// The shared prefix's keys and values, `(kv_heads, base_len, head_dim)` each.
    base: Option<(Tensor, Tensor)>,
    /// Added to the scores: minus infinity past a row's length or outside its window.
    mask: Option<Tensor>,
    /// Per row, how many scores the softmax reduces: the base and the row's own length.
    visible: Vec<usize>,
    base_len: usize,
}

impl RowAttention {
    /// A prompt's queries `q`, `(len, kv_heads, groups, head_dim)`, at positions `pos..`
    /// after the cache's base `base` and with its own keys and values `own` (new positions
    /// included), as rows: query `i` sees every position up to its own, and with a
    /// `window` only the last `window` of them.
    fn of_prompt(
        q: Tensor,
        base: Option<(Tensor, Tensor)>,
        (keys, values): (Tensor, Tensor),
        pos: usize,
        window: Option<usize>,
    ) -> Result<Self> {
        let len = q.dim(0)?;
        let base_len = match &base {
            Some((base_k, _)) => base_k.dim(1)?,
            None => 0,
        };
        let (kv_heads, own_len, head_dim) = keys.dims3()?;
        let every_row = |t: Tensor| {
            t.unsqueeze(0)?
                .broadcast_as((len, kv_heads, own_len, head_dim))
        };
        let width = base_len + own_len;
        // The causal part needs no mask: each row stops at its own position.
        let mask = match window.filter(|&w| w < width) {
            Some(_) => {
                let values = additive_mask(pos..pos + len, width, window);
                Some(Tensor::from_vec(values, (len, 1, 1, width), q.device())?)
            }
            None => None,
        };
        Ok(Self {
            q,
            keys: every_row(keys)?,
            values: every_row(values)?,
            base,
            mask,
            visible: (0..len).map(|i| pos + i + 1).collect(),
            base_len,
        })
    }

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
        if let Some(mask) = &self.mask {
            scores = scores.broadcast_add(mask)?;
        }
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
