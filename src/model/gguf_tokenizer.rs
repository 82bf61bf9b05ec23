//! Tokenizers built from a GGUF's own metadata, so a model file needs no tokenizer.json.
//!
//! Two vocabulary kinds (`tokenizer.ggml.model`) are supported:
//!
//! - `gpt2`: byte-level BPE with an explicit merge list (Qwen2/2.5/3, Llama 3, ...). Built by
//!   candle's `TokenizerFromGguf`, which already registers control (3), user-defined (4),
//!   unknown (2) and unused (5) tokens and the bos/eos/pad/sep/unk ids as special added
//!   tokens, so template markers such as `<|im_end|>` are matched whole.
//! - `llama`: SentencePiece BPE (Gemma 2/3, SILMA, Mistral v0.x, ALLaM, Llama 2). There is
//!   no merge list, only pieces with scores; llama.cpp (`llm_tokenizer_spm`) escapes spaces
//!   as `▁`, optionally prepends one (`tokenizer.ggml.add_space_prefix`, default true), then
//!   repeatedly merges the adjacent pair whose concatenation is the highest-scoring piece,
//!   and writes characters no piece covers as `<0xXX>` byte tokens. The same segmentation is
//!   built here as a `tokenizers` BPE model whose merges are every pair of pieces `(a, b)`
//!   with `a + b` a piece, ranked by the score of `a + b` (the way Hugging Face's
//!   SentencePieceExtractor converts such models), with byte fallback, a normalizer that
//!   prepends and escapes spaces, and the matching decoder.
//!
//! Where the two can differ (both need a vocabulary that real SentencePiece-trained models
//! do not have): pieces with *equal* scores that compete for the same symbol are merged
//! leftmost-first by llama.cpp but in id order here, and a character that is not itself a
//! piece is never merged with a neighbour here while llama.cpp would if the pair were a
//! piece.

use std::collections::HashMap;

use candle_core::quantized::gguf_file::{self, Value};
use candle_core::quantized::tokenizer::TokenizerFromGguf;
use tokenizers::decoders::byte_fallback::ByteFallback;
use tokenizers::decoders::fuse::Fuse;
use tokenizers::decoders::sequence::Sequence as DecoderSequence;
use tokenizers::decoders::strip::Strip;
use tokenizers::decoders::DecoderWrapper;
use tokenizers::models::bpe::BPE;
use tokenizers::normalizers::{Prepend, Replace, Sequence as NormalizerSequence};
use tokenizers::processors::template::TemplateProcessing;
use tokenizers::{AddedToken, NormalizerWrapper, Tokenizer};

/// SentencePiece's escaped space (U+2581).
pub const SPACE: char = '\u{2581}';

