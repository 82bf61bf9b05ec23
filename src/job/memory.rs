//! The translation memory as a run uses it: segments it already holds are not sent to
//! the model, and each new translation is stored the moment it settles.

use std::cell::Cell;

use super::progress::Progress;
use super::segments::{Results, SegmentRef};
use crate::document::{ModelRecord, Settings};
use crate::memory::fuzzy::MemoryExamples;
use crate::memory::Memory;
use crate::settings::{self, RunSettings};
use crate::translate::CheckedTranslation;

/// The translation memory of a run, with what this run's translations are filed under.
pub(super) struct RunMemory {
    store: Memory,
    /// [`settings::memory_key`] of this run's settings and model.
    key: String,
    hits: Cell<usize>,
    pub(super) examples: Option<MemoryExamples>,
}

impl RunMemory {
    /// The run's translation memory, unless disabled; a memory that cannot be opened is
    /// reported and the run goes on without it.
    pub(super) fn open(
        run: &RunSettings,
        fingerprint: &Settings,
        model: &ModelRecord,
    ) -> Option<RunMemory> {
        let path = run.memory.as_ref()?;
        if run.strategy.context {
            // With context a translation depends on the segment before it, which the
            // memory's key does not hold.
            return None;
        }
        let store = match Memory::open(path) {
            Ok(m) => m,
            Err(e) => {
                tracing::warn!("{e}; continuing without it");
                return None;
            }
        };
        let key = settings::memory_key(fingerprint, &model.file_sha256);
        let examples = fingerprint.memory_examples.and_then(|percent| {
            MemoryExamples::load(&store, percent)
                .map_err(|e| tracing::warn!("{e}; continuing without memory examples"))
                .ok()
        });
        Some(RunMemory {
            store,
            key,
            hits: Cell::new(0),
            examples,
        })
    }

    /// Fills the slots of the segments the memory already holds.
    pub(super) fn look_up(&self, refs: &[SegmentRef], results: &mut Results, progress: &Progress) {
        for (slot, r) in results.iter_mut().zip(refs) {
            match self.store.lookup(&self.key, &r.source) {
                Ok(Some(hit)) => {
                    *slot = Some(Ok(hit));
                    self.hits.set(self.hits.get() + 1);
                    progress.segment_done(&r.source);
                }
                Ok(None) => {}
                Err(e) => progress.suspend(|| tracing::warn!("{e}")),
            }
        }
    }

    /// Stores one new translation; a failure is only a warning.
    pub(super) fn store(
        &self,
        model: &ModelRecord,
        source: &str,
        translation: &CheckedTranslation,
        progress: &Progress,
    ) {
        if let Err(e) = self
            .store
            .store(&self.key, &model.name, source, translation)
        {
            progress.suspend(|| tracing::warn!("{e}"));
        }
    }

    /// Segments found in the memory so far.
    pub(super) fn hits(&self) -> usize {
        self.hits.get()
    }
}
