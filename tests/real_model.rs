//! The real model path: the default GGUF (fetched if absent), its own tokenizer, and
//! translation through the library. Slow on CPU, but this is what users run.

use tarjama::model::{gguf_llm, ChatModel, GgufLlm};
use tarjama::registry::{self, FetchPolicy, DEFAULT_MODEL};
use tarjama::translate::{LlmTranslator, Translator};

fn default_model() -> registry::ModelFile {
    registry::resolve(DEFAULT_MODEL, FetchPolicy::Allow).expect("default model available")
}

#[test]
fn tokenizer_built_from_gguf_metadata_matches_known_ids() {
    let file = default_model();
    let tok = gguf_llm::load_tokenizer(&file.path).unwrap();
    let ids = tok.encode("Hello world", false).unwrap().get_ids().to_vec();
    assert_eq!(ids, vec![9707, 1879]);
    assert_eq!(tok.token_to_id("<|im_end|>"), Some(151645));
    let arabic = "مجلس التعاون لدول الخليج العربية";
    let enc = tok.encode(arabic, false).unwrap();
    assert_eq!(tok.decode(enc.get_ids(), true).unwrap(), arabic);
}

#[test]
fn translates_an_arabic_sentence_into_english() {
    let file = default_model();
    let llm = GgufLlm::load(&file.path, &candle_core::Device::Cpu).unwrap();
    assert!(llm.context_length() >= 4096);
    let mut t = LlmTranslator::new(llm, 128);
    let out = t
        .translate("عقد مجلس التعاون لدول الخليج العربية اجتماعه في الرياض يوم 12 أكتوبر 2021.")
        .unwrap();
    eprintln!("{:?}", out);
    assert!(!out.hit_cap);
    assert!(out.text.contains("2021"), "{}", out.text);
    assert!(out.text.contains("Riyadh"), "{}", out.text);
    assert!(
        !out.text.chars().any(tarjama::load::is_arabic_letter),
        "{}",
        out.text
    );
}
