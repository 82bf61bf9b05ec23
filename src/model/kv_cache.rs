//! Where a sequence keeps the keys and values of every token it has fed: a [`KvCache`]
//! the caller owns, optionally continuing a shared prompt prefix, and optionally living
//! in a slot of a [`KvSlab`] that several sequences decoded together share, so decode
//! attention can read all of them in one product.

use std::sync::{Arc, Mutex, PoisonError};

use candle_core::{DType, Device, Result, Tensor};

/// Keys and values of every token one sequence has fed so far, per layer, in buffers
/// allocated once with room to grow: appending a token writes in place instead of copying
/// the whole history. A cache can start after a shared, read-only `base` (the cached
/// prompt prefix), whose keys and values every request reads and none copies. Positions
/// are implicit: the next token fed sits at [`KvCache::len`].
#[derive(Debug)]
pub struct KvCache {
    base: Option<Arc<KvCache>>,
    /// Per layer, this cache's own keys and values, shaped `(kv_heads, capacity, head_dim)`;
    /// unused while the cache lives in a slab slot.
    layers: Vec<Option<(Tensor, Tensor)>>,
    /// The slab slot holding the buffers instead, if any.
    slot: Option<Slot>,
    /// Own positions written.
    own: usize,
    capacity: usize,
}

/// One layer's cached keys and values: the shared base's, if any, and the sequence's own.
pub(crate) type LayerKv = (Option<(Tensor, Tensor)>, (Tensor, Tensor));

