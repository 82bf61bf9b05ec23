//! Translation memory: every checked translation, kept in an embedded SQLite database and
//! found again by its normalized source segment together with everything that shapes a
//! translation (the model file, prompt and decoding settings, the glossary).
//!
//! Nightly feeds repeat themselves (republished releases, boilerplate paragraphs), and a
//! run that dies part-way must not start from zero: `translate` looks every segment up
//! before calling the model and stores each one the moment it is settled. The database
//! is in WAL mode with a generous busy timeout, so several runs on one machine can share
//! it; each store is its own transaction, so a killed run loses only segments in flight.
//!
//! The memory also serves close matches ([`fuzzy`]): with `--memory-examples`, the
//! nearest stored pair of a segment is shown to the model as a worked example. Pairs
//! imported from TMX or aligned files ([`tmx`]) serve only that way.

pub mod fuzzy;
pub mod tmx;

use std::path::{Path, PathBuf};

use rusqlite::{params, Connection, OptionalExtension};
use sha2::{Digest, Sha256};

use crate::check::Warning;
use crate::translate::CheckedTranslation;

#[derive(Debug, thiserror::Error)]
pub enum MemoryError {
    #[error("{path}: translation memory unusable ({reason}); run `tarjama memory clear`, delete the file, or pass --no-memory")]
    Database { path: PathBuf, reason: String },
    #[error("{path}: cannot write ({reason}); choose another file")]
    Export { path: PathBuf, reason: String },
    #[error("{path}: cannot import ({reason})")]
    Import { path: PathBuf, reason: String },
}

/// The pairs of a TMX file, for [`Memory::import`].
pub fn read_tmx(path: &Path) -> Result<Vec<(String, String)>, MemoryError> {
    let err = |reason: String| MemoryError::Import {
        path: path.to_path_buf(),
        reason,
    };
    let bytes = std::fs::read(path).map_err(|e| err(e.to_string()))?;
    let text = String::from_utf8(bytes).map_err(|_| err("not UTF-8 text".into()))?;
    let pairs = tmx::read(&text).map_err(err)?;
    if pairs.is_empty() {
        return Err(err(
            "no unit has both an Arabic and an English variant".into()
        ));
    }
    Ok(pairs)
}

/// The pairs of two line-aligned files, for [`Memory::import`].
pub fn read_aligned(arabic: &Path, english: &Path) -> Result<Vec<(String, String)>, MemoryError> {
    tmx::read_aligned(arabic, english).map_err(|reason| MemoryError::Import {
        path: arabic.to_path_buf(),
        reason,
    })
}

/// The fingerprint imported pairs are filed under: no run's settings produce it, so they
/// are never taken as a run's own translations, only offered as examples.
const IMPORTED: &str = "imported";

/// The memory's file: `$TARJAMA_MEMORY`, else `memory.sqlite` in the tarjama home.
pub fn default_path() -> PathBuf {
    match std::env::var_os("TARJAMA_MEMORY") {
        Some(path) if !path.is_empty() => PathBuf::from(path),
        _ => crate::registry::home_dir().join("memory.sqlite"),
    }
}

/// Everything besides the source text that decides a translation, as one fingerprint.
/// Two runs share memory entries only when their fingerprints are equal.
pub fn fingerprint(parts: &[(&str, String)]) -> String {
    let mut h = Sha256::new();
    for (name, value) in parts {
        h.update(name.as_bytes());
        h.update([0]);
        h.update(value.as_bytes());
        h.update([1]);
    }
    hex::encode(h.finalize())
}

