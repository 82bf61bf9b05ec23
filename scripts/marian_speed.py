#!/usr/bin/env python3
"""marian_speed.py: a real-shape random OPUS-MT model, and a transformers speed baseline.

Developer-run, by hand; never by CI. It uses the same pinned venv as
scripts/marian_fixture.py ("${TARJAMA_HOME:-$HOME/.cache/tarjama}/marian-fixture-venv";
that script creates it) and re-executes itself with the venv's python when
started with any other interpreter. Nothing is fetched from a model hub.

Subcommands (from the repository root):

  python3 scripts/marian_speed.py make-model OUT_DIR [--seed S] [--eos-pos-weight W]
      Writes a random MarianMTModel with exactly the shape of
      Helsinki-NLP/opus-mt-ar-en (d_model 512, 6+6 layers, 8 heads, ffn 2048,
      swish, vocab 62834, pad = decoder start = 62833, eos 0, shared and tied
      embeddings, static sinusoidal positions) to OUT_DIR: config.json (with
      the generation fields kept in it, as the real repo has them; num_beams 4,
      max_length 64 to bound benchmark time), generation_config.json,
      model.safetensors, and the tokenizer files (MarianTokenizer.save_pretrained)
      built from tests/fixtures/marian-tiny/{source,target}.spm with a vocab.json
      of the real layout: "</s>" 0, "<unk>" 1, the source then target spm
      pieces, filler pieces "▁x<id>" up to 62832, "<pad>" 62833.
      The weights are random (normal, per-kind scales), plus a "length
      channel" (add_length_channel: a few residual columns carry the decoder
      position up to the </s> logit) so the </s> logit rises along a sentence;
      the </s> logit bias is then picked by a short calibration on 8 FLORES
      lines so greedy lengths vary (none under 4 tokens, at most a third at
      max_length). ~1 minute on 2 cores.

  python3 scripts/marian_speed.py bench MODEL_DIR --segments FILE
          [--batch-sizes 1,16] [--num-beams N] [--threads 2]
          [--json OUT.json] [--outputs OUT.jsonl] [--no-warmup]
      Translates every non-empty line of FILE (one Arabic segment per line,
      UTF-8) with transformers, once per batch size: segments sorted by source
      token count, longest first (stable, as tarjama does), then chunked; each
      chunk runs model.generate(**batch, num_beams=N) (N=1 greedy; N defaults
      to the model's generation config). The whole run (tokenization,
      generation, collecting the outputs) is timed with time.perf_counter.
      Generated tokens per sentence = the tokens after the decoder start up to
      and including the first eos (pads excluded). Prints, and saves to
      --json, per batch size: segments, source tokens, generated tokens, wall
      seconds, generated tokens/s, peak RSS MB (getrusage ru_maxrss, the
      process peak so far, so it never decreases from one batch size to the
      next). --outputs gets one JSON line per batch size with the generated id
      lists (same convention) in input order.
      Unless --no-warmup, one short untimed generate call runs first.
"""

import os
import subprocess
import sys
from pathlib import Path

from marian_venv import PINS, REPO, TARJAMA_HOME, VENV  # noqa: E402,F401
import marian_venv  # noqa: E402

if __name__ == "__main__":
    marian_venv.enter(__file__, create=False)

# ---------------------------------------------------------------------------
# Everything below runs inside the venv.
# ---------------------------------------------------------------------------
import argparse  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import resource  # noqa: E402
import shutil  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")

import sentencepiece as spm  # noqa: E402
import torch  # noqa: E402
import transformers  # noqa: E402
from transformers import (  # noqa: E402
    GenerationConfig,
    LogitsProcessor,
    LogitsProcessorList,
    MarianConfig,
    MarianMTModel,
    MarianTokenizer,
)

warnings.filterwarnings("ignore")

FIXTURE = REPO / "tests" / "fixtures" / "marian-tiny"
EVAL_FILE = REPO.parent / "shared" / "eval" / "flores200" / "devtest.arb"
if not EVAL_FILE.exists():
    EVAL_FILE = Path("/work/shared/eval/flores200/devtest.arb")

