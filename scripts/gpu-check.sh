#!/usr/bin/env bash
# The GPU check: CUDA results against CPU results (MFCC, wav2vec2 bf16 vs float32, every other
# registered extractor), x real time of MFCC and wav2vec2-base builds at the default batch size
# and two others, with each stage (decoding, model forward, writer) alone, and xgboost, mlp and
# cnn bench cells on the GPU; progress on stderr, one JSON summary on stdout (exit 0: all ok).
#
#   bash scripts/gpu-check.sh                          # on a machine with a GPU (its duration there is not measured yet)
#   bash scripts/gpu-check.sh --device cpu --small     # the dry run the test suite does
#
# Python: $PYTHON if set, else the project's .venv (scripts/setup.sh), else a system python3
# that has torch (a GPU machine without network), else scripts/setup.sh makes .venv. Nothing is
# downloaded: the wav2vec2 weights are random (base-sized, the cost of the real model) and made
# here, and the audio is the LibriSpeech sample shipped in the package.
#   bash scripts/gpu-check.sh --fetch-wheels           # with network: the wheels a bare CUDA
#                                                      # PyTorch image lacks, into .whl/ (carry it)
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "${1:-}" = "--fetch-wheels" ]; then
    exec python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 \
        --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 \
        --platform manylinux2014_x86_64 -d .whl soundfile cffi pycparser xgboost
fi
if [ -z "${PYTHON:-}" ] && [ ! -x .venv/bin/python ] && compgen -G ".whl/*.whl" > /dev/null; then
    python3 -m pip install -q --no-index --no-deps --no-compile --upgrade \
        --target /tmp/gpu-check-site .whl/*.whl >&2
    export PYTHONPATH=/tmp/gpu-check-site${PYTHONPATH:+:$PYTHONPATH}
fi
if [ -n "${PYTHON:-}" ]; then
    PY=$PYTHON
elif [ -x .venv/bin/python ]; then
    PY=.venv/bin/python
elif command -v python3 >/dev/null && python3 -c "import torch" 2>/dev/null; then
    PY=python3
else
    bash scripts/setup.sh >&2
    PY=.venv/bin/python
fi
exec "$PY" tools/gpu_check.py "$@"
