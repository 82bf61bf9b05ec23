//! Attention's reductions over rows of queries, each row stopping at its own length:
//! scores, softmax and weighted sums. A row is a sequence of a decoding step or a query
//! of a prompt. A sequence decoded in a slab beside longer ones then gets the numbers it
//! gets alone, and a prompt's position the numbers it gets decoded, bit for bit, which
//! candle's products do not promise: its matrix product picks kernels and blocking by
//! shape and by the CPU's L1 cache, so a sum padded with zero weights can round
//! differently (a reduction of 2 against a padded one, or a padded length crossing 512),
//! and so can a long one on another CPU, or a score against keys stacked for more rows.
//!
//! On the CPU each reduction runs in one fixed order whatever the padding or the number
//! of rows; elsewhere the masked entries (minus infinity, zero weights) weigh nothing and
//! the device's products run as they are.

use candle_core::{CpuStorage, CustomOp1, CustomOp2, Layout, Result, Shape, Tensor, WithDType};

use super::exp::exp;
use super::lanes::{Lanes, LANES};

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
        head_by_head(
            self.name(),
            q.dims,
            &self.visible,
            len,
            len,
            |row, head, scores| {
                let visible = self.visible[row];
                let queries: Vec<&[f32]> = (0..groups)
                    .map(|group| q.vector(row, head, group))
                    .collect();
                let key = |at| keys.vector(row, head, at);
                let mut done = 0;
                while done < groups {
                    let (queries, scores) = (&queries[done..], &mut scores[done * len..]);
                    done += match queries.len() {
                        1 => scores_of_groups::<1>(queries, key, visible, len, scores),
                        2 | 3 => scores_of_groups::<2>(queries, key, visible, len, scores),
                        _ => scores_of_groups::<4>(queries, key, visible, len, scores),
                    };
                }
            },
        )
    }
}

/// Runs a decoding step's reduction key/value head by key/value head: `a_dims` are the
/// `(rows, kv_heads, groups, _)` of the operand each row's queries or weights are in,
/// `len` how many positions there are to reduce over, and `per_head(row, head, out)`
/// fills one row's head of the `(rows, kv_heads, groups, width)` result.
fn head_by_head(
    name: &str,
    a_dims: [usize; 4],
    visible: &[usize],
    len: usize,
    width: usize,
    mut per_head: impl FnMut(usize, usize, &mut [f32]),
) -> Result<(CpuStorage, Shape)> {
    let [rows, heads, groups, _] = a_dims;
    check_visible(visible, rows, len, name)?;
    let mut out = vec![0f32; rows * heads * groups * width];
    if !out.is_empty() {
        for (at, out) in out.chunks_exact_mut(groups * width).enumerate() {
            per_head(at / heads, at % heads, out);
        }
    }
    Ok((
        f32::to_cpu_storage_owned(out),
        Shape::from((rows, heads, groups, width)),
    ))
}

/// The first `N` queries' scores against the first `visible` keys, written `len` apart
/// in `scores`; returns `N`. Each score is reduced in one fixed order, however many
/// queries share each key loaded: sixteen running lanes of fused multiply-adds, summed
/// by halves (eight pairs, four, two, one), then the tail.
fn scores_of_groups<'k, const N: usize>(
    queries: &[&[f32]],
    key: impl Fn(usize) -> &'k [f32],
    visible: usize,
    len: usize,
    scores: &mut [f32],
) -> usize {
    let queries: [(&[[f32; LANES]], &[f32]); N] =
        std::array::from_fn(|group| queries[group].as_chunks());
    for at in 0..visible {
        let (key_chunks, key_tail) = key(at).as_chunks::<LANES>();
        let mut acc = [Lanes::zero(); N];
        for (chunk, k) in key_chunks.iter().enumerate() {
            let k = Lanes::load(k);
            // Indexed by a constant range so that the accumulators stay in registers.
            for i in 0..N {
                acc[i] = Lanes::load(&queries[i].0[chunk]).mul_add(k, acc[i]);
            }
        }
        for i in 0..N {
            scores[i * len + at] = finish_dot(acc[i], queries[i].1, key_tail);
        }
    }
    N
}

