//! Which documents a run covers, and the output name each one gets.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

/// Where a document's bytes come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    File(PathBuf),
    Stdin,
}

/// One document of the run, with its unique output stem.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Input {
    pub source: Source,
    /// As shown to the user and recorded in outputs.
    pub display: String,
    /// `NAME` in `NAME.html`: unique within the run.
    pub name: String,
    /// The path below the input root (the directory given, or the file name of a file
    /// given): the same on every machine that has the same inputs, wherever mounted.
    pub relative: String,
}

/// Which of `count` shards a document belongs to, from a stable hash of its relative
/// path: machines given the same inputs split them without talking to each other.
pub fn shard_of(relative: &str, count: usize) -> usize {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(relative.as_bytes());
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    (u64::from_be_bytes(first) % count.max(1) as u64) as usize
}

/// `.txt, .md, ...`: what a directory is searched for.
fn readable_extensions() -> String {
    crate::read::extensions()
        .map(|e| format!(".{e}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// An input argument that yields no document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InputProblem {
    pub path: String,
    pub error: String,
}

/// Expands the INPUT arguments: files as given, directories recursed (sorted, only the
/// extensions some reader takes), `-` for stdin. Output names come from file stems; a stem that repeats is
/// made unique with its parent directories, then a counter, so nothing is overwritten.
pub fn collect(args: &[String]) -> (Vec<Input>, Vec<InputProblem>) {
    let mut found: Vec<(Source, String, String)> = Vec::new();
    let mut problems = Vec::new();
    for arg in args {
        if arg == "-" {
            found.push((Source::Stdin, "-".to_string(), "-".to_string()));
            continue;
        }
        let path = PathBuf::from(arg);
        match std::fs::metadata(&path) {
            Err(_) => problems.push(InputProblem {
                path: arg.clone(),
                error: format!("{arg}: no such file or directory; check the path"),
            }),
            Ok(m) if m.is_dir() => {
                let mut files = Vec::new();
                walk(&path, &mut files);
                files.sort();
                if files.is_empty() {
                    problems.push(InputProblem {
                        path: arg.clone(),
                        error: format!(
                            "{arg}: directory holds no documents tarjama reads ({}); point tarjama at the files to translate",
                            readable_extensions()
                        ),
                    });
                }
                for f in files {
                    let display = f.display().to_string();
                    let relative = f
                        .strip_prefix(&path)
                        .unwrap_or(&f)
                        .components()
                        .map(|c| c.as_os_str().to_string_lossy().into_owned())
                        .collect::<Vec<_>>()
                        .join("/");
                    found.push((Source::File(f), display, relative));
                }
            }
            Ok(_) => {
                let relative = path
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_else(|| arg.clone());
                found.push((Source::File(path), arg.clone(), relative));
            }
        }
    }
    let mut seen_files = HashSet::new();
    found.retain(|(source, _, _)| match source {
        Source::File(p) => {
            seen_files.insert(std::fs::canonicalize(p).unwrap_or_else(|_| p.clone()))
        }
        Source::Stdin => true,
    });
    let sources: Vec<(Source, String)> = found
        .iter()
        .map(|(source, display, _)| (source.clone(), display.clone()))
        .collect();
    let names = unique_names(&sources);
    let inputs = found
        .into_iter()
        .zip(names)
        .map(|((source, display, relative), name)| Input {
            source,
            display,
            name,
            relative,
        })
        .collect();
    (inputs, problems)
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let hidden = entry.file_name().to_string_lossy().starts_with('.');
        if hidden {
            continue;
        }
        if path.is_dir() {
            walk(&path, out);
        } else if path.extension().and_then(|e| e.to_str()).is_some_and(|e| {
            let e = e.to_ascii_lowercase();
            crate::read::extensions().any(|known| known == e)
        }) {
            out.push(path);
        }
    }
}

/// Candidate names for a path, from the plain stem to ever longer parent-qualified ones.
fn candidates(source: &Source) -> Vec<String> {
    let Source::File(path) = source else {
        return vec!["stdin".to_string()];
    };
    let stem = path
        .file_stem()
        .map(|s| sanitize(&s.to_string_lossy()))
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "document".to_string());
    let mut names = vec![stem.clone()];
    let mut qualified = stem;
    for parent in path
        .parent()
        .into_iter()
        .flat_map(|p| p.components().rev())
        .filter_map(|c| match c {
            std::path::Component::Normal(s) => Some(sanitize(&s.to_string_lossy())),
            _ => None,
        })
    {
        qualified = format!("{parent}__{qualified}");
        names.push(qualified.clone());
    }
    names
}

/// Keeps names safe as file names and URLs on every platform.
fn sanitize(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '_'
            }
        })
        .collect::<String>()
        .trim_matches('.')
        .to_string()
}

fn unique_names(found: &[(Source, String)]) -> Vec<String> {
    let all: Vec<Vec<String>> = found.iter().map(|(s, _)| candidates(s)).collect();
    let mut stem_count = std::collections::HashMap::new();
    for c in &all {
        *stem_count.entry(c[0].clone()).or_insert(0usize) += 1;
    }
    let mut used = HashSet::new();
    all.into_iter()
        .map(|c| {
            let preferred = if stem_count[&c[0]] > 1 {
                // Shortest parent-qualified name not yet taken.
                c.iter().skip(1).find(|n| !used.contains(*n)).cloned()
            } else {
                None
            };
            let mut name = preferred.unwrap_or_else(|| c[0].clone());
            let base = name.clone();
            let mut n = 2;
            while used.contains(&name) {
                name = format!("{base}-{n}");
                n += 1;
            }
            used.insert(name.clone());
            name
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn directories_are_recursed_and_same_stems_get_distinct_names() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir_all(root.join("a")).unwrap();
        std::fs::create_dir_all(root.join("b")).unwrap();
        std::fs::write(root.join("a/news.txt"), "x").unwrap();
        std::fs::write(root.join("b/news.md"), "x").unwrap();
        std::fs::write(root.join("b/photo.png"), "x").unwrap();
        std::fs::write(root.join("b/notes.odt"), "x").unwrap();
        std::fs::write(root.join("top.txt"), "x").unwrap();
        let (inputs, problems) = collect(&[root.display().to_string()]);
        assert!(problems.is_empty());
        let names: Vec<&str> = inputs.iter().map(|i| i.name.as_str()).collect();
        // a scan is read (by OCR), a format no reader takes is not picked up
        assert_eq!(names, vec!["a__news", "b__news", "photo", "top"]);
    }

    #[test]
    fn missing_paths_and_empty_directories_are_reported() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nope.txt").display().to_string();
        let (inputs, problems) = collect(&[missing.clone(), dir.path().display().to_string()]);
        assert!(inputs.is_empty());
        assert_eq!(problems.len(), 2);
        assert!(problems[0].error.contains(&missing));
        assert!(problems[1].error.contains("no documents tarjama reads ("));
        assert!(problems[1].error.contains(".txt"));
    }

    #[test]
    fn the_same_file_twice_is_translated_once_and_stdin_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("x.txt");
        std::fs::write(&f, "x").unwrap();
        let arg = f.display().to_string();
        let (inputs, _) = collect(&[arg.clone(), arg, "-".into()]);
        assert_eq!(inputs.len(), 2);
        assert_eq!(inputs[1].name, "stdin");
    }
}
