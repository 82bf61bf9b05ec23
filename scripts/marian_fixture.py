#!/usr/bin/env python3
"""marian_fixture.py: regenerate the tiny Marian (OPUS-MT layout) reference fixtures.

Developer-run, once, by hand; never by CI. The Rust Marian backend's tests read
what this writes and compare against Hugging Face transformers' behaviour.

How to run it (from the repository root):
    python3 scripts/marian_fixture.py

What it builds, and where:
  A Python venv at "${TARJAMA_HOME:-$HOME/.cache/tarjama}/marian-fixture-venv"
  with the pinned versions in PINS below (torch, transformers, tokenizers,
  sentencepiece, safetensors, numpy) installed with pip. The first run creates
  it (torch's Linux wheel pulls its CUDA libraries too: a few GB of download,
  though everything runs on the CPU); later runs reuse it as long as it
  imports the pinned transformers and torch. Delete the folder to rebuild it.
  When started with any other interpreter the script re-executes itself with
  the venv's python. Nothing is fetched from a model hub: everything is built
  locally from the FLORES-200 devtest text in shared/eval/flores200/.

What it writes (everything is deterministic: fixed seeds, one thread):
  tests/fixtures/marian-tiny/
      source.spm, target.spm   SentencePiece unigram models (nmt_nfkc
                               normalization, so each carries a precompiled
                               charsmap; unk=0, bos=1, eos=2 like OPUS-MT)
      vocab.json               joint vocab: "</s>": 0, "<unk>": 1, the pieces of
                               source then target spm, "<pad>" last
      tokenizer_config.json, special_tokens_map.json  (MarianTokenizer.save_pretrained)
      config.json              MarianConfig, generation fields kept in it as in
                               the real Helsinki-NLP/opus-mt-ar-en config.json
      generation_config.json   num_beams 4, max_length 24, bad_words_ids [[pad]], ...
      model.safetensors        save_pretrained(safe_serialization=True)
      pytorch_model.bin        save_pretrained(safe_serialization=False)
  tests/fixtures/marian-tiny-reference.json
      tokenization, decoding, encoder output, first-step logits, and greedy and
      beam-search outputs of transformers on that model (see write_reference).

The model is a tiny random MarianMTModel (d_model 64, 2+2 layers) whose weights
are re-drawn with a large scale so that its outputs are varied: some greedy
outputs end in </s> early, one runs to max_length (the forced-</s> path), and
beam search differs from greedy. Those properties are asserted below.

Options: --out-dir DIR (default tests/fixtures), --check (regenerate into a
temporary folder and compare with the committed files; exit 1 on a difference).
"""

import os
import subprocess
import sys
from pathlib import Path

from marian_venv import PINS, REPO, TARJAMA_HOME, VENV  # noqa: E402,F401
import marian_venv  # noqa: E402

if __name__ == "__main__":
    marian_venv.enter(__file__, create=True)

# ---------------------------------------------------------------------------
# Everything below runs inside the venv.
# ---------------------------------------------------------------------------
import argparse  # noqa: E402
import filecmp  # noqa: E402
import io  # noqa: E402
import json  # noqa: E402
import random  # noqa: E402
import shutil  # noqa: E402
import tempfile  # noqa: E402
import warnings  # noqa: E402

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")

import numpy as np  # noqa: E402
import sentencepiece as spm  # noqa: E402
import torch  # noqa: E402
import transformers  # noqa: E402
from safetensors.torch import load_file as load_safetensors  # noqa: E402
from transformers import GenerationConfig, MarianConfig, MarianMTModel, MarianTokenizer  # noqa: E402

warnings.filterwarnings("ignore")

EVAL_DIR = REPO.parent / "shared" / "eval" / "flores200"
if not EVAL_DIR.exists():
    EVAL_DIR = Path("/work/shared/eval/flores200")

SEED = 20240611
SRC_VOCAB = 800
TGT_VOCAB = 800
MAX_LENGTH = 24
NUM_BEAMS = 4
D_MODEL = 64

