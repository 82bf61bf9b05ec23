#!/usr/bin/env bash
# bench-llamacpp.sh: benchmark llama.cpp (the peer engine) on exactly the
# requests `tarjama bench` runs, and print one row in tarjama bench's columns.
#
# What it builds, and where:
#   A Python venv at "${TARJAMA_HOME:-$HOME/.cache/tarjama}/llamacpp-venv" with
#   llama-cpp-python==${LLAMA_CPP_PYTHON_VERSION} (pinned below) installed from
#   its source distribution, so llama.cpp is compiled on this machine with its
#   native CPU flags (GGML_NATIVE=ON, OpenMP; no BLAS, no GPU backends, no
#   multimodal mtmd library). cmake and ninja come from PyPI as build
#   dependencies. The venv is reused on later runs when it already imports the
#   pinned version; delete it to force a rebuild.
#   The first build takes about 8-15 minutes on 2 cores (run under nice -n 10).
#
# How to run it:
#   cargo run --release -- bench --export-requests target/bench/requests.jsonl
#   scripts/bench-llamacpp.sh target/bench/requests.jsonl
#   scripts/bench-llamacpp.sh target/bench/requests.jsonl MODEL.gguf --threads 2 \
#       --json target/bench/llamacpp.json --outputs target/bench/llamacpp-outputs.jsonl
# To fill the "same as batch 1" column, give it tarjama's batch-1 translations
# (from `cargo run --release -- bench --out target/bench ...`):
#   scripts/bench-llamacpp.sh target/bench/requests.jsonl --compare target/bench/batch-1.outputs.jsonl
# Export and bench with the same options (--limit, --model, glossary, prompt
# style) so that the request ids and prompts match.
#
# Usage: bench-llamacpp.sh REQUESTS.jsonl [MODEL.gguf] [--threads N] [--limit N]
#                          [--json FILE] [--outputs FILE] [--n-ctx N] [--n-batch N]
#                          [--compare BATCH1.outputs.jsonl] [--no-mmap] [--quiet]
#        bench-llamacpp.sh --build-only
# LLAMACPP_CPU=avx2 builds and uses a second venv (llamacpp-venv-avx2) with llama.cpp
# compiled for AVX2/FMA/F16C only (x86-64-v3, no AVX-512): the peer for a tarjama built
# with RUSTFLAGS="-C target-cpu=x86-64-v3", to measure the AVX2 path on any x86 machine.
# Default model: ${TARJAMA_HOME:-$HOME/.cache/tarjama}/models/qwen2.5-coder-1.5b-instruct-q4_k_m.gguf
# Default threads: the number of cores (nproc).
# The benchmark itself runs under `nice -n 10` too; set BENCH_NICE=0 to run it
# at normal priority when the machine is otherwise idle and you want timings.
# Timings are only meaningful on an idle machine: ggml's threads spin-wait, so
# any concurrent job (a cargo build) slows llama.cpp several times over; the
# driver warns when it got clearly fewer cores than --threads. On an idle
# 2-core machine the 1.5B Q4_K_M model decodes at about 11 tok/s, so a full
# request file of ~126 requests takes roughly 10-15 minutes.
set -euo pipefail

LLAMA_CPP_PYTHON_VERSION="0.3.36"

script_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
tarjama_home="${TARJAMA_HOME:-$HOME/.cache/tarjama}"
cpu_level="${LLAMACPP_CPU:-native}"
case "$cpu_level" in
    native)
        venv="$tarjama_home/llamacpp-venv"
        cpu_cmake="-DGGML_NATIVE=ON" ;;
    avx2)
        venv="$tarjama_home/llamacpp-venv-avx2"
        cpu_cmake="-DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_BMI2=ON -DGGML_AVX512=OFF -DGGML_AVX512_VNNI=OFF -DGGML_AVX_VNNI=OFF -DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF" ;;
    *)
        echo "bench-llamacpp: error: LLAMACPP_CPU must be native or avx2, not $cpu_level" >&2
        exit 2 ;;
esac
py="$venv/bin/python"

usage() {
    sed -n '/^# Usage:/,/^# Default threads/p' "$0" | sed 's/^# \{0,1\}//' >&2
    exit 2
}

