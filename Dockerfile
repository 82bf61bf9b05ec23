# tarjama in a container: the portable (x86-64-v3) binary, poppler and Tesseract with its
# Arabic data for PDFs and scans, Python's pip for fetching weights, and the Arabic
# lexicon baked in. The default model (about 1.1 GB) is fetched on first use into
# /var/lib/tarjama/models (mount a volume there to keep it across pods), or baked in
# with --build-arg WITH_MODEL=1.
#
#   docker build -t tarjama .                       # or: podman build / buildah bud
#   docker run --rm -v tarjama-models:/var/lib/tarjama/models -v "$PWD:/work" tarjama \
#       translate /work/feed --out /work/out
#
# scripts/container-check.sh builds this file with images made from Debian packages
# (no registry reachable) and translates a sample inside the result.

ARG RUST_IMAGE=rust:1-bookworm
ARG DEBIAN_IMAGE=debian:bookworm-slim

FROM ${RUST_IMAGE} AS build
WORKDIR /src
# Only what the binary is built from, so that editing docs or scripts keeps the cached
# build.
COPY Cargo.toml Cargo.lock ./
COPY .cargo .cargo
COPY third_party third_party
COPY data data
COPY glossary glossary
COPY models models
COPY src src
# .cargo/config.toml makes this the portable build; the kernels pick AVX-512 VNNI or
# AVX-VNNI tiles at run time on the nodes that have them.
RUN cargo build --release --locked --bin tarjama \
    && install -m 0755 target/release/tarjama /usr/local/bin/tarjama

FROM ${DEBIAN_IMAGE}
RUN apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        ca-certificates poppler-utils python3 python3-pip tesseract-ocr tesseract-ocr-ara \
    && rm -rf /var/lib/apt/lists/*
COPY --from=build /usr/local/bin/tarjama /usr/local/bin/tarjama
COPY samples /usr/share/tarjama/samples
# Models and lexicon live under TARJAMA_HOME; the translation memory goes to its own
# path, so a volume for it (per node) and one for the models can be mounted separately.
ENV TARJAMA_HOME=/var/lib/tarjama \
    TARJAMA_MEMORY=/var/lib/tarjama/state/memory.sqlite
RUN mkdir -p /var/lib/tarjama/models /var/lib/tarjama/state \
    && tarjama lookup كتاب >/dev/null
ARG WITH_MODEL=0
RUN if [ "$WITH_MODEL" = 1 ]; then tarjama models fetch; fi
WORKDIR /work
ENTRYPOINT ["tarjama"]
CMD ["--help"]
