//! Throughput of the quantized weight products alone, in multiply-adds per second, for
//! the default model's matrix shapes and several row counts (1 = a decoding step of one
//! sequence, 8 = a batch-8 step, 64+ = prompts). Random weights, packed at load exactly
//! as `transformer::Linear` packs them.
//!
//! With `--copies N`, each product uses the next of N distinct copies of the matrix, so that
//! with enough copies the weights come from memory, not cache, as in a real decoding step
//! (about 60 copies of gate/up are 470 MB).
//!
//!     cargo run --release --example kernel_speed -- [--rows 1,8,64,256] [--secs 2] [--copies 1]

use std::time::Instant;

use anyhow::Context;
use candle_core::quantized::{GgmlDType, QMatMul, QTensor};
use candle_core::{Device, Module, Tensor};
use tarjama::model::random_gguf::Shape;

fn main() -> anyhow::Result<()> {
    let mut rows = vec![1usize, 4, 8, 16, 64, 256];
    let mut secs = 2.0f64;
    let mut copies = 1usize;
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let value = args
            .next()
            .with_context(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--rows" => {
                rows = value
                    .split(',')
                    .map(|r| r.trim().parse())
                    .collect::<Result<_, _>>()
                    .context("--rows takes numbers separated by commas")?
            }
            "--secs" => secs = value.parse().context("--secs takes seconds")?,
            "--copies" => copies = value.parse().context("--copies takes a count")?,
            other => anyhow::bail!("unknown flag {other} (try --rows 1,8,64 --secs 2 --copies 60)"),
        }
    }
    let device = Device::Cpu;
    // The default model's MLP: gate/up (Q4_K) and down (Q6_K in a Q4_K_M file).
    let (_, model) = Shape::real("qwen2.5-1.5b").context("the default model's shape")?;
    let shapes = [
        ("gate/up Q4_K", GgmlDType::Q4K, model.ffn, model.hidden),
        ("down Q6_K", GgmlDType::Q6K, model.hidden, model.ffn),
    ];
    println!("| matrix | copies | rows | GMAC/s | weight GB/s | ms per product |");
    println!("|---|---|---|---|---|---|");
    for (name, dtype, n, k) in shapes {
        let w = Tensor::randn(0f32, 0.02, (n, k), &device)?;
        let weight_bytes = (n * k) / dtype.block_size() * dtype.type_size();
        let matrices = (0..copies.max(1))
            .map(|_| {
                let mut q = QTensor::quantize(&w, dtype)?;
                q.pack_and_release_blocks()?;
                QMatMul::from_qtensor(q)
            })
            .collect::<candle_core::Result<Vec<_>>>()?;
        for &m in &rows {
            let x = Tensor::randn(0f32, 1.0, (m, k), &device)?;
            for mm in &matrices {
                mm.forward(&x)?;
            }
            let start = Instant::now();
            let mut runs = 0usize;
            while start.elapsed().as_secs_f64() < secs {
                matrices[runs % matrices.len()].forward(&x)?;
                runs += 1;
            }
            let each = start.elapsed().as_secs_f64() / runs as f64;
            let gmacs = (m * n * k) as f64 / each / 1e9;
            let gbs = weight_bytes as f64 / each / 1e9;
            println!(
                "| {name} | {} | {m} | {gmacs:.1} | {gbs:.1} | {:.3} |",
                matrices.len(),
                each * 1e3
            );
        }
    }
    Ok(())
}
