#!/usr/bin/env bash
# Set up .venv, build the default store (resuming if it exists), then run the default benchmarks.
# Arguments go to `featstore build` (e.g. --source PATH --model PATH); the default source is
# librispeech:dev-clean, downloaded into the cache, and the default model facebook/wav2vec2-base.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
STORE=${FEATSTORE_STORE:-stores/default}
.venv/bin/python -m featstore build --out "$STORE" --resume "$@"
.venv/bin/python -m featstore verify "$STORE"
exec .venv/bin/python -m bench run benchmarks.yaml --store "$STORE"