venv_works() {
    [[ -x "$py" ]] && "$py" - "$LLAMA_CPP_PYTHON_VERSION" <<'EOF' >/dev/null 2>&1
import sys
import llama_cpp
sys.exit(0 if llama_cpp.__version__ == sys.argv[1] else 1)
EOF
}

# ggml's AMX kernels die with SIGILL (`tilezero` in libggml-cpu) on this project's
# virtual machines, which advertise AMX; there llama.cpp is built without them and runs
# its AVX-512 VNNI kernels. (candle asks the kernel for AMX permission and works.)
no_amx_flags() {
    if grep -qw amx_tile /proc/cpuinfo 2>/dev/null; then
        echo "-mno-amx-tile -mno-amx-int8 -mno-amx-bf16"
    fi
}

build_venv() {
    echo "bench-llamacpp: building llama-cpp-python==$LLAMA_CPP_PYTHON_VERSION ($cpu_level CPU code) from source into $venv (takes several minutes; log: $venv.build.log)" >&2
    mkdir -p "$tarjama_home"
    local log="$venv.build.log"
    local start=$SECONDS
    if ! {
        { [[ -x "$py" ]] || python3 -m venv "$venv"; } &&
        "$py" -m pip install --upgrade pip &&
        CFLAGS="$(no_amx_flags)" CXXFLAGS="$(no_amx_flags)" \
        CMAKE_ARGS="$cpu_cmake -DGGML_BLAS=OFF -DGGML_CUDA=OFF -DGGML_HIP=OFF -DGGML_VULKAN=OFF -DGGML_METAL=OFF -DGGML_OPENCL=OFF -DGGML_SYCL=OFF -DLLAVA_BUILD=OFF" \
        FORCE_CMAKE=1 \
        CMAKE_BUILD_PARALLEL_LEVEL="$(nproc)" \
        nice -n 10 "$py" -m pip install --verbose --no-cache-dir \
            --no-binary llama-cpp-python \
            "llama-cpp-python==$LLAMA_CPP_PYTHON_VERSION"
    } >"$log" 2>&1; then
        tail -n 30 "$log" >&2
        echo "bench-llamacpp: error: building llama-cpp-python==$LLAMA_CPP_PYTHON_VERSION failed (log: $log); fix the cause shown above (usually no access to the Python package index, or missing gcc/g++/python3-venv: apt-get install build-essential python3-venv), then run again, or remove $venv to start clean" >&2
        exit 1
    fi
    if ! venv_works; then
        echo "bench-llamacpp: error: llama-cpp-python installed into $venv but does not import as version $LLAMA_CPP_PYTHON_VERSION (see $log); remove $venv and run again" >&2
        exit 1
    fi
    echo "bench-llamacpp: built in $((SECONDS - start)) s" >&2
}

if [[ $# -eq 0 ]]; then
    usage
fi
case "$1" in
    -h|--help) usage ;;
esac

if [[ "$1" == "--build-only" ]]; then
    venv_works || build_venv
    echo "bench-llamacpp: llama-cpp-python==$LLAMA_CPP_PYTHON_VERSION ready in $venv" >&2
    exit 0
fi

requests="$1"
shift
model="$tarjama_home/models/qwen2.5-coder-1.5b-instruct-q4_k_m.gguf"
if [[ $# -gt 0 && "$1" != --* ]]; then
    model="$1"
    shift
fi
if [[ ! -f "$requests" ]]; then
    echo "bench-llamacpp: error: requests file $requests not found; write it with: cargo run --release -- bench --export-requests $requests" >&2
    exit 1
fi
if [[ ! -f "$model" ]]; then
    echo "bench-llamacpp: error: model $model not found; pass the GGUF path as the second argument" >&2
    exit 1
fi

venv_works || build_venv

nice_cmd=(nice -n "${BENCH_NICE:-10}")
if [[ "${BENCH_NICE:-10}" == "0" ]]; then
    nice_cmd=()
fi
exec "${nice_cmd[@]}" "$py" "$script_dir/bench_llamacpp.py" \
    --requests "$requests" --model "$model" --threads "$(nproc)" "$@"
