#!/usr/bin/env bash
# Builds the container image from ./Dockerfile on this machine and translates a sample
# inside it, then checks the cluster examples (deploy/) against the image: the
# Kubernetes manifest validates against the Kubernetes API schema, and the command lines
# of the Kubernetes Job and the Slurm batch script run inside the image.
#
# No container registry is needed: the Dockerfile's two base images (rust:1-bookworm and
# debian:bookworm-slim) are replaced by local ones made from Debian packages. debootstrap
# builds a Debian bookworm root from this machine's configured apt source, podman imports
# it as localhost/tarjama-debian:bookworm, and the build stage's base adds gcc to it and
# this machine's Rust toolchain, bind-mounted read-only while the image builds. buildah
# builds and runs with chroot isolation, which needs no container runtime and works
# where podman's (crun) cannot set resource limits.
#
#   scripts/container-check.sh            # everything; the first run takes 20-30 minutes
#   WITH_MODEL=1 scripts/container-check.sh   # bake the model into the image too
#
# Needs root (or sudo) for debootstrap and apt-get; installs buildah, podman, debootstrap
# and, for the manifest check, the kubernetes-validate package (pip) when missing.
set -euo pipefail
cd "$(dirname "$0")/.."

work=${TARJAMA_CONTAINER_WORK:-/var/tmp/tarjama-container}
image=localhost/tarjama:check
debian_image=localhost/tarjama-debian:bookworm
rust_image=localhost/tarjama-rust:bookworm
say() { echo "container-check: $*" >&2; }

as_root=()
if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null || { say "needs root or sudo (debootstrap, apt-get, buildah)"; exit 1; }
    as_root=(sudo)
fi

missing=()
for tool in buildah podman debootstrap; do
    command -v "$tool" >/dev/null || missing+=("$tool")
