#!/usr/bin/env python3
"""Benchmark llama.cpp (through llama-cpp-python) on tarjama bench's requests.

Run it through scripts/bench-llamacpp.sh, which builds llama-cpp-python from
source into a venv and calls this file with that venv's Python.

Input: the JSONL written by `tarjama bench --export-requests FILE`, one request
a line: {"id", "arabic_words", "prompt", "prompt_tokens", "max_new_tokens",
"stop_tokens"}. Each request's `prompt_tokens` are fed to llama.cpp as token
ids (the text `prompt` is not re-tokenized), decoded greedily until one of
`stop_tokens` is sampled or `max_new_tokens` tokens have been generated, one
request at a time in file order, all in one loaded Llama object.

Output: one header and one row in tarjama bench's columns, and optionally
--json FILE (the same figures) and --outputs FILE (one JSONL line per request
with the generated token ids and text, to compare with tarjama's outputs).

How time is measured: llama.cpp's own perf counters (llama_perf_context),
reset before each request. llama.cpp files each synchronized llama_decode call
of more than one token under "prompt eval" (t_p_eval_ms / n_p_eval) and each
call of exactly one token under "eval" (t_eval_ms / n_eval); llama-cpp-python
synchronizes after every decode because it samples right after it. A prompt
whose uncached suffix is exactly one token long (or whose last n_batch chunk
is) would land in the "eval" counters, so the driver takes a snapshot of the
counters when the first token has been sampled, at which point the whole
prompt has been evaluated and nothing else: prompt tokens/time = everything
counted up to that snapshot, decode tokens/time = everything counted after it.
Sampling (greedy argmax over the vocabulary in llama.cpp's sampler chain) and
Python overhead fall outside both and show up only in the wall time.

Counting: "gen tok" is the number of new tokens produced, the stop token not
included (it is what the output is made of). When a request ends on a stop
token, that equals the number of decode steps (the first token comes from the
prompt's logits, the stop token is never fed back); when it ends at
max_new_tokens it is one more than the decode steps. gen tok/s = gen tok /
decode seconds, as tarjama bench computes it; the JSON also carries the exact
decode_steps and decode_s.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--requests", required=True, help="REQUESTS.jsonl from tarjama bench --export-requests")
    p.add_argument("--model", required=True, help="GGUF model path")
    p.add_argument("--threads", type=int, default=os.cpu_count(), help="llama.cpp threads (decode and batch)")
    p.add_argument("--limit", type=int, default=None, help="run only the first N requests")
    p.add_argument("--json", dest="json_path", default=None, help="write the figures as a JSON object")
    p.add_argument("--outputs", default=None, help="write one JSONL line per request with the generated tokens")
    p.add_argument("--n-ctx", type=int, default=4096, help="context size (default 4096)")
    p.add_argument("--n-batch", type=int, default=512, help="prompt batch size (default 512)")
    p.add_argument("--no-mmap", action="store_true",
                   help="read the weights into memory at load time instead of mmap'ing them "
                        "(llama.cpp mmaps by default: load s is then small, the first request "
                        "pays for the page faults, and peak RSS counts the touched file pages)")
    p.add_argument("--compare", default=None,
                   help="tarjama bench's batch-1.outputs.jsonl: count the requests whose text "
                        "llama.cpp reproduced (the 'same as batch 1' column)")
    p.add_argument("--quiet", action="store_true", help="no per-request progress lines on stderr")
    return p.parse_args(argv)


def load_requests(path, limit):
    requests = []
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            line = line.strip()
            if not line:
                continue
            try:
                r = json.loads(line)
                req = {
                    "id": str(r["id"]),
                    "arabic_words": int(r["arabic_words"]),
                    "prompt_tokens": [int(t) for t in r["prompt_tokens"]],
                    "max_new_tokens": int(r["max_new_tokens"]),
                    "stop_tokens": {int(t) for t in r["stop_tokens"]},
                }
            except (ValueError, KeyError, TypeError) as e:
                sys.exit(f"bench-llamacpp: error: {path}:{lineno}: bad request line ({e!r})")
            if not req["prompt_tokens"]:
                sys.exit(f"bench-llamacpp: error: {path}:{lineno}: empty prompt_tokens")
            if req["max_new_tokens"] < 1:
                sys.exit(f"bench-llamacpp: error: {path}:{lineno}: max_new_tokens must be at least 1")
            requests.append(req)
            if limit is not None and len(requests) >= limit:
                break
    if not requests:
        sys.exit(f"bench-llamacpp: error: {path} holds no requests")
    return requests


class Perf:
    """llama.cpp's perf counters for one context, with the max(1, n) clamp undone."""

    def __init__(self, llama_cpp, ctx):
        self.llama_cpp = llama_cpp
        self.ctx = ctx

    def reset(self):
        self.llama_cpp.llama_perf_context_reset(self.ctx)

    def read(self):
        d = self.llama_cpp.llama_perf_context(self.ctx)
        # llama_perf_context reports n_p_eval and n_eval as max(1, n); a
        # counter that never ran has a time of exactly 0.
        n_p = d.n_p_eval if d.t_p_eval_ms > 0 else 0
        n_e = d.n_eval if d.t_eval_ms > 0 else 0
        return {"tokens": n_p + n_e, "ms": d.t_p_eval_ms + d.t_eval_ms}