# Re-initialisation scales (normal std per weight kind), found by a small
# search so that the greedy outputs are varied (few immediate repeats), depend
# on the source and on its padding mask, and include both early-</s> and
# max-length outputs; check_properties asserts all of that. The transformers
# default (std 0.02 everywhere) gives near-constant outputs.
STD = {
    "embedding": 0.2,  # model.shared (= encoder/decoder embed_tokens = lm_head); <pad> row stays zero
    "q_proj": 0.5,
    "k_proj": 0.5,
    "v_proj": 0.1,  # self-attention
    "out_proj": 0.1,  # self-attention
    "cross_v_proj": 0.35,  # encoder_attn (decoder cross-attention)
    "cross_out_proj": 0.35,
    "fc1": 0.1,
    "fc2": 0.1,
    "linear_bias": 0.15,
    "layer_norm_weight": 0.15,  # around 1.0
    "layer_norm_bias": 0.15,
    "final_logits_bias": 0.3,
}
# final_logits_bias[</s>] gets this added; the first (seed offset, eos bias)
# pair whose outputs pass check_properties is used (the first pair listed
# passes with the pinned versions).
EOS_BIAS_CANDIDATES = [4.0, 3.0, 5.0, 2.0, 6.0]
SEED_OFFSETS = [0, 1, 2, 3]


# ---------------------------------------------------------------------------
# Data
# ---------------------------------------------------------------------------
def read_lines(name: str):
    with open(EVAL_DIR / name, encoding="utf-8") as f:
        return [line.rstrip("\n") for line in f]


def train_spm(lines, vocab_size, coverage) -> bytes:
    spm.set_random_generator_seed(1234)
    out = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(lines),
        model_writer=out,
        model_type="unigram",
        vocab_size=vocab_size,
        character_coverage=coverage,
        normalization_rule_name="nmt_nfkc",
        unk_id=0,
        bos_id=1,
        eos_id=2,
        pad_id=-1,
        input_sentence_size=1000,
        shuffle_input_sentence=False,
        num_threads=1,
        minloglevel=2,
    )
    return out.getvalue()


def build_vocab(src_proto: bytes, tgt_proto: bytes):
    vocab = {"</s>": 0, "<unk>": 1}
    for proto in (src_proto, tgt_proto):
        sp = spm.SentencePieceProcessor(model_proto=proto)
        for i in range(sp.get_piece_size()):
            if sp.is_unknown(i) or sp.is_control(i):
                continue
            piece = sp.id_to_piece(i)
            if piece not in vocab:
                vocab[piece] = len(vocab)
    vocab["<pad>"] = len(vocab)
    return vocab


# ---------------------------------------------------------------------------
# Model
# ---------------------------------------------------------------------------
def make_config(vocab_size: int, pad_id: int) -> MarianConfig:
    return MarianConfig(
        vocab_size=vocab_size,
        decoder_vocab_size=vocab_size,
        d_model=D_MODEL,
        encoder_layers=2,
        decoder_layers=2,
        encoder_attention_heads=4,
        decoder_attention_heads=4,
        encoder_ffn_dim=256,
        decoder_ffn_dim=256,
        max_position_embeddings=512,
        activation_function="swish",
        dropout=0.1,
        attention_dropout=0.0,
        activation_dropout=0.0,
        encoder_layerdrop=0.0,
        decoder_layerdrop=0.0,
        init_std=0.02,
        scale_embedding=True,
        static_position_embeddings=True,
        share_encoder_decoder_embeddings=True,
        normalize_before=False,
        normalize_embedding=False,
        add_final_layer_norm=False,
        add_bias_logits=False,
        is_encoder_decoder=True,
        use_cache=True,
        pad_token_id=pad_id,
        decoder_start_token_id=pad_id,
        eos_token_id=0,
        bos_token_id=0,
        forced_eos_token_id=0,
        bad_words_ids=[[pad_id]],
        num_beams=NUM_BEAMS,
        max_length=MAX_LENGTH,
        architectures=["MarianMTModel"],
    )


def make_generation_config(pad_id: int) -> GenerationConfig:
    return GenerationConfig(
        bad_words_ids=[[pad_id]],
        bos_token_id=0,
        decoder_start_token_id=pad_id,
        eos_token_id=0,
        forced_eos_token_id=0,
        max_length=MAX_LENGTH,
        num_beams=NUM_BEAMS,
        pad_token_id=pad_id,
    )


