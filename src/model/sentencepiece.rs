//! SentencePiece `.spm` models read directly: the model protobuf, the normalizer it
//! carries (a precompiled character map plus whitespace rules), and unigram segmentation.
//!
//! Only what OPUS-MT's tokenizers use is supported: unigram models without byte fallback.
//! The behaviour follows Google's `sentencepiece` library (normalizer.cc, unigram_model.cc
//! and the encoder's merging of unknown pieces), because Marian models were trained on
//! exactly that segmentation.

use std::path::Path;

use prost::Message;
use tokenizers::models::unigram::Unigram;

/// The subset of sentencepiece's `ModelProto` this reader needs (field numbers as in
/// sentencepiece_model.proto).
#[derive(Clone, PartialEq, Message)]
struct ModelProto {
    #[prost(message, repeated, tag = "1")]
    pieces: Vec<PieceProto>,
    #[prost(message, optional, tag = "2")]
    trainer_spec: Option<TrainerSpec>,
    #[prost(message, optional, tag = "3")]
    normalizer_spec: Option<NormalizerSpec>,
}

#[derive(Clone, PartialEq, Message)]
struct PieceProto {
    #[prost(string, optional, tag = "1")]
    piece: Option<String>,
    #[prost(float, optional, tag = "2")]
    score: Option<f32>,
    #[prost(int32, optional, tag = "3")]
    kind: Option<i32>,
}

#[derive(Clone, PartialEq, Message)]
struct TrainerSpec {
    #[prost(int32, optional, tag = "3")]
    model_type: Option<i32>,
    #[prost(bool, optional, tag = "24")]
    treat_whitespace_as_suffix: Option<bool>,
    #[prost(bool, optional, tag = "35")]
    byte_fallback: Option<bool>,
}

#[derive(Clone, PartialEq, Message)]
struct NormalizerSpec {
    #[prost(bytes = "vec", optional, tag = "2")]
    precompiled_charsmap: Option<Vec<u8>>,
    #[prost(bool, optional, tag = "3")]
    add_dummy_prefix: Option<bool>,
    #[prost(bool, optional, tag = "4")]
    remove_extra_whitespaces: Option<bool>,
    #[prost(bool, optional, tag = "5")]
    escape_whitespaces: Option<bool>,
}

const PIECE_NORMAL: i32 = 1;
const PIECE_UNKNOWN: i32 = 2;
const PIECE_USER_DEFINED: i32 = 4;
const MODEL_UNIGRAM: i32 = 1;

/// The whitespace marker pieces carry instead of spaces.
pub const SPACE_MARK: char = '\u{2581}';

/// A loaded `.spm` model: normalizes text and cuts it into pieces.
pub struct SentencePiece {
    normalizer: Normalizer,
    unigram: Unigram,
    /// The unknown piece's text (`<unk>`).
    unk_piece: String,
}

impl SentencePiece {
    /// Reads a `.spm` file; the error says what is wrong with it.
    pub fn load(path: &Path) -> Result<Self, String> {
        let bytes = std::fs::read(path).map_err(|e| e.to_string())?;
        Self::from_bytes(&bytes)
    }