def cpu_seconds():
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


def agreement(outputs, path):
    """How many of tarjama's outputs in `path` (bench's batch-1.outputs.jsonl:
    {"id", "text"} a line) llama.cpp matched, same id and same text (surrounding
    whitespace ignored), and how many were compared: the "same as batch 1"
    column of tarjama bench."""
    ours = {o["id"]: o["text"].strip() for o in outputs}
    same = of = 0
    with open(path, encoding="utf-8") as f:
        for line in f:
            if not line.strip():
                continue
            ref = json.loads(line)
            if ref["id"] not in ours:
                continue  # outside --limit
            of += 1
            same += ours[ref["id"]] == ref["text"].strip()
    return same, of


def main(argv):
    args = parse_args(argv)
    requests = load_requests(args.requests, args.limit)

    import llama_cpp
    from llama_cpp import Llama

    max_prompt = max(len(r["prompt_tokens"]) + r["max_new_tokens"] for r in requests)
    if max_prompt > args.n_ctx:
        sys.exit(f"bench-llamacpp: error: a request needs {max_prompt} tokens of context, more than --n-ctx {args.n_ctx}; pass a larger --n-ctx")

    t0 = time.perf_counter()
    llm = Llama(
        model_path=args.model,
        n_ctx=args.n_ctx,
        n_batch=args.n_batch,
        n_threads=args.threads,
        n_threads_batch=args.threads,
        n_gpu_layers=0,
        use_mmap=not args.no_mmap,
        logits_all=False,
        verbose=False,
    )
    load_s = time.perf_counter() - t0

    n_vocab = llm.n_vocab()
    for r in requests:
        bad = [t for t in r["prompt_tokens"] if not 0 <= t < n_vocab]
        if bad:
            sys.exit(f"bench-llamacpp: error: request {r['id']} has token ids outside this model's vocabulary ({bad[:5]}); was it exported for this model?")

    perf = Perf(llama_cpp, llm._ctx.ctx)
    outputs = []
    tot = {"prompt_tokens": 0, "prompt_len": 0, "prompt_ms": 0.0, "gen": 0, "decode_steps": 0, "decode_ms": 0.0, "words": 0}

    cpu_start = cpu_seconds()
    wall_start = time.perf_counter()
    for i, r in enumerate(requests):
        prompt = r["prompt_tokens"]
        perf.reset()
        req_start = time.perf_counter()
        # Greedy decoding: temp=0 makes llama-cpp-python's sampler chain a
        # plain argmax (llama_sampler_init_greedy); repeat_penalty=1.0 with
        # zero frequency/presence penalties makes its penalties sampler a
        # no-op, and no top-k/top-p/min-p stage is added at temp 0.
        #
        # Prompt cache: generate(reset=True) compares `prompt` with the tokens
        # already in the KV cache from the previous request (its prompt plus
        # the tokens it generated), keeps the KV cache of the longest common
        # prefix and evaluates only the rest (when the whole prompt matches,
        # it re-evaluates the last token to get fresh logits). That is
        # llama.cpp's prompt cache and tarjama does the same, so it is kept:
        # "prompt tok" below counts the tokens actually evaluated.
        gen = llm.generate(prompt, temp=0.0, top_k=1, top_p=1.0, min_p=0.0, typical_p=1.0,
                           repeat_penalty=1.0, frequency_penalty=0.0, presence_penalty=0.0,
                           reset=True)
        generated = []
        stopped_by = None
        prompt_snap = None
        try:
            for tok in gen:
                if prompt_snap is None:
                    # First token sampled: the prompt is fully evaluated and
                    # no generated token has been fed back yet.
                    prompt_snap = perf.read()
                if tok in r["stop_tokens"]:
                    stopped_by = tok
                    break
                generated.append(tok)
                if len(generated) >= r["max_new_tokens"]:
                    break
        finally:
            gen.close()
        req_s = time.perf_counter() - req_start
        end_snap = perf.read()
        if prompt_snap is None:  # the generator yielded nothing
            prompt_snap = end_snap
        p_tok, p_ms = prompt_snap["tokens"], prompt_snap["ms"]
        d_steps = end_snap["tokens"] - p_tok
        d_ms = end_snap["ms"] - p_ms

        tot["prompt_tokens"] += p_tok
        tot["prompt_len"] += len(prompt)
        tot["prompt_ms"] += p_ms
        tot["gen"] += len(generated)
        tot["decode_steps"] += d_steps
        tot["decode_ms"] += d_ms
        tot["words"] += r["arabic_words"]

        text = llm.detokenize(generated).decode("utf-8", errors="replace")
        outputs.append({
            "id": r["id"],
            "generated_tokens": generated,
            "text": text,
            "stop_token": stopped_by,
            "prompt_tokens": len(prompt),
            "prompt_tokens_evaluated": p_tok,
            "prompt_s": round(p_ms / 1e3, 4),
            "decode_steps": d_steps,
            "decode_s": round(d_ms / 1e3, 4),
            "wall_s": round(req_s, 4),
        })
        if not args.quiet:
            print(f"[{i + 1}/{len(requests)}] {r['id']}: prompt {p_tok}/{len(prompt)} tok in {p_ms / 1e3:.2f} s, "
                  f"gen {len(generated)} tok ({d_steps} steps) in {d_ms / 1e3:.2f} s"
                  f"{'' if stopped_by is not None else ' (no stop token)'}, wall {req_s:.2f} s",
                  file=sys.stderr, flush=True)
    wall_s = time.perf_counter() - wall_start
    cpu_s = cpu_seconds() - cpu_start
    # ggml's worker threads spin while they wait, so an undisturbed run keeps
    # about --threads cores busy. Much less means the scheduler gave the cores
    # to something else (this runs under nice -n 10) and the times are not
    # the engine's.
    cores_used = cpu_s / wall_s if wall_s > 0 else 0.0
    if cores_used < 0.8 * min(args.threads, os.cpu_count() or args.threads):
        print(f"bench-llamacpp: warning: the benchmark got {cores_used:.1f} cores on average for "
              f"{args.threads} threads: other load on this machine slowed it down, so its timings "
              f"are not representative", file=sys.stderr)

    peak_rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # KiB on Linux
    prompt_s = tot["prompt_ms"] / 1e3
    decode_s = tot["decode_ms"] / 1e3
    figures = {
        "engine": "llama.cpp",
        "batch": 1,
        "requests": len(requests),
        "prompt_tokens": tot["prompt_tokens"],
        "prompt_tokens_per_s": tot["prompt_tokens"] / prompt_s if prompt_s > 0 else 0.0,
        "generated_tokens": tot["gen"],
        "generated_tokens_per_s": tot["gen"] / decode_s if decode_s > 0 else 0.0,
        "wall_s": wall_s,
        "arabic_words": tot["words"],
        "words_per_s": tot["words"] / wall_s if wall_s > 0 else 0.0,
        "peak_rss_mb": peak_rss_mb,
        "load_s": load_s,
        "threads": args.threads,
        "cpu_s": cpu_s,
        "cores_used": cores_used,
        "llama_cpp_python_version": llama_cpp.__version__,
        # Extra detail, not printed in the row:
        "prompt_tokens_total": tot["prompt_len"],
        "prompt_tokens_reused": tot["prompt_len"] - tot["prompt_tokens"],
        "prompt_s": prompt_s,
        "decode_steps": tot["decode_steps"],
        "decode_s": decode_s,
        "n_ctx": args.n_ctx,
        "n_batch": args.n_batch,
        "mmap": not args.no_mmap,
        "model": os.path.abspath(args.model),
    }

    same = "-"
    if args.compare:
        same_n, of = agreement(outputs, args.compare)
        same = f"{same_n}/{of}"
        figures["same_as_reference"] = same_n
        figures["compared"] = of
    # The layout of tarjama bench's table (bench::render in src/bench.rs), so
    # the llama.cpp row lines up under tarjama's rows.
    print(f"{'engine':<10}  {'batch':>5}  {'requests':>8}  {'prompt tok':>10}  {'prompt tok/s':>12}  "
          f"{'gen tok':>7}  {'gen tok/s':>9}  {'wall s':>7}  {'words/s':>7}  {'peak RSS MB':>11}  "
          f"{'load s':>6}  same as batch 1")
    f = figures
    print(f"{f['engine']:<10}  {f['batch']:>5}  {f['requests']:>8}  {f['prompt_tokens']:>10}  "
          f"{f['prompt_tokens_per_s']:>12.1f}  {f['generated_tokens']:>7}  {f['generated_tokens_per_s']:>9.2f}  "
          f"{f['wall_s']:>7.1f}  {f['words_per_s']:>7.2f}  {f['peak_rss_mb']:>11.0f}  {f['load_s']:>6.2f}  {same}")

    if args.json_path:
        with open(args.json_path, "w", encoding="utf-8") as f:
            json.dump(figures, f, indent=2)
            f.write("\n")
    if args.outputs:
        with open(args.outputs, "w", encoding="utf-8") as f:
            for o in outputs:
                f.write(json.dumps(o, ensure_ascii=False) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
