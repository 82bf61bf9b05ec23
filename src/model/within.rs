//! A decoding step's attention reductions, each row of the batch stopping at its own
//! length: scores, softmax and weighted sums. A sequence decoded in a slab beside longer
//! ones then gets the numbers it gets alone, bit for bit, which candle's products do not
//! promise: its matrix product picks kernels and blocking by shape, so a sum padded with
//! zero weights can round differently (a reduction of 2 against a padded one, or a
//! padded length crossing 512), and so can a score against keys stacked for more rows.
//!
//! On the CPU each reduction runs in one fixed order whatever the padding or the number
//! of rows; elsewhere the masked entries (minus infinity, zero weights) weigh nothing and
//! the device's products run as they are.

use candle_core::{CpuStorage, CustomOp1, CustomOp2, Layout, Result, Shape, Tensor, WithDType};

/// Scores of `q`, `(rows, kv_heads, groups, dim)`, against `keys`: `(rows, kv_heads,
/// len, dim)` per row, or `(kv_heads, len, dim)` shared by every row (a shared prefix).
/// Returns `(rows, kv_heads, groups, len)`; on the CPU row `r` is computed for its first
/// `visible[r]` keys only and is 0 past them.
pub fn scores_within(q: &Tensor, keys: &Tensor, visible: &[usize]) -> Result<Tensor> {
    if q.device().is_cpu() {
        let keys = per_row(keys, q.dim(0)?)?;
        return q.apply_op2_no_bwd(
            &keys,
            &ScoresWithin {
                visible: visible.to_vec(),
            },
        );
    }
    match keys.rank() {
        3 => on_shared(q, keys, |stacked, keys| stacked.matmul(&keys.t()?)),
        _ => q.matmul(&keys.t()?),
    }
}

/// `weights`, `(rows, kv_heads, groups, len)`, times `values`: `(rows, kv_heads, len,
/// dim)` per row or `(kv_heads, len, dim)` shared. Returns `(rows, kv_heads, groups,
/// dim)`; on the CPU row `r` sums its first `visible[r]` values, in position order.
pub fn sums_within(weights: &Tensor, values: &Tensor, visible: &[usize]) -> Result<Tensor> {
    if weights.device().is_cpu() {
        let values = per_row(values, weights.dim(0)?)?;
        return weights.apply_op2_no_bwd(
            &values,
            &SumsWithin {
                visible: visible.to_vec(),
            },
        );
    }
    match values.rank() {
        3 => on_shared(weights, values, |stacked, values| stacked.matmul(values)),
        _ => weights.matmul(values),
    }
}

/// Softmax over the last dimension of `(rows, …, width)` scores, row `r` over its first
/// `visible[r]` entries only; the rest become 0. On the CPU each row is reduced exactly
/// as candle's softmax reduces a row of that length.
pub fn softmax_within(scores: &Tensor, visible: &[usize]) -> Result<Tensor> {
    if scores.device().is_cpu() {
        scores.contiguous()?.apply_op1_no_bwd(&SoftmaxWithin {
            visible: visible.to_vec(),
        })
    } else {
        candle_nn::ops::softmax_last_dim(scores)
    }
}

/// A shared `(kv_heads, len, dim)` tensor seen as `(rows, kv_heads, len, dim)` without a
/// copy (a zero stride over rows); a per-row one as it is.
fn per_row(t: &Tensor, rows: usize) -> Result<Tensor> {
    match t.dims() {
        &[heads, len, dim] => t.unsqueeze(0)?.broadcast_as((rows, heads, len, dim)),
        _ => Ok(t.clone()),
    }
}

/// `product` of every row's queries (or weights) of one key/value head stacked, against
/// the shared `(kv_heads, len, dim)` tensor, put back as `(rows, kv_heads, groups, _)`:
/// one product per head instead of a copy of the shared tensor per row.
fn on_shared(
    x: &Tensor,
    shared: &Tensor,
    product: impl Fn(&Tensor, &Tensor) -> Result<Tensor>,
) -> Result<Tensor> {
    let (rows, heads, groups, width) = x.dims4()?;
    let stacked = x
        .transpose(0, 1)?
        .contiguous()?
        .reshape((heads, rows * groups, width))?;
    let out = product(&stacked, shared)?;
    let out_width = out.dim(2)?;
    out.reshape((heads, rows, groups, out_width))?
        .transpose(0, 1)
}

/// Where a rank-4 f32 operand lies in its storage: its offset, strides and dimensions,
/// its last dimension contiguous.
struct Strided<'a> {
    data: &'a [f32],
    start: usize,
    stride: [usize; 4],
    dims: [usize; 4],
}

