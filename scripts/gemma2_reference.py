#!/usr/bin/env python3
"""gemma2_reference.py: reference logits of a tiny random Gemma 2 from Hugging Face
`transformers`, for the parity test of tarjama's Gemma 2 decoder (src/model/gemma.rs).

candle has no quantized Gemma 2 to compare with, so this script builds a tiny
`Gemma2ForCausalLM` (eager attention, float32) with a fixed seed, writes its weights into
a GGUF in llama.cpp's layout (tensor names from gguf-py's own name map, norm weights
plus one as llama.cpp's converter writes them, matrices in F16) and records, for a
16-token prompt and 10 greedy steps, the logits of the last position after every step.
Every step runs the whole sequence without a cache, so the reference is the plain
formula, with the sliding window (8 positions on even layers) crossed on layer 0.

The matrices are rounded to F16 before the reference runs, so both sides compute with
the same weights. Writes tests/fixtures/gemma2/tiny.gguf and reference.json.

Runs inside its own venv with pinned versions, at
"${TARJAMA_HOME:-$HOME/.cache/tarjama}/gemma2-reference-venv" (created on first use;
torch brings its CUDA libraries, a few GB, though everything here runs on the CPU).

    python3 scripts/gemma2_reference.py          # (re)write the fixtures
    python3 scripts/gemma2_reference.py --check  # compare with the committed ones
"""

import json
import os
import subprocess
import sys
from pathlib import Path

PINS = {
    "torch": "2.5.1",
    "transformers": "4.46.3",
    "tokenizers": "0.20.3",
    "safetensors": "0.4.5",
    "numpy": "1.26.4",
    "gguf": "0.17.1",
}

REPO = Path(__file__).resolve().parent.parent
FIXTURES = REPO / "tests" / "fixtures" / "gemma2"
TARJAMA_HOME = Path(os.environ.get("TARJAMA_HOME", Path.home() / ".cache" / "tarjama"))
VENV = TARJAMA_HOME / "gemma2-reference-venv"
VENV_PY = VENV / "bin" / "python"

SEED = 20240607
PROMPT_LEN = 16
STEPS = 10
CONFIG = dict(
    vocab_size=320,
    hidden_size=256,
    intermediate_size=256,
    num_hidden_layers=2,
    num_attention_heads=4,
    num_key_value_heads=2,
    head_dim=64,
    # llama.cpp scales queries by 1/sqrt(head_dim) for every Gemma 2 but the 27B.
    query_pre_attn_scalar=64,
    sliding_window=8,
    attn_logit_softcapping=50.0,
    final_logit_softcapping=30.0,
    max_position_embeddings=64,
    rms_norm_eps=1e-6,
    rope_theta=10000.0,
    hidden_activation="gelu_pytorch_tanh",
)


