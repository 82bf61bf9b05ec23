//! `tarjama bench`: how fast the model translates the segments of a fixed set of
//! documents, at several batch sizes, and with `--whole-job` how fast the job a user runs
//! is beside it.
//!
//! Every segment is translated once, greedily, with the translation prompt of
//! `translate` (no retries, no summaries), so the figures measure the engine and can be
//! set beside another engine given the same requests: [`export_requests`] writes them,
//! token for token, for `scripts/bench-llamacpp.sh`. The whole job ([`run_job`]) is
//! `translate` itself on the same documents (checks, retries, repairs, summaries and
//! the written outputs; no translation memory), timed from the loaded model to the
//! written digest. Each measurement runs in a process of its own, so its peak memory
//! and model load time are its own.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Context;
use serde::{Deserialize, Serialize};

use crate::engine;
use crate::glossary::Term;
use crate::inputs::{self, Source};
use crate::job;
use crate::job::{JobSettings, StageSeconds};
use crate::load::{self, count_arabic_words};
use crate::model::ChatModel;
use crate::settings::RunSettings;
use crate::translate::{Request, Translator};
use crate::write::Format;

/// What to translate and with which model.
#[derive(Debug, Clone)]
pub struct BenchOptions {
    /// The model and how it translates, as `translate` resolves them.
    pub run: RunSettings,
    pub inputs: Vec<String>,
    /// Only the first N segments.
    pub limit: Option<usize>,
}

/// The figures of one run; `scripts/bench_llamacpp.py` prints the same for llama.cpp.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BenchRow {
    pub engine: String,
    pub batch: usize,
    pub requests: usize,
    /// Prompt tokens computed (a shared prefix once).
    pub prompt_tokens: usize,
    pub prompt_tokens_per_s: f64,
    pub generated_tokens: usize,
    /// Tokens decoded per second of decoding (prompt time excluded).
    pub generated_tokens_per_s: f64,
    /// Wall time of all requests, prompts and decoding together.
    pub wall_s: f64,
    pub arabic_words: usize,
    pub words_per_s: f64,
    pub peak_rss_mb: f64,
    pub load_s: f64,
    /// Threads computing the model (candle's barrier pool and the calling thread).
    pub threads: usize,
    /// For the whole job: its seconds translating (checks, retries and repairs
    /// included) and summarizing; the rest of `wall_s` is segmenting and writing.
    #[serde(default)]
    pub stages: Option<StageSeconds>,
}

/// The engine names of the two kinds of row.
const TRANSLATION_ONLY: &str = "tarjama";
const WHOLE_JOB: &str = "tarjama job";

/// The formats `translate` writes by default.
const JOB_FORMATS: [Format; 4] = [Format::Html, Format::Markdown, Format::Text, Format::Json];

/// One translated segment, for comparing outputs across batch sizes and engines.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BenchOutput {
    pub id: String,
    /// The Arabic segment, so other engines can be given the same text.
    #[serde(default)]
    pub source: String,
    pub text: String,
}

/// One segment of the benchmark set.
struct Segment {
    id: String,
    source: String,
}

/// The segments of the input documents, in document order, as `translate` cuts them.
fn segments(opts: &BenchOptions, translator: &dyn Translator) -> anyhow::Result<Vec<Segment>> {
    let (found, problems) = inputs::collect(&opts.inputs);
    if let Some(p) = problems.first() {
        anyhow::bail!("{}", p.error);
    }
    let mut segments = Vec::new();
    for input in found {
        let Source::File(path) = &input.source else {
            anyhow::bail!("tarjama bench reads files, not stdin");
        };
        let doc = load::load_file(path)?;
        let segmented = job::segment_document(&doc, opts.run.max_segment_tokens, translator);
        for source in segmented.segments.into_iter().flatten() {
            segments.push(Segment {
                id: format!("{}#{}", input.display, segments.len()),
                source,
            });
        }
    }
    if let Some(limit) = opts.limit {
        segments.truncate(limit);
    }
    if segments.is_empty() {
        anyhow::bail!("no Arabic segment found in {:?}", opts.inputs);
    }
    Ok(segments)
}