def build_model(config: MarianConfig, seed: int, eos_bias: float) -> MarianMTModel:
    torch.manual_seed(seed)
    model = MarianMTModel(config)
    gen = torch.Generator().manual_seed(seed + 1)
    pad_id = config.pad_token_id
    sinusoidal = transformers.models.marian.modeling_marian.MarianSinusoidalPositionalEmbedding
    seen = set()

    def normal_(t, std, mean=0.0):
        with torch.no_grad():
            t.copy_(torch.randn(t.shape, generator=gen) * std + mean)

    for name, module in model.named_modules():
        if isinstance(module, sinusoidal):
            continue  # keep the sinusoidal table exactly as transformers builds it
        if isinstance(module, torch.nn.Embedding):
            if id(module.weight) in seen:
                continue
            seen.add(id(module.weight))
            normal_(module.weight, STD["embedding"])
            with torch.no_grad():
                module.weight[pad_id].zero_()  # OPUS-MT conversion appends a zero row for <pad>
        elif isinstance(module, torch.nn.Linear):
            if id(module.weight) in seen:  # lm_head is tied to model.shared
                continue
            seen.add(id(module.weight))
            leaf = name.rsplit(".", 1)[-1]
            kind = ("cross_" + leaf) if ".encoder_attn." in name and leaf in ("v_proj", "out_proj") else leaf
            normal_(module.weight, STD[kind])
            if module.bias is not None:
                normal_(module.bias, STD["linear_bias"])
        elif isinstance(module, torch.nn.LayerNorm):
            normal_(module.weight, STD["layer_norm_weight"], mean=1.0)
            normal_(module.bias, STD["layer_norm_bias"])
    bias = torch.randn((1, config.vocab_size), generator=gen) * STD["final_logits_bias"]
    bias[0, 0] += eos_bias
    bias[0, pad_id] = 0.0
    with torch.no_grad():
        model.final_logits_bias.copy_(bias)
    model.generation_config = make_generation_config(pad_id)
    model.eval()
    return model