/// The form a source segment is stored and looked up under: whitespace runs folded.
pub fn normalize_source(source: &str) -> String {
    source.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn key(fingerprint: &str, source: &str) -> String {
    let mut h = Sha256::new();
    h.update(fingerprint.as_bytes());
    h.update([0]);
    h.update(normalize_source(source).as_bytes());
    hex::encode(h.finalize())
}

/// Memories written before confidence existed gain its column (empty for their rows).
fn add_signals_column(conn: &Connection) -> rusqlite::Result<()> {
    let has = conn
        .prepare("SELECT 1 FROM pragma_table_info('translations') WHERE name = 'signals'")?
        .exists([])?;
    if !has {
        conn.execute_batch("ALTER TABLE translations ADD COLUMN signals TEXT;")?;
    }
    Ok(())
}

/// What `tarjama memory stats` shows.
#[derive(Debug, Clone, PartialEq)]
pub struct Stats {
    pub entries: usize,
    /// (model, entries), most entries first.
    pub models: Vec<(String, usize)>,
    pub bytes: u64,
}

pub struct Memory {
    conn: Connection,
    path: PathBuf,
}

impl Memory {
    /// Opens (creating if needed) the memory at `path`.
    pub fn open(path: &Path) -> Result<Self, MemoryError> {
        let err = |e: &dyn std::fmt::Display| MemoryError::Database {
            path: path.to_path_buf(),
            reason: e.to_string(),
        };
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| err(&e))?;
        }
        let conn = Connection::open(path).map_err(|e| err(&e))?;
        // Concurrent runs wait for each other's short write transactions.
        conn.busy_timeout(std::time::Duration::from_secs(60))
            .map_err(|e| err(&e))?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(|e| err(&e))?;
        // In WAL mode, NORMAL keeps every committed transaction through a killed
        // process; only a power cut can lose the last few.
        conn.pragma_update(None, "synchronous", "NORMAL")
            .map_err(|e| err(&e))?;
        conn.execute_batch(
            "CREATE TABLE IF NOT EXISTS translations (
                key TEXT PRIMARY KEY,
                fingerprint TEXT NOT NULL,
                model TEXT NOT NULL,
                source TEXT NOT NULL,
                translation TEXT NOT NULL,
                warnings TEXT NOT NULL,
                attempts INTEGER NOT NULL,
                created TEXT NOT NULL,
                signals TEXT
            );",
        )
        .map_err(|e| err(&e))?;
        add_signals_column(&conn).map_err(|e| err(&e))?;
        Ok(Self {
            conn,
            path: path.to_path_buf(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn err(&self, e: impl std::fmt::Display) -> MemoryError {
        MemoryError::Database {
            path: self.path.clone(),
            reason: e.to_string(),
        }
    }

    /// The stored translation of `source` under `fingerprint`, if any. A hit reports no
    /// generated tokens: none were generated for it this time.
    pub fn lookup(
        &self,
        fingerprint: &str,
        source: &str,
    ) -> Result<Option<CheckedTranslation>, MemoryError> {
        let row = self
            .conn
            .query_row(
                "SELECT translation, warnings, attempts, signals FROM translations
                 WHERE key = ?1",
                params![key(fingerprint, source)],
                |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, i64>(2)?,
                        r.get::<_, Option<String>>(3)?,
                    ))
                },
            )
            .optional()
            .map_err(|e| self.err(e))?;
        let Some((text, warnings, attempts, signals)) = row else {
            return Ok(None);
        };
        let warnings: Vec<Warning> = serde_json::from_str(&warnings).map_err(|e| self.err(e))?;
        let signals = signals
            .map(|s| serde_json::from_str(&s))
            .transpose()
            .map_err(|e| self.err(e))?;
        Ok(Some(CheckedTranslation {
            text,
            warnings,
            attempts: attempts.max(0) as usize,
            generated_tokens: 0,
            signals,
        }))
    }

    /// Stores `translation` of `source` (one transaction, replacing an older entry).
    pub fn store(
        &self,
        fingerprint: &str,
        model: &str,
        source: &str,
        translation: &CheckedTranslation,
    ) -> Result<(), MemoryError> {
        let warnings = serde_json::to_string(&translation.warnings).map_err(|e| self.err(e))?;
        let signals = translation
            .signals
            .map(|s| serde_json::to_string(&s))
            .transpose()
            .map_err(|e| self.err(e))?;
        self.conn
            .execute(
                "INSERT OR REPLACE INTO translations
                 (key, fingerprint, model, source, translation, warnings, attempts, created,
                  signals)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, strftime('%Y%m%dT%H%M%SZ', 'now'), ?8)",
                params![
                    key(fingerprint, source),
                    fingerprint,
                    model,
                    normalize_source(source),
                    translation.text,
                    warnings,
                    translation.attempts as i64,
                    signals,
                ],
            )
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    pub fn stats(&self) -> Result<Stats, MemoryError> {
        let entries: i64 = self
            .conn
            .query_row("SELECT COUNT(*) FROM translations", [], |r| r.get(0))
            .map_err(|e| self.err(e))?;
        let mut stmt = self
            .conn
            .prepare(
                "SELECT model, COUNT(*) FROM translations GROUP BY model
                 ORDER BY COUNT(*) DESC, model",
            )
            .map_err(|e| self.err(e))?;
        let models = stmt
            .query_map([], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)? as usize))
            })
            .and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
            .map_err(|e| self.err(e))?;
        let bytes = ["", "-wal"]
            .iter()
            .filter_map(|suffix| {
                let mut p = self.path.clone().into_os_string();
                p.push(suffix);
                std::fs::metadata(PathBuf::from(p)).ok()
            })
            .map(|m| m.len())
            .sum();
        Ok(Stats {
            entries: entries as usize,
            models,
            bytes,
        })
    }

    /// Deletes every entry; returns how many there were.
    pub fn clear(&self) -> Result<usize, MemoryError> {
        let n = self
            .conn
            .execute("DELETE FROM translations", [])
            .map_err(|e| self.err(e))?;
        self.conn.execute_batch("VACUUM").map_err(|e| self.err(e))?;
        Ok(n)
    }

    /// Writes every entry as TMX 1.4 (Arabic source, English target), the exchange format
    /// translation tools import; returns the number of units.
    pub fn export_tmx(&self, out: &Path) -> Result<usize, MemoryError> {
        let mut stmt = self
            .conn
            .prepare("SELECT source, translation, model, created FROM translations ORDER BY source, model")
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map([], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, String>(3)?,
                ))
            })
            .and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
            .map_err(|e| self.err(e))?;
        let units: Vec<tmx::Unit> = rows
            .iter()
            .map(|(source, translation, model, created)| tmx::Unit {
                source,
                translation,
                model,
                created,
            })
            .collect();
        let xml = tmx::write(&units);
        crate::write::write_atomic(out, xml.as_bytes()).map_err(|e| MemoryError::Export {
            path: out.to_path_buf(),
            reason: e.to_string(),
        })?;
        Ok(rows.len())
    }

    /// Files `pairs` (Arabic, English), read from `origin`, as approved translations to
    /// offer as examples; one transaction. Returns how many were stored.
    pub fn import(&self, pairs: &[(String, String)], origin: &str) -> Result<usize, MemoryError> {
        let tx = self.conn.unchecked_transaction().map_err(|e| self.err(e))?;
        let model = format!("imported from {origin}");
        for (source, translation) in pairs {
            tx.execute(
                "INSERT OR REPLACE INTO translations
                 (key, fingerprint, model, source, translation, warnings, attempts, created)
                 VALUES (?1, ?2, ?3, ?4, ?5, '[]', 0, strftime('%Y%m%dT%H%M%SZ', 'now'))",
                params![
                    key(IMPORTED, source),
                    IMPORTED,
                    model,
                    normalize_source(source),
                    translation.trim(),
                ],
            )
            .map_err(|e| self.err(e))?;
        }
        tx.commit().map_err(|e| self.err(e))?;
        Ok(pairs.len())
    }

    /// Every pair fit to show the model as an example: imported ones first (people
    /// approved them), then the newest translations that passed every check.
    pub fn example_pairs(&self) -> Result<Vec<(String, String)>, MemoryError> {
        let mut stmt = self
            .conn
            .prepare(
                "SELECT source, translation FROM translations WHERE warnings = '[]'
                 ORDER BY fingerprint = ?1 DESC, created DESC, key",
            )
            .map_err(|e| self.err(e))?;
        stmt.query_map(params![IMPORTED], |r| Ok((r.get(0)?, r.get(1)?)))
            .and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
            .map_err(|e| self.err(e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn translation(text: &str) -> CheckedTranslation {
        CheckedTranslation {
            text: text.into(),
            warnings: Vec::new(),
            attempts: 1,
            generated_tokens: 7,
            signals: None,
        }
    }

    #[test]
    fn stores_and_finds_by_normalized_source_and_fingerprint() {
        let dir = tempfile::tempdir().unwrap();
        let m = Memory::open(&dir.path().join("m.sqlite")).unwrap();
        let fp = fingerprint(&[("model", "abc".into())]);
        let other = fingerprint(&[("model", "def".into())]);
        assert!(m.lookup(&fp, "مرحبا بكم").unwrap().is_none());
        m.store(&fp, "tiny", "مرحبا  بكم ", &translation("Welcome"))
            .unwrap();
        let hit = m.lookup(&fp, " مرحبا بكم").unwrap().unwrap();
        assert_eq!(hit.text, "Welcome");
        assert_eq!(hit.generated_tokens, 0);
        assert!(m.lookup(&other, "مرحبا بكم").unwrap().is_none());
        let stats = m.stats().unwrap();
        assert_eq!(stats.entries, 1);
        assert_eq!(stats.models, vec![("tiny".to_string(), 1)]);
        assert_eq!(m.clear().unwrap(), 1);
        assert!(m.lookup(&fp, "مرحبا بكم").unwrap().is_none());
    }

    #[test]
    fn confidence_survives_the_memory_and_old_memories_gain_its_column() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.sqlite");
        // A memory as written before confidence existed: no `signals` column.
        let old = Connection::open(&path).unwrap();
        old.execute_batch(
            "CREATE TABLE translations (key TEXT PRIMARY KEY, fingerprint TEXT NOT NULL,
             model TEXT NOT NULL, source TEXT NOT NULL, translation TEXT NOT NULL,
             warnings TEXT NOT NULL, attempts INTEGER NOT NULL, created TEXT NOT NULL);",
        )
        .unwrap();
        drop(old);
        let m = Memory::open(&path).unwrap();
        let fp = fingerprint(&[]);
        let mut sure = translation("The council met.");
        sure.signals = crate::check::Signals::of(&[-0.1, -0.3, -2.5]);
        m.store(&fp, "tiny", "اجتمع المجلس", &sure).unwrap();
        let hit = m.lookup(&fp, "اجتمع المجلس").unwrap().unwrap();
        assert_eq!(hit.signals, sure.signals);
        assert_eq!(hit.confidence(), sure.confidence());
        assert!(hit.confidence().is_some());
        m.store(&fp, "tiny", "مرحبا", &translation("Welcome"))
            .unwrap();
        assert_eq!(m.lookup(&fp, "مرحبا").unwrap().unwrap().signals, None);
    }

    #[test]
    fn tmx_export_is_escaped_xml() {
        let dir = tempfile::tempdir().unwrap();
        let m = Memory::open(&dir.path().join("m.sqlite")).unwrap();
        let fp = fingerprint(&[]);
        m.store(&fp, "tiny", "أ < ب & ج", &translation("A < B & \"C\"\u{1}"))
            .unwrap();
        let out = dir.path().join("out.tmx");
        assert_eq!(m.export_tmx(&out).unwrap(), 1);
        let xml = std::fs::read_to_string(&out).unwrap();
        assert!(xml.contains("<tmx version=\"1.4\">"));
        assert!(xml.contains("<seg>أ &lt; ب &amp; ج</seg>"), "{xml}");
        assert!(xml.contains("<seg>A &lt; B &amp; \"C\"</seg>"), "{xml}");
        assert_eq!(xml.matches("<tu ").count(), 1);
    }

    #[test]
    fn imported_pairs_are_examples_but_never_hits() {
        let dir = tempfile::tempdir().unwrap();
        let m = Memory::open(&dir.path().join("m.sqlite")).unwrap();
        let fp = fingerprint(&[("model", "abc".into())]);
        m.store(&fp, "tiny", "اجتمع المجلس", &translation("The board met"))
            .unwrap();
        let mut flagged = translation("The Monetary Fund met");
        flagged.warnings.push(Warning::error(
            crate::check::CheckKind::UnsupportedName,
            "not in the source",
        ));
        m.store(&fp, "tiny", "اجتمع الصندوق", &flagged).unwrap();
        let pairs = vec![("اجتمع المجلس".to_string(), "The council met".to_string())];
        assert_eq!(m.import(&pairs, "approved.tmx").unwrap(), 1);
        assert_eq!(
            m.lookup(&fp, "اجتمع المجلس").unwrap().unwrap().text,
            "The board met"
        );
        assert!(m.lookup(IMPORTED, "اجتمع الصندوق").unwrap().is_none());
        let examples = m.example_pairs().unwrap();
        assert_eq!(
            examples,
            vec![
                ("اجتمع المجلس".to_string(), "The council met".to_string()),
                ("اجتمع المجلس".to_string(), "The board met".to_string()),
            ]
        );
        let index = fuzzy::FuzzyIndex::new(examples);
        assert_eq!(index.len(), 1);
    }

    #[test]
    fn two_connections_write_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.sqlite");
        Memory::open(&path).unwrap();
        let writers: Vec<_> = (0..2)
            .map(|w| {
                let path = path.clone();
                std::thread::spawn(move || {
                    let m = Memory::open(&path).unwrap();
                    for i in 0..200 {
                        m.store("fp", "tiny", &format!("جملة {w} {i}"), &translation("x"))
                            .unwrap();
                    }
                })
            })
            .collect();
        for w in writers {
            w.join().unwrap();
        }
        assert_eq!(Memory::open(&path).unwrap().stats().unwrap().entries, 400);
    }

    #[test]
    fn a_file_that_is_not_a_database_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.sqlite");
        std::fs::write(&path, vec![7u8; 4096]).unwrap();
        let e = Memory::open(&path).err().expect("must fail").to_string();
        assert!(e.contains("m.sqlite") && e.contains("--no-memory"), "{e}");
    }
}