# The shape of Helsinki-NLP/opus-mt-ar-en.
VOCAB_SIZE = 62834
PAD_ID = 62833
D_MODEL = 512
LAYERS = 6
HEADS = 8
FFN = 2048
NUM_BEAMS = 4
MAX_LENGTH = 64  # the real model has 512; 64 bounds the benchmark time
SEED = 20240612

# Normal std per weight kind: scripts/marian_fixture.py's STD (tuned for
# d_model 64, ffn 256) rescaled by sqrt(fan_in_fixture / fan_in_here), so that
# activations and logits have about the same spread as in the fixture (except
# the cross-attention, see below).
_R = math.sqrt(64 / D_MODEL)
_RFF = math.sqrt(256 / FFN)
STD = {
    "embedding": 0.2 * _R,
    "q_proj": 0.5 * _R,
    "k_proj": 0.5 * _R,
    "v_proj": 0.1 * _R,
    "out_proj": 0.1 * _R,
    # the fixture's 0.35 here makes the cross-attention output dwarf the residual
    # (its LayerNorm divides by ~7.5), which drowns the length channel in noise
    "cross_v_proj": 0.2 * _R,
    "cross_out_proj": 0.2 * _R,
    "fc1": 0.1 * _R,
    "fc2": 0.1 * _RFF,
    "linear_bias": 0.15,
    "layer_norm_weight": 0.15,
    "layer_norm_bias": 0.15,
    "final_logits_bias": 0.3,
}
# Residual-stream columns that carry the decoder position up to the </s> logit
# (see add_length_channel): sin columns k of the sinusoidal table have
# frequency 10000^(-k/256); for k in 110..125 sin(t * w) rises monotonically
# over t = 0..63.
LENGTH_DIMS = list(range(110, 126))
# Weight of the length channel in the </s> row of the embedding (see
# add_length_channel). The constant added to final_logits_bias[</s>] is then
# picked by make-model's calibration.
EOS_POS_WEIGHT = 0.35

CALIBRATION_FALLBACK = [
    "ذهب الولد إلى المدرسة صباحاً وقرأ كتاباً مفيداً.",
    "قال الرئيس إن الحكومة ستعلن عن خطة جديدة للاقتصاد الأسبوع المقبل.",
    "مرحبا بالعالم",
    "في عام 2024 ارتفعت الأسعار بنسبة ثلاثة ونصف في المئة في معظم المدن الكبرى، وفقاً لتقرير صدر أمس عن البنك المركزي.",
    "الطقس جميل اليوم.",
    "تعمل الجامعة على تطوير برامج جديدة لتعليم اللغات الأجنبية للطلاب في جميع الكليات.",
]


# ---------------------------------------------------------------------------
# make-model
# ---------------------------------------------------------------------------
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
    while len(vocab) < PAD_ID:
        piece = f"\u2581x{len(vocab)}"
        assert piece not in vocab, piece
        vocab[piece] = len(vocab)
    vocab["<pad>"] = len(vocab)
    assert len(vocab) == VOCAB_SIZE and vocab["<pad>"] == PAD_ID
    return vocab


def make_config() -> MarianConfig:
    return MarianConfig(
        vocab_size=VOCAB_SIZE,
        decoder_vocab_size=VOCAB_SIZE,
        d_model=D_MODEL,
        encoder_layers=LAYERS,
        decoder_layers=LAYERS,
        encoder_attention_heads=HEADS,
        decoder_attention_heads=HEADS,
        encoder_ffn_dim=FFN,
        decoder_ffn_dim=FFN,
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
        pad_token_id=PAD_ID,
        decoder_start_token_id=PAD_ID,
        eos_token_id=0,
        bos_token_id=0,
        forced_eos_token_id=0,
        bad_words_ids=[[PAD_ID]],
        num_beams=NUM_BEAMS,
        max_length=MAX_LENGTH,
        architectures=["MarianMTModel"],
    )


def make_generation_config() -> GenerationConfig:
    return GenerationConfig(
        bad_words_ids=[[PAD_ID]],
        bos_token_id=0,
        decoder_start_token_id=PAD_ID,
        eos_token_id=0,
        forced_eos_token_id=0,
        max_length=MAX_LENGTH,
        num_beams=NUM_BEAMS,
        pad_token_id=PAD_ID,
    )


