//! The `tarjama` command line. All the work happens in the library; this file only
//! parses flags, sets up logging, and maps results to exit codes.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};

use tarjama::bench::{self, BenchOptions};
use tarjama::engine;
use tarjama::eval::{self, EvalOptions};
use tarjama::job::{self, JobSettings};
use tarjama::memory::{self, Memory};
use tarjama::metrics;
use tarjama::model::DeviceChoice;
use tarjama::models;
use tarjama::registry::{FetchPolicy, DEFAULT_MODEL};
use tarjama::settings::{Choices, GlossaryChoice, RunSettings};
use tarjama::translate::{PromptStyle, Quality, DEFAULT_HINTS};
use tarjama::write::Format;

#[derive(Parser)]
#[command(
    name = "tarjama",
    version,
    about = "Offline Arabic→English document translator",
    long_about = "Translates Arabic documents into English with a local model, writing side-by-side \
bilingual files, a short English summary of each document, and a digest of the whole run.",
    after_help = "Examples:\n  \
tarjama translate samples --out out          translate every .txt/.md under samples/\n  \
tarjama translate release.txt --out out -q   one document, errors only\n  \
cat release.txt | tarjama translate - --out out\n  \
tarjama models fetch                         download the default model ahead of time\n  \
tarjama score --hyp hyp.en --ref ref.en      BLEU and chrF of existing translations\n  \
tarjama bench                                translation speed at batch sizes 1, 4, 8, 16",
    args_override_self = true
)]
struct Cli {
    #[command(flatten)]
    global: GlobalArgs,
    #[command(subcommand)]
    command: Command,
}

#[derive(Args)]
struct GlobalArgs {
    /// Only print errors and the final report.
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    quiet: bool,
    /// Print debug logs (repeat for trace logs).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    verbose: u8,
    /// Worker threads for the model (default: all cores).
    #[arg(long, global = true, value_name = "N")]
    threads: Option<usize>,
}

#[derive(Subcommand)]
enum Command {
    /// Translate Arabic documents into English.
    #[command(after_help = "Examples:\n  \
tarjama translate samples --out out\n  \
tarjama translate a.txt b.md --out out --format html,json --no-summary\n  \
tarjama translate feed/ --out out --model ~/models/qwen2.5-3b-instruct-q4_k_m.gguf\n  \
tarjama translate feed/ --out out --glossary my-terms.tsv\n  \
cat release.txt | tarjama translate - --out out\n\n\
Outputs per document NAME (from the input's file name): NAME.html, NAME.md, NAME.en.txt, NAME.json;\n\
per run: index.html and digest.md. Documents whose outputs are up to date are skipped.\n\
Sentences whose translation fails a check (numbers, Arabic left over, loops, length,\n\
glossary terms, names the source does not support, rare words left out) are retried once,\n\
then flagged in every output; so are summaries that state what the translation does not.\n\
Exit status: 0 all documents succeeded, 1 some failed (the others still complete), 2 usage error.")]
    Translate(TranslateArgs),
    /// Translate a test set line by line and score it with BLEU and chrF.
    #[command(after_help = "Examples:\n  \
tarjama eval --src devtest.arb --ref devtest.eng --limit 200\n  \
tarjama eval --src dev.ar --ref dev.en --offset 200 --limit 200 --hyp-out hyp.en --json\n\n\
Each source line is one unit: long lines are segmented and rejoined as in `translate`.\n\
Scores are sacreBLEU-exact: BLEU nrefs:1|case:mixed|eff:no|tok:13a|smooth:exp and\n\
chrF2 nrefs:1|case:mixed|eff:yes|nc:6|nw:0|space:no.")]
    Eval(EvalArgs),
    /// Score an existing hypothesis file against references (no model needed).
    Score {
        /// Hypotheses, one line per reference line.
        #[arg(long, value_name = "FILE")]
        hyp: PathBuf,
        /// References, one line each.
        #[arg(long = "ref", value_name = "FILE")]
        reference: PathBuf,
        /// Print one JSON object instead of text.
        #[arg(long)]
        json: bool,
    },
    /// List or fetch known models.
    #[command(subcommand)]
    Models(ModelsCommand),
    /// Rebuild index.html and digest.md from the outputs of one or more runs (shards).
    #[command(after_help = "Examples:\n  \
tarjama digest out                       after every shard wrote into one shared directory\n  \
tarjama digest out-0 out-1 out-2 --out out   shards that wrote into directories of their own\n\n\
Documents come from the NAME.json records and failures from the failures*.json files the\n\
runs left; entries are ordered by source path, as one run over the same inputs orders them.")]
    Digest {
        /// Output directories of the runs to merge.
        #[arg(required = true, value_name = "OUT_DIR")]
        dirs: Vec<PathBuf>,
        /// Where to write the digest (default: the first OUT_DIR).
        #[arg(short, long, value_name = "DIR")]
        out: Option<PathBuf>,
        /// Output formats the runs wrote, for the digest's links.
        #[arg(
            long,
            value_delimiter = ',',
            default_value = "html,md,txt,json",
            value_name = "LIST"
        )]
        format: Vec<Format>,
    },
    /// Inspect, clear or export the translation memory.
    #[command(
        subcommand,
        after_help = "The memory is $TARJAMA_HOME/memory.sqlite (default ~/.cache/tarjama/memory.sqlite).\n\
`translate` looks every segment up there before calling the model and stores each one as\n\
soon as it is translated; entries are keyed by the normalized segment and the model file,\n\
prompt, decoding and glossary, so changing any of those translates afresh."
    )]
    Memory(MemoryCommand),
    /// Measure translation speed on fixed documents at several batch sizes.
    #[command(after_help = "Examples:\n  \
