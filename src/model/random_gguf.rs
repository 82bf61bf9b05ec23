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

/// What a real model has beyond its family and dimensions.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Extras {
    /// No `output.weight`: the output layer is the embeddings (then stored Q6_K in a
    /// Q4_K_M file, as llama.cpp's quantizer does).
    pub tied_output: bool,
    /// Llama 3.1's long-context frequency factors, stored as `rope_freqs.weight`, for
    /// this scaling factor (8 for Llama 3.1, 32 for Llama 3.2).
    pub llama3_rope_factor: Option<f32>,
    /// A chat template and the special tokens it writes, instead of bare ChatML markers.
    pub chat: Option<Chat>,
}

/// What a real instruct model's vocabulary adds for its chat template.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Chat {
    /// `tokenizer.chat_template`.
    pub template: String,
    /// Control tokens appended to the vocabulary, in order.
    pub specials: Vec<String>,
    /// Which of `specials` are BOS and EOS.
    pub bos: String,
    pub eos: String,
    /// `tokenizer.ggml.add_bos_token`.
    pub add_bos: bool,
}

impl Extras {
    /// What the real model [`Shape::real`] names has (all of them tie their output
    /// layer to the embeddings; Llama 3.2 has frequency factors).
    pub fn real(name: &str) -> Extras {
        Extras {
            tied_output: Shape::REAL.contains(&name),
            llama3_rope_factor: name.starts_with("llama-3.2").then_some(32.0),
            chat: None,
        }
    }
}

/// Llama 3's frequency factors as llama.cpp's converter computes them from the
/// checkpoint's `rope_scaling` (low 1, high 4, original context 8192): 1 for short
/// wavelengths, `factor` for long ones, interpolated between.
pub fn llama3_rope_freqs(head_dim: usize, base: f32, factor: f32) -> Vec<f32> {
    let (low, high, original) = (1.0f64, 4.0f64, 8192.0f64);
    let (low_wavelen, high_wavelen) = (original / low, original / high);
    (0..head_dim)
        .step_by(2)
        .map(|i| {
            let freq = 1.0 / (base as f64).powf(i as f64 / head_dim as f64);
            let wavelen = std::f64::consts::TAU / freq;
            if wavelen < high_wavelen {
                1.0
            } else if wavelen > low_wavelen {
                factor
            } else {
                let smooth = (original / wavelen - low) / (high - low);
                (1.0 / ((1.0 - smooth) / factor as f64 + smooth)) as f32
            }
        })
        .collect()
}

/// The ChatML markers every random model's vocabulary ends with.
pub const SPECIAL_TOKENS: [&str; 3] = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"];

/// Writes a GGUF of `arch` with `shape` and weights drawn from `seed`.
pub fn write<W: Write + Seek>(arch: Arch, shape: &Shape, seed: u64, out: &mut W) -> Result<()> {
    write_with(arch, shape, Extras::default(), seed, out)
}

/// Writes a GGUF of `arch` with `shape`, `extras` and weights drawn from `seed`.
pub fn write_with<W: Write + Seek>(
    arch: Arch,
    shape: &Shape,
    extras: Extras,
    seed: u64,
    out: &mut W,
) -> Result<()> {
    let mut rng = Normal::new(seed);
    let metadata = metadata(arch, shape, extras.chat.as_ref());
    let tensors = tensors(arch, shape, extras, &mut rng)?;
    let metadata: Vec<(&str, &Value)> = metadata.iter().map(|(k, v)| (k.as_str(), v)).collect();
    let tensors: Vec<(&str, &QTensor)> = tensors.iter().map(|(n, t)| (n.as_str(), t)).collect();
    gguf_file::write(out, &metadata, &tensors)
}

