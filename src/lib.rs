//! tarjama: offline Arabic→English document translation.
//!
//! The pipeline, one module per stage:
//! [`load`] → [`segment`] → [`translate`] → [`check`] → [`summarize`] → [`write`],
//! driven by [`job`] over the documents that [`inputs`] collects ([`eval`] and [`bench`]
//! run the same stages over test sets). Model backends live in
//! [`model`]; their weights are found or fetched by [`registry`].

pub mod bench;
pub mod check;
pub mod document;
pub mod eval;
pub mod glossary;
pub mod inputs;
pub mod job;
pub mod lexicon;
pub mod load;
pub mod memory;
pub mod metrics;
pub mod model;
pub mod pip;
pub mod read;
pub mod registry;
pub mod segment;
pub mod summarize;
pub mod translate;
pub mod write;
