//! The changes tarjama carries in `third_party/candle-core` keep candle's numbers and do
//! what they say (see its `TARJAMA.md`).

use std::sync::{mpsc, Arc};
use std::time::Duration;

use candle_core::quantized::{GgmlDType, QMatMul, QTensor};
use candle_core::{Device, Module, Tensor};

const QK_K: usize = 256;

/// candle 0.11.1's Q8K quantization of one block, as published: d, 256 values, 16 sums.
fn published_q8k(xs: &[f32]) -> (f32, Vec<i8>, Vec<i16>) {
    let mut max = 0f32;
    let mut amax = 0f32;
    for &x in xs {
        if amax < x.abs() {
            amax = x.abs();
            max = x;
        }
    }
    if amax == 0f32 {
        return (0.0, vec![0; QK_K], vec![0; QK_K / 16]);
    }
    let iscale = -127f32 / max;
    let qs: Vec<i8> = xs
        .iter()
        .map(|&x| (iscale * x).round().clamp(-128., 127.) as i8)
        .collect();
    let sums = qs
        .chunks(16)
        .map(|c| c.iter().map(|&q| q as i32).sum::<i32>() as i16)
        .collect();
    (1.0 / iscale, qs, sums)
}

/// The vendored crate's Q8K blocks of `xs`, read back from their bytes.
fn vendored_q8k(xs: &[f32]) -> Vec<(f32, Vec<i8>, Vec<i16>)> {
    let t = Tensor::from_slice(xs, xs.len(), &Device::Cpu).unwrap();
    let q = QTensor::quantize(&t, GgmlDType::Q8K).unwrap();
    let bytes = q.data().unwrap();
    let block = 4 + QK_K + QK_K / 16 * 2;
    assert_eq!(bytes.len(), xs.len() / QK_K * block);
    bytes
        .chunks(block)
        .map(|b| {
            let d = f32::from_le_bytes([b[0], b[1], b[2], b[3]]);
            let qs = b[4..4 + QK_K].iter().map(|&v| v as i8).collect();
            let sums = b[4 + QK_K..]
                .chunks(2)
                .map(|s| i16::from_le_bytes([s[0], s[1]]))
                .collect();
            (d, qs, sums)
        })
        .collect()
}

#[test]
fn q8k_quantization_gives_the_published_crate_s_numbers_bit_for_bit() {
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let mut next = || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0
    };
    let mut xs: Vec<f32> = (0..QK_K * 12).map(|_| next() * 7.5).collect();
    // Blocks whose largest magnitude occurs twice with both signs (the first one sets
    // the scale's sign), all zeros, negative zero, a NaN, an infinity, values that round
    // exactly half-way, and a lone tiny value.
    xs[10] = -9.0;
    xs[200] = 9.0;
    xs[QK_K + 3] = 9.0;
    xs[QK_K + 100] = -9.0;
    xs[2 * QK_K..3 * QK_K].fill(0.0);
    xs[3 * QK_K..4 * QK_K].fill(-0.0);
    xs[4 * QK_K + 17] = f32::NAN;
    xs[5 * QK_K + 5] = f32::INFINITY;
    for (i, x) in xs[6 * QK_K..7 * QK_K].iter_mut().enumerate() {
        *x = (i as f32 - 128.0) * 0.5;
    }
    xs[7 * QK_K..8 * QK_K].fill(0.0);
    xs[7 * QK_K + 255] = 1e-30;

    let ours = vendored_q8k(&xs);
    for (i, (block, got)) in xs.chunks(QK_K).zip(&ours).enumerate() {
        let want = published_q8k(block);
        assert_eq!(want.1, got.1, "block {i}: values");
        assert_eq!(want.2, got.2, "block {i}: sums");
        assert!(
            want.0.to_bits() == got.0.to_bits() || (want.0.is_nan() && got.0.is_nan()),
            "block {i}: scale {} vs {}",
            want.0,
            got.0
        );
    }
}

#[test]
fn a_parallel_op_inside_the_calling_thread_s_share_of_pool_work_runs_inline() {
    let (done, finished) = mpsc::channel();
    std::thread::spawn(move || {
        let device = Device::Cpu;
        // Large enough for candle to spread the addition over its pool.
        let a = Tensor::ones(1 << 20, candle_core::DType::F32, &device).unwrap();
        let results = std::sync::Mutex::new(vec![0f32; 4]);
        candle_core::utils::barrier_pool().execute_chunked(4, |range| {
            for i in range {
                let total = (&a + &a).unwrap().sum_all().unwrap();
                results.lock().unwrap()[i] = total.to_scalar::<f32>().unwrap();
            }
        });
        let _ = done.send(results.into_inner().unwrap());
    });
    let sums = finished
        .recv_timeout(Duration::from_secs(60))
        .expect("a nested parallel op waited forever on the pool");
    assert_eq!(sums, vec![2.0 * (1 << 20) as f32; 4]);
}

/// Random values in [-1, 1) from a fixed seed.
fn random_values(seed: u64, len: usize) -> Vec<f32> {
    let mut state = seed | 1;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0
        })
        .collect()
}