/// The weights llama.cpp's converter writes for `arch`, as `(name, tensor)`.
fn tensors(
    arch: Arch,
    s: &Shape,
    extras: Extras,
    rng: &mut Normal,
) -> Result<Vec<(String, QTensor)>> {
    let (q4, q6) = match s.quantization {
        Quantization::Q4KM => (GgmlDType::Q4K, GgmlDType::Q6K),
        Quantization::Q8 => (GgmlDType::Q8_0, GgmlDType::Q8_0),
    };
    let mut draw = Draw { rng, std: s.std };
    let (q_dim, kv_dim) = (s.heads * s.head_dim, s.kv_heads * s.head_dim);
    // Gemma ties the output layer to the embeddings, which llama.cpp then quantizes as
    // it would the output layer; the others carry their own unless `extras` says not.
    let gemma = matches!(arch, Arch::Gemma2 | Arch::Gemma3);
    let tied = extras.tied_output || gemma;
    // Gemma multiplies its embeddings by sqrt(hidden): drawn that much smaller (as the
    // real ones are), they weigh in the residual stream about as much as what each layer
    // adds instead of drowning it, and the tied output does not just repeat the token.
    let embeddings = if gemma {
        let std = s.std / (s.hidden as f32).sqrt();
        Draw { rng: draw.rng, std }.matrix([s.vocab, s.hidden], q6)?
    } else {
        let dtype = if tied { q6 } else { q4 };
        draw.matrix([s.vocab, s.hidden], dtype)?
    };
    let mut out = vec![
        ("token_embd.weight".to_string(), embeddings),
        ("output_norm.weight".to_string(), draw.norm(s.hidden)?),
    ];
    if let Some(factor) = extras.llama3_rope_factor {
        let freqs = llama3_rope_freqs(s.head_dim, rope_base(arch), factor);
        out.push((
            "rope_freqs.weight".to_string(),
            QTensor::quantize(
                &Tensor::from_vec(freqs, s.head_dim / 2, &Device::Cpu)?,
                GgmlDType::F32,
            )?,
        ));
    }
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
fn metadata(arch: Arch, s: &Shape, chat: Option<&Chat>) -> Vec<(String, Value)> {
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
    m.push((format!("{a}.rope.freq_base"), Value::F32(rope_base(arch))));
    match arch {
        Arch::Llama => {
            // llama.cpp's converter writes it for Llama (and its loader insists it equals
            // the head size); candle's quantized_llama requires it.
            m.push((format!("{a}.rope.dimension_count"), u32v(s.head_dim)));
        }
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
    m.extend(vocabulary(s.vocab, chat));
    m
}

/// The rotary base the family's real models use.
fn rope_base(arch: Arch) -> f32 {
    match arch {
        Arch::Qwen2 | Arch::Qwen3 => 1_000_000.0,
        Arch::Llama => 500_000.0,
        Arch::Gemma2 => 10_000.0,
        Arch::Gemma3 => 1_000_000.0,
    }
}

/// A byte-level BPE vocabulary of `size` tokens without merges, ending with `chat`'s
/// special tokens (or the ChatML markers).
fn vocabulary(size: usize, chat: Option<&Chat>) -> Vec<(String, Value)> {
    let chatml = Chat {
        specials: SPECIAL_TOKENS.iter().map(|t| t.to_string()).collect(),
        bos: SPECIAL_TOKENS[0].into(),
        eos: SPECIAL_TOKENS[2].into(),
        ..Chat::default()
    };
    let chat = chat.unwrap_or(&chatml);
    let mut tokens: Vec<String> = byte_level_alphabet();
    let padding = size.saturating_sub(tokens.len() + chat.specials.len());
    tokens.extend((0..padding).map(|i| format!("unused{i}")));
    let first_special = tokens.len();
    tokens.extend(chat.specials.iter().cloned());
    let types: Vec<Value> = (0..tokens.len())
        .map(|i| Value::I32(if i >= first_special { 3 } else { 1 }))
        .collect();
    let id_of = |name: &str| {
        let at = chat.specials.iter().position(|t| t == name).unwrap_or(0);
        Value::U32((first_special + at) as u32)
    };
    let mut m = vec![
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
        ("tokenizer.ggml.eos_token_id".to_string(), id_of(&chat.eos)),
        ("tokenizer.ggml.bos_token_id".to_string(), id_of(&chat.bos)),
        (
            "tokenizer.ggml.add_bos_token".to_string(),
            Value::Bool(chat.add_bos),
        ),
    ];
    if !chat.template.is_empty() {
        m.push((
            "tokenizer.chat_template".to_string(),
            Value::String(chat.template.clone()),
        ));
    }
    m
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

    #[test]
    fn extras_tie_the_output_layer_and_add_llama_3_frequency_factors() {
        let mut bytes = std::io::Cursor::new(Vec::new());
        let extras = Extras::real("llama-3.2-1b");
        assert!(extras.tied_output && extras.llama3_rope_factor == Some(32.0));
        write_with(Arch::Llama, &Shape::tiny(), extras, 1, &mut bytes).unwrap();
        bytes.set_position(0);
        let content = gguf_file::Content::read(&mut bytes).unwrap();
        assert!(!content.tensor_infos.contains_key("output.weight"));
        assert_eq!(
            content.tensor_infos["token_embd.weight"].ggml_dtype,
            GgmlDType::Q6K
        );
        let freqs = content
            .tensor(&mut bytes, "rope_freqs.weight", &Device::Cpu)
            .unwrap()
            .dequantize(&Device::Cpu)
            .unwrap()
            .to_vec1::<f32>()
            .unwrap();
        assert_eq!(freqs.len(), Shape::tiny().head_dim / 2);
        // Fast pairs untouched, slow ones slowed by the whole factor, monotone between.
        assert_eq!((freqs[0], freqs[31]), (1.0, 32.0));
        assert!(freqs.windows(2).all(|w| w[0] <= w[1]));
        let dims = &content.metadata["llama.rope.dimension_count"];
        assert_eq!(dims.to_u32().unwrap(), 64);
    }
}
