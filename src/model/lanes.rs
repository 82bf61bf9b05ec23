//! Sixteen f32 lanes in vector registers, for the reductions whose order must not
//! depend on the CPU (`super::within`): every backend multiplies, adds and halves lane
//! by lane with the same roundings, so a reduction gives the same bits on AVX-512, on
//! AVX2 and elsewhere. The compiler's own vectorization of such loops was unreliable
//! (accumulators spilled to the stack, two-lane pieces), hence the intrinsics.

/// Lanes per [`Lanes`].
pub const LANES: usize = 16;

/// Sixteen f32 lanes in vector registers: one AVX-512 register, two AVX ones, or an
/// array elsewhere. Every kind adds and multiplies lane by lane with the same roundings
/// and sums by the same halves, so a reduction gives the same bits on every CPU.
#[derive(Clone, Copy)]
pub struct Lanes(backend::Register);

impl Lanes {
    #[inline(always)]
    pub fn zero() -> Self {
        Self::splat(0.0)
    }

    #[inline(always)]
    pub fn splat(x: f32) -> Self {
        Self(backend::splat(x))
    }

    #[inline(always)]
    pub fn load(x: &[f32; LANES]) -> Self {
        Self(backend::load(x))
    }

    #[inline(always)]
    pub fn store(self, out: &mut [f32; LANES]) {
        backend::store(self.0, out)
    }

    /// `self * b + acc`, rounded once per lane.
    #[inline(always)]
    pub fn mul_add(self, b: Self, acc: Self) -> Self {
        Self(backend::mul_add(self.0, b.0, acc.0))
    }

    /// Lane `i` plus lane `i + 8`, then of those `i` plus `i + 4`, then `(0 + 2) + (1 +
    /// 3)`.
    #[inline(always)]
    pub fn sum_by_halves(self) -> f32 {
        backend::sum_by_halves(self.0)
    }
}

#[cfg(all(target_arch = "x86_64", target_feature = "avx512f"))]
mod backend {
    use std::arch::x86_64::*;

    pub(super) type Register = __m512;

    #[inline(always)]
    pub(super) fn splat(x: f32) -> Register {
        // SAFETY: compiled only where the target has these instructions (the cfg above).
        unsafe { _mm512_set1_ps(x) }
    }

    #[inline(always)]
    pub(super) fn load(x: &[f32; 16]) -> Register {
        // SAFETY: as above; reads or writes exactly the sixteen floats of the array.
        unsafe { _mm512_loadu_ps(x.as_ptr()) }
    }

    #[inline(always)]
    pub(super) fn store(r: Register, out: &mut [f32; 16]) {
        // SAFETY: as above; reads or writes exactly the sixteen floats of the array.
        unsafe { _mm512_storeu_ps(out.as_mut_ptr(), r) }
    }

    #[inline(always)]
    pub(super) fn mul_add(a: Register, b: Register, acc: Register) -> Register {
        // SAFETY: compiled only where the target has these instructions (the cfg above).
        unsafe { _mm512_fmadd_ps(a, b, acc) }
    }

    #[inline(always)]
    pub(super) fn sum_by_halves(r: Register) -> f32 {
        // SAFETY: compiled only where the target has these instructions (the cfg above).
        unsafe {
            let high = _mm256_castpd_ps(_mm512_extractf64x4_pd::<1>(_mm512_castps_pd(r)));
            super::avx::sum_eights(_mm256_add_ps(_mm512_castps512_ps256(r), high))
        }
    }
}

#[cfg(all(
    target_arch = "x86_64",
    target_feature = "avx",
    target_feature = "fma",
    not(target_feature = "avx512f")
))]
mod backend {
    use std::arch::x86_64::*;

    /// Lanes 0–7 and 8–15.
    pub(super) type Register = (__m256, __m256);

    #[inline(always)]
    pub(super) fn splat(x: f32) -> Register {
        // SAFETY: compiled only where the target has these instructions (the cfg above).
        unsafe { (_mm256_set1_ps(x), _mm256_set1_ps(x)) }
    }

