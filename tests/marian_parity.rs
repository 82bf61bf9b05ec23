//! OPUS-MT (Marian) parity with the reference implementation.
//!
//! `tests/fixtures/marian-tiny/` is a tiny random `MarianMTModel` saved exactly as the
//! Hugging Face hub serves models, and `tests/fixtures/marian-tiny-reference.json` holds
//! what transformers computed with it (both made by `scripts/marian-fixture.sh`). These
//! tests check that tarjama's tokenizer, model and search reproduce those outputs.

use std::path::{Path, PathBuf};

use candle_core::{Device, Tensor};
use serde::Deserialize;
use tarjama::model::opus_mt::OpusMt;
use tarjama::model::sentencepiece::SentencePiece;
use tarjama::model::seq2seq::GenerationConfig;

#[derive(Deserialize)]
struct Reference {
    tokenize: Vec<TokenizeCase>,
    decode: Vec<DecodeCase>,
    batch: Batch,
    encoder_output: Vec<Vec<Vec<f32>>>,
    first_step_logits: Vec<Vec<f32>>,
    greedy: Vec<Vec<u32>>,
    greedy_single: Vec<Vec<u32>>,
    beam4: Vec<Vec<u32>>,
    beam4_single: Vec<Vec<u32>>,
    beam3_lp06: Vec<Vec<u32>>,
    max_length: usize,
    pad_id: u32,
    eos_id: u32,
    decoder_start_id: u32,
}

#[derive(Deserialize)]
struct TokenizeCase {
    text: String,
    pieces: Vec<String>,
    ids: Vec<u32>,
}

#[derive(Deserialize)]
struct DecodeCase {
    ids: Vec<u32>,
    text: String,
}

#[derive(Deserialize)]
struct Batch {
    texts: Vec<String>,
    input_ids: Vec<Vec<u32>>,
    attention_mask: Vec<Vec<u32>>,
}

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

fn model_dir() -> PathBuf {
    fixtures().join("marian-tiny")
}

fn reference() -> Reference {
    let text = std::fs::read_to_string(fixtures().join("marian-tiny-reference.json"))
        .expect("reference outputs");
    serde_json::from_str(&text).expect("reference JSON")
}

fn load() -> OpusMt {
    OpusMt::load(&model_dir(), &Device::Cpu).expect("tiny model loads")
}

/// The generated tokens of one `generate` row: no start token, nothing after `</s>`.
fn generated(row: &[u32], r: &Reference) -> Vec<u32> {
    assert_eq!(row[0], r.decoder_start_id);
    let mut out = Vec::new();
    for &t in &row[1..] {
        out.push(t);
        if t == r.eos_id {
            return out;
        }
    }
    while out.last() == Some(&r.pad_id) {
        out.pop();
    }
    out
}

fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

#[test]
fn pieces_and_ids_match_marian_tokenizer() {
    let r = reference();
    let spm = SentencePiece::load(&model_dir().join("source.spm")).expect("source.spm");
    let mt = load();
    for case in &r.tokenize {
        assert_eq!(
            spm.encode(&case.text),
            case.pieces,
            "pieces of {:?}",
            case.text
        );
        assert_eq!(
            mt.tokenizer().encode(&case.text),
            case.ids,
            "ids of {:?}",
            case.text
        );
    }
}

#[test]
fn decoded_text_matches_marian_tokenizer() {
    let r = reference();
    let mt = load();
    for case in &r.decode {
        assert_eq!(
            mt.tokenizer().decode(&case.ids),
            case.text,
            "ids {:?}",
            case.ids
        );
    }
}

#[test]
fn batch_padding_matches_the_reference() {
    let r = reference();
    let mt = load();
    let ids: Vec<Vec<u32>> = r
        .batch
        .texts
        .iter()
        .map(|t| mt.tokenizer().encode(t))
        .collect();
    let rows: Vec<&[u32]> = ids.iter().map(Vec::as_slice).collect();
    let (padded, mask) = mt.pad(&rows).unwrap();
    assert_eq!(padded.to_vec2::<u32>().unwrap(), r.batch.input_ids);
    assert_eq!(mask.to_vec2::<u32>().unwrap(), r.batch.attention_mask);
}