impl<'a> Strided<'a> {
    fn new(storage: &'a CpuStorage, layout: &Layout, what: &str) -> Result<Self> {
        let CpuStorage::F32(data) = storage else {
            candle_core::bail!("{what} takes f32 tensors")
        };
        let (Ok(dims), Ok(stride)) = (
            <[usize; 4]>::try_from(layout.dims()),
            <[usize; 4]>::try_from(layout.stride()),
        ) else {
            candle_core::bail!("{what} takes rank-4 tensors")
        };
        if stride[3] != 1 {
            candle_core::bail!("{what} takes tensors whose last dimension is contiguous")
        }
        Ok(Self {
            data,
            start: layout.start_offset(),
            stride,
            dims,
        })
    }

    /// The last dimension at `[a, b, c, ..]`.
    fn vector(&self, a: usize, b: usize, c: usize) -> &[f32] {
        let at = self.start + a * self.stride[0] + b * self.stride[1] + c * self.stride[2];
        &self.data[at..at + self.dims[3]]
    }
}

/// Checks that `visible` has one length per row, each within `1..=len`.
fn check_visible(visible: &[usize], rows: usize, len: usize, what: &str) -> Result<()> {
    if visible.len() != rows || visible.iter().any(|&n| n == 0 || n > len) {
        candle_core::bail!("{what}: visible lengths do not fit the operands")
    }
    Ok(())
}

struct ScoresWithin {
    visible: Vec<usize>,
}

impl CustomOp2 for ScoresWithin {
    fn name(&self) -> &'static str {
        "scores-within"
    }

    fn cpu_fwd(
        &self,
        q: &CpuStorage,
        q_layout: &Layout,
        keys: &CpuStorage,
        keys_layout: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let q = Strided::new(q, q_layout, self.name())?;
        let keys = Strided::new(keys, keys_layout, self.name())?;
        let [rows, heads, groups, dim] = q.dims;
        let len = keys.dims[2];
        if keys.dims != [rows, heads, len, dim] {
            candle_core::bail!("scores-within: queries and keys do not match")
        }
        check_visible(&self.visible, rows, len, self.name())?;
        let mut out = vec![0f32; rows * heads * groups * len];
        let mut scores = out.chunks_exact_mut(len);
        for (row, &visible) in self.visible.iter().enumerate() {
            for head in 0..heads {
                for group in 0..groups {
                    let query = q.vector(row, head, group);
                    let Some(scores) = scores.next() else {
                        candle_core::bail!("scores-within: output too short")
                    };
                    for (at, score) in scores[..visible].iter_mut().enumerate() {
                        *score = dot(query, keys.vector(row, head, at));
                    }
                }
            }
        }
        Ok((
            f32::to_cpu_storage_owned(out),
            Shape::from((rows, heads, groups, len)),
        ))
    }
}

/// A dot product in one fixed order: sixteen running lanes (which the compiler keeps in
/// vector registers), then the lanes and the tail left to right.
fn dot(a: &[f32], b: &[f32]) -> f32 {
    const LANES: usize = 16;
    let mut lanes = [0f32; LANES];
    let (a_chunks, b_chunks) = (a.chunks_exact(LANES), b.chunks_exact(LANES));
    let tail: f32 = a_chunks
        .remainder()
        .iter()
        .zip(b_chunks.remainder())
        .map(|(x, y)| x * y)
        .sum();
    for (x, y) in a_chunks.zip(b_chunks) {
        for lane in 0..LANES {
            lanes[lane] += x[lane] * y[lane];
        }
    }
    lanes.iter().sum::<f32>() + tail
}

struct SumsWithin {
    visible: Vec<usize>,
}

