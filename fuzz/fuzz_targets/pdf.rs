#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../check.rs"]
mod check;

// Starts poppler (and Tesseract for a PDF without text) per input: slow, but those are
// what a hostile PDF reaches.
fuzz_target!(|data: &[u8]| check::read_and_segment("fuzz.pdf", data));