fn load(opts: &BenchOptions) -> anyhow::Result<(Box<dyn Translator>, f64)> {
    let started = Instant::now();
    let engine = engine::load(&opts.run)?;
    Ok((engine.translator, started.elapsed().as_secs_f64()))
}

/// Translates every segment once at the options' batch size, in this process.
pub fn run_one(opts: &BenchOptions) -> anyhow::Result<(BenchRow, Vec<BenchOutput>)> {
    let (mut translator, load_s) = load(opts)?;
    let segments = segments(opts, translator.as_ref())?;
    let terms: Vec<Vec<&Term>> = segments
        .iter()
        .map(|s| opts.run.glossary.find(&s.source))
        .collect();
    let requests: Vec<Request> = segments
        .iter()
        .zip(&terms)
        .map(|(s, terms)| Request::new(&s.source, terms))
        .collect();
    let started = Instant::now();
    let results = translator.translate_batch(&requests, &mut |_, _| {});
    let wall_s = started.elapsed().as_secs_f64();
    let mut outputs = Vec::with_capacity(segments.len());
    let mut generated_tokens = 0;
    for (segment, result) in segments.iter().zip(results) {
        let t = result.map_err(|e| anyhow::anyhow!("{}: {e}", segment.id))?;
        generated_tokens += t.generated_tokens;
        outputs.push(BenchOutput {
            id: segment.id.clone(),
            source: segment.source.clone(),
            text: t.text,
        });
    }
    let row = Measured {
        requests: segments.len(),
        generated_tokens,
        wall_s,
        arabic_words: segments.iter().map(|s| count_arabic_words(&s.source)).sum(),
        load_s,
        stages: None,
    }
    .row(TRANSLATION_ONLY, translator.as_ref());
    Ok((row, outputs))
}

/// What one measurement counted, before the rates and the process's figures are added.
struct Measured {
    requests: usize,
    generated_tokens: usize,
    wall_s: f64,
    arabic_words: usize,
    load_s: f64,
    stages: Option<StageSeconds>,
}

impl Measured {
    /// The row of `engine`, with `translator`'s batch size and token counts and times.
    fn row(self, engine: &str, translator: &dyn Translator) -> BenchRow {
        let throughput = translator.throughput();
        let per_s = |n: usize, s: f64| if s > 0.0 { n as f64 / s } else { 0.0 };
        BenchRow {
            engine: engine.into(),
            batch: translator.batch_size(),
            requests: self.requests,
            prompt_tokens: throughput.prompt_tokens,
            prompt_tokens_per_s: per_s(throughput.prompt_tokens, throughput.prompt_seconds),
            generated_tokens: self.generated_tokens,
            generated_tokens_per_s: per_s(throughput.generated_tokens, throughput.decode_seconds),
            wall_s: self.wall_s,
            arabic_words: self.arabic_words,
            words_per_s: per_s(self.arabic_words, self.wall_s),
            peak_rss_mb: peak_rss_mb().unwrap_or(0.0),
            load_s: self.load_s,
            threads: threads(),
            stages: self.stages,
        }
    }
}

/// The threads that run the weight products and attention: candle's barrier pool and the
/// calling thread (rayon's pool, which candle's `get_num_threads` reports, has one thread
/// on purpose: see `size_thread_pools` in main.rs).
fn threads() -> usize {
    candle_core::utils::barrier_pool().n_workers() + 1
}