fn reference_batch(r: &Reference) -> (Tensor, Tensor) {
    let (b, s) = (r.batch.input_ids.len(), r.batch.input_ids[0].len());
    let ids: Vec<u32> = r.batch.input_ids.concat();
    let mask: Vec<u32> = r.batch.attention_mask.concat();
    (
        Tensor::from_vec(ids, (b, s), &Device::Cpu).unwrap(),
        Tensor::from_vec(mask, (b, s), &Device::Cpu).unwrap(),
    )
}

#[test]
fn encoder_output_matches_the_reference() {
    let r = reference();
    let mt = load();
    let (ids, mask) = reference_batch(&r);
    let encoded = mt.model().encode(&ids, &mask).unwrap();
    let hidden: Vec<Vec<Vec<f32>>> = encoded.hidden.to_vec3().unwrap();
    let mut worst = 0f32;
    for (b, row) in hidden.iter().enumerate() {
        for (s, vector) in row.iter().enumerate() {
            // Padding positions are never read; only real tokens must agree.
            if r.batch.attention_mask[b][s] == 1 {
                worst = worst.max(max_abs_diff(vector, &r.encoder_output[b][s]));
            }
        }
    }
    eprintln!("encoder output: largest difference {worst:e}");
    assert!(worst < 1e-4, "encoder output differs by {worst}");
}

#[test]
fn first_step_logits_match_the_reference() {
    let r = reference();
    let mt = load();
    let (ids, mask) = reference_batch(&r);
    let encoded = mt.model().encode(&ids, &mask).unwrap();
    let mut state = mt.model().start_decoder(&encoded).unwrap();
    let starts = vec![r.decoder_start_id; r.batch.texts.len()];
    let logits: Vec<Vec<f32>> = mt
        .model()
        .decode_step(&starts, &mut state)
        .unwrap()
        .to_vec2()
        .unwrap();
    let mut worst = 0f32;
    for (row, expected) in logits.iter().zip(&r.first_step_logits) {
        worst = worst.max(max_abs_diff(row, expected));
    }
    eprintln!("first-step logits: largest difference {worst:e}");
    assert!(worst < 1e-4, "first-step logits differ by {worst}");
}

fn decode_all(mt: &OpusMt, texts: &[String], generation: &GenerationConfig) -> Vec<Vec<u32>> {
    let ids: Vec<Vec<u32>> = texts.iter().map(|t| mt.tokenizer().encode(t)).collect();
    let rows: Vec<&[u32]> = ids.iter().map(Vec::as_slice).collect();
    mt.decode_ids(&rows, generation)
        .unwrap()
        .into_iter()
        .map(|d| d.tokens)
        .collect()
}

fn decode_each(mt: &OpusMt, texts: &[String], generation: &GenerationConfig) -> Vec<Vec<u32>> {
    texts
        .iter()
        .flat_map(|t| decode_all(mt, std::slice::from_ref(t), generation))
        .collect()
}

fn expected(rows: &[Vec<u32>], r: &Reference) -> Vec<Vec<u32>> {
    rows.iter().map(|row| generated(row, r)).collect()
}

#[test]
fn generation_settings_come_from_the_model_files() {
    let r = reference();
    let g = load().generation().clone();
    assert_eq!(g.num_beams, 4);
    assert_eq!(g.max_length, r.max_length);
    assert_eq!(g.bad_words, vec![r.pad_id]);
    assert_eq!(g.forced_eos_token_id, Some(r.eos_id));
    assert_eq!(g.decoder_start_token_id, r.decoder_start_id);
}

#[test]
fn greedy_search_matches_the_reference() {
    let r = reference();
    let mt = load();
    let greedy = GenerationConfig {
        num_beams: 1,
        ..mt.generation().clone()
    };
    assert_eq!(
        decode_all(&mt, &r.batch.texts, &greedy),
        expected(&r.greedy, &r)
    );
    assert_eq!(
        decode_each(&mt, &r.batch.texts, &greedy),
        expected(&r.greedy_single, &r)
    );
}

#[test]
fn beam_search_matches_the_reference() {
    let r = reference();
    let mt = load();
    let beam4 = mt.generation().clone();
    assert_eq!(
        decode_all(&mt, &r.batch.texts, &beam4),
        expected(&r.beam4, &r)
    );
    assert_eq!(
        decode_each(&mt, &r.batch.texts, &beam4),
        expected(&r.beam4_single, &r)
    );
    let beam3 = GenerationConfig {
        num_beams: 3,
        length_penalty: 0.6,
        ..beam4
    };
    assert_eq!(
        decode_all(&mt, &r.batch.texts, &beam3),
        expected(&r.beam3_lp06, &r)
    );
}

