//! GGUF files with random weights in the layout llama.cpp writes for each family: tiny
//! ones prove a decoder against a reference implementation without real weights, and
//! real-shape ones measure speed and memory where the real model cannot go.
//!
//! The vocabulary is byte-level (`gpt2`) with no merges: every byte is one token, the
//! rest of the vocabulary pads it to the real size, and the ChatML markers are special
//! tokens, so the file loads and answers prompts like a real model (with random words).

use std::io::{Seek, Write};

use candle_core::quantized::gguf_file::{self, Value};
use candle_core::quantized::{GgmlDType, QTensor};
use candle_core::{Device, Result, Tensor};

/// A decoder family as llama.cpp names its architecture.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arch {
    Qwen2,
    Qwen3,
    Llama,
    Gemma2,
    Gemma3,
}

impl Arch {
    pub const ALL: [Arch; 5] = [
        Arch::Qwen2,
        Arch::Qwen3,
        Arch::Llama,
        Arch::Gemma2,
        Arch::Gemma3,
    ];

    /// `general.architecture` and the prefix of the family's metadata keys.
    pub fn name(self) -> &'static str {
        match self {
            Arch::Qwen2 => "qwen2",
            Arch::Qwen3 => "qwen3",
            Arch::Llama => "llama",
            Arch::Gemma2 => "gemma2",
            Arch::Gemma3 => "gemma3",
        }
    }

    pub fn from_name(name: &str) -> Option<Arch> {
        Arch::ALL.into_iter().find(|a| a.name() == name)
    }
}

/// The dimensions of a model.
#[derive(Debug, Clone, PartialEq)]
pub struct Shape {
    pub hidden: usize,
    pub layers: usize,
    pub heads: usize,
    pub kv_heads: usize,
    pub head_dim: usize,
    pub ffn: usize,
    pub vocab: usize,
    pub context: usize,
    /// Positions a query of a sliding-window layer sees (the Gemma families).
    pub sliding_window: usize,
    /// Standard deviation of the random weights.
    pub std: f32,
    /// How the big matrices are stored (norms and biases stay f32).
    pub quantization: Quantization,
}

/// How the weight matrices of a random model are quantized.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Quantization {
    /// Like a Q4_K_M file: Q4_K, with Q6_K for the value and down projections and the
    /// output layer.
    Q4KM,
    /// Every matrix Q8_0.
    Q8,
}

impl Shape {
    /// A two-layer model small enough to build in a test, with grouped-query attention.
    pub fn tiny() -> Shape {
        Shape {
            hidden: 256,
            layers: 2,
            heads: 4,
            kv_heads: 2,
            head_dim: 64,
            ffn: 512,
            vocab: 320,
            context: 128,
            sliding_window: 8,
            std: 0.5,
            quantization: Quantization::Q4KM,
        }
    }

    /// The dimensions of a real model of `arch`, by its usual name, for measuring speed
    /// and memory; `None` for a name not known.
    pub fn real(name: &str) -> Option<(Arch, Shape)> {
        let shape = |hidden, layers, heads, kv_heads, head_dim, ffn, vocab| Shape {
            hidden,
            layers,
            heads,
            kv_heads,
            head_dim,
            ffn,
            vocab,
            context: 8192,
            sliding_window: 4096,
            std: 0.02,
            quantization: Quantization::Q4KM,
        };
        Some(match name {
            "qwen2.5-1.5b" => (Arch::Qwen2, shape(1536, 28, 12, 2, 128, 8960, 151_936)),
            "qwen3-1.7b" => (Arch::Qwen3, shape(2048, 28, 16, 8, 128, 6144, 151_936)),
            "llama-3.2-1b" => (Arch::Llama, shape(2048, 16, 32, 8, 64, 8192, 128_256)),
            "llama-3.2-3b" => (Arch::Llama, shape(3072, 28, 24, 8, 128, 8192, 128_256)),
            "gemma-2-2b" => (Arch::Gemma2, shape(2304, 26, 8, 4, 256, 9216, 256_000)),
            "gemma-3-1b" => (
                Arch::Gemma3,
                Shape {
                    sliding_window: 512,
                    ..shape(1152, 26, 4, 1, 256, 6912, 262_144)
                },
            ),
            _ => return None,
        })
    }