#[test]
fn fused_products_of_mixed_weight_types_give_each_product_s_own_numbers() {
    let device = Device::Cpu;
    let k = 2 * QK_K;
    // q and k as Q4_K beside v as Q6_K (a Q4_K_M file's attention), and a Q8_0 where the
    // CPU tiles it (not on the pure-AVX2 tier).
    let shapes = [
        (GgmlDType::Q4K, 64),
        (GgmlDType::Q4K, 32),
        (GgmlDType::Q6K, 32),
        (GgmlDType::Q8_0, 16),
    ];
    let mut weights = Vec::new();
    for (i, &(dtype, n)) in shapes.iter().enumerate() {
        let w = Tensor::from_vec(random_values(i as u64 + 7, n * k), (n, k), &device).unwrap();
        let mut q = QTensor::quantize(&w, dtype).unwrap();
        if q.pack_and_release_blocks().unwrap() {
            weights.push(Arc::new(q));
        }
    }
    if weights.len() < 3 {
        eprintln!("skipped: this CPU has no tiled Q4_K and Q6_K kernels");
        return;
    }
    let refs: Vec<&QTensor> = weights.iter().map(Arc::as_ref).collect();
    for rows in [1, 3, 8, 40] {
        let xs =
            Tensor::from_vec(random_values(rows as u64, rows * k), (rows, k), &device).unwrap();
        let fused = QTensor::gemv_fused_shared_lhs(&refs, &xs)
            .unwrap()
            .expect("released tiles of any type fuse");
        for (w, got) in weights.iter().zip(&fused) {
            let alone = QMatMul::from_arc(w.clone()).unwrap().forward(&xs).unwrap();
            let bits = |t: &Tensor| -> Vec<u32> {
                let v: Vec<Vec<f32>> = t.to_vec2().unwrap();
                v.concat().iter().map(|x| x.to_bits()).collect()
            };
            assert_eq!(bits(&alone), bits(got), "{:?}, {rows} rows", w.dtype());
        }
    }
}

/// The tile kernels take several activation rows at once (a count fixed per kernel at
/// compile time, up to eight); every row of a product must come out exactly as a product
/// of that row alone, whatever share of a unit it fell in.
#[test]
fn each_row_of_a_many_row_product_is_that_row_s_product_alone() {
    let device = Device::Cpu;
    let k = 2 * QK_K;
    for (i, dtype) in [GgmlDType::Q4K, GgmlDType::Q6K, GgmlDType::Q8_0]
        .into_iter()
        .enumerate()
    {
        let n = 48;
        let w = Tensor::from_vec(random_values(i as u64 + 31, n * k), (n, k), &device).unwrap();
        let mut q = QTensor::quantize(&w, dtype).unwrap();
        if !q.pack_and_release_blocks().unwrap() {
            eprintln!("skipped {dtype:?}: this CPU has no tiled kernel for it");
            continue;
        }
        let product = QMatMul::from_arc(Arc::new(q)).unwrap();
        for rows in [2, 5, 8, 9, 19] {
            let xs = Tensor::from_vec(random_values(rows as u64 + 5, rows * k), (rows, k), &device)
                .unwrap();
            let together: Vec<Vec<f32>> = product.forward(&xs).unwrap().to_vec2().unwrap();
            for (r, got) in together.iter().enumerate() {
                let alone: Vec<Vec<f32>> = product
                    .forward(&xs.narrow(0, r, 1).unwrap())
                    .unwrap()
                    .to_vec2()
                    .unwrap();
                let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                assert_eq!(bits(&alone[0]), bits(got), "{dtype:?}, row {r} of {rows}");
            }
        }
    }
}

/// The tile kernels compute what the blocks encode: each output is, to f32 rounding, the
/// dot product of the dequantized weight row with the activation row as quantized to
/// Q8K (the kernels add up scales, mins and offsets in their own order, so only the
/// last bits may differ).
#[test]
fn tiled_products_equal_the_dequantized_weights_product() {
    let device = Device::Cpu;
    let k = 4 * QK_K;
    let n = 32;
    for (i, dtype) in [GgmlDType::Q4K, GgmlDType::Q6K, GgmlDType::Q8_0]
        .into_iter()
        .enumerate()
    {
        let w = Tensor::from_vec(random_values(i as u64 + 71, n * k), (n, k), &device).unwrap();
        let mut q = QTensor::quantize(&w, dtype).unwrap();
        let weights: Vec<Vec<f32>> = q.dequantize(&device).unwrap().to_vec2().unwrap();
        if !q.pack_and_release_blocks().unwrap() {
            eprintln!("skipped {dtype:?}: this CPU has no tiled kernel for it");
            continue;
        }
        let product = QMatMul::from_arc(Arc::new(q)).unwrap();
        for rows in [1, 4, 8, 13] {
            // Larger activations on some rows and columns, as real ones have.
            let mut xs = random_values(rows as u64 + 97, rows * k);
            for (j, x) in xs.iter_mut().enumerate() {
                if j % 61 == 0 {
                    *x *= 40.0;
                }
            }
            let acts: Vec<f32> = QTensor::quantize(
                &Tensor::from_slice(&xs, (rows, k), &device).unwrap(),
                GgmlDType::Q8K,
            )
            .unwrap()
            .dequantize(&device)
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1()
            .unwrap();
            let xs = Tensor::from_vec(xs, (rows, k), &device).unwrap();
            let got: Vec<Vec<f32>> = product.forward(&xs).unwrap().to_vec2().unwrap();
            for r in 0..rows {
                let act = &acts[r * k..(r + 1) * k];
                for (c, weight) in weights.iter().enumerate() {
                    let exact: f64 = act
                        .iter()
                        .zip(weight)
                        .map(|(a, w)| *a as f64 * *w as f64)
                        .sum();
                    let scale: f64 = act
                        .iter()
                        .zip(weight)
                        .map(|(a, w)| (*a as f64 * *w as f64).abs())
                        .sum();
                    let err = (got[r][c] as f64 - exact).abs();
                    assert!(
                        err <= 1e-5 * scale + 1e-6,
                        "{dtype:?}, {rows} rows, row {r} column {c}: {} against {exact} (terms {scale})",
                        got[r][c]
                    );
                }
            }
        }
    }
}
