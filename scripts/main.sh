#!/usr/bin/env bash
# Set up .venv, build the default store (resuming if it exists), verify it, run the default
# benchmarks and show where the leaderboard is. Arguments go to `featstore build`. Without
# --source the store is built from the real LibriSpeech sample shipped in the package (works
# offline); `bash scripts/main.sh --source librispeech:dev-clean` runs the full study. A wav2vec2
# model that cannot be loaded (offline, no --model PATH) is skipped with a notice, and so are the
# benchmark entries that need it (listed in leaderboard.md).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
STORE=${FEATSTORE_STORE:-stores/default}
SOURCE=(--source sample)
for arg in "$@"; do
    case "$arg" in --source|--source=*) SOURCE=() ;; esac
done
.venv/bin/featstore build --out "$STORE" --resume "${SOURCE[@]}" "$@"
.venv/bin/featstore verify "$STORE"
RUN="results/$(date +%Y-%m-%dT%H-%M-%S)"
status=0
.venv/bin/bench run benchmarks.yaml --store "$STORE" --out "$RUN" --skip-missing-views --jobs auto || status=$?
if [ -f "$RUN/leaderboard.md" ]; then
    echo
    echo "leaderboard: $RUN/leaderboard.md (picture: $RUN/leaderboard.png)"
    # each task's heading and its three best rows, then what was skipped and why
    awk '/^## /{print; n=0} /^\| [123] /{if (n++ < 3) print}
         /^## Skipped/{s=1} s && /^\| (gender|speaker) /{print}' "$RUN/leaderboard.md"
fi
exit $status