def build_model(config: MarianConfig, seed: int, eos_pos_weight: float, calib_batch) -> MarianMTModel:
    """Random weights; final_logits_bias is set by set_eos_bias."""
    torch.manual_seed(seed)
    model = MarianMTModel(config)
    gen = torch.Generator().manual_seed(seed + 1)
    sinusoidal = transformers.models.marian.modeling_marian.MarianSinusoidalPositionalEmbedding
    seen = set()

    def normal_(t, std, mean=0.0):
        with torch.no_grad():
            t.copy_(torch.randn(t.shape, generator=gen) * std + mean)

    for name, module in model.named_modules():
        if isinstance(module, sinusoidal):
            continue
        if isinstance(module, torch.nn.Embedding):
            if id(module.weight) in seen:
                continue
            seen.add(id(module.weight))
            normal_(module.weight, STD["embedding"])
            with torch.no_grad():
                module.weight[PAD_ID].zero_()
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
    model.eval()
    model._length_gains = add_length_channel(model, eos_pos_weight, calib_batch, gen)
    model.generation_config = make_generation_config()
    model._base_logits_bias = torch.randn((1, VOCAB_SIZE), generator=gen) * STD["final_logits_bias"]
    model.eval()
    return model


@torch.no_grad()
def add_length_channel(model: MarianMTModel, eos_pos_weight: float, calib_batch, gen: torch.Generator):
    """Makes the </s> logit grow with the decoder position, so that output lengths vary.

    A random post-LN decoder forgets the position quickly, so its </s> logit is
    about constant along a sentence: a sentence either stops at once or runs to
    max_length. Here the LENGTH_DIMS of the decoder's residual stream
    (low-frequency sin columns of its sinusoidal position table, rising
    monotonically over the first MAX_LENGTH positions) are kept free of token
    embeddings (those columns are zero in model.shared except in the </s> row)
    and of sublayer writes (those rows are zero in every decoder out_proj and
    fc2, and LayerNorm bias 0 there), and each decoder LayerNorm's weight there
    is set to the mean standard deviation of that LayerNorm's input (measured
    on calib_batch with random decoder inputs), which undoes its rescaling. So
    those columns still carry about sin(t * w) at the decoder output, and the
    </s> row of the tied embedding / lm_head reads them with weight
    eos_pos_weight. The result is still a plain MarianMTModel.
    """
    dims = torch.tensor(LENGTH_DIMS)
    shared = model.model.shared.weight
    shared[:, dims] = 0.0
    shared[0, dims] = eos_pos_weight
    norms = []
    for layer in model.model.decoder.layers:
        for lin in (layer.self_attn.out_proj, layer.encoder_attn.out_proj, layer.fc2):
            lin.weight[dims, :] = 0.0
            lin.bias[dims] = 0.0
        for ln in (layer.self_attn_layer_norm, layer.encoder_attn_layer_norm, layer.final_layer_norm):
            ln.weight[dims] = 1.0
            ln.bias[dims] = 0.0
            norms.append(ln)
    n, steps = calib_batch["input_ids"].shape[0], MAX_LENGTH
    dec = torch.randint(2, PAD_ID, (n, steps), generator=gen)
    dec[:, 0] = PAD_ID  # decoder start
    for _ in range(2):  # the second pass sees the first's gains (a small change)
        stds = [[] for _ in norms]
        hooks = [
            ln.register_forward_pre_hook(lambda m, inp, k=k: stds[k].append(inp[0].std(dim=-1, unbiased=False).mean()))
            for k, ln in enumerate(norms)
        ]
        model(**calib_batch, decoder_input_ids=dec)
        for h in hooks:
            h.remove()
        for ln, s in zip(norms, stds):
            ln.weight[dims] = float(torch.stack(s).mean())
    return [round(float(ln.weight[dims[0]]), 3) for ln in norms]


def set_eos_bias(model: MarianMTModel, eos_bias: float):
    bias = model._base_logits_bias.clone()
    bias[0, 0] += eos_bias
    bias[0, PAD_ID] = 0.0
    with torch.no_grad():
        model.final_logits_bias.copy_(bias)


def generated_ids(row, eos_id=0):
    """The ids after the decoder start, up to and including the first eos (pads excluded)."""
    out = []
    for t in row[1:]:
        out.append(t)
        if t == eos_id:
            break
    return out