/// A dot product's lanes summed by halves, then the products of the tails added in
/// order.
#[inline(always)]
fn finish_dot(lanes: Lanes, a_tail: &[f32], b_tail: &[f32]) -> f32 {
    a_tail
        .iter()
        .zip(b_tail)
        .fold(lanes.sum_by_halves(), |sum, (x, y)| x.mul_add(*y, sum))
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
        head_by_head(
            self.name(),
            weights.dims,
            &self.visible,
            len,
            dim,
            |row, head, sums| {
                let visible = self.visible[row];
                let weights: Vec<&[f32]> = (0..groups)
                    .map(|group| &weights.vector(row, head, group)[..visible])
                    .collect();
                sums_of_head(&weights, |at| values.vector(row, head, at), sums);
            },
        )
    }
}

/// Each group's weighted sum of one head's values, `sums` holding the groups one after
/// the other: every element is summed position by position from zero with fused
/// multiply-adds, up to sixty-four elements at a time kept in registers.
fn sums_of_head<'v>(weights: &[&[f32]], value: impl Fn(usize) -> &'v [f32], sums: &mut [f32]) {
    let dim = sums.len() / weights.len().max(1);
    for (weights, sums) in weights.iter().zip(sums.chunks_exact_mut(dim)) {
        let (chunks, tail) = sums.as_chunks_mut::<LANES>();
        let mut blocks = chunks.chunks_exact_mut(4);
        for (block, sums) in blocks.by_ref().enumerate() {
            let start = block * 4 * LANES;
            if let Ok(sums) = <&mut [[f32; LANES]; 4]>::try_from(sums) {
                sum_lanes(weights, |at| &value(at)[start..], sums);
            }
        }
        let start = dim / (4 * LANES) * 4 * LANES;
        for (chunk, sums) in blocks.into_remainder().iter_mut().enumerate() {
            let start = start + chunk * LANES;
            sum_lanes::<1>(
                weights,
                |at| &value(at)[start..],
                std::array::from_mut(sums),
            );
        }
        let start = dim / LANES * LANES;
        for (d, sum) in tail.iter_mut().enumerate() {
            *sum = weights
                .iter()
                .enumerate()
                .fold(0.0, |sum, (at, w)| w.mul_add(value(at)[start + d], sum));
        }
    }
}