tarjama bench                                 the bundled samples at batch sizes 1, 4, 8, 16\n  \
tarjama bench --batch-sizes 1,8 --limit 40    a quicker look\n  \
tarjama bench --export-requests req.jsonl     the same requests for scripts/bench-llamacpp.sh\n\n\
Every segment is translated once, greedily, with the translation prompt (no retries, no\n\
summaries). Each batch size runs in a fresh process: prompt and decoding tokens/s,\n\
Arabic words/s, peak RSS and model load time are its own. `same as batch 1` counts the\n\
segments whose translation is identical to the batch-1 run's.")]
    Bench(BenchArgs),
    /// Show what tarjama's Arabic lexicon knows about words: analyses, glosses, rarity.
    #[command(after_help = "Examples:\n  \
tarjama lookup والأقمار\n  \
tarjama lookup الخلايا النائمة\n\n\
Each analysis is prefix + stem + suffix as the Buckwalter (BAMA 1.0) lexicon splits the word,\n\
with its part of speech and English glosses. Zipf is wordfreq's frequency scale (7: the\n\
commonest words, 3: one in a million, 0: unseen); `hint` marks the rare, unambiguous content\n\
words whose glosses the model is given. The lexicon (GPL) and the frequency list (CC-BY-SA)\n\
are fetched with pip on first use into $TARJAMA_HOME/lexicon.")]
    Lookup {
        /// Arabic words (a phrase is split into words).
        #[arg(required = true, value_name = "WORD")]
        words: Vec<String>,
        /// Never download the lexicon; fail if it is not cached.
        #[arg(long)]
        offline: bool,
    },
}

#[derive(Args)]
struct BenchArgs {
    /// Documents whose segments are translated.
    #[arg(default_value = "samples", value_name = "INPUT")]
    inputs: Vec<String>,
    /// Batch sizes to measure, comma-separated.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "1,4,8,16",
        value_name = "LIST"
    )]
    batch_sizes: Vec<usize>,
    /// Only the first N segments.
    #[arg(long, value_name = "N", conflicts_with = "whole_job")]
    limit: Option<usize>,
    /// Also run the whole job at each batch size (`translate` on the same documents:
    /// checks, retries, repairs, summaries, written outputs, no translation memory), and
    /// set its speed beside translation alone.
    #[arg(long)]
    whole_job: bool,
    /// Write the requests (prompt token ids, token caps, stop tokens) as JSON lines for
    /// scripts/bench-llamacpp.sh, and measure nothing.
    #[arg(long, value_name = "FILE")]
    export_requests: Option<PathBuf>,
    /// Keep each batch size's figures and translations in this directory.
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// Run only --batch-size in this process and save to --out (used by bench itself).
    #[arg(long, hide = true, requires = "out")]
    single: bool,
    /// With --single: measure the whole job instead of translation alone.
    #[arg(long, hide = true, requires = "single")]
    job: bool,
    #[command(flatten)]
    model: ModelArgs,
}

