#!/usr/bin/env bash
# Checks a CUDA build of tarjama on a GPU machine that has only the binary and this
# repository's working tree: no network, no Rust toolchain, no model weights, no lexicon.
#
#   bash scripts/gpu-check.sh [--cpu-only] [BINARY]
#
# BINARY (or $TARJAMA_BIN) defaults to target/cuda/release/tarjama, which
# scripts/build-cuda.sh makes, or the tarjama.gz beside it (the copy small enough to carry
# to a GPU machine; it is unpacked into the scratch folder). With --cpu-only, or where
# nvidia-smi finds no GPU, only the CPU half runs (then target/release/tarjama is used if
# there is no CUDA build, or if the CUDA build cannot start for want of its libraries).
# Results go to $OUT when it is set (the GPU machine sends back what is there), else to
# target/gpu-check: summary.txt (what to read), log.txt (everything printed) and
# details.tar.gz (every bench row and translation). Models are made in a scratch folder.
#
# 1. Tiny models, one per family (qwen2, qwen3, llama, gemma2, gemma3): the binary writes
#    each with random weights (`tarjama models random tiny-FAMILY --context 4096`: the
#    tiny shape's own 128 positions, sized for unit tests, are fewer than the real
#    translation prompt). `tarjama bench` translates the
#    first $GPU_CHECK_TINY_LIMIT (4) segments of samples/ greedily at batch 1 and 4, on the
#    CPU and on CUDA; the check is that CUDA writes the same text as the CPU (batch 1) and
#    that batch 4 writes the same as batch 1 on each device. A differing text is shown
#    with how many characters agree, which tells a near-tie in the logits from a broken
#    kernel. One `tarjama translate` run per device (the first tiny model) checks the whole
#    path.
# 2. One real-shape model ($GPU_CHECK_SHAPE, qwen2.5-1.5b by default; Q4_K_M with random
#    weights) measured on CUDA at batch sizes $GPU_CHECK_BATCHES (1,8,32,64), each on the
#    first $GPU_CHECK_LIMIT (64) segments with at most $GPU_CHECK_MAX_NEW (32) new tokens
#    each: prompt and decoding tokens/s, wall time, peak RSS and peak GPU memory (sampled
#    with nvidia-smi), and how many outputs equal batch 1's.
#
# Everything runs with --offline --no-lexicon (the Arabic lexicon would be fetched at
# first use) and TARJAMA_HOME in the scratch folder, so nothing is downloaded. Each bench
# run is capped at $GPU_CHECK_STEP_TIMEOUT (240) seconds and the whole check at
# $GPU_CHECK_DEADLINE (420): real-shape rows that would start later are skipped (and
# count as failed), so a GPU lease is not outrun. Exits 1 when a check failed or a run
# broke.
set -uo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"

cpu_only=0
bin=${TARJAMA_BIN:-}
for arg in "$@"; do
    case $arg in
        --cpu-only) cpu_only=1 ;;
        -h | --help) sed -n '2,/^set -uo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        -*) echo "gpu-check: unknown option $arg" >&2; exit 2 ;;
        *) bin=$arg ;;
    esac
done

families=${GPU_CHECK_TINY:-qwen2 qwen3 llama gemma2 gemma3}
tiny_limit=${GPU_CHECK_TINY_LIMIT:-4}
shape=${GPU_CHECK_SHAPE:-qwen2.5-1.5b}
batches=${GPU_CHECK_BATCHES:-1,8,32,64}
limit=${GPU_CHECK_LIMIT:-64}
max_new=${GPU_CHECK_MAX_NEW:-32}
step_timeout=${GPU_CHECK_STEP_TIMEOUT:-240}
deadline=${GPU_CHECK_DEADLINE:-420}
toolkit_home=${TARJAMA_HOME:-$HOME/.cache/tarjama}

gpu=0
if [[ $cpu_only == 0 ]] && command -v nvidia-smi >/dev/null && nvidia-smi -L >/dev/null 2>&1; then
    gpu=1