#[test]
fn batch_size_does_not_change_translations() {
    let r = reference();
    let texts: Vec<&str> = r.batch.texts.iter().map(String::as_str).collect();
    let mut outputs = Vec::new();
    for batch_size in [1, 2, 16] {
        let mut mt = load().with_batch_size(batch_size);
        let generation = mt.generation().clone();
        let out: Vec<Vec<u32>> = mt
            .translate_batch(&texts, &generation, &mut |_, _| {})
            .into_iter()
            .map(|o| o.unwrap().tokens)
            .collect();
        outputs.push(out);
    }
    assert_eq!(outputs[0], outputs[1]);
    assert_eq!(outputs[0], outputs[2]);
    assert_eq!(outputs[0], expected(&r.beam4_single, &r));
}

#[test]
fn pytorch_bin_weights_give_the_same_model() {
    let r = reference();
    let dir = tempfile::tempdir().unwrap();
    for entry in std::fs::read_dir(model_dir()).unwrap() {
        let path = entry.unwrap().path();
        if path.file_name().unwrap() != "model.safetensors" {
            std::fs::copy(&path, dir.path().join(path.file_name().unwrap())).unwrap();
        }
    }
    let from_bin = OpusMt::load(dir.path(), &Device::Cpu).unwrap();
    let generation = from_bin.generation().clone();
    assert_eq!(
        decode_all(&from_bin, &r.batch.texts, &generation),
        expected(&r.beam4, &r)
    );
}

#[test]
fn a_corrupt_model_directory_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    for entry in std::fs::read_dir(model_dir()).unwrap() {
        let path = entry.unwrap().path();
        std::fs::copy(&path, dir.path().join(path.file_name().unwrap())).unwrap();
    }
    std::fs::write(dir.path().join("source.spm"), b"not a sentencepiece model").unwrap();
    let e = OpusMt::load(dir.path(), &Device::Cpu)
        .err()
        .expect("must fail")
        .to_string();
    assert!(e.contains("source.spm") && !e.contains('\n'), "{e}");
    std::fs::copy(
        model_dir().join("source.spm"),
        dir.path().join("source.spm"),
    )
    .unwrap();
    std::fs::remove_file(dir.path().join("model.safetensors")).unwrap();
    std::fs::write(dir.path().join("pytorch_model.bin"), b"truncated").unwrap();
    let e = OpusMt::load(dir.path(), &Device::Cpu)
        .err()
        .expect("must fail")
        .to_string();
    assert!(
        e.contains(&dir.path().display().to_string()) && e.contains("pytorch_model.bin"),
        "{e}"
    );
}

/// Logits of each sentence for its first steps, decoded within `texts`' padded batch;
/// the token fed to sentence `index` after each step: fixed, and different per sentence.
fn stepped_logits(
    mt: &OpusMt,
    texts: &[String],
    first_index: usize,
    steps: usize,
) -> Vec<Vec<Vec<f32>>> {
    let ids: Vec<Vec<u32>> = texts.iter().map(|t| mt.tokenizer().encode(t)).collect();
    let rows: Vec<&[u32]> = ids.iter().map(Vec::as_slice).collect();
    let (padded, mask) = mt.pad(&rows).unwrap();
    let encoded = mt.model().encode(&padded, &mask).unwrap();
    let mut state = mt.model().start_decoder(&encoded).unwrap();
    let mut tokens = vec![mt.generation().decoder_start_token_id; texts.len()];
    let mut per_sentence = vec![Vec::new(); texts.len()];
    for _ in 0..steps {
        let logits: Vec<Vec<f32>> = mt
            .model()
            .decode_step(&tokens, &mut state)
            .unwrap()
            .to_vec2()
            .unwrap();
        for (s, row) in logits.into_iter().enumerate() {
            tokens[s] = 5 + 7 * (first_index + s) as u32;
            per_sentence[s].push(row);
        }
    }
    per_sentence
}

#[test]
fn batched_logits_are_bit_identical_to_unbatched() {
    let r = reference();
    let mt = load();
    let batched = stepped_logits(&mt, &r.batch.texts, 0, 3);
    for (s, text) in r.batch.texts.iter().enumerate() {
        let alone = stepped_logits(&mt, std::slice::from_ref(text), s, 3);
        // Bit-identical: padding is cut away, not masked, and single rows take the same
        // matmul kernel as many.
        assert!(alone[0] == batched[s], "sentence {s} differs in a batch");
    }
}