#[derive(Args)]
struct TranslateArgs {
    /// Files or directories (recursed for .txt and .md); `-` reads one document from stdin.
    #[arg(required = true, value_name = "INPUT")]
    inputs: Vec<String>,
    /// Directory for the outputs (created if missing).
    #[arg(short, long, value_name = "DIR")]
    out: PathBuf,
    /// Output formats, comma-separated: html, md, docx, txt, json (docx, a bilingual
    /// Word document, only when asked for).
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "html,md,txt,json",
        value_name = "LIST"
    )]
    format: Vec<Format>,
    /// Do not write summaries (faster).
    #[arg(long)]
    no_summary: bool,
    /// The chat LLM that writes summaries when --model is a translation model (OPUS-MT):
    /// a known name or a .gguf path. An LLM --model writes its own summaries.
    #[arg(long, default_value = DEFAULT_MODEL, value_name = "MODEL")]
    summary_model: String,
    /// Redo documents whose outputs are already up to date.
    #[arg(long)]
    force: bool,
    /// Neither look segments up in the translation memory nor store them there.
    #[arg(long)]
    no_memory: bool,
    /// Show the model, as a worked example, the translation memory's closest match of each
    /// segment when it is at least PERCENT similar (word edits, as translation tools
    /// count them). Imported pairs (`tarjama memory import`) are offered first.
    #[arg(long, value_name = "PERCENT", num_args = 0..=1, default_missing_value = "50",
          value_parser = clap::value_parser!(u32).range(1..=100))]
    memory_examples: Option<u32>,
    /// Translate only shard I of N (I from 0): documents are assigned by a stable hash of
    /// their path below the input directory, so N machines given the same inputs cover
    /// each document exactly once. Merge the outputs with `tarjama digest`.
    #[arg(long, value_name = "I/N", value_parser = parse_shard)]
    shard: Option<(usize, usize)>,
    #[command(flatten)]
    model: ModelArgs,
}

#[derive(Args)]
struct EvalArgs {
    /// Source lines (Arabic), one segment unit per line.
    #[arg(long, value_name = "FILE")]
    src: PathBuf,
    /// Reference translations, line by line.
    #[arg(long = "ref", value_name = "FILE")]
    reference: PathBuf,
    /// Translate at most N lines.
    #[arg(long, value_name = "N")]
    limit: Option<usize>,
    /// Skip the first K lines (`--offset 200` starts at line 201).
    #[arg(long, value_name = "K", default_value_t = 0)]
    offset: usize,
    /// Write the translations here, one per line.
    #[arg(long, value_name = "FILE")]
    hyp_out: Option<PathBuf>,
    /// Print one JSON object (bleu, chrf, lines, seconds, ...) instead of text.
    #[arg(long)]
    json: bool,
    /// Write every segment with its translation, attempts and warnings here (JSON lines).
    #[arg(long, value_name = "FILE")]
    segments_out: Option<PathBuf>,
    /// Also score every translation with and without its source (two teacher-forced
    /// passes per segment) and report how well that contrast finds bad translations.
    #[arg(long, hide = true)]
    source_contrast: bool,
    /// Show the model, as a worked example, the translation memory's closest match of each
    /// segment when it is at least PERCENT similar (word edits, as translation tools
    /// count them). Imported pairs (`tarjama memory import`) are offered first.
    #[arg(long, value_name = "PERCENT", num_args = 0..=1, default_missing_value = "50",
          value_parser = clap::value_parser!(u32).range(1..=100))]
    memory_examples: Option<u32>,
    #[command(flatten)]
    model: ModelArgs,
}

