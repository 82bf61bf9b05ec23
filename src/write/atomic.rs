//! Replace a file so that readers (and a crash) see the old content or the new, never half.

use std::io::{self, Write};
use std::path::Path;

/// Writes `bytes` to `path` via a temporary file in the same directory, synced to disk
/// and then renamed over `path`. On failure the target is untouched and the temporary
/// file is removed (`NamedTempFile` deletes itself when dropped, also inside
/// `PersistError`).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    // Same directory, so the final rename never crosses a filesystem.
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let mut tmp = temp_builder().tempfile_in(dir)?;
    tmp.write_all(bytes)?;
    tmp.as_file().sync_all()?;
    tmp.persist(path).map_err(|e| e.error)?;
    sync_dir(dir);
    Ok(())
}

fn temp_builder() -> tempfile::Builder<'static, 'static> {
    let mut builder = tempfile::Builder::new();
    // Hidden and recognizable, in case a power cut leaves one behind.
    builder.prefix(".tarjama-").suffix(".tmp");
    // Temp files are created 0600; outputs are ordinary documents, so ask for the
    // usual 0666 and let the umask decide, as a plain `File::create` would.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        builder.permissions(std::fs::Permissions::from_mode(0o666));
    }
    builder
}

/// Makes the rename itself durable. Best effort: the file is already complete, and
/// some platforms and filesystems cannot sync a directory.
fn sync_dir(dir: &Path) {
    #[cfg(unix)]
    if let Err(e) = std::fs::File::open(dir).and_then(|d| d.sync_all()) {
        tracing::debug!("could not sync directory {}: {e}", dir.display());
    }
    #[cfg(not(unix))]
    let _ = dir;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::write::fixture::entries;

    #[test]
    fn creates_then_fully_replaces() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.html");
        write_atomic(
            &path,
            "a much longer first version\n".repeat(100).as_bytes(),
        )
        .unwrap();
        write_atomic(&path, "نص قصير".as_bytes()).unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "نص قصير");
        assert_eq!(entries(dir.path()), ["out.html"], "no temp files left");
    }

    #[test]
    fn missing_directory_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("missing").join("out.html");
        let err = write_atomic(&path, b"x").unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::NotFound);
        assert!(entries(dir.path()).is_empty());
    }

    #[test]
    fn parent_that_is_a_file_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("plain");
        std::fs::write(&file, b"keep").unwrap();
        assert!(write_atomic(&file.join("out.html"), b"x").is_err());
        assert_eq!(entries(dir.path()), ["plain"]);
        assert_eq!(std::fs::read(&file).unwrap(), b"keep");
    }

    #[test]
    fn failed_rename_removes_the_temp_file() {
        // Renaming a file over a non-empty directory fails after the temp file exists.
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("out.html");
        std::fs::create_dir(&target).unwrap();
        std::fs::write(target.join("inside"), b"x").unwrap();
        assert!(write_atomic(&target, b"new").is_err());
        assert_eq!(entries(dir.path()), ["out.html"]);
        assert!(target.is_dir());
    }

    #[cfg(unix)]
    #[test]
    fn output_permissions_follow_the_umask() {
        use std::os::unix::fs::PermissionsExt;
        // The process umask cannot be read without changing it; Linux reports it here.
        let Some(umask) = std::fs::read_to_string("/proc/self/status")
            .ok()
            .and_then(|s| {
                s.lines()
                    .find_map(|l| l.strip_prefix("Umask:"))
                    .and_then(|v| u32::from_str_radix(v.trim(), 8).ok())
            })
        else {
            return;
        };
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.md");
        write_atomic(&path, b"x").unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o666 & !umask, "mode {mode:o}, umask {umask:o}");
    }
}