done
if ((${#missing[@]})); then
    say "installing ${missing[*]}"
    "${as_root[@]}" apt-get update -qq
    DEBIAN_FRONTEND=noninteractive "${as_root[@]}" apt-get install -y -qq --no-install-recommends \
        "${missing[@]}" uidmap
fi

# The first deb URI apt is configured with: the mirror debootstrap reads from.
apt_mirror() {
    local uri
    uri=$(grep -hsE '^(URIs:|deb )' /etc/apt/sources.list.d/*.sources /etc/apt/sources.list \
        | grep -v security | head -1 | awk '{print $2}')
    echo "${uri:-http://deb.debian.org/debian}"
}

if ! "${as_root[@]}" buildah inspect --type image "$debian_image" >/dev/null 2>&1; then
    say "making $debian_image with debootstrap from $(apt_mirror)"
    "${as_root[@]}" rm -rf "$work/rootfs"
    mkdir -p "$work"
    "${as_root[@]}" debootstrap --variant=minbase bookworm "$work/rootfs" "$(apt_mirror)" >"$work/debootstrap.log"
    # apt inside the image reads the same mirror, security updates included.
    if [ -f /etc/apt/sources.list.d/debian.sources ]; then
        "${as_root[@]}" cp /etc/apt/sources.list.d/debian.sources "$work/rootfs/etc/apt/sources.list.d/"
        "${as_root[@]}" rm -f "$work/rootfs/etc/apt/sources.list"
    fi
    "${as_root[@]}" tar -C "$work/rootfs" -c . | "${as_root[@]}" podman import - "$debian_image" >/dev/null
fi

# A machine behind a TLS-inspecting proxy trusts its CA through local certificates; the
# images' ca-certificates take them in while building (and so trust that proxy too), or
# crates.io, PyPI and the lexicon could not be reached from inside.
local_cas=()
if compgen -G "/usr/local/share/ca-certificates/*.crt" >/dev/null; then
    local_cas=(-v /usr/local/share/ca-certificates:/usr/local/share/ca-certificates:ro)
fi

if ! "${as_root[@]}" buildah inspect --type image "$rust_image" >/dev/null 2>&1; then
    say "making $rust_image (gcc; the Rust toolchain is mounted at build time)"
    "${as_root[@]}" buildah bud --isolation chroot -q "${local_cas[@]}" -t "$rust_image" -f - . <<EOF
FROM $debian_image
RUN apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        ca-certificates gcc libc6-dev && rm -rf /var/lib/apt/lists/*
ENV PATH=/usr/local/rust/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
EOF
fi

toolchain=$(dirname "$(dirname "$(rustup which rustc 2>/dev/null || command -v rustc)")")
say "building $image (toolchain from $toolchain)"
start=$(date +%s)
"${as_root[@]}" buildah bud --isolation chroot --layers \
    --build-arg RUST_IMAGE="$rust_image" --build-arg DEBIAN_IMAGE="$debian_image" \
    --build-arg WITH_MODEL="${WITH_MODEL:-0}" \
    -v "$toolchain:/usr/local/rust:ro" "${local_cas[@]}" \
    -t "$image" . >"$work/build.log" 2>&1 || { tail -30 "$work/build.log" >&2; say "build failed: $work/build.log"; exit 1; }
say "built in $(($(date +%s) - start)) s; $("${as_root[@]}" podman image inspect "$image" --format '{{.Size}}' | numfmt --to=iec) on disk"

# Runs a command inside a fresh container of the image, the host's model cache mounted
# where the image keeps models (so the 1.1 GB model is not fetched again).
models=${TARJAMA_HOME:-${XDG_CACHE_HOME:-$HOME/.cache}/tarjama}/models
# The state volume is the per-node one of the examples: the Slurm task below finds the
# shard the Kubernetes pod translated in the memory, as a rerun on the same node would.
"${as_root[@]}" rm -rf "$work/state"
mkdir -p "$models" "$work/out" "$work/state"
# Usage: in_image [buildah run options] -- COMMAND [ARGS]...
in_image() {
    local container status=0 options=()
    while [ "$1" != -- ]; do
        options+=("$1")
        shift
    done
    container=$("${as_root[@]}" buildah from -q "$image")
    "${as_root[@]}" buildah run --isolation chroot \
        -v "$models:/var/lib/tarjama/models" -v "$work/state:/var/lib/tarjama/state" \
        -v "$work/out:/out" -v "$PWD/samples:/feed:ro" \
        "${options[@]}" "$container" "$@" || status=$?
    "${as_root[@]}" buildah rm "$container" >/dev/null
    return $status
}

say "inside the image: tarjama --version, the tools it starts, and a translation of sample 001"
in_image -- sh -c 'tarjama --version && pdftotext -v 2>&1 | head -1 && tesseract --list-langs 2>&1 | grep -x ara'
"${as_root[@]}" rm -rf "$work/out"/*
in_image -- tarjama translate /usr/share/tarjama/samples/001_16cb7a662e3fa037.txt --out /out --no-memory
# The image's portable binary gives the pinned English, byte for byte.
python3 - "$work/out/001_16cb7a662e3fa037.json" tests/fixtures/outputs/001_16cb7a662e3fa037.json <<'EOF'
import json, sys
got, pinned = (json.load(open(path)) for path in sys.argv[1:])
sentences = [[s["source"], s["translation"]] for p in got["paragraphs"] for s in p["sentences"]]
for part, same in [("sentences", sentences == pinned["sentences"]),
                   ("title", got["title"] == pinned["title"]),
                   ("summary", got["summary"] == pinned["summary"])]:
    if not same:
        sys.exit(f"container-check: the image's {part} differ from tests/fixtures/outputs/")
print("container-check: the image's sentences, title and summary equal the pinned ones")
EOF

# podman run is what a user would try first; on some hosts crun cannot set rlimits.
if "${as_root[@]}" podman run --rm "$image" --version >"$work/podman-run.log" 2>&1; then
    say "podman run works here too"
else
    say "podman run fails on this host: $(tail -1 "$work/podman-run.log")"
fi

say "cluster examples: the Kubernetes manifest against the API schema"
if ! python3 -c 'import kubernetes_validate' 2>/dev/null; then
    python3 -m pip install -q kubernetes-validate
fi
python3 -m kubernetes_validate --strict deploy/kubernetes-job.yaml

say "the Kubernetes Job's command line, as pod 1 of 4, inside the image"
"${as_root[@]}" rm -rf "$work/out"/*
job_command=$(python3 - <<'EOF'
import yaml
job = yaml.safe_load(open("deploy/kubernetes-job.yaml"))
container = job["spec"]["template"]["spec"]["containers"][0]
print(container["args"][0])
EOF
)
in_image --env JOB_COMPLETION_INDEX=1 -- sh -c "$job_command"
ls "$work/out"

say "the Slurm batch script's command line, as array task 1 of 4, inside the image"
bash -n deploy/nightly.sbatch
"${as_root[@]}" rm -rf "$work/out"/*
slurm_command=$(grep -E "^tarjama translate" deploy/nightly.sbatch)
in_image --env SLURM_ARRAY_TASK_ID=1 --env FEED=/feed --env OUT=/out -- sh -c "$slurm_command"
ls "$work/out"
say "done"