/// Model and translation settings shared by `translate` and `eval`.
#[derive(Args)]
struct ModelArgs {
    /// A known model name (see `tarjama models list`), a path to an instruct .gguf file
    /// (Qwen2/2.5/3, Llama 3.x, Mistral, ALLaM, Gemma 2/3, SILMA) or a directory holding
    /// one, an OPUS-MT (Marian) model directory, or hf:OWNER/REPO[:FILE.gguf]
    /// fetched from the Hugging Face hub (a GGUF repository, or an OPUS-MT one such as
    /// hf:Helsinki-NLP/opus-mt-ar-en).
    #[arg(short, long, default_value = DEFAULT_MODEL, value_name = "MODEL")]
    model: String,
    /// Upper bound on tokens generated for one segment.
    #[arg(long, default_value_t = 512, value_name = "N", value_parser = clap::value_parser!(u32).range(16..=8192))]
    max_new_tokens: u32,
    /// Sentences longer than this many tokens are split at clause boundaries.
    #[arg(long, default_value_t = 160, value_name = "N", value_parser = clap::value_parser!(u32).range(16..=2048), hide = true)]
    max_segment_tokens: u32,
    /// Never download models; fail if the model is not cached.
    #[arg(long)]
    offline: bool,
    /// Glossary of fixed renderings (TSV: Arabic term, TAB, English; `#` comments),
    /// used instead of the built-in GCC / Central Asia glossary.
    #[arg(long, value_name = "FILE.tsv", conflicts_with = "no_glossary")]
    glossary: Option<PathBuf>,
    /// Use no glossary at all.
    #[arg(long)]
    no_glossary: bool,
    /// How the request is put to the model (for quality experiments).
    #[arg(long, value_enum, default_value_t = PromptStyle::FewShot, hide = true)]
    prompt_style: PromptStyle,
    /// Do not retry segments that fail a check (for quality experiments).
    #[arg(long, hide = true)]
    no_retry: bool,
    /// fast: one greedy translation per segment, retried once if it fails a check.
    /// best: four candidates per segment (greedy and three samples), keeping the one the
    /// others agree with most among those that pass the most checks; about four times
    /// slower. docs/quality.md gives the measured difference.
    #[arg(long, value_enum, default_value_t = Quality::Fast, value_name = "MODE")]
    quality: Quality,
    /// Candidates per segment, overriding --quality (for quality experiments).
    #[arg(long, hide = true, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=16))]
    candidates: Option<u32>,
    /// Samples drawn for a doubtful segment and reranked, overriding the default (for
    /// quality experiments; 0 turns reranking off).
    #[arg(long, hide = true, value_name = "N", value_parser = clap::value_parser!(u32).range(0..=8))]
    rerank: Option<u32>,
    /// Show the model the previous segment and its translation (for quality experiments).
    #[arg(long, hide = true)]
    context: bool,
    /// Segments decoded together. Larger batches make better use of the CPU or GPU
    /// (see docs/performance.md); each segment's greedy translation is the same.
    #[arg(long, default_value_t = 8, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=256))]
    batch_size: u32,
    /// Where the model runs: auto (a CUDA GPU if this build has CUDA and one is
    /// present, else the CPU), cpu, or cuda.
    #[arg(long, value_enum, default_value_t = DeviceChoice::Auto, value_name = "DEVICE")]
    device: DeviceChoice,
    /// Run without the Arabic lexicon: no word meanings for the model, and no checks for
    /// invented names or lost words.
    #[arg(long)]
    no_lexicon: bool,
    /// Rare words per segment whose dictionary meanings the model is given (0: none).
    #[arg(long, default_value_t = DEFAULT_HINTS, value_name = "N", value_parser = clap::value_parser!(u32).range(0..=32))]
    hints: u32,
}

impl ModelArgs {
    /// The flags as given; [`RunSettings::resolve`] makes them a run's settings.
    fn choices(
        &self,
        summary_model: Option<String>,
        memory: Option<PathBuf>,
        memory_examples: Option<u32>,
    ) -> Choices {
        Choices {
            model: self.model.clone(),
            summary_model,
            offline: self.offline,
            device: self.device,
            batch_size: self.batch_size as usize,
            max_new_tokens: self.max_new_tokens as usize,
            max_segment_tokens: self.max_segment_tokens as usize,
            prompt_style: self.prompt_style,
            quality: self.quality,
            retry: !self.no_retry,
            candidates: self.candidates.map(|n| n as usize),
            rerank: self.rerank.map(|n| n as usize),
            context: self.context,
            glossary: match (&self.glossary, self.no_glossary) {
                (_, true) => GlossaryChoice::Off,
                (Some(path), false) => GlossaryChoice::File(path.clone()),
                (None, false) => GlossaryChoice::BuiltIn,
            },
            lexicon: !self.no_lexicon,
            hints: self.hints as usize,
            memory,
            memory_examples,
        }
    }
}