    /// The names [`Shape::real`] knows.
    pub const REAL: [&'static str; 6] = [
        "qwen2.5-1.5b",
        "qwen3-1.7b",
        "llama-3.2-1b",
        "llama-3.2-3b",
        "gemma-2-2b",
        "gemma-3-1b",
    ];
}

/// The ChatML markers every random model's vocabulary ends with.
pub const SPECIAL_TOKENS: [&str; 3] = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"];

/// Writes a GGUF of `arch` with `shape` and weights drawn from `seed`.
pub fn write<W: Write + Seek>(arch: Arch, shape: &Shape, seed: u64, out: &mut W) -> Result<()> {
    let mut rng = Normal::new(seed);
    let tensors = tensors(arch, shape, &mut rng)?;
    let metadata = metadata(arch, shape);
    let metadata: Vec<(&str, &Value)> = metadata.iter().map(|(k, v)| (k.as_str(), v)).collect();
    let tensors: Vec<(&str, &QTensor)> = tensors.iter().map(|(n, t)| (n.as_str(), t)).collect();
    gguf_file::write(out, &metadata, &tensors)
}

/// The weights llama.cpp's converter writes for `arch`, as `(name, tensor)`.
fn tensors(arch: Arch, s: &Shape, rng: &mut Normal) -> Result<Vec<(String, QTensor)>> {
    let (q4, q6) = match s.quantization {
        Quantization::Q4KM => (GgmlDType::Q4K, GgmlDType::Q6K),
        Quantization::Q8 => (GgmlDType::Q8_0, GgmlDType::Q8_0),
    };
    let mut draw = Draw { rng, std: s.std };
    let (q_dim, kv_dim) = (s.heads * s.head_dim, s.kv_heads * s.head_dim);
    // Gemma ties the output layer to the embeddings, which llama.cpp then quantizes as
    // it would the output layer; the others carry their own.
    let tied = matches!(arch, Arch::Gemma2 | Arch::Gemma3);
    // Gemma multiplies its embeddings by sqrt(hidden): drawn that much smaller (as the
    // real ones are), they weigh in the residual stream about as much as what each layer
    // adds instead of drowning it, and the tied output does not just repeat the token.
    let embeddings = if tied {
        let std = s.std / (s.hidden as f32).sqrt();
        Draw { rng: draw.rng, std }.matrix([s.vocab, s.hidden], q6)?
    } else {
        draw.matrix([s.vocab, s.hidden], q4)?
    };
    let mut out = vec![
        ("token_embd.weight".to_string(), embeddings),
        ("output_norm.weight".to_string(), draw.norm(s.hidden)?),
    ];
    if !tied {
        out.push((
            "output.weight".to_string(),
            draw.matrix([s.vocab, s.hidden], q6)?,
        ));
    }
    for i in 0..s.layers {
        let name = |suffix: &str| format!("blk.{i}.{suffix}");
        out.push((name("attn_norm.weight"), draw.norm(s.hidden)?));
        out.push((name("attn_q.weight"), draw.matrix([q_dim, s.hidden], q4)?));
        out.push((name("attn_k.weight"), draw.matrix([kv_dim, s.hidden], q4)?));
        out.push((name("attn_v.weight"), draw.matrix([kv_dim, s.hidden], q6)?));
        out.push((
            name("attn_output.weight"),
            draw.matrix([s.hidden, q_dim], q4)?,
        ));
        out.push((name("ffn_norm.weight"), draw.norm(s.hidden)?));
        out.push((name("ffn_gate.weight"), draw.matrix([s.ffn, s.hidden], q4)?));
        out.push((name("ffn_up.weight"), draw.matrix([s.ffn, s.hidden], q4)?));
        out.push((name("ffn_down.weight"), draw.matrix([s.hidden, s.ffn], q6)?));
        match arch {
            Arch::Qwen2 => {
                out.push((name("attn_q.bias"), draw.vector(q_dim)?));
                out.push((name("attn_k.bias"), draw.vector(kv_dim)?));
                out.push((name("attn_v.bias"), draw.vector(kv_dim)?));
            }
            Arch::Qwen3 => {
                out.push((name("attn_q_norm.weight"), draw.norm(s.head_dim)?));
                out.push((name("attn_k_norm.weight"), draw.norm(s.head_dim)?));
            }
            Arch::Llama => {}
            Arch::Gemma2 => {
                out.push((name("post_attention_norm.weight"), draw.norm(s.hidden)?));
                out.push((name("post_ffw_norm.weight"), draw.norm(s.hidden)?));
            }
            Arch::Gemma3 => {
                out.push((name("attn_q_norm.weight"), draw.norm(s.head_dim)?));
                out.push((name("attn_k_norm.weight"), draw.norm(s.head_dim)?));
                out.push((name("post_attention_norm.weight"), draw.norm(s.hidden)?));
                out.push((name("post_ffw_norm.weight"), draw.norm(s.hidden)?));
            }
        }
    }
    Ok(out)
}

