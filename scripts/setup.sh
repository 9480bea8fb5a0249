#!/usr/bin/env bash
# Create or refresh .venv in the project root with the known-good torch/torchaudio pair.
# Re-running is cheap: pip is skipped while pyproject.toml and this file are unchanged.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
PINS="torch==2.14.1 torchaudio==2.11.0"
stamp=$(cat pyproject.toml scripts/setup.sh | sha256sum | cut -d' ' -f1)
if [ ! -x .venv/bin/python ]; then
    "$PY" -m venv .venv
fi
if [ "$(cat .venv/.setup-stamp 2>/dev/null)" != "$stamp" ]; then
    .venv/bin/python -m pip install -q --upgrade pip
    # shellcheck disable=SC2086
    .venv/bin/python -m pip install -q $PINS -e ".[dev,ray,lhotse,resemblyzer]"
    # d-vector weights: Resemblyzer's pure-Python wheel alone (its webrtcvad dependency would
    # need a C compiler; webrtcvad-wheels above provides the module prebuilt). A failure here
    # only means `featstore build` skips dvector with a notice.
    .venv/bin/python -m pip install -q --no-deps "resemblyzer==0.1.4" \
        || echo "setup: resemblyzer not installed: dvector features will be skipped" >&2
    echo "$stamp" > .venv/.setup-stamp
fi