fi

res=${OUT:-$repo/target/gpu-check}
mkdir -p "$res"
rm -f "$res/summary.txt" "$res/log.txt" "$res/details.tar.gz"
if [[ -n ${OUT:-} ]]; then
    work=$(mktemp -d /tmp/tarjama-gpu-check.XXXXXX)
else
    work=$res/work
    rm -rf "$work"
    mkdir -p "$work"
fi
exec > >(tee "$res/log.txt") 2>&1
export TARJAMA_HOME=$work/home

failures=0
note() { printf '%s\n' "$*" | tee -a "$res/summary.txt"; }
fail() { failures=$((failures + 1)); note "FAIL: $*"; }
started=$(date +%s)
elapsed() { echo "$(($(date +%s) - started)) s"; }
# Seconds the next run may take: the step's cap, or what is left of the whole check's.
budget() {
    local left=$((deadline - ($(date +%s) - started)))
    ((left > step_timeout)) && left=$step_timeout
    ((left < 1)) && left=1
    echo "$left"
}

command -v python3 >/dev/null || { echo "gpu-check: python3 is needed (it edits GGUF metadata and compares outputs)" >&2; exit 2; }

# --- The binary, and the libraries it links (driver and CUDA 13 libraries). -------------
if [[ -z $bin ]]; then
    bin=target/cuda/release/tarjama
    [[ ! -x $bin && -f $bin.gz ]] && bin=$bin.gz
    [[ $gpu == 0 && ! -e $bin ]] && bin=target/release/tarjama
fi
if [[ $bin == *.gz && -f $bin ]]; then # the compressed copy build-cuda.sh writes to carry
    # libcudart, if build-cuda.sh put it beside, goes along: the binary looks beside itself.
    [[ -f $(dirname "$bin")/libcudart.so.13 ]] && cp "$(dirname "$bin")/libcudart.so.13" "$work/"
    gunzip -c "$bin" >"$work/tarjama" && chmod +x "$work/tarjama" && bin=$work/tarjama
fi
[[ -x $bin ]] || { echo "gpu-check: no binary at $bin (build it with scripts/build-cuda.sh)" >&2; exit 2; }
bin=$(cd "$(dirname "$bin")" && pwd)/$(basename "$bin")

lib_dirs=(/usr/local/nvidia/lib64 /usr/local/nvidia/lib /usr/local/cuda/lib64
    /usr/local/cuda/targets/x86_64-linux/lib /usr/lib/x86_64-linux-gnu/nvidia/current)