#[derive(Subcommand)]
enum MemoryCommand {
    /// Entries, models and size of the translation memory.
    Stats,
    /// Delete every entry.
    Clear,
    /// Write every entry as a TMX 1.4 file (Arabic source, English target).
    Export {
        #[arg(long, value_name = "FILE")]
        tmx: PathBuf,
    },
    /// Add approved translations, offered to the model by `--memory-examples`: a TMX file
    /// (from a translation tool), or line-aligned Arabic and English files.
    Import {
        #[arg(value_name = "FILE.tmx", required_unless_present = "arabic",
              conflicts_with_all = ["arabic", "english"])]
        tmx: Option<PathBuf>,
        /// Arabic segments, one per line.
        #[arg(long, value_name = "FILE", requires = "english")]
        arabic: Option<PathBuf>,
        /// Their English translations, line by line.
        #[arg(long, value_name = "FILE", requires = "arabic")]
        english: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
enum ModelsCommand {
    /// List known models and whether they are cached.
    List,
    /// Download, assemble and verify a known model into the cache.
    Fetch {
        /// Model name (default: the default model).
        #[arg(default_value = DEFAULT_MODEL)]
        name: String,
    },
    /// Write a GGUF with random weights in a real model's shape (or a tiny one), to
    /// measure speed and memory or check a GPU where real weights cannot go.
    #[command(hide = true)]
    Random {
        /// A real shape (qwen2.5-1.5b, qwen3-1.7b, llama-3.2-1b, llama-3.2-3b,
        /// gemma-2-2b, gemma-3-1b) or tiny-ARCH (tiny-qwen2, tiny-llama, …).
        shape: String,
        /// The file to write.
        out: PathBuf,
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Positions the model says it can attend to (the tiny shapes default to 128,
        /// shorter than a real translation prompt).
        #[arg(long)]
        context: Option<usize>,
    },
}

fn parse_shard(s: &str) -> Result<(usize, usize), String> {
    let usage = || format!("`{s}`: expected I/N with 0 <= I < N, such as 0/4");
    let (i, n) = s.split_once('/').ok_or_else(usage)?;
    let (i, n): (usize, usize) = (
        i.trim().parse().map_err(|_| usage())?,
        n.trim().parse().map_err(|_| usage())?,
    );
    if n == 0 || i >= n {
        return Err(usage());
    }
    Ok((i, n))
}

/// candle runs the quantized weight products, most of the work, on its own spinning
/// barrier pool, and the small f32 products of attention on rayon's; two pools of one
/// thread per core spin against each other for the same cores (decoding at batch 8 was
/// 17 % faster with rayon on one thread). The barrier pool gets `threads` (default: all
/// cores), rayon one thread, unless the environment already sizes them. Must run before
/// any pool exists.
fn size_thread_pools(threads: Option<usize>) {
    let cores = || std::thread::available_parallelism().map_or(1, |n| n.get());
    match threads {
        Some(n) => std::env::set_var("CANDLE_NUM_THREADS", n.to_string()),
        // Without it candle would size its pool from rayon's one thread.
        None if std::env::var_os("CANDLE_NUM_THREADS").is_none() => {
            std::env::set_var("CANDLE_NUM_THREADS", cores().to_string())
        }
        None => {}
    }
    if std::env::var_os("RAYON_NUM_THREADS").is_none() {
        std::env::set_var("RAYON_NUM_THREADS", "1");
    }
}

/// A forward pass allocates and frees tensors of 1 to 32 MB at every layer (a prompt
/// piece's activations, attention scores, a step's logits). Each one glibc serves from a
/// fresh mapping is zeroed and faulted in page by page: with a 1 MB mmap threshold that
/// was about 100,000 page faults a second and a quarter of the prompt time. Blocks of up
/// to 32 MB (glibc's own ceiling) come from the heap instead and are reused; the heap
/// gives back a free top larger than 64 MB, so a long summary prompt's scores do not stay
/// resident for the rest of the run. One arena keeps that bound one bound: candle's worker
/// threads would otherwise each grow a heap of their own.
fn reuse_freed_tensor_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes allocator tuning; called before any other thread exists.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 32 << 20);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 64 << 20);
        libc::mallopt(libc::M_ARENA_MAX, 1);
    }
}

/// The instruction sets this binary was compiled to use that the CPU running it lacks:
/// a binary built for another machine would otherwise stop at its first such
/// instruction with nothing but "illegal instruction".
fn instructions_missing() -> Vec<&'static str> {
    #[allow(unused_mut)]
    let mut missing = Vec::new();
    #[cfg(target_arch = "x86_64")]
    {
        macro_rules! require {
            ($($feature:tt),*) => {$(
                #[cfg(target_feature = $feature)]
                if !std::arch::is_x86_feature_detected!($feature) {
                    missing.push($feature);
                }
            )*};
        }
        require!("avx", "avx2", "fma", "f16c", "bmi2", "avx512f", "avx512bw", "avx512vl");
    }
    missing
}

