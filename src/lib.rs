//! tarjama: offline Arabic→English document translation.
//!
//! The pipeline, one module per stage:
//! [`load`] → [`segment`] → [`translate`] → [`check`] → [`summarize`] → [`write`],
//! driven by [`job`] over the documents that [`inputs`] collects ([`eval`] and [`bench`]
//! run the same stages over test sets). The flags of a run are resolved once into
//! [`settings`]; the model is loaded once, in [`engine`], and handed to the job. Model
//! backends live in [`model`]; their weights are found or fetched by [`registry`].

pub mod bench;
pub mod check;
pub mod document;
pub mod engine;
pub mod eval;
pub mod glossary;
pub mod inputs;
pub mod job;
pub mod lexicon;
pub mod load;
pub mod memory;
pub mod metrics;
pub mod model;
pub mod models;
pub mod pip;
pub mod read;
pub mod registry;
pub mod segment;
pub mod settings;
pub mod summarize;
pub mod translate;
pub mod write;