for sp in $(python3 -c 'import site; print(" ".join(site.getsitepackages()))' 2>/dev/null) \
    /opt/*/.venv/lib/python3*/site-packages /usr/local/lib/python3*/dist-packages; do
    for d in "$sp"/nvidia/*/lib; do [[ -d $d ]] && lib_dirs+=("$d"); done
done
for d in "$toolkit_home"/cuda-toolkit/*/pkgs/nvidia/*/lib; do [[ -d $d ]] && lib_dirs+=("$d"); done
# The libraries the binary links, and on a GPU the ones it opens when CUDA is first used.
opened_libs="libcuda.so.1 libcublas.so.13 libcublasLt.so.13 libcurand.so.10 libnvrtc.so.13"
findable() {
    ldconfig -p 2>/dev/null | grep -q " $1 " && return 0
    local d
    for d in ${LD_LIBRARY_PATH//:/ }; do [[ -e $d/$1 ]] && return 0; done
    return 1
}
missing_libs() {
    {
        ldd "$bin" 2>/dev/null | awk '/=> not found/ {print $1}'
        if [[ $gpu == 1 ]]; then for lib in $opened_libs; do findable "$lib" || echo "$lib"; done; fi
    } | sort -u
}
for pass in 1 2; do # twice: a library found shows the ones it needs in turn (cuBLAS: cuBLASLt)
    for lib in $(missing_libs); do
        for d in "${lib_dirs[@]}"; do
            if [[ -e $d/$lib ]]; then
                case ":${LD_LIBRARY_PATH:-}:" in *":$d:"*) ;; *) export LD_LIBRARY_PATH=$d${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH} ;; esac
                break
            fi
        done
    done
done
if [[ -n $(missing_libs) ]]; then
    if [[ $gpu == 0 && -x target/release/tarjama ]]; then
        echo "gpu-check: $bin cannot start here (missing: $(missing_libs | tr '\n' ' ')); using target/release/tarjama"
        bin=$repo/target/release/tarjama
    else
        echo "gpu-check: $bin cannot start: missing $(missing_libs | tr '\n' ' ')(searched ${lib_dirs[*]})" >&2
        exit 2
    fi
fi

note "tarjama gpu-check, $(date -u '+%Y-%m-%d %H:%M UTC') on $(hostname)"
note "binary: $bin ($("$bin" --version 2>&1), $(du -h "$bin" | cut -f1))"
note "mode: $([[ $gpu == 1 ]] && echo 'CPU and CUDA' || echo 'CPU only (no GPU found or --cpu-only)')"
[[ -n ${LD_LIBRARY_PATH:-} ]] && note "LD_LIBRARY_PATH=$LD_LIBRARY_PATH"
if [[ $gpu == 1 ]]; then
    note "GPU: $(nvidia-smi --query-gpu=name,driver_version,memory.total,compute_cap --format=csv,noheader)"
    ldd "$bin" | grep -E 'libcuda|libcublas|libcudart|libcurand|libnvrtc' | sed 's/^\s*/  /'
fi
note "CPU: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //'), $(nproc) threads"

devices=(cpu)
[[ $gpu == 1 ]] && devices+=(cuda)
common=(--no-lexicon --offline)

# Figures of one saved bench row: "prompt tok/s, gen tok/s, wall s, peak RSS MB".
row() {
    python3 - "$1" <<'EOF'
import json, sys
r = json.load(open(sys.argv[1]))
print(f"{r['requests']:>4} req  prompt {r['prompt_tokens']:>6} tok {r['prompt_tokens_per_s']:>9.1f} tok/s  "
      f"gen {r['generated_tokens']:>5} tok {r['generated_tokens_per_s']:>8.1f} tok/s  "
      f"wall {r['wall_s']:>6.1f} s  RSS {r['peak_rss_mb']:>6.0f} MB  load {r['load_s']:.1f} s")
EOF
}
# Compares two bench outputs files segment by segment; exit 1 when any text differs.
compare() {
    python3 - "$1" "$2" <<'EOF'
import json, sys
a, b = ([json.loads(l) for l in open(p, encoding="utf-8")] for p in sys.argv[1:3])
same, notes = 0, []
for x, y in zip(a, b):
    if x["id"] == y["id"] and x["text"] == y["text"]:
        same += 1
        continue
    n = 0
    while n < min(len(x["text"]), len(y["text"])) and x["text"][n] == y["text"][n]:
        n += 1
    notes.append(f"{x['id']}: first {n} chars agree ({len(x['text'])} vs {len(y['text'])})")
ok = same == len(a) == len(b)
print(f"{same}/{max(len(a), len(b))} identical" + ("" if ok else "; " + "; ".join(notes[:3])))
sys.exit(0 if ok else 1)
EOF
}
# The real-shape model takes a minute or more to write (one CPU thread): begin it now.
real=0
[[ $gpu == 1 || ${GPU_CHECK_REAL_ON_CPU:-0} == 1 ]] && real=1
if [[ $real == 1 ]]; then
    "$bin" models random "$shape" "$work/$shape.gguf" >"$work/real-model.log" 2>&1 &
    real_model_pid=$!
fi