/// Random tensors of a model.
struct Draw<'a> {
    rng: &'a mut Normal,
    std: f32,
}

impl Draw<'_> {
    fn tensor(
        &mut self,
        shape: &[usize],
        std: f32,
        mean: f32,
        dtype: GgmlDType,
    ) -> Result<QTensor> {
        let values = self.rng.take(shape.iter().product(), std, mean);
        QTensor::quantize(&Tensor::from_vec(values, shape, &Device::Cpu)?, dtype)
    }

    /// A weight matrix `(rows, columns)`, quantized. Rows that do not fill whole k-quant
    /// blocks of 256 (Gemma 3 1B's 1152 columns) get the type llama.cpp's quantizer falls
    /// back to.
    fn matrix(&mut self, [rows, columns]: [usize; 2], dtype: GgmlDType) -> Result<QTensor> {
        let dtype = if columns % dtype.block_size() == 0 {
            dtype
        } else {
            match dtype {
                GgmlDType::Q4K => GgmlDType::Q5_0,
                GgmlDType::Q5K => GgmlDType::Q5_1,
                _ => GgmlDType::Q8_0,
            }
        };
        self.tensor(&[rows, columns], self.std, 0.0, dtype)
    }

    /// Norm weights near one, as trained models have them (Gemma's converter adds the
    /// one its norms leave out, so its files hold the same kind of numbers).
    fn norm(&mut self, len: usize) -> Result<QTensor> {
        self.tensor(&[len], 0.1, 1.0, GgmlDType::F32)
    }

    fn vector(&mut self, len: usize) -> Result<QTensor> {
        self.tensor(&[len], self.std, 0.0, GgmlDType::F32)
    }
}

/// The metadata llama.cpp reads for `arch`, and a byte-level vocabulary.
fn metadata(arch: Arch, s: &Shape) -> Vec<(String, Value)> {
    let a = arch.name();
    let u32v = |n: usize| Value::U32(n as u32);
    let mut m = vec![
        ("general.architecture".to_string(), Value::String(a.into())),
        (
            "general.name".to_string(),
            Value::String(format!("random {a}")),
        ),
        (format!("{a}.embedding_length"), u32v(s.hidden)),
        (format!("{a}.block_count"), u32v(s.layers)),
        (format!("{a}.feed_forward_length"), u32v(s.ffn)),
        (format!("{a}.context_length"), u32v(s.context)),
        (format!("{a}.attention.head_count"), u32v(s.heads)),
        (format!("{a}.attention.head_count_kv"), u32v(s.kv_heads)),
        (format!("{a}.attention.key_length"), u32v(s.head_dim)),
        (format!("{a}.attention.value_length"), u32v(s.head_dim)),
        (
            format!("{a}.attention.layer_norm_rms_epsilon"),
            Value::F32(1e-6),
        ),
    ];
    let rope_base = match arch {
        Arch::Qwen2 | Arch::Qwen3 => 1_000_000.0,
        Arch::Llama => 500_000.0,
        Arch::Gemma2 => 10_000.0,
        Arch::Gemma3 => 1_000_000.0,
    };
    m.push((format!("{a}.rope.freq_base"), Value::F32(rope_base)));
    match arch {
        Arch::Gemma2 => {
            m.push((format!("{a}.attn_logit_softcapping"), Value::F32(50.0)));
            m.push((format!("{a}.final_logit_softcapping"), Value::F32(30.0)));
            m.push((
                format!("{a}.attention.sliding_window"),
                u32v(s.sliding_window),
            ));
        }
        Arch::Gemma3 => {
            m.push((
                format!("{a}.attention.sliding_window"),
                u32v(s.sliding_window),
            ));
        }
        _ => {}
    }
    m.extend(vocabulary(s.vocab));
    m
}