/// `tokenizer.ggml.token_type` values (llama.cpp's `llama_token_type`).
pub mod token_type {
    pub const NORMAL: i32 = 1;
    pub const UNKNOWN: i32 = 2;
    pub const CONTROL: i32 = 3;
    pub const USER_DEFINED: i32 = 4;
    pub const UNUSED: i32 = 5;
    pub const BYTE: i32 = 6;
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum TokenizerError {
    #[error("the GGUF metadata has no `{0}`")]
    Missing(&'static str),
    #[error("the GGUF metadata `{key}` is malformed: {reason}")]
    Malformed { key: &'static str, reason: String },
    #[error("tokenizer model `{model}` ({what}) is not supported; tarjama builds tokenizers for `gpt2` (byte-level BPE) and `llama` (SentencePiece BPE) vocabularies")]
    Unsupported { model: String, what: &'static str },
    #[error("{0}")]
    Build(String),
}

const KEY_MODEL: &str = "tokenizer.ggml.model";
const KEY_TOKENS: &str = "tokenizer.ggml.tokens";
const KEY_SCORES: &str = "tokenizer.ggml.scores";
const KEY_TYPES: &str = "tokenizer.ggml.token_type";
const KEY_MERGES: &str = "tokenizer.ggml.merges";
const KEY_SPACE_PREFIX: &str = "tokenizer.ggml.add_space_prefix";

/// The tokenizer of a GGUF model, from its `tokenizer.ggml.*` metadata.
pub fn tokenizer_from_gguf(content: &gguf_file::Content) -> Result<Tokenizer, TokenizerError> {
    let model = content
        .metadata
        .get(KEY_MODEL)
        .ok_or(TokenizerError::Missing(KEY_MODEL))?
        .to_string()
        .map_err(|e| malformed(KEY_MODEL, e))?
        .to_lowercase();
    match model.as_str() {
        "gpt2" => gpt2(content),
        "llama" => SpmVocab::from_gguf(content)?.tokenizer(),
        other => Err(TokenizerError::Unsupported {
            model: other.to_string(),
            what: match other {
                "bert" => "WordPiece, as BERT-style embedding models use",
                "t5" => "SentencePiece unigram with a precompiled normalizer, as T5 uses",
                "rwkv" => "RWKV's greedy trie vocabulary",
                "plamo2" => "PLaMo 2's Aho-Corasick vocabulary",
                "no_vocab" | "none" => "no vocabulary at all",
                _ => "a vocabulary kind this build does not know",
            },
        }),
    }
}

fn malformed(key: &'static str, reason: impl ToString) -> TokenizerError {
    TokenizerError::Malformed {
        key,
        reason: reason.to_string(),
    }
}

fn gpt2(content: &gguf_file::Content) -> Result<Tokenizer, TokenizerError> {
    // Name what candle's message would leave vague.
    for key in [KEY_TOKENS, KEY_MERGES] {
        if !content.metadata.contains_key(key) {
            return Err(TokenizerError::Missing(key));
        }
    }
    Tokenizer::from_gguf(content).map_err(|e| TokenizerError::Build(e.to_string()))
}

fn as_id(value: &Value) -> Option<u32> {
    match *value {
        Value::U8(v) => Some(v as u32),
        Value::I8(v) => u32::try_from(v).ok(),
        Value::U16(v) => Some(v as u32),
        Value::I16(v) => u32::try_from(v).ok(),
        Value::U32(v) => Some(v),
        Value::I32(v) => u32::try_from(v).ok(),
        Value::U64(v) => u32::try_from(v).ok(),
        Value::I64(v) => u32::try_from(v).ok(),
        _ => None,
    }
}

fn array<'a>(
    content: &'a gguf_file::Content,
    key: &'static str,
) -> Result<Option<&'a Vec<Value>>, TokenizerError> {
    match content.metadata.get(key) {
        None => Ok(None),
        Some(v) => v.to_vec().map(Some).map_err(|e| malformed(key, e)),
    }
}

/// A SentencePiece (`llama`) vocabulary as the GGUF stores it.
#[derive(Debug, Clone, PartialEq)]
pub struct SpmVocab {
    pub tokens: Vec<String>,
    pub scores: Vec<f32>,
    /// [`token_type`] values; NORMAL where the GGUF has none.
    pub types: Vec<i32>,
    pub add_space_prefix: bool,
    pub bos: Option<u32>,
    pub eos: Option<u32>,
    pub unk: Option<u32>,
    pub pad: Option<u32>,
    pub eot: Option<u32>,
    pub add_bos: bool,
    pub add_eos: bool,
}

impl SpmVocab {
    pub fn from_gguf(content: &gguf_file::Content) -> Result<Self, TokenizerError> {
        let tokens = array(content, KEY_TOKENS)?
            .ok_or(TokenizerError::Missing(KEY_TOKENS))?
            .iter()
            .map(|v| v.to_string().cloned().map_err(|e| malformed(KEY_TOKENS, e)))
            .collect::<Result<Vec<_>, _>>()?;
        // llama.cpp reads a missing score as 0, but then every merge ties and the result
        // is not the model's segmentation; say so instead.
        let scores = array(content, KEY_SCORES)?
            .ok_or(TokenizerError::Missing(KEY_SCORES))?
            .iter()
            .map(|v| v.to_f32().map_err(|e| malformed(KEY_SCORES, e)))
            .collect::<Result<Vec<_>, _>>()?;
        if scores.len() != tokens.len() {
            return Err(malformed(
                KEY_SCORES,
                format!("{} scores for {} tokens", scores.len(), tokens.len()),
            ));
        }
        let types = match array(content, KEY_TYPES)? {
            None => vec![token_type::NORMAL; tokens.len()],
            Some(values) => {
                let types = values
                    .iter()
                    .map(|v| {
                        as_id(v)
                            .map(|t| t as i32)
                            .ok_or_else(|| malformed(KEY_TYPES, format!("{v:?} is not a type")))
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                if types.len() != tokens.len() {
                    return Err(malformed(
                        KEY_TYPES,
                        format!("{} types for {} tokens", types.len(), tokens.len()),
                    ));
                }
                types
            }
        };
        let flag = |key: &'static str, default: bool| -> Result<bool, TokenizerError> {
            match content.metadata.get(key) {
                None => Ok(default),
                Some(v) => v.to_bool().map_err(|e| malformed(key, e)),
            }
        };
        let id = |key: &'static str| -> Result<Option<u32>, TokenizerError> {
            match content.metadata.get(key) {
                None => Ok(None),
                Some(v) => match as_id(v) {
                    Some(id) if (id as usize) < tokens.len() => Ok(Some(id)),
                    // llama.cpp ignores an out-of-range id; so does this.
                    Some(_) => Ok(None),
                    None => Err(malformed(key, format!("{v:?} is not a token id"))),
                },
            }
        };
        Ok(Self {
            add_space_prefix: flag(KEY_SPACE_PREFIX, true)?,
            bos: id("tokenizer.ggml.bos_token_id")?,
            eos: id("tokenizer.ggml.eos_token_id")?,
            unk: id("tokenizer.ggml.unknown_token_id")?,
            pad: id("tokenizer.ggml.padding_token_id")?,
            eot: id("tokenizer.ggml.eot_token_id")?,
            // llama.cpp's defaults for SentencePiece vocabularies.
            add_bos: flag("tokenizer.ggml.add_bos_token", true)?,
            add_eos: flag("tokenizer.ggml.add_eos_token", false)?,
            tokens,
            scores,
            types,
        })
    }

    /// Token ids by text; a text listed twice maps to its last id, as in llama.cpp.
    fn ids(&self) -> HashMap<&str, u32> {
        self.tokens
            .iter()
            .enumerate()
            .map(|(i, t)| (t.as_str(), i as u32))
            .collect()
    }

    /// Every pair of pieces whose concatenation is a piece, highest score of the
    /// concatenation first; equal scores in id order of the concatenation, then of the
    /// left and right piece (as SentencePieceExtractor orders them).
    pub fn merges(&self) -> Vec<(String, String)> {
        let ids = self.ids();
        let mut ranked: Vec<(f32, u32, u32, u32)> = Vec::new();
        for (id, text) in self.tokens.iter().enumerate() {
            let id = id as u32;
            if ids.get(text.as_str()) != Some(&id) {
                continue; // a duplicate text: the later id is the piece
            }
            for (split, _) in text.char_indices().skip(1) {
                let (left, right) = text.split_at(split);
                if let (Some(&l), Some(&r)) = (ids.get(left), ids.get(right)) {
                    ranked.push((self.scores[id as usize], id, l, r));
                }
            }
        }
        ranked.sort_by(|a, b| {
            b.0.total_cmp(&a.0)
                .then(a.1.cmp(&b.1))
                .then(a.2.cmp(&b.2))
                .then(a.3.cmp(&b.3))
        });
        ranked
            .into_iter()
            .map(|(_, _, l, r)| {
                (
                    self.tokens[l as usize].clone(),
                    self.tokens[r as usize].clone(),
                )
            })
            .collect()
    }

    /// Ids matched whole in the text before segmentation and skipped when decoding with
    /// `skip_special_tokens`: control and unknown tokens (llama.cpp's `parse_special`
    /// set, less user-defined ones) and the bos/eos/unk/pad/eot ids.
    fn special_ids(&self) -> Vec<u32> {
        let mut ids: Vec<u32> = self
            .types
            .iter()
            .enumerate()
            .filter(|(_, &t)| t == token_type::CONTROL || t == token_type::UNKNOWN)
            .map(|(i, _)| i as u32)
            .chain(
                [self.bos, self.eos, self.unk, self.pad, self.eot]
                    .into_iter()
                    .flatten(),
            )
            .collect();
        ids.sort_unstable();
        ids.dedup();
        ids
    }

    /// The `tokenizers` pipeline equal to llama.cpp's SentencePiece tokenizer.
    pub fn tokenizer(&self) -> Result<Tokenizer, TokenizerError> {
        let vocab: tokenizers::models::bpe::Vocab = self
            .ids()
            .into_iter()
            .map(|(t, i)| (t.to_string(), i))
            .collect();
        let mut builder = BPE::builder()
            .vocab_and_merges(vocab, self.merges())
            .byte_fallback(true);
        if let Some(unk) = self.unk {
            builder = builder.unk_token(self.tokens[unk as usize].clone());
        }
        let bpe = builder
            .build()
            .map_err(|e| TokenizerError::Build(format!("SentencePiece BPE model: {e}")))?;
        let mut tokenizer = Tokenizer::new(bpe);

        let space = SPACE.to_string();
        let mut normalizers: Vec<NormalizerWrapper> = Vec::new();
        if self.add_space_prefix {
            normalizers.push(Prepend::new(space.clone()).into());
        }
        normalizers.push(
            Replace::new(" ", space.as_str())
                .map_err(|e| TokenizerError::Build(e.to_string()))?
                .into(),
        );
        tokenizer
            .with_normalizer(Some(NormalizerSequence::new(normalizers)))
            .map_err(|e| TokenizerError::Build(e.to_string()))?;

        let mut decoders: Vec<DecoderWrapper> = vec![
            tokenizers::decoders::DecoderWrapper::Replace(
                Replace::new(space.as_str(), " ")
                    .map_err(|e| TokenizerError::Build(e.to_string()))?,
            ),
            ByteFallback::new().into(),
            Fuse::new().into(),
        ];
        if self.add_space_prefix {
            decoders.push(Strip::new(' ', 1, 0).into());
        }
        tokenizer.with_decoder(Some(DecoderSequence::new(decoders)));

        // Special tokens are matched in the raw text, before the normalizer (as llama.cpp
        // partitions the text before escaping spaces), so each stretch of text after one
        // gets its own space prefix, as in llama.cpp.
        let specials = self.special_ids();
        tokenizer
            .add_special_tokens(
                specials
                    .iter()
                    .map(|&i| AddedToken::from(self.tokens[i as usize].clone(), true)),
            )
            .map_err(|e| TokenizerError::Build(e.to_string()))?;
        // User-defined tokens are matched whole too, but are text: kept when decoding.
        let user: Vec<AddedToken> = self
            .types
            .iter()
            .enumerate()
            .filter(|(i, &t)| t == token_type::USER_DEFINED && !specials.contains(&(*i as u32)))
            .map(|(i, _)| AddedToken::from(self.tokens[i].clone(), false).normalized(false))
            .collect();
        if !user.is_empty() {
            tokenizer
                .add_tokens(user)
                .map_err(|e| TokenizerError::Build(e.to_string()))?;
        }

        if let Some(post) = self.post_processor()? {
            tokenizer.with_post_processor(Some(post));
        }
        Ok(tokenizer)
    }

    /// bos/eos added by `encode(text, true)` as the GGUF asks (llama.cpp's `add_special`).
    fn post_processor(&self) -> Result<Option<TemplateProcessing>, TokenizerError> {
        let bos = self.bos.filter(|_| self.add_bos);
        let eos = self.eos.filter(|_| self.add_eos);
        if bos.is_none() && eos.is_none() {
            return Ok(None);
        }
        let name = |id: u32| self.tokens[id as usize].clone();
        let mut single = Vec::new();
        let mut pair = Vec::new();
        let mut specials = Vec::new();
        if let Some(b) = bos {
            single.push(name(b));
            pair.push(format!("{}:0", name(b)));
            specials.push((name(b), b));
        }
        single.push("$A".to_string());
        pair.push("$A:0".to_string());
        if let Some(e) = eos {
            single.push(name(e));
            pair.push(format!("{}:0", name(e)));
            specials.push((name(e), e));
        }
        if let Some(b) = bos {
            pair.push(format!("{}:1", name(b)));
        }
        pair.push("$B:1".to_string());
        if let Some(e) = eos {
            pair.push(format!("{}:1", name(e)));
        }
        specials.dedup();
        TemplateProcessing::builder()
            .try_single(single)
            .and_then(|b| b.try_pair(pair))
            .map_err(|e| TokenizerError::Build(format!("bos/eos template: {e}")))?
            .special_tokens(specials)
            .build()
            .map(Some)
            .map_err(|e| TokenizerError::Build(format!("bos/eos template: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cmp::Ordering;
    use std::collections::BinaryHeap;
    use std::path::{Path, PathBuf};

    /// Writes `metadata` as a GGUF (no tensors) and reads it back, as a model file is read.
    fn gguf(metadata: Vec<(&str, Value)>) -> gguf_file::Content {
        let metadata: Vec<(&str, &Value)> = metadata.iter().map(|(k, v)| (*k, v)).collect();
        let mut bytes = std::io::Cursor::new(Vec::new());
        gguf_file::write(&mut bytes, &metadata, &[]).unwrap();
        bytes.set_position(0);
        gguf_file::Content::read(&mut bytes).unwrap()
    }

    fn strings(items: &[String]) -> Value {
        Value::Array(items.iter().map(|s| Value::String(s.clone())).collect())
    }

    /// A SentencePiece vocabulary: <unk> <s> </s>, the 256 byte tokens, then `pieces`
    /// (text, score, type).
    fn spm(pieces: &[(&str, f32, i32)], add_space_prefix: Option<bool>) -> gguf_file::Content {
        let mut all: Vec<(String, f32, i32)> = vec![
            ("<unk>".into(), 0.0, token_type::UNKNOWN),
            ("<s>".into(), 0.0, token_type::CONTROL),
            ("</s>".into(), 0.0, token_type::CONTROL),
        ];
        all.extend((0..=255u8).map(|b| (format!("<0x{b:02X}>"), 0.0, token_type::BYTE)));
        all.extend(pieces.iter().map(|&(t, s, k)| (t.to_string(), s, k)));
        let tokens: Vec<String> = all.iter().map(|p| p.0.clone()).collect();
        let mut metadata = vec![
            ("tokenizer.ggml.model", Value::String("llama".into())),
            ("tokenizer.ggml.tokens", strings(&tokens)),
            (
                "tokenizer.ggml.scores",
                Value::Array(all.iter().map(|p| Value::F32(p.1)).collect()),
            ),
            (
                "tokenizer.ggml.token_type",
                Value::Array(all.iter().map(|p| Value::I32(p.2)).collect()),
            ),
            ("tokenizer.ggml.unknown_token_id", Value::U32(0)),
            ("tokenizer.ggml.bos_token_id", Value::U32(1)),
            ("tokenizer.ggml.eos_token_id", Value::U32(2)),
        ];
        if let Some(flag) = add_space_prefix {
            metadata.push(("tokenizer.ggml.add_space_prefix", Value::Bool(flag)));
        }
        gguf(metadata)
    }

    fn pieces(tokenizer: &Tokenizer, text: &str) -> Vec<String> {
        let ids = tokenizer.encode(text, false).unwrap().get_ids().to_vec();
        ids.iter()
            .map(|&i| tokenizer.id_to_token(i).unwrap())
            .collect()
    }

    fn ids(tokenizer: &Tokenizer, text: &str) -> Vec<u32> {
        tokenizer.encode(text, false).unwrap().get_ids().to_vec()
    }

    fn decode(tokenizer: &Tokenizer, ids: &[u32]) -> String {
        tokenizer.decode(ids, false).unwrap()
    }

    const ABC: [(&str, f32, i32); 4] = [
        ("\u{2581}", -1.0, token_type::NORMAL),
        ("a", -2.0, token_type::NORMAL),
        ("b", -3.0, token_type::NORMAL),
        ("c", -4.0, token_type::NORMAL),
    ];

    fn with(extra: &[(&'static str, f32, i32)]) -> Vec<(&'static str, f32, i32)> {
        ABC.iter().chain(extra).copied().collect()
    }

    #[test]
    fn pieces_merge_in_order_of_the_merged_piece_score() {
        // "bc" outscores "ab": a + bc.
        let bc_first = spm(&with(&[("ab", -20.0, 1), ("bc", -10.0, 1)]), None);
        let t = tokenizer_from_gguf(&bc_first).unwrap();
        assert_eq!(pieces(&t, "abc"), ["▁", "a", "bc"]);
        // The other way round: ab + c.
        let ab_first = spm(&with(&[("ab", -10.0, 1), ("bc", -20.0, 1)]), None);
        let t = tokenizer_from_gguf(&ab_first).unwrap();
        assert_eq!(pieces(&t, "abc"), ["▁", "ab", "c"]);
        // Merges continue from merged pieces, and the prefix merges with the word.
        let longer = spm(
            &with(&[
                ("ab", -10.0, 1),
                ("abc", -11.0, 1),
                ("▁abc", -12.0, 1),
                ("▁a", -30.0, 1),
            ]),
            None,
        );
        let t = tokenizer_from_gguf(&longer).unwrap();
        assert_eq!(pieces(&t, "abc abc"), ["▁abc", "▁abc"]);
        assert_eq!(pieces(&t, "ab"), ["▁", "ab"]);
        assert_eq!(pieces(&t, "a"), ["▁a"]);
        // The same as llama.cpp's algorithm on these vocabularies.
        for content in [&bc_first, &ab_first, &longer] {
            let vocab = SpmVocab::from_gguf(content).unwrap();
            let t = vocab.tokenizer().unwrap();
            for text in ["abc", "abc abc", "cba  abcab", "aaa bbb ccc", ""] {
                assert_eq!(ids(&t, text), llama_cpp_spm(&vocab, text), "{text:?}");
            }
        }
    }

    #[test]
    fn characters_without_a_piece_fall_back_to_bytes() {
        let t = tokenizer_from_gguf(&spm(&ABC, None)).unwrap();
        // ا is D8 A7, ب is D8 A8 in UTF-8.
        assert_eq!(
            pieces(&t, "اب a"),
            ["▁", "<0xD8>", "<0xA7>", "<0xD8>", "<0xA8>", "▁", "a"]
        );
        assert_eq!(pieces(&t, "\n"), ["▁", "<0x0A>"]);
        // Four-byte characters too, and the bytes decode back to the text.
        let text = "ab 😀 ابجد\n";
        let ids = ids(&t, text);
        assert_eq!(ids.len(), 1 + 2 + 1 + 4 + 1 + 8 + 1);
        assert_eq!(decode(&t, &ids), text);
        assert_eq!(
            ids,
            llama_cpp_spm(&SpmVocab::from_gguf(&spm(&ABC, None)).unwrap(), text)
        );
    }

    #[test]
    fn the_space_prefix_follows_add_space_prefix() {
        let vocab = with(&[("▁a", -5.0, 1)]);
        for (flag, expected, spaced) in [
            (None, vec!["▁a", "b"], vec!["▁", "▁a"]),
            (Some(true), vec!["▁a", "b"], vec!["▁", "▁a"]),
            (Some(false), vec!["a", "b"], vec!["▁a"]),
        ] {
            let content = spm(&vocab, flag);
            let t = tokenizer_from_gguf(&content).unwrap();
            assert_eq!(pieces(&t, "ab"), expected, "add_space_prefix {flag:?}");
            assert_eq!(pieces(&t, " a"), spaced, "add_space_prefix {flag:?}");
            // Decoding gives the text back: the prefix, when added, is stripped.
            for text in ["ab", " a", "a b  c "] {
                assert_eq!(
                    decode(&t, &ids(&t, text)),
                    text,
                    "add_space_prefix {flag:?}"
                );
            }
            assert_eq!(
                SpmVocab::from_gguf(&content).unwrap().add_space_prefix,
                flag != Some(false)
            );
        }
    }

    #[test]
    fn control_and_user_defined_tokens_are_matched_whole() {
        let content = spm(
            &with(&[
                ("<|im_start|>", 0.0, token_type::CONTROL),
                ("<|im_end|>", 0.0, token_type::CONTROL),
                ("<sep>", 0.0, token_type::USER_DEFINED),
                ("<", -50.0, 1),
                ("|", -51.0, 1),
            ]),
            None,
        );
        let vocab = SpmVocab::from_gguf(&content).unwrap();
        let t = vocab.tokenizer().unwrap();
        let text = "<|im_start|>ab<sep>c<|im_end|>";
        // Each stretch of text after a special token gets its own prefix, as in llama.cpp.
        assert_eq!(
            pieces(&t, text),
            [
                "<|im_start|>",
                "▁",
                "a",
                "b",
                "<sep>",
                "▁",
                "c",
                "<|im_end|>"
            ]
        );
        assert_eq!(ids(&t, text), llama_cpp_spm(&vocab, text));
        let got = ids(&t, text);
        assert_eq!(t.token_to_id("<|im_end|>"), Some(got[got.len() - 1]));
        // Control tokens are skipped when asked, user-defined ones are text.
        assert_eq!(t.decode(&got, true).unwrap(), "ab<sep> c");
        assert_eq!(
            t.decode(&got, false).unwrap(),
            "<|im_start|> ab<sep> c<|im_end|>"
        );
        // A lone "<" is a normal piece, not the start of a special token.
        assert_eq!(pieces(&t, "a<b"), ["▁", "a", "<", "b"]);
        // bos is added when asked for, as the GGUF's add_bos_token (default true) says.
        let with_bos = t.encode("ab", true).unwrap().get_ids().to_vec();
        assert_eq!(with_bos[0], 1);
        assert_eq!(&with_bos[1..], &ids(&t, "ab")[..]);
    }

    #[test]
    fn equal_scores_are_where_it_can_differ_from_llama_cpp() {
        // llama.cpp merges equal-scoring pieces leftmost first; a merge list has to rank
        // them, here in id order. Real SentencePiece models give each merged piece its
        // own score, so this needs a made-up vocabulary.
        let content = spm(&with(&[("bc", 0.0, 1), ("ab", 0.0, 1)]), Some(false));
        let vocab = SpmVocab::from_gguf(&content).unwrap();
        let t = vocab.tokenizer().unwrap();
        assert_eq!(pieces(&t, "abc"), ["a", "bc"]);
        let llama: Vec<String> = llama_cpp_spm(&vocab, "abc")
            .iter()
            .map(|&i| vocab.tokens[i as usize].clone())
            .collect();
        assert_eq!(llama, ["ab", "c"]);
    }

    #[test]
    fn other_vocabularies_are_refused_by_name() {
        for (model, word) in [("bert", "WordPiece"), ("t5", "unigram"), ("rwkv", "RWKV")] {
            let content = gguf(vec![("tokenizer.ggml.model", Value::String(model.into()))]);
            let err = tokenizer_from_gguf(&content).unwrap_err();
            let text = err.to_string();
            assert!(matches!(err, TokenizerError::Unsupported { .. }), "{text}");
            assert!(
                text.contains(&format!("`{model}`")) && text.contains(word),
                "{text}"
            );
            assert!(text.contains("gpt2") && text.contains("llama"), "{text}");
        }
        let none = gguf(vec![(
            "general.architecture",
            Value::String("llama".into()),
        )]);
        assert_eq!(
            tokenizer_from_gguf(&none).unwrap_err(),
            TokenizerError::Missing("tokenizer.ggml.model")
        );
        let no_scores = gguf(vec![
            ("tokenizer.ggml.model", Value::String("llama".into())),
            ("tokenizer.ggml.tokens", strings(&["a".to_string()])),
        ]);
        let err = tokenizer_from_gguf(&no_scores).unwrap_err();
        assert_eq!(err, TokenizerError::Missing("tokenizer.ggml.scores"));
        assert!(err.to_string().contains("tokenizer.ggml.scores"));
        let no_merges = gguf(vec![
            ("tokenizer.ggml.model", Value::String("gpt2".into())),
            ("tokenizer.ggml.tokens", strings(&["a".to_string()])),
        ]);
        assert_eq!(
            tokenizer_from_gguf(&no_merges).unwrap_err(),
            TokenizerError::Missing("tokenizer.ggml.merges")
        );
        let short_scores = gguf(vec![
            ("tokenizer.ggml.model", Value::String("llama".into())),
            (
                "tokenizer.ggml.tokens",
                strings(&["a".to_string(), "b".to_string()]),
            ),
            ("tokenizer.ggml.scores", Value::Array(vec![Value::F32(0.0)])),
        ]);
        assert!(matches!(
            tokenizer_from_gguf(&short_scores).unwrap_err(),
            TokenizerError::Malformed {
                key: "tokenizer.ggml.scores",
                ..
            }
        ));
    }

    #[test]
    fn gpt2_control_and_user_defined_tokens_encode_to_one_id() {
        use tokenizers::pre_tokenizers::byte_level::ByteLevel;
        let mut alphabet: Vec<String> = ByteLevel::alphabet()
            .into_iter()
            .map(String::from)
            .collect();
        alphabet.sort();
        let mut tokens = alphabet.clone();
        let mut types = vec![token_type::NORMAL; tokens.len()];
        for (t, kind) in [
            ("he", token_type::NORMAL),
            ("ll", token_type::NORMAL),
            ("hell", token_type::NORMAL),
            ("<|im_start|>", token_type::CONTROL),
            ("<|im_end|>", token_type::CONTROL),
            ("<|eot_id|>", token_type::CONTROL),
            ("<|start_header_id|>", token_type::CONTROL),
            ("<tool_call>", token_type::USER_DEFINED),
        ] {
            tokens.push(t.to_string());
            types.push(kind);
        }
        let merges: Vec<String> = ["h e", "l l", "he ll"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let content = gguf(vec![
            ("tokenizer.ggml.model", Value::String("gpt2".into())),
            ("tokenizer.ggml.pre", Value::String("qwen2".into())),
            ("tokenizer.ggml.tokens", strings(&tokens)),
            ("tokenizer.ggml.merges", strings(&merges)),
            (
                "tokenizer.ggml.token_type",
                Value::Array(types.iter().map(|&t| Value::I32(t)).collect()),
            ),
        ]);
        let t = tokenizer_from_gguf(&content).unwrap();
        let id = |s: &str| tokens.iter().position(|t| t == s).unwrap() as u32;
        let text = "<|start_header_id|>hello<|eot_id|><|im_start|>user\n<tool_call>x<|im_end|>";
        let got = ids(&t, text);
        for marker in [
            "<|start_header_id|>",
            "<|eot_id|>",
            "<|im_start|>",
            "<tool_call>",
            "<|im_end|>",
        ] {
            assert_eq!(
                got.iter().filter(|&&i| i == id(marker)).count(),
                1,
                "{marker} in {got:?}"
            );
        }
        assert_eq!(&got[..3], &[id("<|start_header_id|>"), id("hell"), id("o")]);
        assert_eq!(decode(&t, &got), text);
        assert_eq!(t.decode(&got, true).unwrap(), "hellouser\nx");
    }

    fn fixture_dir() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/gguf_tokenizer")
    }

    #[derive(serde::Deserialize)]
    struct Reference {
        gguf: String,
        cases: Vec<Case>,
        special_cases: Vec<Case>,
    }

    #[derive(serde::Deserialize)]
    struct Case {
        text: String,
        #[serde(default)]
        sentencepiece: Option<Vec<u32>>,
        llama_cpp: Option<Vec<u32>>,
    }

    fn fixture() -> (Reference, gguf_file::Content) {
        let dir = fixture_dir();
        let reference: Reference =
            serde_json::from_str(&std::fs::read_to_string(dir.join("reference.json")).unwrap())
                .unwrap();
        let mut file = std::fs::File::open(dir.join(&reference.gguf)).unwrap();
        let content = gguf_file::Content::read(&mut file).unwrap();
        (reference, content)
    }

    #[test]
    fn a_trained_sentencepiece_model_tokenizes_as_sentencepiece_and_llama_cpp_do() {
        let (reference, content) = fixture();
        let vocab = SpmVocab::from_gguf(&content).unwrap();
        assert_eq!(vocab.tokens.len(), 1000);
        assert!(vocab.add_space_prefix);
        let t = tokenizer_from_gguf(&content).unwrap();
        let (mut spm_agree, mut llama_agree, mut llama_cases) = (0, 0, 0);
        for case in &reference.cases {
            let got = ids(&t, &case.text);
            assert_eq!(
                Some(&got),
                case.sentencepiece.as_ref(),
                "sentencepiece: {:?}",
                case.text
            );
            spm_agree += 1;
            if let Some(llama) = &case.llama_cpp {
                llama_cases += 1;
                assert_eq!(&got, llama, "llama.cpp: {:?}", case.text);
                llama_agree += 1;
            }
            assert_eq!(
                got,
                llama_cpp_spm(&vocab, &case.text),
                "port: {:?}",
                case.text
            );
            assert_eq!(decode(&t, &got), case.text);
        }
        for case in &reference.special_cases {
            let got = ids(&t, &case.text);
            if let Some(llama) = &case.llama_cpp {
                llama_cases += 1;
                assert_eq!(&got, llama, "llama.cpp: {:?}", case.text);
                llama_agree += 1;
            }
            assert_eq!(
                got,
                llama_cpp_spm(&vocab, &case.text),
                "port: {:?}",
                case.text
            );
        }
        println!(
            "sentencepiece {spm_agree}/{} sentences, llama.cpp {llama_agree}/{llama_cases}",
            reference.cases.len()
        );
        assert!(spm_agree >= 20);
    }

    #[test]
    fn arabic_english_and_digits_round_trip() {
        let (_, mut content) = fixture();
        let texts = [
            "الوزير أعلن الميزانية 2024 يوم الأحد (The minister announced the budget).",
            "  فقرة\nجديدة 😀 x1 y22 z333  ",
            "Numbers ١٢٣ and 456, كَتَبَ",
        ];
        for flag in [true, false] {
            content
                .metadata
                .insert(KEY_SPACE_PREFIX.to_string(), Value::Bool(flag));
            let vocab = SpmVocab::from_gguf(&content).unwrap();
            let t = vocab.tokenizer().unwrap();
            for text in texts {
                let got = ids(&t, text);
                assert_eq!(decode(&t, &got), text, "add_space_prefix {flag}");
                assert_eq!(
                    got,
                    llama_cpp_spm(&vocab, text),
                    "add_space_prefix {flag}: {text:?}"
                );
            }
        }
    }

    #[test]
    fn random_text_segments_as_llama_cpp_does() {
        let (_, content) = fixture();
        let vocab = SpmVocab::from_gguf(&content).unwrap();
        let t = vocab.tokenizer().unwrap();
        // Characters of the vocabulary's own pieces, spaces, and a few no piece has.
        let mut alphabet: Vec<char> = vocab
            .tokens
            .iter()
            .zip(&vocab.types)
            .filter(|(_, &k)| k == token_type::NORMAL)
            .flat_map(|(t, _)| t.chars())
            .filter(|&c| c != SPACE)
            .collect();
        alphabet.sort_unstable();
        alphabet.dedup();
        alphabet.extend([' ', ' ', ' ', ' ', '\n', '😀', 'ژ', '中']);
        let pieces_text: Vec<&str> = vocab
            .tokens
            .iter()
            .zip(&vocab.types)
            .filter(|(_, &k)| k == token_type::NORMAL)
            .map(|(t, _)| t.as_str())
            .collect();
        let mut state = 0x2545_f491_4f6c_dd1d_u64;
        let mut next = |n: usize| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state % n as u64) as usize
        };
        let (mut same, total) = (0usize, 3000usize);
        for _ in 0..total {
            let mut text = String::new();
            for _ in 0..1 + next(12) {
                if next(2) == 0 {
                    text.push(alphabet[next(alphabet.len())]);
                } else {
                    text.push_str(&pieces_text[next(pieces_text.len())].replace(SPACE, " "));
                }
            }
            let got = ids(&t, &text);
            let want = llama_cpp_spm(&vocab, &text);
            assert_eq!(got, want, "{text:?}");
            same += 1;
        }
        println!("random texts: {same}/{total} the same as llama.cpp's algorithm");
    }

    #[test]
    fn the_default_qwen_model_tokenizes_as_before() {
        let home = std::env::var_os("TARJAMA_HOME")
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/tarjama")));
        let Some(path) = home.map(|h| h.join("models/qwen2.5-coder-1.5b-instruct-q4_k_m.gguf"))
        else {
            println!("no HOME: skipped");
            return;
        };
        if !path.exists() {
            println!("{}: missing, skipped", path.display());
            return;
        }
        let content = gguf_file::Content::read(&mut std::fs::File::open(&path).unwrap()).unwrap();
        let ours = tokenizer_from_gguf(&content).unwrap();
        let candle = Tokenizer::from_gguf(&content).unwrap();
        let im_start = ours.token_to_id("<|im_start|>").unwrap();
        let im_end = ours.token_to_id("<|im_end|>").unwrap();
        for text in [
            "<|im_start|>system\nYou translate Arabic to English.<|im_end|>\n<|im_start|>user\nأعلن الوزير الميزانية الجديدة لعام 2025.<|im_end|>\n<|im_start|>assistant\n",
            "The minister announced the new budget.",
            "اللجنة ناقشت التقرير السنوي<|im_end|>",
        ] {
            let got = ids(&ours, text);
            assert_eq!(got, ids(&candle, text), "{text:?}");
            assert_eq!(
                got.iter().filter(|&&i| i == im_end).count(),
                text.matches("<|im_end|>").count()
            );
            assert_eq!(
                got.iter().filter(|&&i| i == im_start).count(),
                text.matches("<|im_start|>").count()
            );
            assert_eq!(decode(&ours, &got), text);
        }
    }

    /// llama.cpp's SentencePiece tokenizer (`llama_vocab::impl::tokenize` for
    /// LLAMA_VOCAB_TYPE_SPM with parse_special, and `llm_tokenizer_spm_session`), written
    /// out directly as the reference the `tokenizers` pipeline is checked against.
    fn llama_cpp_spm(vocab: &SpmVocab, text: &str) -> Vec<u32> {
        let ids = vocab.ids();
        // Control, user-defined and unknown tokens split the text, longest first.
        let mut specials: Vec<u32> = (0..vocab.tokens.len() as u32)
            .filter(|&i| {
                matches!(
                    vocab.types[i as usize],
                    token_type::CONTROL | token_type::USER_DEFINED | token_type::UNKNOWN
                )
            })
            .collect();
        specials.sort_by_key(|&i| std::cmp::Reverse(vocab.tokens[i as usize].len()));
        enum Fragment<'a> {
            Text(&'a str),
            Token(u32),
        }
        let mut fragments = vec![Fragment::Text(text)];
        for &special in &specials {
            let pattern = vocab.tokens[special as usize].as_str();
            if pattern.is_empty() {
                continue;
            }
            let mut split = Vec::new();
            for fragment in fragments {
                match fragment {
                    Fragment::Text(mut rest) => {
                        while let Some(at) = rest.find(pattern) {
                            if at > 0 {
                                split.push(Fragment::Text(&rest[..at]));
                            }
                            split.push(Fragment::Token(special));
                            rest = &rest[at + pattern.len()..];
                        }
                        if !rest.is_empty() {
                            split.push(Fragment::Text(rest));
                        }
                    }
                    token => split.push(token),
                }
            }
            fragments = split;
        }
        let mut out = Vec::new();
        for fragment in fragments {
            match fragment {
                Fragment::Token(id) => out.push(id),
                Fragment::Text(raw) => {
                    // Every stretch of text follows the start or a special token.
                    let prefix = if vocab.add_space_prefix { " " } else { "" };
                    let escaped = format!("{prefix}{raw}").replace(' ', "\u{2581}");
                    spm_session(vocab, &ids, &escaped, &mut out);
                }
            }
        }
        out
    }

    struct Bigram {
        left: usize,
        right: usize,
        score: f32,
        size: usize,
    }
    impl PartialEq for Bigram {
        fn eq(&self, other: &Self) -> bool {
            self.cmp(other) == Ordering::Equal
        }
    }
    impl Eq for Bigram {}
    impl PartialOrd for Bigram {
        fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
            Some(self.cmp(other))
        }
    }
    impl Ord for Bigram {
        // Highest score first, then leftmost.
        fn cmp(&self, other: &Self) -> Ordering {
            self.score
                .total_cmp(&other.score)
                .then(other.left.cmp(&self.left))
        }
    }

    fn spm_session(vocab: &SpmVocab, ids: &HashMap<&str, u32>, text: &str, out: &mut Vec<u32>) {
        struct Symbol {
            start: usize,
            n: usize,
            prev: isize,
            next: isize,
        }
        let mut symbols: Vec<Symbol> = Vec::new();
        let starts: Vec<usize> = text.char_indices().map(|(i, _)| i).collect();
        for (k, &start) in starts.iter().enumerate() {
            let end = starts.get(k + 1).copied().unwrap_or(text.len());
            symbols.push(Symbol {
                start,
                n: end - start,
                prev: k as isize - 1,
                next: if end == text.len() {
                    -1
                } else {
                    k as isize + 1
                },
            });
        }
        let mut queue = BinaryHeap::new();
        let try_add =
            |symbols: &Vec<Symbol>, queue: &mut BinaryHeap<Bigram>, left: isize, right: isize| {
                if left < 0 || right < 0 {
                    return;
                }
                let (l, r) = (&symbols[left as usize], &symbols[right as usize]);
                let piece = &text[l.start..l.start + l.n + r.n];
                if let Some(&id) = ids.get(piece) {
                    queue.push(Bigram {
                        left: left as usize,
                        right: right as usize,
                        score: vocab.scores[id as usize],
                        size: piece.len(),
                    });
                }
            };
        for i in 1..symbols.len() {
            try_add(&symbols, &mut queue, i as isize - 1, i as isize);
        }
        while let Some(bigram) = queue.pop() {
            let (ln, rn) = (symbols[bigram.left].n, symbols[bigram.right].n);
            if ln == 0 || rn == 0 || ln + rn != bigram.size {
                continue;
            }
            symbols[bigram.left].n += rn;
            symbols[bigram.right].n = 0;
            let next = symbols[bigram.right].next;
            symbols[bigram.left].next = next;
            if next >= 0 {
                symbols[next as usize].prev = bigram.left as isize;
            }
            let prev = symbols[bigram.left].prev;
            try_add(&symbols, &mut queue, prev, bigram.left as isize);
            try_add(&symbols, &mut queue, bigram.left as isize, next);
        }
        let mut i = if symbols.is_empty() { -1 } else { 0 };
        while i >= 0 {
            let s = &symbols[i as usize];
            let piece = &text[s.start..s.start + s.n];
            match ids.get(piece) {
                Some(&id) => out.push(id),
                None => out.extend(piece.bytes().map(|b| ids[format!("<0x{b:02X}>").as_str()])),
            }
            i = s.next;
        }
    }
}