# --- 0. What --device cuda says where CUDA cannot run. ---------------------------------
printf '%s\n' "$(sed -n '1,5p' samples/000_e0e78c066911b3fb.txt)" >"$work/input.txt"
if [[ $gpu == 0 ]]; then
    "$bin" models random tiny-qwen2 "$work/refusal.gguf" >/dev/null
    msg=$(env -u RUST_BACKTRACE "$bin" -q translate "$work/input.txt" --out "$work/refusal" --model "$work/refusal.gguf" \
        --device cuda --no-summary --no-memory "${common[@]}" 2>&1 | grep -m1 -- '--device cuda')
    note "--device cuda here: ${msg:-(no message)}"
fi

# --- 1. Tiny models: CUDA against the CPU, batch 4 against batch 1. -------------------
note ""
note "== tiny models, first $tiny_limit segments of samples/, greedy, batch 1 and 4 =="
made_families=""
for fam in $families; do
    if "$bin" models random "tiny-$fam" "$work/tiny-$fam.gguf" --context 4096 >/dev/null; then
        made_families+=" $fam"
    else
        fail "tiny-$fam: cannot write the model"
    fi
done
first=$(echo $made_families | cut -d' ' -f1)
if [[ $gpu == 1 && -n $first ]]; then
    # The driver compiles candle's PTX for this GPU at first use and keeps it in its cache
    # (CUDA_CACHE_PATH): measured here once, so the rows below don't carry it.
    export CUDA_CACHE_PATH=$TARJAMA_HOME/nv-compute-cache CUDA_CACHE_MAXSIZE=4294967296
    t0=$(date +%s)
    timeout "$(budget)" "$bin" -q bench samples --model "$work/tiny-$first.gguf" --limit 1 \
        --max-new-tokens 16 --batch-sizes 1 --device cuda --out "$work/warm-up" "${common[@]}" \
        >"$work/warm-up.table" 2>"$work/warm-up.err" \
        || fail "CUDA warm-up failed: $(tail -n 3 "$work/warm-up.err" | tr '\n' ' ')"
    note "CUDA warm-up (first use of the kernels: the driver compiles their PTX): $(($(date +%s) - t0)) s"
fi
for fam in $made_families; do
    model=$work/tiny-$fam.gguf
    for dev in "${devices[@]}"; do
        out=$work/tiny-$fam-$dev
        if ! timeout "$(budget)" "$bin" -q bench samples --model "$model" --limit "$tiny_limit" \
            --batch-sizes 1,4 --device "$dev" --out "$out" "${common[@]}" >"$out.table" 2>"$out.err"; then
            fail "tiny-$fam on $dev: bench failed: $(tail -n 3 "$out.err" | tr '\n' ' ')"
            continue
        fi
        note "tiny-$fam $dev batch 1: $(row "$out/batch-1.json")"
        note "tiny-$fam $dev batch 4: $(row "$out/batch-4.json")"
        if verdict=$(compare "$out/batch-1.outputs.jsonl" "$out/batch-4.outputs.jsonl"); then
            note "tiny-$fam $dev: batch 4 = batch 1: $verdict"
        else
            fail "tiny-$fam $dev: batch 4 differs from batch 1: $verdict"
        fi
    done
    if [[ $gpu == 1 && -f $work/tiny-$fam-cpu/batch-1.outputs.jsonl && -f $work/tiny-$fam-cuda/batch-1.outputs.jsonl ]]; then
        if verdict=$(compare "$work/tiny-$fam-cpu/batch-1.outputs.jsonl" "$work/tiny-$fam-cuda/batch-1.outputs.jsonl"); then
            note "tiny-$fam: CUDA = CPU: $verdict"
        else
            fail "tiny-$fam: CUDA differs from CPU: $verdict"
        fi
    fi
done

