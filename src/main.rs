//! The `tarjama` command line. All the work happens in the library; this file only
//! parses flags, sets up logging, and maps results to exit codes.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};

use tarjama::glossary::Glossary;
use tarjama::job::{self, JobOptions};
use tarjama::registry::{self, FetchPolicy, DEFAULT_MODEL};
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
tarjama models fetch                         download the default model ahead of time"
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
cat release.txt | tarjama translate - --out out\n\n\
Outputs per document NAME (from the input's file name): NAME.html, NAME.md, NAME.en.txt, NAME.json;\n\
per run: index.html and digest.md. Documents whose outputs are up to date are skipped.\n\
Exit status: 0 all documents succeeded, 1 some failed (the others still complete), 2 usage error.")]
    Translate(TranslateArgs),
    /// List or fetch known models.
    #[command(subcommand)]
    Models(ModelsCommand),
}

#[derive(Args)]
struct TranslateArgs {
    /// Files or directories (recursed for .txt and .md); `-` reads one document from stdin.
    #[arg(required = true, value_name = "INPUT")]
    inputs: Vec<String>,
    /// Directory for the outputs (created if missing).
    #[arg(short, long, value_name = "DIR")]
    out: PathBuf,
    /// A known model name (see `tarjama models list`), a path to a Qwen2/2.5/3 instruct
    /// .gguf file, or hf:OWNER/REPO[:FILE.gguf] fetched from the Hugging Face hub.
    #[arg(short, long, default_value = DEFAULT_MODEL, value_name = "MODEL")]
    model: String,
    /// Output formats, comma-separated: html, md, txt, json.
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
    /// Redo documents whose outputs are already up to date.
    #[arg(long)]
    force: bool,
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
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Some(n) = cli.global.threads.filter(|n| *n > 0) {
        // candle sizes its CPU thread pools from this variable; set before any pool exists.
        std::env::set_var("RAYON_NUM_THREADS", n.to_string());
    }
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

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Translate(args) => translate(args, &cli.global),
        Command::Models(ModelsCommand::List) => {
            for m in registry::manifests() {
                let state = if registry::is_cached(&m) {
                    "cached"
                } else {
                    "not fetched"
                };
                let default = if m.name == DEFAULT_MODEL {
                    " (default)"
                } else {
                    ""
                };
                println!(
                    "{:<30} {:>6.0} MB  {:<12} {}{}",
                    m.name,
                    m.size as f64 / 1e6,
                    state,
                    m.description,
                    default
                );
            }
            println!("cache: {}", registry::models_dir().display());
            Ok(ExitCode::SUCCESS)
        }
        Command::Models(ModelsCommand::Fetch { name }) => {
            let m = registry::manifest(&name).with_context(|| {
                format!("unknown model `{name}`; run `tarjama models list` for known names")
            })?;
            let started = std::time::Instant::now();
            let path = registry::fetch(&m, std::io::stderr().is_terminal() && !cli.global.quiet)?;
            println!(
                "{} ready at {} ({:.1} s)",
                m.name,
                path.display(),
                started.elapsed().as_secs_f64()
            );
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn translate(args: TranslateArgs, g: &GlobalArgs) -> anyhow::Result<ExitCode> {
    let mut formats = args.format;
    formats.sort_by_key(|f| *f as u8);
    formats.dedup();
    let glossary = match (&args.glossary, args.no_glossary) {
        (_, true) => Glossary::default(),
        (Some(path), false) => Glossary::from_file(path)?,
        (None, false) => Glossary::default_glossary(),
    };
    let opts = JobOptions {
        inputs: args.inputs,
        out_dir: args.out,
        model: args.model,
        formats,
        summary: !args.no_summary,
        force: args.force,
        max_new_tokens: args.max_new_tokens as usize,
        max_segment_tokens: args.max_segment_tokens as usize,
        glossary,
        fetch: if args.offline {
            FetchPolicy::Forbid
        } else {
            FetchPolicy::Allow
        },
        progress_bar: !g.quiet && std::io::stderr().is_terminal(),
    };
    let report = job::run(&opts)?;
    println!("{}", report.render());
    Ok(if report.failed() > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}
