#!/usr/bin/env bash
# Build tarjama with `--features cuda` on a machine that has no GPU and no CUDA install.
#
#   bash scripts/build-cuda.sh            # -> target/cuda/release/tarjama
#   CUDA_COMPUTE_CAP=89 bash scripts/build-cuda.sh
#
# What it does, and why:
#
# * CUDA toolkit: NVIDIA's wheels from PyPI, pinned through the `cuda-toolkit` meta-package
#   at CUDA 13.0 update 2 (nvcc/nvrtc/crt/nvvm 13.0.88, cudart 13.0.96, cccl 13.0.85,
#   cuBLAS 13.1.0.3, cuRAND 10.4.0.35), installed with `pip install --target` under
#   ${TARJAMA_HOME:-$HOME/.cache/tarjama}/cuda-toolkit/13.0.2 (about 1.2 GiB, once).
#   Why 13.0 and not 12.x or a newer 13.x: candle-core 0.11.1 turns on cudarc's
#   `dynamic-linking`, so the binary names libcuda.so.1, libcudart.so.13, libcublas.so.13,
#   libcublasLt.so.13, libcurand.so.10 and libnvrtc.so.13 as needed libraries, and its
#   kernels are PTX that the driver compiles at start. The GPU machines this project
#   borrows run driver 580 (CUDA 13.0) with CUDA 13 libraries, so a 12.x build would not
#   find libcublas.so.12 there and PTX from nvcc 13.1+ would be too new for that driver.
#   cudarc 0.19.10 knows CUDA 11.4 to 13.4.
# * Host compiler: Debian 12's gcc 12 is within what nvcc 13.0 accepts (gcc 6 to 15), so
#   no other g++ and no `-allow-unsupported-compiler`.
# * GPU: CUDA_COMPUTE_CAP=90 by default (H100/H200; candle's build turns 90 into sm_90a).
#   Set CUDA_COMPUTE_CAP to build for another GPU (80 for A100, 89 for L4/L40, ...).
# * Driver library: none is needed to build. cudarc loads libcuda.so.1 (and cuBLAS,
#   cuRAND, NVRTC) at run time, so nothing links it; no wheel ships it anyway.
# * CPU code: `target-cpu=x86-64-v3` (AVX2/FMA/F16C: every x86 server of the last
#   decade), as .cargo/config.toml's portable build; the quantized kernels still pick
#   AVX-512 VNNI tiles at run time where the CPU has them. It is set through RUSTFLAGS
#   here because the rpath below needs RUSTFLAGS too. TARJAMA_CUDA_TARGET_CPU overrides
#   it (e.g. native when building on the GPU server itself).
# * Target dir: target/cuda (CARGO_TARGET_DIR), so the CPU build in target/release is
#   never touched. `--locked`: Cargo.lock already lists the CUDA crates.
# * The build runs under `nice -n 10`. From scratch it is long (candle's CUDA kernels
#   through nvcc, then the whole crate): see docs/performance.md's GPU section.
#
# Running the binary: it links only libcudart (copied beside it, found through an $ORIGIN
# rpath) and opens the driver (libcuda.so.1) and the CUDA 13 libraries named above when a
# GPU is first asked for, after checking they are there. So it starts anywhere: on a
# machine without a driver --device cpu works, --device auto falls back to the CPU and
# --device cuda fails with a one-line error naming what is missing (shown at the end).
# scripts/gpu-check.sh finds the libraries on a GPU machine.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"

cuda_pin=13.0.2 # the cuda-toolkit meta-package version: one CUDA release, all parts
components="nvcc,crt,nvvm,cudart,cccl,cublas,curand,nvrtc"
home=${TARJAMA_HOME:-$HOME/.cache/tarjama}
tk=$home/cuda-toolkit/$cuda_pin
cuda_root=$tk/pkgs/nvidia/cu13 # the wheels' shared prefix: bin/ include/ lib/ nvvm/
export CUDA_COMPUTE_CAP=${CUDA_COMPUTE_CAP:-90}
target_cpu=${TARJAMA_CUDA_TARGET_CPU:-x86-64-v3}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$repo/target/cuda}

say() { printf '[build-cuda] %s\n' "$*"; }

# 1. The toolkit, once.
if [[ ! -f $tk/.installed ]]; then
    say "installing CUDA $cuda_pin ($components) from NVIDIA's wheels into $tk"
    python3 -m pip --version >/dev/null 2>&1 || {
        echo "build-cuda: python3 -m pip is needed to fetch the CUDA toolkit wheels" >&2
        exit 1
    }
    rm -rf "$tk.partial"
    mkdir -p "$tk.partial"
    PIP_ROOT_USER_ACTION=ignore python3 -m pip install --quiet --disable-pip-version-check --no-compile \
        --target "$tk.partial/pkgs" "cuda-toolkit[$components]==$cuda_pin"
    rm -rf "$tk"
    mv "$tk.partial" "$tk"
    touch "$tk/.installed"