# One whole `translate` run per device (segmenting, checks, writing the outputs).
note ""
for dev in "${devices[@]}"; do
    [[ -n $first ]] || break
    if timeout "$(budget)" "$bin" -q translate "$work/input.txt" --out "$work/translate-$dev" \
        --model "$work/tiny-$first.gguf" --device "$dev" --format json,txt --no-summary --no-memory \
        --max-new-tokens 48 "${common[@]}" >"$work/translate-$dev.log" 2>&1 \
        && [[ -s $work/translate-$dev/input.en.txt ]]; then
        note "translate on $dev: ok ($(wc -c <"$work/translate-$dev/input.en.txt") bytes of English)"
    else
        fail "translate on $dev: $(tail -n 3 "$work/translate-$dev.log" | tr '\n' ' ')"
    fi
done
if [[ $gpu == 1 && -s $work/translate-cpu/input.en.txt && -s $work/translate-cuda/input.en.txt ]]; then
    if cmp -s "$work/translate-cpu/input.en.txt" "$work/translate-cuda/input.en.txt"; then
        note "translate: CUDA = CPU (input.en.txt identical)"
    else
        fail "translate: CUDA's input.en.txt differs from the CPU's"
    fi
fi
note "tiny checks done at $(elapsed)"

# --- 2. A real-shape model on CUDA. ------------------------------------------------------
if [[ $real == 1 ]]; then
    dev=${devices[-1]}
    note ""
    note "== $shape (random weights) on $dev: first $limit segments, at most $max_new new tokens each =="
    model=$work/$shape.gguf
    if wait "$real_model_pid"; then
        note "$(cat "$work/real-model.log") (written alongside the tiny checks)"
        base_mb=$([[ $gpu == 1 ]] && nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits | head -1)
        for b in ${batches//,/ }; do
            if (($(budget) < 30)); then
                fail "$shape batch $b: skipped, the check's $deadline s are spent (GPU_CHECK_DEADLINE)"
                continue
            fi
            if [[ $gpu == 1 ]]; then
                nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits -lms 200 >"$work/gpu-mem-$b.txt" 2>/dev/null &
                sampler=$!
            fi
            timeout "$(budget)" "$bin" -q bench samples --model "$model" --limit "$limit" \
                --max-new-tokens "$max_new" --batch-sizes "$b" --device "$dev" --out "$work/real" \
                "${common[@]}" >"$work/real-$b.table" 2>"$work/real-$b.err"
            status=$?
            if [[ $gpu == 1 ]]; then
                kill "$sampler" 2>/dev/null
                wait "$sampler" 2>/dev/null
                peak=$(sort -n "$work/gpu-mem-$b.txt" | tail -1)
                gpu_mem="  GPU ${peak:-?} MiB (idle ${base_mb:-?})"
            else
                gpu_mem=""
            fi
            if [[ $status != 0 || ! -f $work/real/batch-$b.json ]]; then
                fail "$shape batch $b: bench failed (status $status): $(tail -n 3 "$work/real-$b.err" | tr '\n' ' ')"
                continue
            fi
            same=""
            if [[ $b != 1 && -f $work/real/batch-1.outputs.jsonl ]]; then
                same="  same as batch 1: $(compare "$work/real/batch-1.outputs.jsonl" "$work/real/batch-$b.outputs.jsonl" | cut -d';' -f1)"
            fi
            note "$shape $dev batch $(printf '%2s' "$b"): $(row "$work/real/batch-$b.json")$gpu_mem$same"
        done
    else
        fail "$shape: cannot write the model: $(tail -n 3 "$work/real-model.log" | tr '\n' ' ')"
    fi
else
    note ""
    note "real-shape bench skipped: it runs on CUDA (GPU_CHECK_REAL_ON_CPU=1 runs it on the CPU)"
fi

note ""
note "$( ((failures == 0)) && echo "all checks passed" || echo "$failures check(s) failed") in $(elapsed)"
(cd "$work" && find . -name '*.json' -o -name '*.jsonl' -o -name '*.table' -o -name '*.err' \
    -o -name '*.log' -o -name 'gpu-mem-*' -o -name '*.en.txt' | tar -czf "$res/details.tar.gz" -T -)
[[ -n ${OUT:-} ]] && rm -rf "$work"
exit $((failures > 0))
