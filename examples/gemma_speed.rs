//! Speed and memory of the Gemma decoders on random models of a real model's shape
//! (`random_gguf::Shape::real`), where the real weights cannot go.
//!
//! ```text
//! cargo run --release --example gemma_speed -- write gemma-2-2b   # /tmp/tarjama-random-gemma-2-2b.gguf
//! cargo run --release --example gemma_speed -- run gemma-2-2b 1   # prompt and decode at batch 1
//! cargo run --release --example gemma_speed -- run gemma-2-2b 8
//! ```
//!
//! `run` first warms up (candle repacks each weight for its kernels on first use), then
//! feeds one 256-token prompt (prompt tok/s), decodes 32 steps for `batch` sequences
//! that continue it as a shared prefix (decode tok/s, all sequences together), and prints
//! the peak resident memory of the process (VmHWM) and the load average. Write and run
//! in separate processes, one at a time, so each peak is that run's own.
//! `qwen2.5-1.5b` runs the Qwen2 decoder the same way, as a baseline. A last argument
//! `q8` writes and runs the model with every matrix in Q8_0 instead of the Q4_K_M mix.

use std::fs::File;
use std::io::{BufReader, BufWriter};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use candle_core::quantized::gguf_file;
use candle_core::Device;
use tarjama::model::gemma::{self, Gemma};
use tarjama::model::qwen2::{self, Qwen2};
use tarjama::model::random_gguf::{self, Quantization, Shape};
use tarjama::model::transformer::{Chunk, Decoder, KvCache};

const PROMPT: usize = 256;
const STEPS: usize = 32;

fn path(name: &str) -> PathBuf {
    let q8 = std::env::args().any(|a| a == "q8");
    let suffix = if q8 { "-q8" } else { "" };
    std::env::temp_dir().join(format!("tarjama-random-{name}{suffix}.gguf"))
}

fn peak_rss_mb() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let usage = "usage: gemma_speed write NAME | run NAME BATCH \
                 (NAME: gemma-2-2b, gemma-3-1b, or qwen2.5-1.5b as a baseline)";
    let (Some(mode), Some(name)) = (args.first(), args.get(1)) else {
        return Err(usage.into());
    };
    let Some((arch, mut shape)) = Shape::real(name) else {
        return Err(usage.into());
    };
    if args.iter().any(|a| a == "q8") {
        shape.quantization = Quantization::Q8;
    }
    match mode.as_str() {
        "write" => {
            let started = Instant::now();
            let mut out = BufWriter::new(File::create(path(name))?);
            random_gguf::write(arch, &shape, 1, &mut out)?;
            drop(out);
            let size = std::fs::metadata(path(name))?.len() as f64 / 1e9;
            println!(
                "{name}: wrote {} ({size:.2} GB) in {:.0} s",
                path(name).display(),
                started.elapsed().as_secs_f64()
            );
        }
        "run" => {
            let batch: usize = args.get(2).ok_or(usage)?.parse()?;
            run(name, &shape, batch)?;
        }
        _ => return Err(usage.into()),
    }
    Ok(())
}

fn run(name: &str, shape: &Shape, batch: usize) -> Result<(), Box<dyn std::error::Error>> {
    let device = Device::Cpu;
    let started = Instant::now();
    let mut reader = BufReader::new(File::open(path(name))?);
    let content = gguf_file::Content::read(&mut reader)?;
    let model: Box<dyn Decoder> = if name.starts_with("qwen2") {
        let cfg = qwen2::Config::from_gguf(&content)?;
        Box::new(Qwen2::new(cfg, &content, &mut reader, &device)?)
    } else {
        let cfg = gemma::Config::from_gguf(&content)?;
        Box::new(Gemma::new(cfg, &content, &mut reader, &device)?)
    };
    drop(content);
    let load_s = started.elapsed().as_secs_f64();

    // Warm-up: a short prompt, then decoding steps at this batch size.
    let mut warm = KvCache::new(model.block_count(), 16);
    model.forward(&[5, 6, 7, 8, 9, 10, 11, 12], &mut warm)?;
    let warm = Arc::new(warm);
    let mut caches: Vec<KvCache> = (0..batch)
        .map(|_| KvCache::after(warm.clone(), 2))
        .collect::<Result<_, _>>()?;
    for step in 0..2u32 {
        let feeds: Vec<[u32; 1]> = (0..batch as u32).map(|i| [20 + i + step]).collect();
        let mut chunks: Vec<Chunk> = feeds
            .iter()
            .zip(caches.iter_mut())
            .map(|(tokens, cache)| Chunk { tokens, cache })
            .collect();
        model.forward_batch(&mut chunks)?;
    }
    drop(caches);

    // Byte-range token ids, different at every position.
    let prompt: Vec<u32> = (0..PROMPT)
        .map(|i| (i * 37 % (shape.vocab - 300)) as u32 + 3)
        .collect();
    let mut cache = KvCache::new(model.block_count(), PROMPT);
    let started = Instant::now();
    let logits = model.forward(&prompt, &mut cache)?;
    let prompt_s = started.elapsed().as_secs_f64();
    let first = logits.argmax(0)?.to_scalar::<u32>()?;

    let prefix = Arc::new(cache);
    let mut caches: Vec<KvCache> = (0..batch)
        .map(|_| KvCache::after(prefix.clone(), STEPS + 1))
        .collect::<Result<_, _>>()?;
    let mut next: Vec<u32> = (0..batch).map(|i| first + i as u32).collect();
    let started = Instant::now();
    for _ in 0..STEPS {
        let feeds: Vec<[u32; 1]> = next.iter().map(|&t| [t]).collect();
        let mut chunks: Vec<Chunk> = feeds
            .iter()
            .zip(caches.iter_mut())
            .map(|(tokens, cache)| Chunk { tokens, cache })
            .collect();
        let logits = model.forward_batch(&mut chunks)?;
        next = logits.argmax(1)?.to_vec1()?;
    }
    let decode_s = started.elapsed().as_secs_f64();
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!(
        "{name} batch {batch}: load {load_s:.1} s, prompt {:.1} tok/s ({PROMPT} tokens), \
         decode {:.2} tok/s ({STEPS} steps x {batch}), peak RSS {:.0} MB, load average {}",
        PROMPT as f64 / prompt_s,
        (STEPS * batch) as f64 / decode_s,
        peak_rss_mb(),
        load.split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" ")
    );
    Ok(())
}