/// Runs `translate` on the options' documents at their batch size, writing into
/// `scratch`, and times it from the loaded model to the written digest. Its outputs are
/// each segment's English, for comparing with the translation-only run.
pub fn run_job(opts: &BenchOptions, scratch: &Path) -> anyhow::Result<BenchRow> {
    let mut run = opts.run.clone();
    // As `translate` does unless told --no-summary.
    run.summary_model
        .get_or_insert_with(|| crate::registry::DEFAULT_MODEL.to_string());
    let job = JobSettings {
        run,
        inputs: opts.inputs.clone(),
        out_dir: scratch.to_path_buf(),
        formats: JOB_FORMATS.to_vec(),
        force: true,
        shard: None,
        progress_bar: false,
        progress_every: std::time::Duration::from_secs(3600),
    };
    let mut plan = job::plan(&job)?;
    let mut engine = engine::load(&job.run)?;
    let load_s = engine.load_seconds.unwrap_or(0.0);
    let started = Instant::now();
    job::execute(&job, &mut plan, &mut engine);
    let report = job::finish(&job, plan)?;
    let wall_s = started.elapsed().as_secs_f64();
    if let Some((name, job::Outcome::Failed { error })) = report
        .outcomes
        .iter()
        .find(|(_, o)| matches!(o, job::Outcome::Failed { .. }))
    {
        anyhow::bail!("{name}: {error}");
    }
    let translator = engine.translator.as_ref();
    Ok(Measured {
        requests: report.done(),
        generated_tokens: translator.throughput().generated_tokens,
        wall_s,
        arabic_words: report.arabic_words(),
        load_s,
        stages: Some(report.stages),
    }
    .row(WHOLE_JOB, translator))
}

/// Writes the benchmark's requests as JSON lines: the exact prompt (text and token ids),
/// the answer's token cap and the stop tokens, so another engine can run the same work.
pub fn export_requests(opts: &BenchOptions, path: &Path) -> anyhow::Result<usize> {
    let (_, translator) = engine::load_llm(&opts.run)?;
    let segments = segments(opts, &translator)?;
    let llm = translator.model();
    let mut out = String::new();
    for segment in &segments {
        let terms = opts.run.glossary.find(&segment.source);
        let (prompt, decoding) = translator.chat_job(&Request::new(&segment.source, &terms))?;
        let (ids, _) = llm.encode_prompt(&prompt)?;
        let line = serde_json::json!({
            "id": segment.id,
            "arabic_words": count_arabic_words(&segment.source),
            "prompt": llm.render_prompt(&prompt)?,
            "prompt_tokens": ids,
            "max_new_tokens": decoding.max_new_tokens.min(llm.context_length().saturating_sub(ids.len())),
            "stop_tokens": llm.stop_ids(),
        });
        out.push_str(&line.to_string());
        out.push('\n');
    }
    crate::write::write_atomic(path, out.as_bytes())?;
    Ok(segments.len())
}

/// Measures every batch size in a fresh process of `exe`, run with `args` (this
/// process's own arguments) and `--single --batch-size N --out DIR`, so that each one's
/// peak memory and load time are its own; with `whole_job`, each batch size's whole job
/// too (`--job`), right after its translation. Returns the table, with each batch size's
/// agreement with batch 1, and each whole job's speed beside its translation's.
pub fn compare_batch_sizes(
    exe: &Path,
    args: &[std::ffi::OsString],
    batch_sizes: &[usize],
    whole_job: bool,
    out: &Path,
) -> anyhow::Result<String> {
    let mut rows = Vec::new();
    let mut reference = None;
    let mut ratios = String::new();
    for &batch in batch_sizes {
        eprintln!("bench: batch size {batch}…");
        run_single(exe, args, batch, false, out)?;
        let (row, outputs) = load_saved(out, TRANSLATION_ONLY, batch)?;
        if batch == 1 {
            reference = Some(outputs.clone());
        }
        let same = reference.as_deref().map(|r| agreement(&outputs, r));
        let translation_words_per_s = row.words_per_s;
        rows.push((row, same));
        if whole_job {
            eprintln!("bench: the whole job at batch size {batch}…");
            run_single(exe, args, batch, true, out)?;
            let (job_row, _) = load_saved(out, WHOLE_JOB, batch)?;
            ratios.push_str(&job_ratio(&job_row, translation_words_per_s));
            rows.push((job_row, None));
        }
    }
    Ok(render(&rows) + &ratios)
}