impl KvCache {
    /// An empty cache for a model of `layers` layers that holds `capacity` positions
    /// before it has to grow.
    pub fn new(layers: usize, capacity: usize) -> Self {
        Self {
            base: None,
            layers: vec![None; layers],
            slot: None,
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
            slot: None,
            own: 0,
            capacity: capacity.max(1),
        })
    }

    /// Moves this empty cache into a free slot of `slab` when one is free and large
    /// enough; otherwise it keeps buffers of its own. Either way it works the same.
    pub fn placed_in(mut self, slab: &Arc<KvSlab>) -> Self {
        if self.own > 0 || self.capacity > slab.capacity || slab.layers != self.layers.len() {
            return self;
        }
        if let Some(index) = slab.take() {
            self.slot = Some(Slot {
                slab: slab.clone(),
                index,
            });
            self.capacity = slab.capacity;
        }
        self
    }

    pub fn len(&self) -> usize {
        self.base_len() + self.own
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Positions this cache wrote itself, after its base.
    pub(crate) fn own_len(&self) -> usize {
        self.own
    }

    /// Positions of the shared base.
    pub(crate) fn base_len(&self) -> usize {
        self.base.as_ref().map_or(0, |b| b.len())
    }

    pub(crate) fn base(&self) -> Option<&Arc<KvCache>> {
        self.base.as_ref()
    }

    /// The slab and slot index holding this cache, if it lives in one.
    pub(crate) fn slot(&self) -> Option<(&Arc<KvSlab>, usize)> {
        self.slot.as_ref().map(|s| (&s.slab, s.index))
    }

    /// The base's keys and values of `layer`, `(kv_heads, base_len, head_dim)` each.
    fn base_layer(&self, layer: usize) -> Result<Option<(Tensor, Tensor)>> {
        match &self.base {
            Some(base) if base.own > 0 => base.written(layer).map(Some),
            _ => Ok(None),
        }
    }

    /// This cache's own keys and values of `layer`, `(kv_heads, own_len, head_dim)` each.
    pub(crate) fn written(&self, layer: usize) -> Result<(Tensor, Tensor)> {
        match self.buffers(layer)? {
            Some((k, v)) => Ok((k.narrow(1, 0, self.own)?, v.narrow(1, 0, self.own)?)),
            None => candle_core::bail!("the key/value cache has no layer {layer} written"),
        }
    }

    /// The whole `(kv_heads, capacity, head_dim)` buffers of `layer`, once written.
    fn buffers(&self, layer: usize) -> Result<Option<(Tensor, Tensor)>> {
        match &self.slot {
            Some(slot) => Ok(match slot.slab.existing_layer(layer) {
                Some((k, v)) => Some((k.get(slot.index)?, v.get(slot.index)?)),
                None => None,
            }),
            None => Ok(self.layers.get(layer).cloned().flatten()),
        }
    }

    /// Makes room for `additional` more positions, before a forward pass writes any
    /// layer (growing mid-pass would lose the positions already written). A cache that
    /// outgrows its slab slot moves to buffers of its own.
    pub(crate) fn reserve(&mut self, additional: usize) -> Result<()> {
        let needed = self.own + additional;
        if needed <= self.capacity {
            return Ok(());
        }
        let capacity = needed.max(self.capacity * 2);
        let mut layers = Vec::with_capacity(self.layers.len());
        for layer in 0..self.layers.len() {
            layers.push(match self.buffers(layer)? {
                Some((k, v)) => Some((
                    copy_into_new(&k, self.own, capacity)?,
                    copy_into_new(&v, self.own, capacity)?,
                )),
                None => None,
            });
        }
        self.layers = layers;
        self.slot = None;
        self.capacity = capacity;
        Ok(())
    }

    /// Writes the keys and values of `new` positions (each `(kv_heads, new, head_dim)`)
    /// of one layer after the cached ones, and returns every position of that layer.
    /// [`KvCache::advance`] moves the length once all layers are written.
    pub(crate) fn append(&mut self, layer: usize, k: &Tensor, v: &Tensor) -> Result<LayerKv> {
        let needed = self.own + k.dim(1)?;
        if needed > self.capacity {
            candle_core::bail!("key/value cache used without reserving room first");
        }
        if layer >= self.layers.len() {
            candle_core::bail!("key/value cache has no layer {layer}")
        }
        let (kv_heads, _, head_dim) = k.dims3()?;
        let (k_buf, v_buf) = match &self.slot {
            Some(slot) => {
                let (k_all, v_all) =
                    slot.slab
                        .layer(layer, (kv_heads, head_dim), k.dtype(), k.device())?;
                (k_all.get(slot.index)?, v_all.get(slot.index)?)
            }
            None => {
                let slot = &mut self.layers[layer];
                if slot.is_none() {
                    let buffer = || {
                        Tensor::zeros((kv_heads, self.capacity, head_dim), k.dtype(), k.device())
                    };
                    *slot = Some((buffer()?, buffer()?));
                }
                match slot.as_ref() {
                    Some(buffers) => buffers.clone(),
                    None => candle_core::bail!("key/value cache layer {layer} has no buffer"),
                }
            }
        };
        k_buf.slice_set(k, 1, self.own)?;
        v_buf.slice_set(v, 1, self.own)?;
        Ok((
            self.base_layer(layer)?,
            (k_buf.narrow(1, 0, needed)?, v_buf.narrow(1, 0, needed)?),
        ))
    }

    pub(crate) fn advance(&mut self, new: usize) {
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

/// Key and value buffers shared by the sequences of one batch: per layer, one
/// `(slots, kv_heads, capacity, head_dim)` tensor each, a slot per sequence. Decode
/// attention then reads every sequence's history as one tensor.
///
/// A slot costs memory only for the positions it writes: the keys of all layers are one
/// zeroed allocation, and so are the values. For the default model's batches each is
/// tens to hundreds of MB, above the 32 MB from which the binary has the allocator map
/// fresh pages (`reuse_freed_tensor_memory`), which stay unbacked until written and go
/// back to the system when the slab drops. Per-layer buffers (a few MB each) came from
/// the heap instead, where `calloc` zeroes reused memory by writing every page of it: a
/// summaries batch of five long prompts in eight slots then held 0.6 GB of zeros, or not,
/// depending on what the heap had freed before.
#[derive(Debug)]
pub struct KvSlab {
    slots: usize,
    capacity: usize,
    layers: usize,
    /// Keys and values of every layer, `(layers, slots, kv_heads, capacity, head_dim)`,
    /// allocated at the first write.
    buffers: Mutex<Option<(Tensor, Tensor)>>,
    taken: Mutex<Vec<bool>>,
}

impl KvSlab {
    /// Room for `slots` sequences of up to `capacity` own positions, in `layers` layers.
    pub fn new(layers: usize, slots: usize, capacity: usize) -> Arc<Self> {
        Arc::new(Self {
            slots,
            capacity: capacity.max(1),
            layers,
            buffers: Mutex::new(None),
            taken: Mutex::new(vec![false; slots]),
        })
    }

    /// Slots taken, by index.
    pub(crate) fn taken(&self) -> Vec<bool> {
        self.taken
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// The lowest free slot, now taken.
    fn take(&self) -> Option<usize> {
        let mut taken = self.taken.lock().unwrap_or_else(PoisonError::into_inner);
        let index = taken.iter().position(|t| !t)?;
        taken[index] = true;
        Some(index)
    }

    fn release(&self, index: usize) {
        let mut taken = self.taken.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(t) = taken.get_mut(index) {
            *t = false;
        }
    }

    /// The buffers of `layer`; those of all layers are allocated at the first write.
    pub(crate) fn layer(
        &self,
        layer: usize,
        (kv_heads, head_dim): (usize, usize),
        dtype: DType,
        device: &Device,
    ) -> Result<(Tensor, Tensor)> {
        if layer >= self.layers {
            candle_core::bail!("key/value slab has no layer {layer}")
        }
        let mut buffers = self.buffers.lock().unwrap_or_else(PoisonError::into_inner);
        let (k, v) = match &*buffers {
            Some(all) => all.clone(),
            None => {
                let shape = (self.layers, self.slots, kv_heads, self.capacity, head_dim);
                let all = (
                    Tensor::zeros(shape, dtype, device)?,
                    Tensor::zeros(shape, dtype, device)?,
                );
                *buffers = Some(all.clone());
                all
            }
        };
        Ok((k.get(layer)?, v.get(layer)?))
    }

    fn existing_layer(&self, layer: usize) -> Option<(Tensor, Tensor)> {
        let buffers = self.buffers.lock().unwrap_or_else(PoisonError::into_inner);
        let (k, v) = buffers.as_ref()?;
        Some((k.get(layer).ok()?, v.get(layer).ok()?))
    }
}

/// A cache's hold on one slab slot, given back when the cache is dropped or outgrows it.
#[derive(Debug)]
struct Slot {
    slab: Arc<KvSlab>,
    index: usize,
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.slab.release(self.index);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token(kv_heads: usize, head_dim: usize, value: f32) -> Tensor {
        Tensor::full(value, (kv_heads, 1, head_dim), &Device::Cpu).unwrap()
    }

    #[test]
    fn slots_are_taken_lowest_first_and_given_back_when_a_cache_drops() {
        let slab = KvSlab::new(1, 2, 4);
        let a = KvCache::new(1, 4).placed_in(&slab);
        let b = KvCache::new(1, 4).placed_in(&slab);
        let c = KvCache::new(1, 4).placed_in(&slab);
        assert_eq!(a.slot().map(|s| s.1), Some(0));
        assert_eq!(b.slot().map(|s| s.1), Some(1));
        assert!(
            c.slot().is_none(),
            "a full slab leaves a cache its own buffers"
        );
        drop(a);
        assert_eq!(slab.taken(), vec![false, true]);
        let too_big = KvCache::new(1, 5).placed_in(&slab);
        assert!(too_big.slot().is_none());
    }

    #[test]
    fn each_layer_and_slot_of_a_slab_keeps_its_own_positions() {
        // The slab holds all layers in one buffer: a write must land in its own layer and
        // slot only, and read back from there.
        let slab = KvSlab::new(2, 2, 3);
        let mut first = KvCache::new(2, 3).placed_in(&slab);
        let mut second = KvCache::new(2, 3).placed_in(&slab);
        first.reserve(1).unwrap();
        second.reserve(1).unwrap();
        let (_, (k, v)) = second
            .append(1, &token(2, 4, 5.0), &token(2, 4, 6.0))
            .unwrap();
        second.advance(1);
        assert_eq!(
            k.flatten_all().unwrap().to_vec1::<f32>().unwrap(),
            vec![5.0; 8]
        );
        assert_eq!(
            v.flatten_all().unwrap().to_vec1::<f32>().unwrap(),
            vec![6.0; 8]
        );
        let (_, (k, _)) = first
            .append(1, &token(2, 4, 7.0), &token(2, 4, 7.0))
            .unwrap();
        assert_eq!(
            k.flatten_all().unwrap().to_vec1::<f32>().unwrap(),
            vec![7.0; 8]
        );
        let (layer0_k, layer0_v) = slab.layer(0, (2, 4), DType::F32, &Device::Cpu).unwrap();
        for t in [layer0_k, layer0_v] {
            let values = t.flatten_all().unwrap().to_vec1::<f32>().unwrap();
            assert!(
                values.iter().all(|&x| x == 0.0),
                "layer 0 was never written"
            );
        }
        let (_, (k, _)) = second
            .append(1, &token(2, 4, 8.0), &token(2, 4, 8.0))
            .unwrap();
        assert_eq!(first_of_each_position(&k), vec![5.0, 8.0]);
    }

    /// The first head's first value at every position of `(heads, positions, dim)` keys.
    fn first_of_each_position(k: &Tensor) -> Vec<f32> {
        k.get(0)
            .unwrap()
            .get_on_dim(1, 0)
            .unwrap()
            .to_vec1()
            .unwrap()
    }

    #[test]
    fn a_cache_outgrowing_its_slot_keeps_what_it_wrote_and_frees_the_slot() {
        let slab = KvSlab::new(1, 1, 2);
        let mut cache = KvCache::new(1, 2).placed_in(&slab);
        for value in [1.0, 2.0, 3.0] {
            cache.reserve(1).unwrap();
            let t = token(2, 3, value);
            cache.append(0, &t, &t).unwrap();
            cache.advance(1);
        }
        assert!(cache.slot().is_none());
        assert_eq!(slab.taken(), vec![false]);
        let (_, (k, _)) = cache
            .append(0, &token(2, 3, 4.0), &token(2, 3, 4.0))
            .unwrap();
        assert_eq!(first_of_each_position(&k), vec![1.0, 2.0, 3.0, 4.0]);
    }
}
