//! How the sequences of one forward pass are laid out: every chunk's tokens stacked into
//! one matrix for the weight products, and, when every sequence feeds one token from a
//! slot of the same [`KvSlab`], the [`DecodePlan`] that lets attention run over all of
//! them at once.

use std::cell::RefCell;
use std::sync::Arc;

use candle_core::{Device, Result, Tensor};

use super::kv_cache::{KvCache, KvSlab};

/// One sequence's part of a batched forward pass: its next tokens and its cache.
pub struct Chunk<'a> {
    pub tokens: &'a [u32],
    pub cache: &'a mut KvCache,
    /// Trailing tokens whose logits the pass returns: 1 when decoding, more when a given
    /// answer is scored token by token (teacher forcing).
    pub scored: usize,
}

impl<'a> Chunk<'a> {
    /// A chunk whose last token's logits are returned.
    pub fn new(tokens: &'a [u32], cache: &'a mut KvCache) -> Self {
        Self {
            tokens,
            cache,
            scored: 1,
        }
    }
}

/// The tokens of a batched pass stacked into one matrix, with where each chunk's rows are.
pub struct Batch {
    /// Every chunk's tokens, one after another.
    pub ids: Tensor,
    /// Each token's position in its own sequence.
    pub positions: Tensor,
    /// `(first row, rows)` of each chunk.
    pub spans: Vec<(usize, usize)>,
    /// Trailing rows of each chunk whose logits are wanted.
    scored: Vec<usize>,
    /// Set when attention can run over the whole batch in one set of products.
    pub(crate) decode: Option<DecodePlan>,
}

impl Batch {
    /// Lays out `chunks` and reserves room in their caches, checking each fits in
    /// `context_length`.
    pub fn new(chunks: &mut [Chunk], context_length: usize, device: &Device) -> Result<Self> {
        let mut ids = Vec::new();
        let mut positions = Vec::new();
        let mut spans = Vec::with_capacity(chunks.len());
        let mut scored = Vec::with_capacity(chunks.len());
        for chunk in chunks.iter_mut() {
            let start = chunk.cache.len();
            let end = start + chunk.tokens.len();
            if chunk.tokens.is_empty() {
                candle_core::bail!("a sequence in the batch has no token to feed");
            }
            if end > context_length {
                candle_core::bail!("{end} tokens exceed the model's context of {context_length}");
            }
            chunk.cache.reserve(chunk.tokens.len())?;
            spans.push((ids.len(), chunk.tokens.len()));
            scored.push(chunk.scored.clamp(1, chunk.tokens.len()));
            ids.extend_from_slice(chunk.tokens);
            positions.extend((start..end).map(|p| p as u32));
        }
        Ok(Self {
            ids: Tensor::new(ids.as_slice(), device)?,
            positions: Tensor::new(positions.as_slice(), device)?,
            decode: DecodePlan::new(chunks, device)?,
            spans,
            scored,
        })
    }

    /// Moves every chunk's cache past the tokens it fed, once all layers are written.
    pub fn advance(&self, chunks: &mut [Chunk]) {
        for (chunk, &(_, len)) in chunks.iter_mut().zip(&self.spans) {
            chunk.cache.advance(len);
        }
    }

    /// The rows of `xs` (one per token) whose logits are wanted: each chunk's last
    /// `scored` tokens, chunk after chunk.
    pub fn scored_rows(&self, xs: &Tensor) -> Result<Tensor> {
        let rows: Vec<u32> = self
            .spans
            .iter()
            .zip(&self.scored)
            .flat_map(|(&(start, len), &scored)| start + len - scored..start + len)
            .map(|row| row as u32)
            .collect();
        xs.index_select(&Tensor::new(rows.as_slice(), xs.device())?, 0)
    }
}

/// A decoding step of sequences that each feed one token from a slot of one slab and
/// continue the same base: slab rows `0..rows` are computed together, a free slot's row
/// carrying a zero query whose result is dropped.
pub(crate) struct DecodePlan {
    pub slab: Arc<KvSlab>,
    pub base: Option<Arc<KvCache>>,
    pub rows: usize,
    /// Per slab row, the chunk whose token it takes (`chunks` for a free slot's zero row);
    /// `None` when row `i` is chunk `i`.
    pub take: Option<Tensor>,
    /// Per chunk, its slab row; `None` when chunk `i` is row `i`.
    pub give: Option<Tensor>,
    /// Per slab row, its own positions once this step's token is written (1 for a free
    /// slot, whose one garbage position keeps its softmax finite).
    pub lengths: Vec<usize>,
    /// Per slab row, where this step's token is written.
    pub write_at: Vec<usize>,
    device: Device,
    write_index: RefCell<Option<Tensor>>,
    masks: RefCell<Vec<(Option<usize>, Tensor)>>,
}

