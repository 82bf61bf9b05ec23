//! The gate of a SwiGLU feed-forward block, `silu(gate) * up`, as one pass on the CPU.
//!
//! candle computes `silu` and the product as two operations and spreads an elementwise
//! operation over its worker threads only from 64k elements on; a decoding step's
//! 8960-wide gate (Qwen2.5 1.5B) is far below that, so one core spent about 2 % of every
//! step on its exponentials while the other waited. Here both happen in one pass split
//! over candle's CPU workers, with candle's formula for `silu` and an exponential that
//! vectorizes ([`super::exp`]; within two units in the last place of the C library's).

use candle_core::{CpuStorage, InplaceOp2, Layout, Result, Tensor};

use super::exp::exp;

/// Elements per item of work: large enough that a worker's share outweighs waking it.
const UNIT: usize = 2048;

/// `silu(gate) * up`, elementwise; `gate` and `up` have the same shape.
///
/// On the CPU the result is written over `gate`, which the caller gives up: a prompt
/// pass of 512 rows makes an 18 MB gate product, and the layer needs no other copy.
pub fn silu_times(gate: Tensor, up: &Tensor) -> Result<Tensor> {
    let cpu_f32 = gate.device().is_cpu() && gate.dtype() == candle_core::DType::F32;
    if cpu_f32 && gate.shape() == up.shape() && gate.is_contiguous() {
        let up = up.contiguous()?;
        gate.inplace_op2(&up, &SiluTimes)?;
        Ok(gate)
    } else {
        candle_nn::ops::silu(&gate)? * up
    }
}

struct SiluTimes;

/// candle's formula for `silu`, with this crate's [`exp`] (not the C library's), then the
/// product.
#[inline(always)]
fn silu_times_one(gate: f32, up: f32) -> f32 {
    let silu = gate / (1.0 + exp(-gate));
    silu * up
}

impl InplaceOp2 for SiluTimes {
    fn name(&self) -> &'static str {
        "silu-times"
    }

    fn cpu_fwd(
        &self,
        gate: &mut CpuStorage,
        gate_layout: &Layout,
        up: &CpuStorage,
        up_layout: &Layout,
    ) -> Result<()> {
        let (CpuStorage::F32(gate), CpuStorage::F32(up)) = (gate, up) else {
            candle_core::bail!("silu-times takes f32 tensors")
        };
        let (Some((g0, g1)), Some((u0, u1))) = (
            gate_layout.contiguous_offsets(),
            up_layout.contiguous_offsets(),
        ) else {
            candle_core::bail!("silu-times takes contiguous tensors")
        };
        let (gate, up) = (&mut gate[g0..g1], &up[u0..u1]);
        let len = gate.len();
        let gate_at = gate.as_mut_ptr() as usize;
        candle_core::utils::barrier_pool().execute_chunked(len.div_ceil(UNIT), |units| {
            let (lo, hi) = (units.start * UNIT, (units.end * UNIT).min(len));
            // SAFETY: items cover disjoint ranges of `gate`, which outlives the pool's call.
            let gate =
                unsafe { std::slice::from_raw_parts_mut((gate_at as *mut f32).add(lo), hi - lo) };
            for (g, &u) in gate.iter_mut().zip(&up[lo..hi]) {
                *g = silu_times_one(*g, u);
            }
        });
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    fn flat(t: &Tensor) -> Vec<f32> {
        t.flatten_all().unwrap().to_vec1::<f32>().unwrap()
    }

    #[test]
    fn agrees_with_candle_s_silu_then_product() {
        // Long enough to be split over the workers, with a ragged last item; `up` is a
        // strided view, as the halves of a fused projection can be.
        let (rows, width) = (3, UNIT + 29);
        let values = |len: usize, seed: f32| -> Vec<f32> {
            (0..len)
                .map(|i| (i as f32 * 0.37 + seed).sin() * 9.0)
                .collect()
        };
        let gate =
            Tensor::from_vec(values(rows * width, 0.1), (rows, width), &Device::Cpu).unwrap();
        let both = Tensor::from_vec(
            values(rows * 2 * width, 2.3),
            (rows, 2 * width),
            &Device::Cpu,
        )
        .unwrap();
        let up = both.narrow(1, width, width).unwrap();
        let candle = (candle_nn::ops::silu(&gate).unwrap() * &up).unwrap();
        let ours = silu_times(gate.copy().unwrap(), &up).unwrap();
        assert_eq!(ours.dims(), &[rows, width]);
        // The exponentials differ from the C library's by at most two units in the last
        // place, which the division and product carry as a relative error.
        for (ours, candle) in flat(&ours).iter().zip(flat(&candle)) {
            assert!(
                (ours - candle).abs() <= 1e-6 * candle.abs(),
                "{ours} {candle}"
            );
        }
    }
}