fn main() -> ExitCode {
    let missing = instructions_missing();
    if !missing.is_empty() {
        eprintln!(
            "error: this tarjama binary was built for CPUs with {}, which this one lacks: \
             build it here (cargo build --release builds for any x86-64-v3 CPU)",
            missing.join(", ")
        );
        return ExitCode::from(1);
    }
    reuse_freed_tensor_memory();
    let cli = Cli::parse();
    size_thread_pools(cli.global.threads.filter(|n| *n > 0));
    init_logging(&cli.global);
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(1)
        }
    }
}

fn init_logging(g: &GlobalArgs) {
    let level = match (g.quiet, g.verbose) {
        (true, _) => "error",
        (false, 0) => "info",
        (false, 1) => "debug",
        (false, _) => "trace",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("TARJAMA_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(format!("tarjama={level},warn")));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .with_ansi(std::io::stderr().is_terminal())
        .without_time()
        .init();
}

fn show_progress(g: &GlobalArgs) -> bool {
    !g.quiet && std::io::stderr().is_terminal()
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let progress = show_progress(&cli.global);
    match cli.command {
        Command::Translate(args) => translate(args, progress),
        Command::Eval(args) => evaluate(args, progress),
        Command::Bench(args) => benchmark(args),
        Command::Lookup { words, offline } => lookup(&words, offline),
        Command::Score {
            hyp,
            reference,
            json,
        } => score(&hyp, &reference, json),
        Command::Models(ModelsCommand::List) => {
            print!("{}", models::list());
            Ok(ExitCode::SUCCESS)
        }
        Command::Models(ModelsCommand::Fetch { name }) => {
            println!("{}", models::fetch(&name, progress)?);
            Ok(ExitCode::SUCCESS)
        }
        Command::Models(ModelsCommand::Random {
            shape,
            out,
            seed,
            context,
        }) => {
            println!("{}", models::write_random(&shape, &out, seed, context)?);
            Ok(ExitCode::SUCCESS)
        }
        Command::Digest { dirs, out, format } => digest(&dirs, out, &format),
        Command::Memory(command) => memory_command(command),
    }
}

fn translate(args: TranslateArgs, progress: bool) -> anyhow::Result<ExitCode> {
    let mut formats = args.format;
    formats.sort_by_key(|f| *f as u8);
    formats.dedup();
    let choices = args.model.choices(
        (!args.no_summary).then_some(args.summary_model),
        (!args.no_memory).then(memory::default_path),
        args.memory_examples,
    );
    let job = JobSettings {
        run: RunSettings::resolve(choices)?,
        inputs: args.inputs,
        out_dir: args.out,
        formats,
        force: args.force,
        shard: args.shard,
        progress_bar: progress,
        progress_every: job::LOG_EVERY,
    };
    let report = job::run(&job, engine::load)?;
    println!("{}", report.render());
    Ok(if report.failed() > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

fn evaluate(args: EvalArgs, progress: bool) -> anyhow::Result<ExitCode> {
    // eval only reads the memory, for its examples.
    let choices = args
        .model
        .choices(None, Some(memory::default_path()), args.memory_examples);
    let opts = EvalOptions {
        run: RunSettings::resolve(choices)?,
        src: args.src,
        reference: args.reference,
        offset: args.offset,
        limit: args.limit,
        hyp_out: args.hyp_out,
        progress_bar: progress,
        segments_out: args.segments_out,
        source_contrast: args.source_contrast,
    };
    let mut engine = engine::load(&opts.run)?;
    let report = eval::run(&opts, engine.translator.as_mut())?;
    if args.json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        println!("{}", report.render());
    }
    Ok(ExitCode::SUCCESS)
}

fn benchmark(args: BenchArgs) -> anyhow::Result<ExitCode> {
    let opts = BenchOptions {
        run: RunSettings::resolve(args.model.choices(None, None, None))?,
        inputs: args.inputs.clone(),
        limit: args.limit,
    };
    if let Some(path) = &args.export_requests {
        let n = bench::export_requests(&opts, path)?;
        println!("{n} requests written to {}", path.display());
        return Ok(ExitCode::SUCCESS);
    }
    if args.single {
        let out = args.out.context("--single needs --out")?;
        if args.job {
            let written = out.join(format!("job-batch-{}-outputs", args.model.batch_size));
            let row = bench::run_job(&opts, &written)?;
            bench::save(&row, &[], &out)?;
        } else {
            let (row, outputs) = bench::run_one(&opts)?;
            bench::save(&row, &outputs, &out)?;
        }
        return Ok(ExitCode::SUCCESS);
    }
    let temp;
    let out = match &args.out {
        Some(dir) => dir.clone(),
        None => {
            temp = tempfile::tempdir()?;
            temp.path().to_path_buf()
        }
    };
    let exe = std::env::current_exe().context("cannot find the tarjama executable to rerun")?;
    let own_args: Vec<std::ffi::OsString> = std::env::args_os().skip(1).collect();
    print!(
        "{}",
        bench::compare_batch_sizes(&exe, &own_args, &args.batch_sizes, args.whole_job, &out)?
    );
    Ok(ExitCode::SUCCESS)
}

fn lookup(words: &[String], offline: bool) -> anyhow::Result<ExitCode> {
    let policy = if offline {
        FetchPolicy::Forbid
    } else {
        FetchPolicy::Allow
    };
    let lexicon = tarjama::lexicon::Lexicon::load(policy)?;
    print!("{}", lexicon.describe(&words.join(" ")));
    Ok(ExitCode::SUCCESS)
}

fn score(
    hyp: &std::path::Path,
    reference: &std::path::Path,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let (hyps, refs) = metrics::read_parallel(hyp, reference)?;
    let bleu = metrics::corpus_bleu(&hyps, &refs);
    let chrf = metrics::corpus_chrf(&hyps, &refs);
    if json {
        println!(
            "{}",
            serde_json::json!({ "bleu": bleu.score, "chrf": chrf.score, "lines": hyps.len() })
        );
    } else {
        println!("BLEU = {:.2} {}", bleu.score, metrics::BLEU_SIGNATURE);
        println!("chrF2 = {:.2} {}", chrf.score, metrics::CHRF_SIGNATURE);
    }
    Ok(ExitCode::SUCCESS)
}

fn digest(dirs: &[PathBuf], out: Option<PathBuf>, format: &[Format]) -> anyhow::Result<ExitCode> {
    let into = out.unwrap_or_else(|| dirs[0].clone());
    std::fs::create_dir_all(&into)
        .with_context(|| format!("{}: cannot create the digest directory", into.display()))?;
    let (entries, failures) = tarjama::write::digest::collect(dirs, &into);
    let written = tarjama::write::digest::write_digest(&into, &entries, &failures, format)?;
    let written: Vec<String> = written.iter().map(|p| p.display().to_string()).collect();
    println!(
        "{} documents, {} failures: {}",
        entries.len(),
        failures.len(),
        written.join(", ")
    );
    Ok(ExitCode::SUCCESS)
}

fn memory_command(command: MemoryCommand) -> anyhow::Result<ExitCode> {
    let path = memory::default_path();
    let store = Memory::open(&path)?;
    match command {
        MemoryCommand::Stats => {
            let stats = store.stats()?;
            println!(
                "{}: {} entries, {:.1} MB",
                path.display(),
                stats.entries,
                stats.bytes as f64 / 1e6
            );
            for (model, n) in stats.models {
                println!("  {n:>8}  {model}");
            }
        }
        MemoryCommand::Clear => {
            let n = store.clear()?;
            println!("{}: {n} entries deleted", path.display());
        }
        MemoryCommand::Export { tmx } => {
            let n = store.export_tmx(&tmx)?;
            println!("{n} translation units written to {}", tmx.display());
        }
        MemoryCommand::Import {
            tmx,
            arabic,
            english,
        } => {
            let (pairs, origin) = match (tmx, arabic, english) {
                (Some(tmx), _, _) => (memory::read_tmx(&tmx)?, tmx),
                (None, Some(arabic), Some(english)) => {
                    (memory::read_aligned(&arabic, &english)?, arabic)
                }
                _ => anyhow::bail!("give a TMX file, or --arabic and --english"),
            };
            let n = store.import(&pairs, &origin.display().to_string())?;
            println!(
                "{n} translation pairs imported into {} from {}",
                path.display(),
                origin.display()
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}