/// One measurement in a fresh process, saved under `out`.
fn run_single(
    exe: &Path,
    args: &[std::ffi::OsString],
    batch: usize,
    whole_job: bool,
    out: &Path,
) -> anyhow::Result<()> {
    let status = std::process::Command::new(exe)
        .args(args)
        .arg("--single")
        .args(whole_job.then_some("--job"))
        .arg("--batch-size")
        .arg(batch.to_string())
        .arg("--out")
        .arg(out)
        .status()
        .context("cannot run the benchmark process")?;
    if !status.success() {
        let what = if whole_job { "whole job" } else { "benchmark" };
        anyhow::bail!("the {what} at batch size {batch} failed ({status})");
    }
    Ok(())
}

/// The line under the table that sets a whole job beside its translation.
fn job_ratio(job: &BenchRow, translation_words_per_s: f64) -> String {
    let stages = job.stages.unwrap_or_default();
    let ratio = if translation_words_per_s > 0.0 {
        job.words_per_s / translation_words_per_s
    } else {
        0.0
    };
    format!(
        "whole job at batch {}: {:.2} words/s, {ratio:.2} of translation only; \
         {:.1} s translating (checks, retries, repairs), {:.1} s summarizing, {:.1} s the rest\n",
        job.batch,
        job.words_per_s,
        stages.translate,
        stages.summarize,
        job.wall_s - stages.translate - stages.summarize
    )
}

/// The table `tarjama bench` and the llama.cpp script print.
pub fn render(rows: &[(BenchRow, Option<(usize, usize)>)]) -> String {
    let mut out = format!(
        "{:<11}  {:>5}  {:>8}  {:>10}  {:>12}  {:>7}  {:>9}  {:>7}  {:>7}  {:>11}  {:>6}  {}\n",
        "engine",
        "batch",
        "requests",
        "prompt tok",
        "prompt tok/s",
        "gen tok",
        "gen tok/s",
        "wall s",
        "words/s",
        "peak RSS MB",
        "load s",
        "same as batch 1"
    );
    for (r, same) in rows {
        let same = match same {
            Some((same, of)) => format!("{same}/{of}"),
            None => "-".into(),
        };
        out.push_str(&format!(
            "{:<11}  {:>5}  {:>8}  {:>10}  {:>12.1}  {:>7}  {:>9.2}  {:>7.1}  {:>7.2}  {:>11.0}  {:>6.2}  {}\n",
            r.engine,
            r.batch,
            r.requests,
            r.prompt_tokens,
            r.prompt_tokens_per_s,
            r.generated_tokens,
            r.generated_tokens_per_s,
            r.wall_s,
            r.words_per_s,
            r.peak_rss_mb,
            r.load_s,
            same
        ));
    }
    out
}

/// The file name stem of one row's files: `batch-N`, or `job-batch-N` for a whole job.
fn stem(engine: &str, batch: usize) -> String {
    if engine == WHOLE_JOB {
        format!("job-batch-{batch}")
    } else {
        format!("batch-{batch}")
    }
}

/// Writes one row and its outputs where the parent process reads them.
pub fn save(row: &BenchRow, outputs: &[BenchOutput], dir: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir)?;
    let stem = stem(&row.engine, row.batch);
    crate::write::write_atomic(
        &dir.join(format!("{stem}.json")),
        serde_json::to_string_pretty(row)?.as_bytes(),
    )?;
    let mut lines = Vec::new();
    for o in outputs {
        writeln!(lines, "{}", serde_json::to_string(o)?)?;
    }
    crate::write::write_atomic(&dir.join(format!("{stem}.outputs.jsonl")), &lines)?;
    Ok(())
}