/// A byte-level BPE vocabulary of `size` tokens without merges.
fn vocabulary(size: usize) -> Vec<(String, Value)> {
    let mut tokens: Vec<String> = byte_level_alphabet();
    let padding = size.saturating_sub(tokens.len() + SPECIAL_TOKENS.len());
    tokens.extend((0..padding).map(|i| format!("unused{i}")));
    let first_special = tokens.len();
    tokens.extend(SPECIAL_TOKENS.iter().map(|t| t.to_string()));
    let types: Vec<Value> = (0..tokens.len())
        .map(|i| Value::I32(if i >= first_special { 3 } else { 1 }))
        .collect();
    let eos = (first_special + 2) as u32;
    vec![
        (
            "tokenizer.ggml.model".to_string(),
            Value::String("gpt2".into()),
        ),
        (
            "tokenizer.ggml.pre".to_string(),
            Value::String("qwen2".into()),
        ),
        (
            "tokenizer.ggml.tokens".to_string(),
            Value::Array(tokens.into_iter().map(Value::String).collect()),
        ),
        ("tokenizer.ggml.token_type".to_string(), Value::Array(types)),
        (
            "tokenizer.ggml.merges".to_string(),
            Value::Array(Vec::new()),
        ),
        ("tokenizer.ggml.eos_token_id".to_string(), Value::U32(eos)),
        (
            "tokenizer.ggml.bos_token_id".to_string(),
            Value::U32(first_special as u32),
        ),
        (
            "tokenizer.ggml.add_bos_token".to_string(),
            Value::Bool(false),
        ),
    ]
}

/// Normal numbers from a seed, the same on every machine (candle cannot seed its CPU
/// generator).
struct Normal(u64);

impl Normal {
    fn new(seed: u64) -> Self {
        Normal(seed ^ 0x9E37_79B9_7F4A_7C15)
    }

    /// SplitMix64: a uniform number in (0, 1).
    fn uniform(&mut self) -> f64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        ((z >> 11) as f64 + 0.5) / (1u64 << 53) as f64
    }

    /// `count` numbers of mean `mean` and standard deviation `std` (Box–Muller).
    fn take(&mut self, count: usize, std: f32, mean: f32) -> Vec<f32> {
        let mut out = Vec::with_capacity(count + 1);
        while out.len() < count {
            let (u, v) = (self.uniform(), self.uniform());
            let r = (-2.0 * u.ln()).sqrt();
            let angle = std::f64::consts::TAU * v;
            out.push(mean + std * (r * angle.cos()) as f32);
            out.push(mean + std * (r * angle.sin()) as f32);
        }
        out.truncate(count);
        out
    }
}

/// GPT-2's printable stand-ins for the 256 bytes, in byte order.
fn byte_level_alphabet() -> Vec<String> {
    let printable =
        |b: u32| (33..=126).contains(&b) || (161..=172).contains(&b) || (174..=255).contains(&b);
    let mut next = 256;
    (0..256u32)
        .map(|b| {
            let c = if printable(b) {
                b
            } else {
                next += 1;
                next - 1
            };
            char::from_u32(c).map(String::from).unwrap_or_default()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_family_writes_a_gguf_that_reads_back_with_its_tokenizer() {
        for arch in Arch::ALL {
            let mut bytes = std::io::Cursor::new(Vec::new());
            write(arch, &Shape::tiny(), 1, &mut bytes).unwrap();
            bytes.set_position(0);
            let content = gguf_file::Content::read(&mut bytes).unwrap();
            let key = format!("{}.block_count", arch.name());
            assert_eq!(content.metadata[&key].to_u32().unwrap(), 2);
            assert!(content.tensor_infos.contains_key("blk.1.ffn_down.weight"));
            let tokens = content.metadata["tokenizer.ggml.tokens"].to_vec().unwrap();
            assert_eq!(tokens.len(), Shape::tiny().vocab);
        }
        assert_eq!(byte_level_alphabet()[b' ' as usize], "Ġ");
        assert_eq!(byte_level_alphabet()[b'a' as usize], "a");
    }
}
