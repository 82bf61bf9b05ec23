//! `tarjama models`: the known models, whether they are cached, and fetching one.

use std::time::Instant;

use anyhow::Context;

use std::path::Path;

use crate::model::gguf_llm::ARCHITECTURES;
use crate::model::random_gguf::{self, Arch, Shape};
use crate::registry::{self, DEFAULT_MODEL};

/// The table `tarjama models list` prints: the built-in models with their size and
/// cache state, the cache directory, the GGUF families any `--model FILE.gguf` may be,
/// then the translation models known on the hub.
pub fn list() -> String {
    let mut out = String::new();
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
        out.push_str(&format!(
            "{:<30} {:>6.0} MB  {:<12} {}{}\n",
            m.name,
            m.size as f64 / 1e6,
            state,
            m.description,
            default
        ));
    }
    out.push_str(&format!("cache: {}\n", registry::models_dir().display()));
    out.push_str("\nGGUF families (--model FILE.gguf, DIR or hf:OWNER/REPO:FILE.gguf; prompts use the file's own chat template):\n");
    for (arch, models) in ARCHITECTURES {
        out.push_str(&format!("{arch:<10} {models}\n"));
    }
    out.push_str("\ntranslation models on the Hugging Face hub (--model hf:NAME, where the hub is reachable):\n");
    for (name, description) in registry::HUB_MODELS {
        let state = if registry::is_cached_on_hub(name) {
            "cached"
        } else {
            "not fetched"
        };
        out.push_str(&format!("{name:<37} {state:<12} {description}\n"));
    }
    out
}

/// Downloads, assembles and verifies the known model `name` into the cache; returns the
/// line saying where it is.
pub fn fetch(name: &str, show_progress: bool) -> anyhow::Result<String> {
    let m = registry::manifest(name).with_context(|| {
        format!("unknown model `{name}`; run `tarjama models list` for known names")
    })?;
    let started = Instant::now();
    let path = registry::fetch(&m, show_progress)?;
    Ok(format!(
        "{} ready at {} ({:.1} s)",
        m.name,
        path.display(),
        started.elapsed().as_secs_f64()
    ))
}

/// Writes a GGUF with random weights in the shape `shape` names (see
/// [`random_gguf::Shape::real`], or `tiny-ARCH`) to `out`; returns the line saying what
/// was written.
pub fn write_random(
    shape: &str,
    out: &Path,
    seed: u64,
    context: Option<usize>,
) -> anyhow::Result<String> {
    let (arch, mut dims) = match shape.strip_prefix("tiny-") {
        Some(arch) => (Arch::from_name(arch), Shape::tiny()),
        None => match Shape::real(shape) {
            Some((arch, dims)) => (Some(arch), dims),
            None => (None, Shape::tiny()),
        },
    };
    let Some(arch) = arch else {
        let tiny: Vec<String> = Arch::ALL
            .iter()
            .map(|a| format!("tiny-{}", a.name()))
            .collect();
        anyhow::bail!(
            "unknown shape `{shape}`; known: {}, {}",
            Shape::REAL.join(", "),
            tiny.join(", ")
        );
    };
    if let Some(context) = context {
        anyhow::ensure!(context > 0, "--context must be at least 1");
        dims.context = context;
    }
    let started = Instant::now();
    let mut bytes = std::io::Cursor::new(Vec::new());
    random_gguf::write(arch, &dims, seed, &mut bytes)?;
    crate::write::write_atomic(out, bytes.get_ref())
        .with_context(|| format!("{}: cannot write the model", out.display()))?;
    Ok(format!(
        "{}: random {} model, {} layers, hidden {}, vocabulary {}, context {}, {:.0} MB ({:.1} s)",
        out.display(),
        arch.name(),
        dims.layers,
        dims.hidden,
        dims.vocab,
        dims.context,
        bytes.get_ref().len() as f64 / 1e6,
        started.elapsed().as_secs_f64()
    ))
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_random_model_takes_the_context_asked_for() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tiny.gguf");
        let line = super::write_random("tiny-qwen2", &path, 1, Some(4096)).unwrap();
        assert!(line.contains("context 4096"), "{line}");
        let mut file = std::fs::File::open(&path).unwrap();
        let content = candle_core::quantized::gguf_file::Content::read(&mut file).unwrap();
        let context = content.metadata["qwen2.context_length"].to_u32().unwrap();
        assert_eq!(context, 4096);
        assert!(super::write_random("tiny-qwen2", &path, 1, Some(0)).is_err());
    }

    #[test]
    fn the_list_names_the_default_model_and_the_cache() {
        let list = super::list();
        assert!(list.contains(super::DEFAULT_MODEL), "{list}");
        assert!(list.contains("(default)"), "{list}");
        assert!(list.contains("cache: "), "{list}");
        for (arch, _) in super::ARCHITECTURES {
            assert!(
                list.contains(&format!("\n{arch} ")),
                "{arch} missing from {list}"
            );
        }
    }
}