fi
[[ -x $cuda_root/bin/nvcc ]] || { echo "build-cuda: no nvcc in $cuda_root/bin" >&2; exit 1; }

# 2. The names a linker looks for: wheels hold only versioned libraries (libcublas.so.13),
#    `-lcublas` wants libcublas.so; the toolkit's usual lib64/ is lib/ here.
for lib in cudart cublas cublasLt curand nvrtc; do
    real=$(cd "$cuda_root/lib" && ls "lib$lib.so."* 2>/dev/null | grep -E "^lib$lib\.so\.[0-9]+$" | head -1 || true)
    [[ -n $real ]] || { echo "build-cuda: lib$lib.so.* missing from $cuda_root/lib" >&2; exit 1; }
    ln -sfn "$real" "$cuda_root/lib/lib$lib.so"
done
ln -sfn lib "$cuda_root/lib64"

# 3. Every crate's sources, fetched first (the build itself needs no network).
cargo fetch --locked --quiet

# 4. The build.
export CUDA_HOME=$cuda_root NVCC=$cuda_root/bin/nvcc PATH=$cuda_root/bin:$PATH
# cudarc's dynamic loading adds no link path, yet candle-kernels links libcudart: the
# linker finds it through LIBRARY_PATH (not part of cargo's fingerprint, unlike RUSTFLAGS).
export LIBRARY_PATH=$cuda_root/lib${LIBRARY_PATH:+:$LIBRARY_PATH}
# $ORIGIN: the binary finds the libcudart copied beside it (step 5).
export RUSTFLAGS="-C target-cpu=$target_cpu -C link-arg=-Wl,-rpath,\$ORIGIN"
say "nvcc: $("$NVCC" --version | grep -o 'release [0-9.]*, V[0-9.]*'); host $(cc --version | head -1)"
say "cargo build --release --locked --features cuda (sm_$CUDA_COMPUTE_CAP, target-cpu=$target_cpu) into $CARGO_TARGET_DIR"
start=$(date +%s)
nice -n 10 cargo build --release --locked --features cuda --bin tarjama
bin=$CARGO_TARGET_DIR/release/tarjama
say "built in $(($(date +%s) - start)) s"

# 5. Where it is, what it needs, and that it starts.
say "binary: $bin ($(du -h "$bin" | cut -f1), $(stat -c %s "$bin") bytes)"
# candle-kernels links libcudart (for MoE kernels tarjama never calls); a copy beside the
# binary lets it start where no CUDA is installed. The other CUDA libraries are opened
# only when a GPU is used.
cp -L "$cuda_root/lib/libcudart.so.13" "$(dirname "$bin")/libcudart.so.13"
gzip -6 -c "$bin" >"$bin.gz.partial" && mv "$bin.gz.partial" "$bin.gz"
say "compressed copy: $bin.gz ($(du -h "$bin.gz" | cut -f1)): carry it and libcudart.so.13 beside it to a GPU machine (scripts/gpu-check.sh unpacks it)"
say "needs: $(readelf -d "$bin" | sed -n 's/.*NEEDED.*\[\(.*\)\]/\1/p' | tr '\n' ' ')"
if ldconfig -p 2>/dev/null | grep -q 'libcuda\.so\.1 '; then
    say "a driver is installed here: run it with LD_LIBRARY_PATH=$cuda_root/lib"
    LD_LIBRARY_PATH=$cuda_root/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH} "$bin" --version
else
    say "no driver here; smoke test with no CUDA library on the path:"
    smoke=$(mktemp -d)
    run() { env -u RUST_BACKTRACE -u LD_LIBRARY_PATH TARJAMA_HOME="$smoke/home" "$bin" "$@"; }
    run --version
    run models random tiny-qwen2 "$smoke/tiny.gguf" >/dev/null
    printf 'مرحبا بالعالم\n' >"$smoke/in.txt"
    run -q translate "$smoke/in.txt" --out "$smoke/out" --model "$smoke/tiny.gguf" --device cuda \
        --no-summary --no-memory --no-lexicon --offline 2>&1 | grep -m1 -- '--device cuda' || true
    run -q translate "$smoke/in.txt" --out "$smoke/out" --model "$smoke/tiny.gguf" --device auto \
        --no-summary --no-memory --no-lexicon --offline >/dev/null 2>&1 \
        && say "--device auto fell back to the CPU: $(ls "$smoke/out" | tr '\n' ' ')"
    rm -rf "$smoke"
fi
