"""Bytes read (and seconds) to load one layer of a per-layer feature vs every layer.

    python tools/layer_read_bytes.py STORE [--feature wav2vec2/mean] [--layer 6]

Bytes are this process's ``rchar`` in /proc/self/io: what HDF5 asked the kernel for, page
cache hits included, so the figure does not depend on what is cached. Linux only.
"""

from __future__ import annotations

import argparse
import json
import time

import featstore


def _rchar() -> int:
    with open("/proc/self/io") as f:
        return int(next(line for line in f if line.startswith("rchar")).split()[1])


def measure(store, name: str, layers) -> dict:
    store.close()  # fresh handles: no HDF5 chunk cache left from the last read
    before, t0 = _rchar(), time.perf_counter()
    x = store.load(name, layers=layers)
    seconds = time.perf_counter() - t0
    return {"bytes": _rchar() - before, "seconds": round(seconds, 4), "shape": list(x.shape)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("store")
    p.add_argument("--feature", default="wav2vec2/mean")
    p.add_argument("--layer", type=int, default=6)
    args = p.parse_args()
    store = featstore.open(args.store)
    measure(store, args.feature, None)  # warm the page cache and h5py's imports
    every = measure(store, args.feature, None)
    one = measure(store, args.feature, [args.layer])
    print(json.dumps({"feature": args.feature, "layers": len(every["shape"]) and
                      every["shape"][1], "all_layers": every, "one_layer": one,
                      "bytes_ratio": round(one["bytes"] / every["bytes"], 4)}, indent=1))


if __name__ == "__main__":
    main()