impl DecodePlan {
    /// The plan for `chunks`, or `None` when they cannot share one: a chunk feeding
    /// several tokens, a cache outside the slab or on another base, or a taken slot whose
    /// sequence is not in this pass (its row would be overwritten).
    fn new(chunks: &[Chunk], device: &Device) -> Result<Option<Self>> {
        let Some(first) = chunks.first() else {
            return Ok(None);
        };
        let Some((slab, _)) = first.cache.slot() else {
            return Ok(None);
        };
        let base = first.cache.base();
        let mut slot_of = Vec::with_capacity(chunks.len());
        for chunk in chunks {
            let same_base = match (chunk.cache.base(), base) {
                (Some(a), Some(b)) => Arc::ptr_eq(a, b),
                (None, None) => true,
                _ => false,
            };
            match chunk.cache.slot() {
                Some((s, index))
                    if Arc::ptr_eq(s, slab) && same_base && chunk.tokens.len() == 1 =>
                {
                    slot_of.push(index)
                }
                _ => return Ok(None),
            }
        }
        let taken = slab.taken();
        let rows = slot_of.iter().max().map_or(0, |&m| m + 1);
        let mut chunk_of = vec![None; rows];
        for (chunk, &slot) in slot_of.iter().enumerate() {
            chunk_of[slot] = Some(chunk);
        }
        if (0..rows).any(|slot| taken[slot] && chunk_of[slot].is_none()) {
            return Ok(None);
        }
        let own = |slot: usize| chunk_of[slot].map(|c| chunks[c].cache.own_len());
        let lengths = (0..rows).map(|s| own(s).map_or(1, |n| n + 1)).collect();
        let write_at = (0..rows).map(|s| own(s).unwrap_or(0)).collect();
        let identity = rows == chunks.len() && slot_of.iter().enumerate().all(|(i, &s)| i == s);
        let index = |v: Vec<u32>| Tensor::new(v.as_slice(), device);
        let (take, give) = if identity {
            (None, None)
        } else {
            let take = (0..rows).map(|s| chunk_of[s].unwrap_or(chunks.len()) as u32);
            let give = slot_of.iter().map(|&s| s as u32);
            (Some(index(take.collect())?), Some(index(give.collect())?))
        };
        Ok(Some(Self {
            slab: slab.clone(),
            base: base.cloned(),
            rows,
            take,
            give,
            lengths,
            write_at,
            device: device.clone(),
            write_index: RefCell::new(None),
            masks: RefCell::new(Vec::new()),
        }))
    }

    /// The longest row's own positions.
    pub fn max_len(&self) -> usize {
        self.lengths.iter().copied().max().unwrap_or(1)
    }

    /// Positions of the shared base.
    pub fn base_len(&self) -> usize {
        self.base.as_ref().map_or(0, |b| b.len())
    }

    /// `(rows, kv_heads, 1, head_dim)` indices for scattering this step's keys and values
    /// into the slab, each row's at its `write_at`.
    pub fn write_index(&self, kv_heads: usize, head_dim: usize) -> Result<Tensor> {
        if let Some(index) = self.write_index.borrow().as_ref() {
            if index.dims() == [self.rows, kv_heads, 1, head_dim] {
                return Ok(index.clone());
            }
        }
        let per_row = kv_heads * head_dim;
        let at: Vec<u32> = self
            .write_at
            .iter()
            .flat_map(|&p| std::iter::repeat_n(p as u32, per_row))
            .collect();
        let index = Tensor::from_vec(at, (self.rows, kv_heads, 1, head_dim), &self.device)?;
        *self.write_index.borrow_mut() = Some(index.clone());
        Ok(index)
    }

    /// `(rows, 1, 1, base_len + max_len)`: 0 where a row's query may look, minus infinity
    /// past its length and, with a `window`, before it.
    pub fn mask(&self, window: Option<usize>) -> Result<Tensor> {
        if let Some((_, mask)) = self.masks.borrow().iter().find(|(w, _)| *w == window) {
            return Ok(mask.clone());
        }
        let (base_len, width) = (self.base_len(), self.base_len() + self.max_len());
        let queries = self.lengths.iter().map(|&len| base_len + len - 1);
        let values = additive_mask(queries, width, window);
        let mask = Tensor::from_vec(values, (self.rows, 1, 1, width), &self.device)?;
        self.masks.borrow_mut().push((window, mask.clone()));
        Ok(mask)
    }
}

/// For each query position, `width` scores' worth of what to add to them: 0 where the
/// query may look, minus infinity where [`hidden_from`] hides the key.
pub(crate) fn additive_mask(
    queries: impl Iterator<Item = usize>,
    width: usize,
    window: Option<usize>,
) -> Vec<f32> {
    queries
        .flat_map(|query| {
            (0..width).map(move |key| {
                if hidden_from(query, key, window) {
                    f32::NEG_INFINITY
                } else {
                    0.0
                }
            })
        })
        .collect()
}

/// Whether the query at position `query` may not see position `key`: a later one, or,
/// with a sliding `window`, one that many positions back or more. The one rule for
/// prompt and decoding masks alike.
pub(crate) fn hidden_from(query: usize, key: usize, window: Option<usize>) -> bool {
    key > query || window.is_some_and(|w| query - key.min(query) >= w)
}
