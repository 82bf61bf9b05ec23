//! tarjama: offline Arabic→English document translation.
//!
//! The pipeline, one module per stage:
//! [`load`] → [`segment`] → [`translate`] → [`summarize`] → [`write`],
//! driven by [`job`]. Models live in [`model`] (weights, tokenizers, backends)
//! and are fetched by [`registry`].

pub mod document;
pub mod load;
pub mod segment;