class MarginRecorder(LogitsProcessor):
    """Records </s> logit minus the best other non-pad logit per step, then bans </s>."""

    def __init__(self):
        self.steps = []

    def __call__(self, input_ids, scores):
        other = scores.clone()
        other[:, 0] = -float("inf")
        other[:, PAD_ID] = -float("inf")
        self.steps.append((scores[:, 0] - other.max(dim=1).values).tolist())
        scores = scores.clone()
        scores[:, 0] = -float("inf")
        return scores


def calibration_texts():
    if EVAL_FILE.exists():
        with open(EVAL_FILE, encoding="utf-8") as f:
            lines = [line.strip() for line in f if line.strip()]
        # lines 200.. (the first 200 are the project's quality set); varied lengths
        picked = [lines[200 + 7 * i] for i in range(6)]
        picked += [" ".join(lines[300].split()[:4]), " ".join(lines[301].split()[:9])]
        return picked
    return CALIBRATION_FALLBACK


def calibration_problem(lengths):
    """None when the greedy lengths (with eos) look usable for a speed benchmark, else the reason."""
    if min(lengths) < 4:
        return f"an output shorter than 4 tokens: {lengths}"
    at_max = sum(n >= MAX_LENGTH - 1 for n in lengths)
    if at_max > len(lengths) // 3:
        return f"{at_max}/{len(lengths)} outputs run to max_length: {lengths}"
    if len(set(lengths)) < max(3, len(lengths) // 2):
        return f"too few distinct lengths: {lengths}"
    return None


@torch.no_grad()
def cmd_make_model(args):
    torch.set_num_threads(args.threads)
    out_dir = Path(args.out_dir).resolve()
    src_proto = (FIXTURE / "source.spm").read_bytes()
    tgt_proto = (FIXTURE / "target.spm").read_bytes()
    vocab = build_vocab(src_proto, tgt_proto)
    with open(FIXTURE / "vocab.json", encoding="utf-8") as f:
        tiny = json.load(f)
    tiny_pieces = [p for p, _ in sorted(tiny.items(), key=lambda kv: kv[1]) if p != "<pad>"]
    assert list(vocab)[: len(tiny_pieces)] == tiny_pieces, "vocab prefix differs from the marian-tiny fixture's"

    if out_dir.exists():
        shutil.rmtree(out_dir)
    out_dir.mkdir(parents=True)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        (tmp / "source.spm").write_bytes(src_proto)
        (tmp / "target.spm").write_bytes(tgt_proto)
        with open(tmp / "vocab.json", "w", encoding="utf-8") as f:
            json.dump(vocab, f, ensure_ascii=False, indent=2)
        tok = MarianTokenizer(
            str(tmp / "source.spm"), str(tmp / "target.spm"), str(tmp / "vocab.json"), source_lang="ar", target_lang="en"
        )
        tok.save_pretrained(str(out_dir))
    tok = MarianTokenizer.from_pretrained(str(out_dir))
    assert tok.pad_token_id == PAD_ID and tok.eos_token_id == 0 and tok.unk_token_id == 1

    texts = calibration_texts()
    batch = tok(texts, padding=True, return_tensors="pt")
    src_lens = batch["attention_mask"].sum(1).tolist()
    config = make_config()
    t0 = time.perf_counter()
    model = build_model(config, args.seed, args.eos_pos_weight, batch)
    print(
        f"built the model in {time.perf_counter() - t0:.1f}s; {sum(p.numel() for p in model.parameters())} parameters; "
        f"length-channel LayerNorm gains {model._length_gains}"
    )

    # One greedy run with </s> suppressed records, per step, the </s> logit minus
    # the best other logit (eos bias 0). Until a sentence stops, its greedy path
    # does not depend on the eos bias, so this gives the greedy length for any bias.
    set_eos_bias(model, 0.0)
    margins = MarginRecorder()
    t0 = time.perf_counter()
    model.generate(
        **batch,
        num_beams=1,
        do_sample=False,
        forced_eos_token_id=None,
        logits_processor=LogitsProcessorList([margins]),
    )
    print(f"calibration run ({len(texts)} sentences, {len(margins.steps)} steps) in {time.perf_counter() - t0:.1f}s")
    m = torch.tensor(margins.steps)  # steps x sentences

    def lengths_for(bias):
        out = []
        for i in range(m.shape[1]):
            hit = (m[:, i] + bias > 0).nonzero()
            out.append(int(hit[0]) + 1 if len(hit) and int(hit[0]) + 1 < MAX_LENGTH - 1 else MAX_LENGTH - 1)
        return out

    ok = []
    for k in range(0, 121):
        bias = k * 0.25
        lengths = lengths_for(bias)
        if calibration_problem(lengths) is None:
            ok.append((len(set(lengths)), -abs(sum(lengths) / len(lengths) - 0.45 * MAX_LENGTH), bias, lengths))
    if not ok:
        for bias in (0.0, 5.0, 10.0, 15.0, 20.0):
            print(f"  eos bias {bias}: greedy lengths {lengths_for(bias)}")
        sys.exit("marian_speed: no eos bias gave varied greedy lengths; try another --seed or --eos-pos-weight")
    _, _, eos_bias, lengths = max(ok)
    set_eos_bias(model, eos_bias)
    print(f"eos bias {eos_bias}; calibration source tokens {src_lens}, predicted greedy lengths {lengths}")

    model.save_pretrained(str(out_dir), safe_serialization=True)
    for p in out_dir.glob("pytorch_model*.bin"):
        p.unlink()
    fresh = make_config()
    fresh.torch_dtype = torch.float32
    fresh.to_json_file(str(out_dir / "config.json"), use_diff=True)
    make_generation_config().save_pretrained(str(out_dir))

    # Reload and check that the saved files reproduce the calibration outputs.
    reloaded = MarianMTModel.from_pretrained(str(out_dir), use_safetensors=True).eval()
    assert reloaded.generation_config.num_beams == NUM_BEAMS
    assert reloaded.generation_config.max_length == MAX_LENGTH
    rows2 = reloaded.generate(**batch, num_beams=1, do_sample=False).tolist()
    got = [len(generated_ids(r)) for r in rows2]
    print(f"greedy lengths of the saved model: {got}")
    assert got == lengths, "the saved model's greedy lengths differ from the calibration's"
    with open(out_dir / "config.json", encoding="utf-8") as f:
        cfg = json.load(f)
    assert cfg["num_beams"] == NUM_BEAMS and cfg["max_length"] == MAX_LENGTH and cfg["vocab_size"] == VOCAB_SIZE

    total = 0
    for p in sorted(out_dir.iterdir()):
        size = p.stat().st_size
        total += size
        print(f"  {size:>11}  {p.name}")
    print(f"  {total:>11}  total ({total / 2**20:.1f} MiB) in {out_dir}")


# ---------------------------------------------------------------------------
# bench
# ---------------------------------------------------------------------------
def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux: KiB


@torch.inference_mode()
def run_one(model, tok, texts, batch_size, num_beams, max_source_tokens):
    eos_id = model.config.eos_token_id
    t0 = time.perf_counter()
    encoded = [tok(t, truncation=True, max_length=max_source_tokens).input_ids for t in texts]
    order = sorted(range(len(texts)), key=lambda i: -len(encoded[i]))  # stable, longest first
    outputs = [None] * len(texts)
    gen_s = 0.0
    for start in range(0, len(order), batch_size):
        chunk = order[start : start + batch_size]
        batch = tok.pad({"input_ids": [encoded[i] for i in chunk]}, padding=True, return_tensors="pt")
        g0 = time.perf_counter()
        rows = model.generate(**batch, num_beams=num_beams, do_sample=False)
        gen_s += time.perf_counter() - g0
        for i, row in zip(chunk, rows.tolist()):
            outputs[i] = generated_ids(row, eos_id)
    wall = time.perf_counter() - t0
    src_tokens = sum(len(e) for e in encoded)
    gen_tokens = sum(len(o) for o in outputs)
    stats = {
        "batch": batch_size,
        "num_beams": num_beams,
        "segments": len(texts),
        "source_tokens": src_tokens,
        "generated_tokens": gen_tokens,
        "wall_s": round(wall, 4),
        "generate_s": round(gen_s, 4),
        "gen_tokens_per_s": round(gen_tokens / wall, 2) if wall > 0 else None,
        "peak_rss_mb": round(peak_rss_mb(), 1),
        "hit_max_length": sum(len(o) >= model.generation_config.max_length - 1 for o in outputs),
    }
    return stats, outputs


def cmd_bench(args):
    torch.set_num_threads(args.threads)
    model_dir = str(Path(args.model_dir).resolve())
    with open(args.segments, encoding="utf-8") as f:
        lines = [line.rstrip("\r\n") for line in f]
    texts = [t for t in lines if t.strip()]
    if len(texts) != len(lines):
        print(f"note: skipped {len(lines) - len(texts)} empty line(s)", file=sys.stderr)
    if not texts:
        sys.exit("marian_speed: no segments")
    batch_sizes = [int(b) for b in args.batch_sizes.split(",") if b.strip()]

    t0 = time.perf_counter()
    tok = MarianTokenizer.from_pretrained(model_dir)
    model = MarianMTModel.from_pretrained(model_dir).eval()
    load_s = time.perf_counter() - t0
    num_beams = args.num_beams if args.num_beams is not None else (model.generation_config.num_beams or 1)
    max_source_tokens = model.config.max_position_embeddings
    print(
        f"model {model_dir} loaded in {load_s:.2f}s; threads {torch.get_num_threads()}, num_beams {num_beams}, "
        f"max_length {model.generation_config.max_length}; {len(texts)} segments; torch {torch.__version__}, "
        f"transformers {transformers.__version__}"
    )
    if not args.no_warmup:
        with torch.inference_mode():
            model.generate(**tok(texts[:1], return_tensors="pt"), num_beams=num_beams, max_new_tokens=2)

    header = f"{'batch':>5} {'segs':>5} {'src_tok':>8} {'gen_tok':>8} {'wall_s':>9} {'gen_s':>9} {'gen_tok/s':>10} {'rss_MB':>8} {'at_max':>6}"
    print(header)
    results = []
    out_f = open(args.outputs, "w", encoding="utf-8") if args.outputs else None
    for b in batch_sizes:
        stats, outputs = run_one(model, tok, texts, b, num_beams, max_source_tokens)
        results.append(stats)
        print(
            f"{b:>5} {stats['segments']:>5} {stats['source_tokens']:>8} {stats['generated_tokens']:>8} "
            f"{stats['wall_s']:>9.3f} {stats['generate_s']:>9.3f} {stats['gen_tokens_per_s']:>10.1f} "
            f"{stats['peak_rss_mb']:>8.1f} {stats['hit_max_length']:>6}",
            flush=True,
        )
        if out_f:
            out_f.write(json.dumps({"batch": b, "num_beams": num_beams, "outputs": outputs}) + "\n")
            out_f.flush()
    if out_f:
        out_f.close()
    if args.json:
        report = {
            "model_dir": model_dir,
            "segments_file": str(Path(args.segments).resolve()),
            "threads": torch.get_num_threads(),
            "num_beams": num_beams,
            "max_length": model.generation_config.max_length,
            "warmup": not args.no_warmup,
            "load_s": round(load_s, 3),
            "versions": {"torch": torch.__version__, "transformers": transformers.__version__},
            "results": results,
        }
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(report, f, indent=2)
            f.write("\n")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    mk = sub.add_parser("make-model", help="write a random model with the opus-mt-ar-en shape")
    mk.add_argument("out_dir")
    mk.add_argument("--seed", type=int, default=SEED)
    mk.add_argument("--eos-pos-weight", type=float, default=EOS_POS_WEIGHT)
    mk.add_argument("--threads", type=int, default=2)
    bn = sub.add_parser("bench", help="time transformers' generate on a segments file")
    bn.add_argument("model_dir")
    bn.add_argument("--segments", required=True)
    bn.add_argument("--batch-sizes", default="1,16")
    bn.add_argument("--num-beams", type=int, default=None)
    bn.add_argument("--threads", type=int, default=2)
    bn.add_argument("--json")
    bn.add_argument("--outputs")
    bn.add_argument("--no-warmup", action="store_true")
    args = ap.parse_args()
    if args.cmd == "make-model":
        cmd_make_model(args)
    else:
        cmd_bench(args)


if __name__ == "__main__":
    main()
