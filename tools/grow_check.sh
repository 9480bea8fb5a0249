#!/usr/bin/env bash
# The grow-a-store check (docs/store.md): build mfcc,audio; add pitch,fbank; kill -9 an add of
# wav2vec2 and --resume it in a copy; add wav2vec2; compare with one build of all five; verify;
# one-layer bytes; drop fbank; torch rows/s.
#   [SHARD_SIZE=32] tools/grow_check.sh SOURCE MODEL_DIR WORK_DIR [extra build flags]
set -euo pipefail
SRC=$1 MODEL=$2 WORK=$3; shift 3
PY=${PYTHON:-python}
cd "$WORK"; rm -rf g-A g-B g-K
$PY -m featstore build --source "$SRC" --out g-A --features mfcc,audio --device cpu --quiet --shard-size "${SHARD_SIZE:-32}" "$@"
$PY -m featstore add g-A --features pitch,fbank --device cpu --quiet
cp -r g-A g-K; rm -f g-K/.lock; sha256sum g-K/index.json > g-K.index.sha
$PY -m featstore add g-K --features wav2vec2 --model "$MODEL" --device cpu --quiet & pid=$!
while [ -z "$(ls g-K/groups/wav2vec2/shard-*.h5 2>/dev/null)" ]; do sleep 0.2; done
kill -9 $pid; wait $pid || true
echo "killed after $(ls g-K/groups/wav2vec2/shard-*.h5 | wc -l) of $(ls g-K/shards | wc -l) files"
sha256sum -c g-K.index.sha
$PY -m featstore add g-K --features wav2vec2 --model "$MODEL" --device cpu --quiet --resume
$PY -m featstore add g-A --features wav2vec2 --model "$MODEL" --device cpu --quiet
$PY -m featstore build --source "$SRC" --out g-B --features mfcc,audio,pitch,fbank,wav2vec2 --model "$MODEL" --device cpu --quiet --shard-size "${SHARD_SIZE:-32}" "$@"
$PY -m featstore verify g-A; $PY -m featstore verify g-K
$PY - <<'PYEOF'
import json
import numpy as np
import featstore
a, b = featstore.open("g-A"), featstore.open("g-B")
assert sorted(a.features) == sorted(b.features) and a.meta.equals(b.meta)
for n in sorted(b.features):
    x, y = a.load(n), b.load(n)
    print(n, x.shape, "identical" if np.array_equal(x, y) else
          f"max abs diff {np.abs(x.astype(np.float64) - y).max():.3g}")
ga = json.load(open("g-A/index.json"))["groups"]
gk = json.load(open("g-K/index.json"))["groups"]
for g in ga:
    same = [f["sha256"] for f in ga[g]["files"]] == [f["sha256"] for f in gk[g]["files"]]
    print("killed + resumed vs uninterrupted:", g, "same bytes" if same else "DIFFERENT")
PYEOF
$PY "$(dirname "$0")/layer_read_bytes.py" g-A --feature wav2vec2/mean --layer 6
du -s --block-size=1K g-A; $PY -m featstore drop g-A --features fbank; du -s --block-size=1K g-A
$PY -m featstore verify g-A
$PY "$(dirname "$0")/torch_read_speed.py" g-A --features mfcc,pitch/f0
