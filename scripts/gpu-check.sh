#!/usr/bin/env bash
# One command for a GPU machine: CUDA-vs-CPU parity of every extractor, `featstore build`
# throughput end to end, and xgboost/mlp/cnn bench cells on cuda; one JSON summary on stdout.
#   bash scripts/gpu-check.sh [--device cuda] [--copies 40] [--dry-run]
#   bash scripts/gpu-check.sh --fetch-wheels   # with network: wheels a bare GPU image lacks -> .whl/
# The project's set-up is tried first; where it cannot run (no network), the machine's python3
# (with torch) is used, with the wheels from .whl/ installed beside it.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "${1:-}" = "--fetch-wheels" ]; then
    exec python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 \
        --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 \
        --platform manylinux2014_x86_64 -d .whl soundfile cffi pycparser xgboost
fi
if PIP_RETRIES=0 PIP_TIMEOUT=10 bash scripts/setup.sh >&2; then
    PY=.venv/bin/python
else
    echo "gpu-check: set-up failed (no network?): using python3 and the wheels in .whl/" >&2
    PY=python3
    if compgen -G ".whl/*.whl" > /dev/null; then
        python3 -m pip install -q --no-index --no-deps --no-compile --upgrade \
            --target /tmp/gpu-check-site .whl/*.whl >&2
        export PYTHONPATH=/tmp/gpu-check-site${PYTHONPATH:+:$PYTHONPATH}
    fi
fi
exec "$PY" scripts/gpu_check.py "$@"