/// `N` lanes of one group's sums (see [`sums_of_head`]), `value(at)` starting where they
/// do.
#[inline(always)]
fn sum_lanes<'v, const N: usize>(
    weights: &[f32],
    value: impl Fn(usize) -> &'v [f32],
    sums: &mut [[f32; LANES]; N],
) {
    let mut acc = [Lanes::zero(); N];
    for (at, &w) in weights.iter().enumerate() {
        let (values, _) = value(at).as_chunks::<LANES>();
        let Some(values) = values.first_chunk::<N>() else {
            unreachable!("sums_of_head passes values as long as its sums")
        };
        let w = Lanes::splat(w);
        // Indexed by a constant range so that the accumulators stay in registers.
        for i in 0..N {
            acc[i] = w.mul_add(Lanes::load(&values[i]), acc[i]);
        }
    }
    for (sums, acc) in sums.iter_mut().zip(acc) {
        acc.store(sums);
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

/// The softmax of one row: its maximum and sum reduced as candle-nn's softmax reduces
/// them, its exponentials [`exp`]'s, which vectorize.
fn softmax_row(src: &[f32], dst: &mut [f32]) {
    let n = src.len();
    let mut max = f32::NEG_INFINITY;
    // SAFETY: both reductions read exactly `n` elements of slices of length `n`.
    unsafe {
        <f32 as candle_core::cpu::kernels::VecOps>::vec_reduce_max(src.as_ptr(), &mut max, n)
    };
    for (s, d) in src.iter().zip(dst.iter_mut()) {
        *d = exp(*s - max);
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

    /// The order every score of a decoding step is reduced in, written out plainly:
    /// sixteen running lanes of fused multiply-adds, summed by halves, then the tail.
    fn dot_written_out(a: &[f32], b: &[f32]) -> f32 {
        let whole = a.len() / 16 * 16;
        let mut lanes = [0f32; 16];
        for d in 0..whole {
            lanes[d % 16] = a[d].mul_add(b[d], lanes[d % 16]);
        }
        for width in [8, 4, 2, 1] {
            for lane in 0..width {
                lanes[lane] += lanes[lane + width];
            }
        }
        (whole..a.len()).fold(lanes[0], |sum, d| a[d].mul_add(b[d], sum))
    }

    fn values(t: &Tensor) -> Vec<f32> {
        t.flatten_all().unwrap().to_vec1().unwrap()
    }

    fn zeros(shape: (usize, usize, usize, usize)) -> Tensor {
        Tensor::zeros(shape, DType::F32, &Device::Cpu).unwrap()
    }

    #[test]
    fn a_row_softmaxed_within_its_length_is_that_row_softmaxed_alone() {
        let device = Device::Cpu;
        // Widths past candle's 32-wide vector step, so the tail reductions differ if padded.
        let scores = Tensor::randn(0f32, 3.0, (2, 3, 77), &device).unwrap();
        let within = softmax_within(&scores, &[45, 77]).unwrap();
        for (row, n) in [(0, 45), (1, 77)] {
            let row_scores = scores.get(row).unwrap().narrow(1, 0, n).unwrap();
            let row_scores = row_scores.contiguous().unwrap();
            let alone = softmax_within(&row_scores.unsqueeze(0).unwrap(), &[n]).unwrap();
            let ours = within.get(row).unwrap();
            let ours_within = ours.narrow(1, 0, n).unwrap();
            assert_eq!(values(&ours_within), values(&alone));
            // candle's softmax, but for the exponentials' last bits.
            let candle = candle_nn::ops::softmax_last_dim(&row_scores).unwrap();
            let diff = (&ours_within - &candle).unwrap().abs().unwrap();
            assert!(diff.max_all().unwrap().to_scalar::<f32>().unwrap() < 1e-6);
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
    fn reductions_keep_their_written_out_order_operation_for_operation() {
        let device = Device::Cpu;
        // Head sizes with and without a tail past the lanes; group counts that take
        // every block size of the weighted sums; lengths around whole blocks of sixteen.
        for (dim, groups, len) in [(128, 6, 70), (64, 4, 33), (40, 7, 17), (256, 1, 15)] {
            let q = Tensor::randn(0f32, 1.0, (2, 2, groups, dim), &device).unwrap();
            let kv = Tensor::randn(0f32, 1.0, (2, 2, len, dim), &device).unwrap();
            let weights = Tensor::rand(0f32, 1.0, (2, 2, groups, len), &device).unwrap();
            let visible = [len, len - 1];
            let scores = scores_within(&q, &kv, &visible).unwrap();
            let sums = sums_within(&weights, &kv, &visible).unwrap();
            for (row, &n) in visible.iter().enumerate() {
                for head in 0..2 {
                    let at = |t: &Tensor| t.get(row).unwrap().get(head).unwrap();
                    let (q, kv, w) = (at(&q), at(&kv), at(&weights));
                    let kv: Vec<Vec<f32>> = kv.to_vec2().unwrap();
                    for group in 0..groups {
                        let query: Vec<f32> = q.get(group).unwrap().to_vec1().unwrap();
                        let plain: Vec<f32> =
                            kv[..n].iter().map(|k| dot_written_out(&query, k)).collect();
                        let ours: Vec<f32> = at(&scores).get(group).unwrap().to_vec1().unwrap();
                        assert_eq!(ours[..n], plain[..], "scores, dim {dim}, row {row}");

                        let w: Vec<f32> = w.get(group).unwrap().to_vec1().unwrap();
                        let mut plain = vec![0f32; dim];
                        for (weight, value) in w[..n].iter().zip(&kv) {
                            for (s, v) in plain.iter_mut().zip(value) {
                                *s = weight.mul_add(*v, *s);
                            }
                        }
                        let ours: Vec<f32> = at(&sums).get(group).unwrap().to_vec1().unwrap();
                        assert_eq!(ours, plain, "sums, dim {dim}, groups {groups}, row {row}");
                    }
                }
            }
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