    pub fn from_bytes(bytes: &[u8]) -> Result<Self, String> {
        let proto =
            ModelProto::decode(bytes).map_err(|e| format!("not a SentencePiece model ({e})"))?;
        let trainer = proto.trainer_spec.unwrap_or_default();
        if trainer.model_type.unwrap_or(MODEL_UNIGRAM) != MODEL_UNIGRAM {
            return Err("only unigram SentencePiece models are supported".into());
        }
        if trainer.byte_fallback.unwrap_or(false) {
            return Err("SentencePiece byte fallback is not supported".into());
        }
        if trainer.treat_whitespace_as_suffix.unwrap_or(false) {
            return Err("SentencePiece models with whitespace as suffix are not supported".into());
        }
        let spec = proto.normalizer_spec.unwrap_or_default();
        let charsmap = match spec.precompiled_charsmap.as_deref() {
            Some(bytes) if !bytes.is_empty() => Some(CharsMap::parse(bytes)?),
            _ => None,
        };
        let normalizer = Normalizer {
            charsmap,
            add_dummy_prefix: spec.add_dummy_prefix.unwrap_or(true),
            remove_extra_whitespaces: spec.remove_extra_whitespaces.unwrap_or(true),
            escape_whitespaces: spec.escape_whitespaces.unwrap_or(true),
        };

        // Control and unused pieces (<s>, </s>, ...) never match text in sentencepiece, so
        // only normal and user-defined pieces enter the lattice; the unknown piece goes
        // last with a score that no path prefers.
        let mut vocab: Vec<(String, f64)> = Vec::with_capacity(proto.pieces.len());
        let mut unk_piece = None;
        for p in &proto.pieces {
            let piece = p.piece.clone().unwrap_or_default();
            match p.kind.unwrap_or(PIECE_NORMAL) {
                PIECE_NORMAL | PIECE_USER_DEFINED if !piece.is_empty() => {
                    vocab.push((piece, f64::from(p.score.unwrap_or(0.0))))
                }
                PIECE_UNKNOWN => unk_piece = Some(piece),
                _ => {}
            }
        }
        let unk_piece = unk_piece.ok_or("the model has no unknown piece")?;
        if vocab.is_empty() {
            return Err("the model has no pieces".into());
        }
        // The unknown entry is a string normalized text cannot contain, so it is only
        // ever chosen as the stand-in for characters no piece covers.
        let min_score = vocab.iter().map(|(_, s)| *s).fold(f64::INFINITY, f64::min);
        vocab.push(("\u{0}unk\u{0}".into(), min_score));
        let unk_id = vocab.len() - 1;
        let unigram = Unigram::from(vocab, Some(unk_id), false)
            .map_err(|e| format!("cannot build the unigram model: {e}"))?;
        Ok(Self {
            normalizer,
            unigram,
            unk_piece,
        })
    }

    /// The pieces of `text`, as `SentencePieceProcessor.encode(text, out_type=str)` gives
    /// them: runs of characters no piece covers come out as one piece of their own text.
    pub fn encode(&self, text: &str) -> Vec<String> {
        let normalized = self.normalizer.normalize(text);
        if normalized.is_empty() {
            return Vec::new();
        }
        // Unigram::encode fails only without an unknown id, which is always set here.
        self.unigram.encode(&normalized).unwrap_or_default()
    }

    /// The unknown piece's text (`<unk>`), which decodes to " ⁇ ".
    pub fn unk_piece(&self) -> &str {
        &self.unk_piece
    }

    /// Text from pieces, as `decode_pieces` gives it.
    pub fn decode_pieces<S: AsRef<str>>(&self, pieces: &[S]) -> String {
        let mut out = String::new();
        for (i, piece) in pieces.iter().enumerate() {
            let piece = piece.as_ref();
            if piece == self.unk_piece {
                out.push_str(" \u{2047} ");
                continue;
            }
            // The dummy prefix added at encoding is dropped from the first piece.
            let piece = match (i, self.normalizer.add_dummy_prefix) {
                (0, true) => piece.strip_prefix(SPACE_MARK).unwrap_or(piece),
                _ => piece,
            };
            out.extend(piece.chars().map(|c| if c == SPACE_MARK { ' ' } else { c }));
        }
        out
    }
}

/// sentencepiece's normalizer: the character map, then the whitespace rules.
struct Normalizer {
    charsmap: Option<CharsMap>,
    add_dummy_prefix: bool,
    remove_extra_whitespaces: bool,
    escape_whitespaces: bool,
}