impl CustomOp2 for SumsWithin {
    fn name(&self) -> &'static str {
        "sums-within"
    }

    fn cpu_fwd(
        &self,
        weights: &CpuStorage,
        weights_layout: &Layout,
        values: &CpuStorage,
        values_layout: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let weights = Strided::new(weights, weights_layout, self.name())?;
        let values = Strided::new(values, values_layout, self.name())?;
        let [rows, heads, groups, len] = weights.dims;
        let dim = values.dims[3];
        if values.dims != [rows, heads, len, dim] {
            candle_core::bail!("sums-within: weights and values do not match")
        }
        check_visible(&self.visible, rows, len, self.name())?;
        let mut out = vec![0f32; rows * heads * groups * dim];
        let mut sums = out.chunks_exact_mut(dim);
        for (row, &visible) in self.visible.iter().enumerate() {
            for head in 0..heads {
                for group in 0..groups {
                    let weights = weights.vector(row, head, group);
                    let Some(sum) = sums.next() else {
                        candle_core::bail!("sums-within: output too short")
                    };
                    for (at, &weight) in weights[..visible].iter().enumerate() {
                        for (s, &v) in sum.iter_mut().zip(values.vector(row, head, at)) {
                            *s += weight * v;
                        }
                    }
                }
            }
        }
        Ok((
            f32::to_cpu_storage_owned(out),
            Shape::from((rows, heads, groups, dim)),
        ))
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
        check_visible(&self.visible, rows, width, self.name())?;
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
    use candle_core::{DType, Device};

    fn values(t: &Tensor) -> Vec<f32> {
        t.flatten_all().unwrap().to_vec1().unwrap()
    }

    fn zeros(shape: (usize, usize, usize, usize)) -> Tensor {
        Tensor::zeros(shape, DType::F32, &Device::Cpu).unwrap()
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

    /// `(rows, heads, groups, dim)` of a first row of `len` and three more rows, the
    /// per-row operand padded with zeros to `padded`.
    fn padded_beside_others(len: usize, padded: usize) -> [Tensor; 4] {
        let device = Device::Cpu;
        let (heads, groups, dim) = (2, 6, 128);
        let q = Tensor::randn(0f32, 1.0, (4, heads, groups, dim), &device).unwrap();
        let own = Tensor::randn(0f32, 1.0, (1, heads, len, dim), &device).unwrap();
        let own_padded = Tensor::cat(&[&own, &zeros((1, heads, padded - len, dim))], 2).unwrap();
        let others = Tensor::randn(0f32, 1.0, (3, heads, padded, dim), &device).unwrap();
        let slab = Tensor::cat(&[&own_padded, &others], 0).unwrap();
        let weights = Tensor::rand(0f32, 1.0, (4, heads, groups, padded), &device).unwrap();
        [q, own, slab, weights]
    }

    #[test]
    fn a_row_padded_beside_longer_ones_gets_the_numbers_it_gets_alone() {
        // Lengths candle's product rounds differently once padded: a reduction of 2 (its
        // rank-2 update) and one whose padding crosses 512 (its depth blocking).
        for (len, padded) in [(2, 5), (1, 40), (450, 550), (511, 613), (77, 78)] {
            let [q, own, slab, weights] = padded_beside_others(len, padded);
            let visible = [len, padded, padded, padded];
            let beside = scores_within(&q, &slab, &visible).unwrap();
            let alone = scores_within(&q.narrow(0, 0, 1).unwrap(), &own, &[len]).unwrap();
            let first = beside.narrow(0, 0, 1).unwrap();
            assert_eq!(values(&first.narrow(3, 0, len).unwrap()), values(&alone));
            assert!(values(&first.narrow(3, len, padded - len).unwrap())
                .iter()
                .all(|&s| s == 0.0));

            let beside = sums_within(&weights, &slab, &visible).unwrap();
            let own_weights = weights.narrow(0, 0, 1).unwrap().narrow(3, 0, len).unwrap();
            let alone = sums_within(&own_weights, &own, &[len]).unwrap();
            assert_eq!(
                values(&beside.narrow(0, 0, 1).unwrap()),
                values(&alone),
                "{len} padded to {padded}"
            );
        }
    }

    #[test]
    fn reductions_agree_with_candle_s_products_and_share_a_prefix_across_rows() {
        let [q, _, slab, weights] = padded_beside_others(30, 70);
        let visible = [70; 4];
        let close = |a: &Tensor, b: &Tensor| {
            let diff = (a - b).unwrap().abs().unwrap().max_all().unwrap();
            assert!(diff.to_scalar::<f32>().unwrap() < 1e-4);
        };
        let scores = scores_within(&q, &slab, &visible).unwrap();
        close(&scores, &q.matmul(&slab.t().unwrap()).unwrap());
        let sums = sums_within(&weights, &slab, &visible).unwrap();
        close(&sums, &weights.matmul(&slab).unwrap());

        // A prefix shared by every row gives each row what its own copy would.
        let shared = slab.get(1).unwrap();
        let copies = shared.unsqueeze(0).unwrap().repeat((4, 1, 1, 1)).unwrap();
        assert_eq!(
            values(&scores_within(&q, &shared, &visible).unwrap()),
            values(&scores_within(&q, &copies, &visible).unwrap())
        );
        assert_eq!(
            values(&sums_within(&weights, &shared, &visible).unwrap()),
            values(&sums_within(&weights, &copies, &visible).unwrap())
        );
        assert!(scores_within(&q, &slab, &[71, 70, 70, 70]).is_err());
        assert!(sums_within(&weights, &slab, &[70, 70, 70]).is_err());
    }
}
