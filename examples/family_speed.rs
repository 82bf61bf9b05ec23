//! Speed and memory of a decoder family on a random model of a real model's shape
//! (`random_gguf::Shape::real`), each run its own process so its peak RSS is its own:
//! one 256-token prompt, then 32 decoding steps of `--batch` sequences continuing it.
//!
//!     cargo run --release --example family_speed -- --shape llama-3.2-1b --batch 8
//!
//! The random GGUF is written once to `--dir` (default /tmp) by a child process, so
//! writing it does not count in the peak. `--q8` writes and runs every matrix as Q8_0
//! instead of the Q4_K_M mix (Gemma 3 1B's 1152-wide rows fall back to Q5_0 there, which
//! candle multiplies without SIMD).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use anyhow::{bail, Context};
use candle_core::Device;
use tarjama::model::gguf_llm;
use tarjama::model::random_gguf::{self, Extras, Quantization, Shape};
use tarjama::model::transformer::{Chunk, Decoder, KvCache};

struct Args {
    shape: String,
    batch: usize,
    prompt: usize,
    steps: usize,
    dir: PathBuf,
    write_only: bool,
    /// Every matrix Q8_0 instead of the Q4_K_M mix.
    q8: bool,
}

fn args() -> anyhow::Result<Args> {
    let mut args = Args {
        shape: String::new(),
        batch: 1,
        prompt: 256,
        steps: 32,
        dir: PathBuf::from("/tmp"),
        write_only: false,
        q8: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().with_context(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--shape" => args.shape = value()?,
            "--batch" => args.batch = value()?.parse()?,
            "--prompt" => args.prompt = value()?.parse()?,
            "--steps" => args.steps = value()?.parse()?,
            "--dir" => args.dir = value()?.into(),
            "--write-only" => args.write_only = true,
            "--q8" => args.q8 = true,
            other => bail!("unknown argument {other}"),
        }
    }
    if Shape::real(&args.shape).is_none() {
        bail!("--shape is one of {}", Shape::REAL.join(", "));
    }
    Ok(args)
}

/// `VmHWM` (peak resident memory) or another `/proc/self/status` line, in MB.
fn status_mb(key: &str) -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| {
            l.strip_prefix(key)?
                .trim()
                .strip_suffix("kB")?
                .trim()
                .parse()
                .ok()
        })
        .map_or(f64::NAN, |kb: f64| kb / 1024.0)
}

/// CPU seconds this process has used (user and system, all threads), from
/// `/proc/self/stat`: on a shared machine, work per CPU second says more than wall time.
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command name, which is in parentheses and may hold spaces.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let fields: Vec<f64> = rest
        .split_whitespace()
        .map(|f| f.parse().unwrap_or(f64::NAN))
        .collect();
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after the name.
    (fields.get(11).copied().unwrap_or(f64::NAN) + fields.get(12).copied().unwrap_or(f64::NAN))
        / 100.0
}

fn load(path: &Path, device: &Device) -> anyhow::Result<Box<dyn Decoder>> {
    Ok(gguf_llm::load_decoder_file(path, device)?)
}

fn main() -> anyhow::Result<()> {
    let args = args()?;
    let (arch, shape) = Shape::real(&args.shape).context("unknown shape")?;
    let (arch, mut shape) = (arch, shape);
    let suffix = if args.q8 {
        shape.quantization = Quantization::Q8;
        "-q8"
    } else {
        ""
    };
    let path = args
        .dir
        .join(format!("tarjama-random-{}{suffix}.gguf", args.shape));
    if args.write_only {
        let started = Instant::now();
        let mut file = std::io::BufWriter::new(std::fs::File::create(&path)?);
        let extras = Extras::real(&args.shape);
        random_gguf::write_with(arch, &shape, extras, 1, &mut file)?;
        eprintln!(
            "wrote {} in {:.0} s",
            path.display(),
            started.elapsed().as_secs_f64()
        );
        return Ok(());
    }
    if !path.exists() {
        let status = std::process::Command::new(std::env::current_exe()?)
            .args(["--write-only", "--shape", &args.shape, "--dir"])
            .arg(&args.dir)
            .args(args.q8.then_some("--q8"))
            .status()?;
        if !status.success() {
            bail!("writing {} failed", path.display());
        }
    }
    let file_mb = std::fs::metadata(&path)?.len() as f64 / 1e6;

    let device = Device::Cpu;
    let started = Instant::now();
    let model = load(&path, &device)?;
    let load_s = started.elapsed().as_secs_f64();
    let loaded_mb = status_mb("VmRSS:");

    let prompt: Vec<u32> = (0..args.prompt).map(|i| (i * 37 % 250) as u32).collect();
    let mut prefix = KvCache::new(model.block_count(), prompt.len());
    let (started, cpu) = (Instant::now(), cpu_seconds());
    let logits = model.forward(&prompt, &mut prefix)?;
    let prompt_s = started.elapsed().as_secs_f64();
    let prompt_cpu = cpu_seconds() - cpu;
    let first: u32 = logits.argmax(0)?.to_scalar()?;
    let prefix = Arc::new(prefix);
    let peak_after_prompt = status_mb("VmHWM:");

    let mut caches: Vec<KvCache> = (0..args.batch)
        .map(|_| KvCache::after(prefix.clone(), args.steps))
        .collect::<candle_core::Result<_>>()?;
    // Each sequence starts from another token, so the rows differ.
    let mut next: Vec<u32> = (0..args.batch as u32).map(|i| (first + i) % 250).collect();
    let (started, cpu) = (Instant::now(), cpu_seconds());
    for _ in 0..args.steps {
        let fed: Vec<[u32; 1]> = next.iter().map(|&t| [t]).collect();
        let mut chunks: Vec<Chunk> = caches
            .iter_mut()
            .zip(&fed)
            .map(|(cache, tokens)| Chunk::new(tokens, cache))
            .collect();
        next = model.forward_batch(&mut chunks)?.argmax(1)?.to_vec1()?;
    }
    let decode_s = started.elapsed().as_secs_f64();
    let decode_cpu = cpu_seconds() - cpu;

    let decoded = args.batch * args.steps;
    println!(
        "shape {} ({:?}) batch {}: file {:.0} MB, load {:.1} s, RSS after load {:.0} MB; \
         prompt {} tokens in {:.2} s = {:.1} tok/s ({:.1} tok per CPU s; peak RSS {:.0} MB); decode {} tokens in {:.2} s = \
         {:.2} tok/s ({:.2} tok per CPU s); \
         peak RSS {:.0} MB",
        args.shape,
        arch,
        args.batch,
        file_mb,
        load_s,
        loaded_mb,
        args.prompt,
        prompt_s,
        args.prompt as f64 / prompt_s,
        args.prompt as f64 / prompt_cpu,
        peak_after_prompt,
        decoded,
        decode_s,
        decoded as f64 / decode_s,
        decoded as f64 / decode_cpu,
        status_mb("VmHWM:"),
    );
    Ok(())
}