/// Reads back what [`save`] wrote for `engine`'s row at `batch`.
pub fn load_saved(
    dir: &Path,
    engine: &str,
    batch: usize,
) -> anyhow::Result<(BenchRow, Vec<BenchOutput>)> {
    let stem = stem(engine, batch);
    let row_path: PathBuf = dir.join(format!("{stem}.json"));
    let row: BenchRow = serde_json::from_slice(&std::fs::read(&row_path)?)?;
    let outputs = std::fs::read_to_string(dir.join(format!("{stem}.outputs.jsonl")))?
        .lines()
        .map(serde_json::from_str)
        .collect::<Result<Vec<BenchOutput>, _>>()?;
    Ok((row, outputs))
}

/// Outputs identical to the reference's, and how many were compared.
pub fn agreement(outputs: &[BenchOutput], reference: &[BenchOutput]) -> (usize, usize) {
    let same = outputs
        .iter()
        .zip(reference)
        .filter(|(a, b)| a.id == b.id && a.text == b.text)
        .count();
    (same, reference.len())
}

/// The process's peak resident memory, from the kernel's own high-water mark.
fn peak_rss_mb() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn output(id: &str, text: &str) -> BenchOutput {
        BenchOutput {
            id: id.into(),
            source: String::new(),
            text: text.into(),
        }
    }

    #[test]
    fn agreement_counts_identical_outputs_of_the_same_segment() {
        let reference = [output("a#0", "One."), output("a#1", "Two.")];
        assert_eq!(agreement(&reference, &reference), (2, 2));
        let other = [output("a#0", "One."), output("a#1", "Too.")];
        assert_eq!(agreement(&other, &reference), (1, 2));
    }

    #[test]
    fn saved_rows_read_back_and_render() {
        let dir = tempfile::tempdir().unwrap();
        let row = BenchRow {
            engine: "tarjama".into(),
            batch: 4,
            requests: 2,
            prompt_tokens: 300,
            prompt_tokens_per_s: 150.0,
            generated_tokens: 40,
            generated_tokens_per_s: 20.0,
            wall_s: 4.0,
            arabic_words: 30,
            words_per_s: 7.5,
            peak_rss_mb: 1500.0,
            load_s: 0.8,
            threads: 2,
            stages: None,
        };
        save(&row, &[output("a#0", "One.")], dir.path()).unwrap();
        let (back, outputs) = load_saved(dir.path(), TRANSLATION_ONLY, 4).unwrap();
        assert_eq!(back.prompt_tokens, 300);
        assert_eq!(outputs[0].text, "One.");
        let table = render(&[(back, Some((1, 1)))]);
        assert!(table.contains("tarjama"), "{table}");
        assert!(table.contains("1/1"), "{table}");
        assert!(peak_rss_mb().is_some_and(|mb| mb > 0.0));
    }

    #[test]
    fn a_whole_job_is_saved_apart_and_set_beside_its_translation() {
        let dir = tempfile::tempdir().unwrap();
        let row = BenchRow {
            engine: WHOLE_JOB.into(),
            batch: 8,
            requests: 5,
            prompt_tokens: 9000,
            prompt_tokens_per_s: 150.0,
            generated_tokens: 3000,
            generated_tokens_per_s: 20.0,
            wall_s: 400.0,
            arabic_words: 2800,
            words_per_s: 7.0,
            peak_rss_mb: 1500.0,
            load_s: 0.8,
            threads: 2,
            stages: Some(StageSeconds {
                translate: 300.0,
                summarize: 90.0,
            }),
        };
        save(&row, &[], dir.path()).unwrap();
        assert!(dir.path().join("job-batch-8.json").is_file());
        assert!(load_saved(dir.path(), TRANSLATION_ONLY, 8).is_err());
        let (back, _) = load_saved(dir.path(), WHOLE_JOB, 8).unwrap();
        let line = job_ratio(&back, 14.0);
        assert_eq!(
            line,
            "whole job at batch 8: 7.00 words/s, 0.50 of translation only; 300.0 s translating \
             (checks, retries, repairs), 90.0 s summarizing, 10.0 s the rest\n"
        );
    }
}