def works() -> bool:
    if not VENV_PY.exists():
        return False
    probe = (
        "import sys, torch, transformers, gguf, numpy\n"
        "ok = transformers.__version__ == sys.argv[1] and torch.__version__.split('+')[0] == sys.argv[2]\n"
        "sys.exit(0 if ok else 1)\n"
    )
    r = subprocess.run(
        [str(VENV_PY), "-c", probe, PINS["transformers"], PINS["torch"]],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    return r.returncode == 0


def enter() -> None:
    """Re-executes this script inside the venv, creating it first if needed."""
    if VENV.exists() and Path(sys.prefix).resolve() == VENV.resolve():
        return
    if not works():
        print(f"gemma2_reference: creating venv {VENV} with {PINS}", file=sys.stderr)
        TARJAMA_HOME.mkdir(parents=True, exist_ok=True)
        if not VENV_PY.exists():
            subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
        subprocess.run(
            [str(VENV_PY), "-m", "pip", "install", "--progress-bar", "off"]
            + [f"{package}=={version}" for package, version in PINS.items()],
            check=True,
        )
        if not works():
            sys.exit(f"gemma2_reference: the venv {VENV} does not import the pinned versions; remove it and retry")
    os.execv(str(VENV_PY), [str(VENV_PY), str(Path(__file__).resolve())] + sys.argv[1:])


def build_model():
    import torch
    from transformers import Gemma2Config, Gemma2ForCausalLM

    torch.manual_seed(SEED)
    config = Gemma2Config(**CONFIG, attn_implementation="eager", torch_dtype=torch.float32)
    model = Gemma2ForCausalLM(config).eval()
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name == "model.norm.weight":
                # Logits of a few units to a dozen, where the final soft-capping bends.
                p.copy_(7.0 + torch.randn_like(p) * 0.1)
            elif "post_" in name and name.endswith("norm.weight"):
                # What the layers add outweighs the token's own embedding.
                p.copy_(1.0 + torch.randn_like(p) * 0.1)
            elif name.endswith("norm.weight"):
                # Gemma's norms multiply by (1 + weight): weights near zero.
                p.copy_(torch.randn_like(p) * 0.1)
            elif "embed_tokens" in name:
                # Small enough that the embedding (times sqrt(hidden)) does not swamp
                # what the layers add, and the tied output does not just repeat the
                # last token.
                p.copy_((torch.randn_like(p) * 0.05).half().float())
            else:
                # Large enough that soft-capping and the window change the scores.
                p.copy_((torch.randn_like(p) * 0.2).half().float())
    return model


def write_gguf(model, path: Path) -> None:
    import gguf
    import numpy as np

    c = model.config
    w = gguf.GGUFWriter(str(path), "gemma2")
    w.add_name("tiny random gemma2 (scripts/gemma2_reference.py)")
    w.add_context_length(c.max_position_embeddings)
    w.add_embedding_length(c.hidden_size)
    w.add_block_count(c.num_hidden_layers)
    w.add_feed_forward_length(c.intermediate_size)
    w.add_head_count(c.num_attention_heads)
    w.add_head_count_kv(c.num_key_value_heads)
    w.add_layer_norm_rms_eps(c.rms_norm_eps)
    w.add_key_length(c.head_dim)
    w.add_value_length(c.head_dim)
    w.add_attn_logit_softcapping(c.attn_logit_softcapping)
    w.add_final_logit_softcapping(c.final_logit_softcapping)
    w.add_sliding_window(c.sliding_window)
    names = gguf.get_tensor_name_map(gguf.MODEL_ARCH.GEMMA2, c.num_hidden_layers)
    for hf_name, p in model.state_dict().items():
        if hf_name == "lm_head.weight":
            continue  # tied to the embeddings; llama.cpp's converter skips it too
        name = names.get_name(hf_name, try_suffixes=(".weight",))
        if name is None:
            sys.exit(f"gemma2_reference: no GGUF name for {hf_name}")
        data = p.detach().float().numpy()
        if hf_name.endswith("norm.weight"):
            data = (data + 1.0).astype(np.float32)  # as convert_hf_to_gguf.py writes them
        else:
            data = data.astype(np.float16)
        w.add_tensor(name, data)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def greedy(model, prompt, steps):
    """Logits of the last position after the prompt and after each greedy token."""
    import torch

    ids = list(prompt)
    logits, generated = [], []
    with torch.no_grad():
        for step in range(steps + 1):
            x = torch.tensor([ids])
            out = model(input_ids=x, attention_mask=torch.ones_like(x), use_cache=False)
            last = out.logits[0, -1].float()
            logits.append(last.tolist())
            if step < steps:
                token = int(last.argmax())
                generated.append(token)
                ids.append(token)
    return generated, logits


def max_diff(a, b):
    return max(abs(x - y) for ra, rb in zip(a, b) for x, y in zip(ra, rb))


def main() -> None:
    enter()
    import copy

    import torch
    import transformers

    check = "--check" in sys.argv[1:]
    model = build_model()
    gen = torch.Generator().manual_seed(SEED + 1)
    prompt = torch.randint(0, CONFIG["vocab_size"], (PROMPT_LEN,), generator=gen).tolist()
    generated, logits = greedy(model, prompt, STEPS)

    # How much each Gemma 2 detail moves these logits: a decoder that left one out
    # would miss the reference by about this much.
    sensitivity = {}
    for label, change in [
        ("no attention soft-capping", dict(attn_logit_softcapping=None)),
        ("no final soft-capping", dict(final_logit_softcapping=None)),
        ("no sliding window", dict(sliding_window=4096)),
        ("query scale 1/sqrt(hidden/heads * 2)", dict(query_pre_attn_scalar=128)),
    ]:
        other = copy.deepcopy(model)
        for key, value in change.items():
            setattr(other.config, key, value)
            for layer in other.model.layers:
                if key == "sliding_window":
                    layer.sliding_window = value
                    layer.self_attn.sliding_window = value if layer.is_sliding else None
                if key == "query_pre_attn_scalar":
                    layer.self_attn.scaling = value**-0.5
        ids = prompt + generated
        with torch.no_grad():
            changed = [
                other(input_ids=torch.tensor([ids[: PROMPT_LEN + i]]), use_cache=False).logits[0, -1].tolist()
                for i in range(STEPS + 1)
            ]
        sensitivity[label] = max_diff(logits, changed)

    reference = {
        "generator": "scripts/gemma2_reference.py",
        "versions": {"torch": torch.__version__, "transformers": transformers.__version__},
        "config": CONFIG,
        "seed": SEED,
        "prompt": prompt,
        "generated": generated,
        "logits": logits,
        "sensitivity": sensitivity,
    }
    for label, diff in sensitivity.items():
        print(f"gemma2_reference: {label}: logits move by up to {diff:.4f}", file=sys.stderr)
    print(f"gemma2_reference: prompt {prompt}\ngemma2_reference: greedy {generated}", file=sys.stderr)

    if check:
        committed = json.loads((FIXTURES / "reference.json").read_text())
        same = committed["generated"] == generated and max_diff(committed["logits"], logits) < 1e-5
        print(f"gemma2_reference: committed reference {'matches' if same else 'DIFFERS'}", file=sys.stderr)
        sys.exit(0 if same else 1)
    FIXTURES.mkdir(parents=True, exist_ok=True)
    write_gguf(model, FIXTURES / "tiny.gguf")
    (FIXTURES / "reference.json").write_text(json.dumps(reference) + "\n")
    size = (FIXTURES / "tiny.gguf").stat().st_size
    print(f"gemma2_reference: wrote {FIXTURES}/tiny.gguf ({size} bytes) and reference.json", file=sys.stderr)


if __name__ == "__main__":
    main()