    #[inline(always)]
    pub(super) fn load(x: &[f32; 16]) -> Register {
        // SAFETY: as above; reads or writes exactly the sixteen floats of the array.
        unsafe {
            (
                _mm256_loadu_ps(x.as_ptr()),
                _mm256_loadu_ps(x[8..].as_ptr()),
            )
        }
    }

    #[inline(always)]
    pub(super) fn store(r: Register, out: &mut [f32; 16]) {
        // SAFETY: as above; reads or writes exactly the sixteen floats of the array.
        unsafe {
            _mm256_storeu_ps(out.as_mut_ptr(), r.0);
            _mm256_storeu_ps(out[8..].as_mut_ptr(), r.1);
        }
    }

    #[inline(always)]
    pub(super) fn mul_add(a: Register, b: Register, acc: Register) -> Register {
        // SAFETY: compiled only where the target has these instructions (the cfg above).
        unsafe {
            (
                _mm256_fmadd_ps(a.0, b.0, acc.0),
                _mm256_fmadd_ps(a.1, b.1, acc.1),
            )
        }
    }

    #[inline(always)]
    pub(super) fn sum_by_halves(r: Register) -> f32 {
        // SAFETY: compiled only where the target has these instructions (the cfg above).
        unsafe { super::avx::sum_eights(_mm256_add_ps(r.0, r.1)) }
    }
}

/// The last three halvings, shared by both x86 kinds.
#[cfg(all(target_arch = "x86_64", target_feature = "avx", target_feature = "fma"))]
mod avx {
    use std::arch::x86_64::*;

    #[inline(always)]
    pub(super) fn sum_eights(eights: __m256) -> f32 {
        // SAFETY: compiled only where the target has these instructions (the cfg above).
        unsafe {
            let fours = _mm_add_ps(
                _mm256_castps256_ps128(eights),
                _mm256_extractf128_ps::<1>(eights),
            );
            let twos = _mm_add_ps(fours, _mm_movehl_ps(fours, fours));
            _mm_cvtss_f32(_mm_add_ss(twos, _mm_movehdup_ps(twos)))
        }
    }
}

#[cfg(not(all(target_arch = "x86_64", target_feature = "avx", target_feature = "fma")))]
mod backend {
    pub(super) type Register = [f32; 16];

    pub(super) fn splat(x: f32) -> Register {
        [x; 16]
    }

    pub(super) fn load(x: &[f32; 16]) -> Register {
        *x
    }

    pub(super) fn store(r: Register, out: &mut [f32; 16]) {
        *out = r;
    }

    pub(super) fn mul_add(a: Register, b: Register, acc: Register) -> Register {
        std::array::from_fn(|i| a[i].mul_add(b[i], acc[i]))
    }

    pub(super) fn sum_by_halves(r: Register) -> f32 {
        let eights: [f32; 8] = std::array::from_fn(|i| r[i] + r[i + 8]);
        let fours: [f32; 4] = std::array::from_fn(|i| eights[i] + eights[i + 4]);
        (fours[0] + fours[2]) + (fours[1] + fours[3])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_backend_rounds_as_the_lanes_written_out() {
        let values = |seed: f32| -> [f32; LANES] {
            std::array::from_fn(|i| ((i as f32 + seed) * 1.37).sin() * 10f32.powi(i as i32 % 7))
        };
        let (a, b, c) = (values(0.3), values(1.9), values(4.1));
        let mut fused = [0f32; LANES];
        Lanes::load(&a)
            .mul_add(Lanes::load(&b), Lanes::load(&c))
            .store(&mut fused);
        let written_out: [f32; LANES] = std::array::from_fn(|i| a[i].mul_add(b[i], c[i]));
        assert_eq!(fused, written_out);

        let eights: [f32; 8] = std::array::from_fn(|i| c[i] + c[i + 8]);
        let fours: [f32; 4] = std::array::from_fn(|i| eights[i] + eights[i + 4]);
        let halves = (fours[0] + fours[2]) + (fours[1] + fours[3]);
        assert_eq!(Lanes::load(&c).sum_by_halves().to_bits(), halves.to_bits());
        // Summed left to right the same lanes round differently: the order is what
        // the test pins.
        assert_ne!(c.iter().sum::<f32>().to_bits(), halves.to_bits());
        assert_eq!(Lanes::splat(2.5).sum_by_halves(), 40.0);
    }
}
