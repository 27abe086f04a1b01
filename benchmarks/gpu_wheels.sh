#!/usr/bin/env bash
# Download, on a machine that reaches the package index, the wheels benchmarks/gpu.sh may have to
# install on a GPU machine that reaches none: the package's dependencies a plain PyTorch image tends to
# lack (simplejpeg, google-crc32c, and matplotlib with its own), plus the small ones it usually has
# (tqdm, protobuf) in case it does not. numpy, Pillow, torch, torchvision, tensorboard and
# safetensors are taken to be there (torch and torchvision bring the first two).
#
#   bash benchmarks/gpu_wheels.sh          # -> benchmarks/wheels/ (git-ignored), about 18 MB before scikit-image
#
# Wheels for CPython 3.12 on x86-64 Linux, the GPU machine's Python; PYTHON_VERSION=3.11 (say) for
# another. --no-deps keeps numpy and Pillow out; gpu.sh's install resolves against what is installed
# and fails, naming the package, if anything else is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

PY=${PYTHON:-python3}
DEST=benchmarks/wheels
PACKAGES=(
    simplejpeg google-crc32c tqdm protobuf
    matplotlib contourpy cycler fonttools kiwisolver pyparsing python-dateutil six packaging
    scikit-image # not installed: benchmarks/photos.py reads its sample photographs out of the wheel
)
mkdir -p "$DEST"
"$PY" -m pip download --disable-pip-version-check --no-deps --only-binary=:all: \
    --python-version "${PYTHON_VERSION:-3.12}" --implementation cp \
    --platform manylinux2014_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux_2_28_x86_64 \
    --platform any \
    -d "$DEST" "${PACKAGES[@]}"
ls -l "$DEST"
du -sh "$DEST"