impl Normalizer {
    /// The next normalized chunk of `input` and how many bytes of it were consumed.
    fn normalize_prefix<'a>(&'a self, input: &'a str) -> (&'a str, usize) {
        if let Some((replacement, consumed)) =
            self.charsmap.as_ref().and_then(|m| m.longest_match(input))
        {
            return (replacement, consumed);
        }
        let len = input.chars().next().map_or(0, char::len_utf8);
        (&input[..len], len)
    }

    fn normalize(&self, text: &str) -> String {
        let space = if self.escape_whitespaces {
            SPACE_MARK
        } else {
            ' '
        };
        let mut input = text;
        if self.remove_extra_whitespaces {
            while !input.is_empty() {
                let (chunk, consumed) = self.normalize_prefix(input);
                if chunk != " " {
                    break;
                }
                input = &input[consumed..];
            }
        }
        let mut out = String::with_capacity(text.len() + 3);
        if input.is_empty() {
            return out;
        }
        if self.add_dummy_prefix {
            out.push(space);
        }
        let mut prev_is_space = self.remove_extra_whitespaces;
        while !input.is_empty() {
            let (mut chunk, consumed) = self.normalize_prefix(input);
            if prev_is_space {
                chunk = chunk.trim_start_matches(' ');
            }
            if !chunk.is_empty() {
                out.extend(chunk.chars().map(|c| if c == ' ' { space } else { c }));
                prev_is_space = chunk.ends_with(' ');
            }
            input = &input[consumed..];
            if !self.remove_extra_whitespaces {
                prev_is_space = false;
            }
        }
        if self.remove_extra_whitespaces {
            while out.ends_with(space) {
                out.pop();
            }
        }
        out
    }
}

/// sentencepiece's precompiled character map: a darts-clone double array over source
/// byte strings whose values index NUL-terminated replacements.
struct CharsMap {
    units: Vec<u32>,
    replacements: Vec<u8>,
}

impl CharsMap {
    fn parse(bytes: &[u8]) -> Result<Self, String> {
        let bad = || "the precompiled character map is malformed".to_string();
        let trie_len = bytes
            .get(..4)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize)
            .ok_or_else(bad)?;
        let trie = bytes.get(4..4 + trie_len).ok_or_else(bad)?;
        if trie_len % 4 != 0 || trie.is_empty() {
            return Err(bad());
        }
        let units = trie
            .chunks_exact(4)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect();
        Ok(Self {
            units,
            replacements: bytes[4 + trie_len..].to_vec(),
        })
    }

    /// The replacement for the longest source string `input` starts with, and that
    /// string's length in bytes.
    fn longest_match<'a>(&'a self, input: &str) -> Option<(&'a str, usize)> {
        let unit = |pos: usize| self.units.get(pos).copied();
        let offset = |u: u32| ((u >> 10) << ((u & (1 << 9)) >> 6)) as usize;
        let mut best = None;
        let mut pos = offset(unit(0)?);
        for (i, &byte) in input.as_bytes().iter().enumerate() {
            if byte == 0 {
                break;
            }
            pos ^= byte as usize;
            let u = unit(pos)?;
            if (u & ((1 << 31) | 0xFF)) != u32::from(byte) {
                break;
            }
            pos ^= offset(u);
            if (u >> 8) & 1 == 1 {
                let value = (unit(pos)? & ((1 << 31) - 1)) as usize;
                best = Some((value, i + 1));
            }
        }
        let (value, consumed) = best?;
        // A match that ends inside a character cannot be applied to text.
        if !input.is_char_boundary(consumed) {
            return None;
        }
        let tail = self.replacements.get(value..)?;
        let end = tail.iter().position(|&b| b == 0).unwrap_or(tail.len());
        let replacement = std::str::from_utf8(&tail[..end]).ok()?;
        Some((replacement, consumed))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn normalizer(remove_extra_whitespaces: bool) -> Normalizer {
        Normalizer {
            charsmap: None,
            add_dummy_prefix: true,
            remove_extra_whitespaces,
            escape_whitespaces: true,
        }
    }

    #[test]
    fn whitespace_rules_follow_sentencepiece() {
        let n = normalizer(true);
        assert_eq!(n.normalize("  hello   world  "), "▁hello▁world");
        assert_eq!(n.normalize("   "), "");
        assert_eq!(n.normalize(""), "");
        let n = normalizer(false);
        assert_eq!(n.normalize(" a  b "), "▁▁a▁▁b▁");
    }

    #[test]
    fn garbage_is_not_a_model() {
        assert!(SentencePiece::from_bytes(b"\xff\xff\xff\xff not protobuf").is_err());
        assert!(SentencePiece::from_bytes(b"").is_err());
    }
}