def check_sinusoidal(model: MarianMTModel):
    for emb in (model.model.encoder.embed_positions, model.model.decoder.embed_positions):
        w = emb.weight.detach().numpy().astype(np.float64)
        n_pos, dim = w.shape
        pos = np.arange(n_pos)[:, None]
        j = np.arange(dim // 2)[None, :]
        angle = pos / np.power(10000.0, 2 * j / dim)
        expect = np.concatenate([np.sin(angle), np.cos(angle)], axis=1).astype(np.float32)
        assert np.array_equal(w.astype(np.float32), expect), "sinusoidal table differs from sin|cos layout"


# ---------------------------------------------------------------------------
# Generation helpers
# ---------------------------------------------------------------------------
def strip_pad(seq, pad_id):
    seq = list(seq)
    while seq and seq[-1] == pad_id:
        seq.pop()
    return seq


@torch.no_grad()
def run_generations(model, tok, texts):
    pad_id = model.config.pad_token_id
    batch = tok(texts, padding=True, return_tensors="pt")
    out = {}
    out["greedy"] = model.generate(**batch, num_beams=1, do_sample=False).tolist()
    out["greedy_no_forced_eos"] = model.generate(
        **batch, num_beams=1, do_sample=False, forced_eos_token_id=None
    ).tolist()
    # only for check_properties: the same batch with its padding mask ignored
    out["greedy_unmasked"] = model.generate(
        input_ids=batch["input_ids"],
        attention_mask=torch.ones_like(batch["attention_mask"]),
        num_beams=1,
        do_sample=False,
    ).tolist()
    beam = model.generate(
        **batch, num_beams=NUM_BEAMS, do_sample=False, return_dict_in_generate=True, output_scores=True
    )
    out["beam4"] = beam.sequences.tolist()
    out["beam4_sequence_scores"] = [round(float(x), 6) for x in beam.sequences_scores]
    out["beam3_lp06"] = model.generate(**batch, num_beams=3, length_penalty=0.6, do_sample=False).tolist()
    out["greedy_single"] = []
    out["beam4_single"] = []
    for t in texts:
        one = tok([t], return_tensors="pt")
        out["greedy_single"].append(model.generate(**one, num_beams=1, do_sample=False)[0].tolist())
        out["beam4_single"].append(model.generate(**one, num_beams=NUM_BEAMS, do_sample=False)[0].tolist())
    for key in ("greedy", "beam4"):
        for row, single in zip(out[key], out[key + "_single"]):
            assert strip_pad(row, pad_id) == strip_pad(single, pad_id), f"{key}: batch row != single run"
    return batch, out


def check_properties(out, pad_id, eos_id=0):
    """Returns None when the outputs have every property the fixture needs, else the reason."""
    greedy = [strip_pad(s, pad_id) for s in out["greedy"]]
    if len({tuple(s) for s in greedy}) != len(greedy):
        return "greedy outputs not all distinct"
    if any(s[-1] != eos_id for s in greedy):
        return "a greedy output does not end in eos"
    early = [s for s in greedy if len(s) < MAX_LENGTH]
    full = [i for i, s in enumerate(greedy) if len(s) == MAX_LENGTH]
    if len(early) < 2:
        return "fewer than two greedy outputs end early"
    if not full:
        return "no greedy output runs to max_length"
    # the forced-eos path: without ForcedEOS the last token would not be eos
    if not any(out["greedy_no_forced_eos"][i][MAX_LENGTH - 1] != eos_id for i in full):
        return "max-length greedy outputs end in eos naturally (forced eos not exercised)"
    if min(len(s) for s in early) < 3:
        return "a greedy output is shorter than 3 tokens"
    generated = [s[1:-1] for s in greedy]
    repeats = sum(sum(a == b for a, b in zip(g, g[1:])) for g in generated)
    if repeats > 0.25 * sum(len(g) - 1 for g in generated):
        return "greedy outputs repeat the previous token too often"
    if any(len(set(g)) < 2 for g in generated):
        return "a greedy output is one token repeated"
    if out["greedy_unmasked"] == out["greedy"]:
        return "greedy outputs do not depend on the source padding mask"
    beam = [strip_pad(s, pad_id) for s in out["beam4"]]
    if not any(b != g for b, g in zip(beam, greedy)):
        return "beam4 equals greedy for every sentence"
    return None


# ---------------------------------------------------------------------------
# Reference data
# ---------------------------------------------------------------------------
def tokenize_cases(src_lines):
    cases = [
        src_lines[0],
        src_lines[1],
        src_lines[2],
        src_lines[7],
        # tashkeel (harakat, shadda, sukun, tanwin)
        "ذَهَبَ الوَلَدُ إِلَى المَدْرَسَةِ صَبَاحاً، وَقَرَأَ كِتَاباً مُفِيداً.",
        # tatweel (U+0640)
        "العـــربية جميـــلة جداً",
        # Arabic presentation forms: lam-alef U+FEFB, the ligature U+FDF2, isolated/final/medial letter forms
        "\ufefb \ufdf2 \ufee3\ufeae\ufea3\ufe92\ufe8e \ufefc\ufef5",
        # full-width digits and Latin (NFKC maps them to ASCII), a Latin ligature
        "العدد ١٢٣ و \uff11\uff12\uff13 و \uff21\uff22\uff23 و \ufb01le",
        # Arabic-Indic and extended Arabic-Indic (Persian) digits, ASCII digits
        "في عام ٢٠٢٤ و ۱۴۰۳ أي 2024 م، بنسبة ٣٫٥٪",
        # mixed Latin words and numbers
        "قال Barack Obama إن COVID-19 أصاب 3.5 مليون شخص في New York.",
        # punctuation, Arabic and ASCII
        "مرحبا، كيف حالك؟ «بخير» — شكراً! (نعم) [لا] {ربما} ... ؛ : \"اقتباس\" 'آخر'",
        # multiple, leading and trailing spaces
        "   مرحبا     بالعالم   ",
        # tabs and newlines inside
        "مرحبا\tبالعالم\nسطر جديد\r\nوآخر",
        # unknown characters: CJK, emoji, a run of several unknowns, unknowns glued to known letters
        "هذا نص فيه 中文 و 😀 ورموز",
        "漢字仮名交じり文😀😀🚀",
        "كلمة漢字كلمة",
        "😀",
        # empty string and a lone space
        "",
        " ",
        # language-code prefix (MarianTokenizer keeps it as one token, which is <unk> here)
        ">>eng<< مرحبا بالعالم",
        # the language-code regex is greedy: everything between the first >> and the last << goes
        ">>eng<< مرحبا >>fra<< بالعالم",
        # an explicit special token inside the text
        "مرحبا </s> بالعالم",
        "مرحبا<unk>بالعالم <pad>",
        # zero-width and bidi marks, non-breaking and thin spaces, BOM
        "مرحبا\u200f بالعالم\u200c\u200dو\u00a0النص\u2009هنا\ufeff",
        # Latin only, combining accent (NFKC composes e + U+0301)
        "Hello, World! Cafe\u0301 123",
    ]
    return cases


def pick_batch_texts(tok, lines, targets=(3, 9, 16, 24, 32, 40)):
    """Arabic texts (sentence prefixes from devtest) whose token counts (with </s>) hit the targets."""
    texts, used = [], set()
    for target in targets:
        best = None
        for li, line in enumerate(lines[:200]):
            if li in used:
                continue
            words = line.split()
            for k in range(1, len(words) + 1):
                text = " ".join(words[:k])
                n = len(tok(text).input_ids)
                if n == target:
                    best = (li, text)
                    break
                if n > target:
                    break
            if best:
                break
        assert best, f"no devtest prefix with {target} tokens"
        used.add(best[0])
        texts.append(best[1])
    return texts


def rounded(t: torch.Tensor):
    return np.round(t.detach().numpy().astype(np.float64), 6).tolist()


@torch.no_grad()
def write_reference(model, tok, src_lines, tgt_lines, batch_texts, batch, gens, path: Path):
    pad_id = model.config.pad_token_id
    start_id = model.config.decoder_start_token_id
    sp_src = tok.spm_source

    tokenize = []
    for text in tokenize_cases(src_lines):
        tokenize.append(
            {
                "text": text,
                "pieces": sp_src.encode(text, out_type=str),
                "tokens": tok.tokenize(text),
                "ids": tok(text).input_ids,
            }
        )

    decode_ids = []
    for key in ("greedy", "beam4"):
        decode_ids.extend(gens[key])
    unk = tok.unk_token_id
    eos = tok.eos_token_id
    en = tok(text_target=tgt_lines[0]).input_ids
    en2 = tok(text_target="Hello, world! It's 3.5 km; don't stop.").input_ids
    en3 = tok(text_target="He said , \" yes ! \" It ' s n't so . Ok ?").input_ids  # clean_up_tokenization matters
    decode_ids += [
        en,
        en2,
        en3,
        [start_id] + en[:6] + [unk] + en[6:12] + [eos] + en[12:15] + [pad_id, pad_id],
        [pad_id, unk, unk, eos],
        [eos, pad_id],
        [],
        tok(src_lines[0]).input_ids,  # source-only (Arabic) pieces decoded with the target spm
        [start_id] + tok("中文 😀").input_ids,
    ]
    decode = []
    for ids in decode_ids:
        decode.append(
            {
                "ids": ids,
                "text": tok.decode(ids, skip_special_tokens=True),
                "text_with_special": tok.decode(ids, skip_special_tokens=False),
                "text_cleanup": tok.decode(ids, skip_special_tokens=True, clean_up_tokenization_spaces=True),
            }
        )

    input_ids = batch["input_ids"]
    attention_mask = batch["attention_mask"]
    enc = model.get_encoder()(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
    dec_in = torch.full((input_ids.shape[0], 1), start_id, dtype=torch.long)
    logits = model(input_ids=input_ids, attention_mask=attention_mask, decoder_input_ids=dec_in).logits[:, 0, :]

    ref = {
        "about": "Reference outputs of transformers' MarianTokenizer and MarianMTModel on tests/fixtures/marian-tiny, "
        "written by scripts/marian_fixture.py. Do not edit by hand.",
        "versions": {
            "torch": torch.__version__,
            "transformers": transformers.__version__,
            "sentencepiece": spm.__version__,
            "safetensors": __import__("safetensors").__version__,
            "numpy": np.__version__,
        },
        "max_length": MAX_LENGTH,
        "num_beams": NUM_BEAMS,
        "pad_id": pad_id,
        "eos_id": model.config.eos_token_id,
        "unk_id": unk,
        "decoder_start_id": start_id,
        "vocab_size": model.config.vocab_size,
        "d_model": model.config.d_model,
        "tokenize": tokenize,
        "decode": decode,
        "batch": {
            "texts": batch_texts,
            "input_ids": input_ids.tolist(),
            "attention_mask": attention_mask.tolist(),
        },
        "encoder_output": rounded(enc),
        "first_step_logits": rounded(logits),
        "greedy": gens["greedy"],
        "greedy_single": gens["greedy_single"],
        "greedy_no_forced_eos": gens["greedy_no_forced_eos"],
        "beam4": gens["beam4"],
        "beam4_sequence_scores": gens["beam4_sequence_scores"],
        "beam4_single": gens["beam4_single"],
        "beam3_lp06": gens["beam3_lp06"],
    }
    with open(path, "w", encoding="utf-8") as f:
        json.dump(ref, f, ensure_ascii=False, separators=(",", ":"))
        f.write("\n")
    return ref


def save_model_files(model, config, model_dir: Path):
    with tempfile.TemporaryDirectory() as t1, tempfile.TemporaryDirectory() as t2:
        model.save_pretrained(t1, safe_serialization=True)
        model.save_pretrained(t2, safe_serialization=False)
        shutil.copy(Path(t1) / "model.safetensors", model_dir / "model.safetensors")
        shutil.copy(Path(t2) / "pytorch_model.bin", model_dir / "pytorch_model.bin")
    # config.json as the real OPUS-MT repos have it: generation fields included
    # (save_pretrained in 4.46 moves them out into generation_config.json and
    # writes them as null in config.json, and it does so on the model's own
    # config object; so write a fresh one).
    fresh = make_config(config.vocab_size, config.pad_token_id)
    fresh.torch_dtype = torch.float32
    fresh.to_json_file(str(model_dir / "config.json"), use_diff=True)
    make_generation_config(config.pad_token_id).save_pretrained(str(model_dir))


def generate_all(out_dir: Path):
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    random.seed(SEED)
    np.random.seed(SEED)

    src_all = read_lines("devtest.arb")
    tgt_all = read_lines("devtest.eng")
    # Train the tokenizers on lines 201.. (the first 200 are the project's quality set).
    src_proto = train_spm(src_all[200:], SRC_VOCAB, 0.995)
    tgt_proto = train_spm(tgt_all[200:], TGT_VOCAB, 1.0)
    vocab = build_vocab(src_proto, tgt_proto)
    pad_id = vocab["<pad>"]

    model_dir = out_dir / "marian-tiny"
    if model_dir.exists():
        shutil.rmtree(model_dir)
    model_dir.mkdir(parents=True)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        (tmp / "source.spm").write_bytes(src_proto)
        (tmp / "target.spm").write_bytes(tgt_proto)
        with open(tmp / "vocab.json", "w", encoding="utf-8") as f:
            json.dump(vocab, f, ensure_ascii=False, indent=2)
        tok = MarianTokenizer(
            str(tmp / "source.spm"),
            str(tmp / "target.spm"),
            str(tmp / "vocab.json"),
            source_lang="ar",
            target_lang="en",
        )
        tok.save_pretrained(str(model_dir))
    tok = MarianTokenizer.from_pretrained(str(model_dir))
    assert tok.pad_token_id == pad_id and tok.eos_token_id == 0 and tok.unk_token_id == 1

    batch_texts = pick_batch_texts(tok, src_all)
    config = make_config(len(vocab), pad_id)

    chosen = None
    tried = []
    for seed_offset in SEED_OFFSETS:
        for eos_bias in EOS_BIAS_CANDIDATES:
            model = build_model(config, SEED + 1000 * seed_offset, eos_bias)
            batch, gens = run_generations(model, tok, batch_texts)
            why = check_properties(gens, pad_id)
            tried.append((seed_offset, eos_bias, why))
            if why is None:
                chosen = (seed_offset, eos_bias, model, batch, gens)
                break
        if chosen:
            break
    if not chosen:
        for t in tried[-10:]:
            print(t, file=sys.stderr)
        sys.exit("marian_fixture: no seed / eos bias gave the required output properties")
    seed_offset, eos_bias, model, batch, gens = chosen
    check_sinusoidal(model)

    save_model_files(model, config, model_dir)
    ref_path = out_dir / "marian-tiny-reference.json"
    ref = write_reference(model, tok, src_all, tgt_all, batch_texts, batch, gens, ref_path)

    # Reload from the written files (safetensors, then the .bin) and check that
    # they reproduce what was recorded.
    for use_safetensors in (True, False):
        reloaded = MarianMTModel.from_pretrained(str(model_dir), use_safetensors=use_safetensors).eval()
        tok2 = MarianTokenizer.from_pretrained(str(model_dir))
        assert reloaded.generation_config.num_beams == NUM_BEAMS
        assert reloaded.generation_config.max_length == MAX_LENGTH
        assert reloaded.generation_config.bad_words_ids == [[pad_id]]
        _, gens2 = run_generations(reloaded, tok2, batch_texts)
        for key in ("greedy", "beam4", "beam3_lp06", "greedy_single", "beam4_single"):
            assert gens2[key] == gens[key], f"reloaded model ({'safetensors' if use_safetensors else 'bin'}) differs: {key}"
        with torch.no_grad():
            enc = reloaded.get_encoder()(**batch).last_hidden_state
        assert np.allclose(np.array(ref["encoder_output"]), enc.numpy(), atol=2e-6)
        # default generate() (no arguments) uses generation_config.json: beam 4
        with torch.no_grad():
            default = reloaded.generate(**batch).tolist()
        assert default == gens["beam4"], "generate() with the saved generation_config differs from beam4"
        for case in ref["tokenize"]:
            assert tok2(case["text"]).input_ids == case["ids"]

    with open(model_dir / "config.json", encoding="utf-8") as f:
        cfg_json = json.load(f)
    assert cfg_json["num_beams"] == NUM_BEAMS and cfg_json["max_length"] == MAX_LENGTH
    assert cfg_json["bad_words_ids"] == [[pad_id]] and cfg_json["decoder_start_token_id"] == pad_id

    # Both weight files hold the same tensors.
    st = load_safetensors(str(model_dir / "model.safetensors"))
    pt = torch.load(str(model_dir / "pytorch_model.bin"), map_location="cpu", weights_only=True)
    for k in st:
        if k in pt:
            assert torch.equal(st[k], pt[k]), k
    return ref, seed_offset, eos_bias, st, pt, model_dir, ref_path


def summary(ref, seed_offset, eos_bias, st, pt, model_dir, ref_path):
    pad_id = ref["pad_id"]
    print(f"versions: {ref['versions']}")
    print(f"seed offset {seed_offset}, eos bias {eos_bias}; vocab {ref['vocab_size']}, pad {pad_id}")
    total = 0
    for p in sorted(model_dir.iterdir()) + [ref_path]:
        size = p.stat().st_size
        total += size
        print(f"  {size:>9}  {p.relative_to(REPO) if p.is_relative_to(REPO) else p}")
    print(f"  {total:>9}  total")
    print(f"safetensors keys: {len(st)}; pytorch_model.bin keys: {len(pt)}; only in .bin: {sorted(set(pt) - set(st))}")
    print("batch token counts:", [sum(m) for m in ref["batch"]["attention_mask"]])
    for key in ("greedy", "beam4", "beam3_lp06"):
        print(f"{key}:")
        for row in ref[key]:
            s = strip_pad(row, pad_id)
            end = "eos" if s[-1] == ref["eos_id"] else "no-eos"
            print(f"  len {len(s):>2} {end:<6} {row}")
    print("beam4 sequence scores:", ref["beam4_sequence_scores"])


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out-dir", default=str(REPO / "tests" / "fixtures"))
    ap.add_argument("--check", action="store_true", help="regenerate into a temp dir and compare with --out-dir")
    args = ap.parse_args()
    out_dir = Path(args.out_dir).resolve()
    if args.check:
        with tempfile.TemporaryDirectory() as tmp:
            tmp = Path(tmp)
            res = generate_all(tmp)
            summary(*res)
            names = ["marian-tiny-reference.json"] + [
                f"marian-tiny/{p.name}" for p in sorted((tmp / "marian-tiny").iterdir())
            ]
            bad = [n for n in names if not (out_dir / n).exists() or not filecmp.cmp(tmp / n, out_dir / n, shallow=False)]
            if bad:
                print(f"marian_fixture: differs from {out_dir}: {bad}", file=sys.stderr)
                sys.exit(1)
            print(f"marian_fixture: {out_dir} matches a fresh regeneration")
        return
    out_dir.mkdir(parents=True, exist_ok=True)
    summary(*generate_all(out_dir))


if __name__ == "__main__":
    main()
