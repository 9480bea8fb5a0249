"""Rows per second through a DataLoader: the per-item StoreDataset vs the batched path
(Store.torch_loader: shuffled contiguous blocks, one read per feature and batch).

    python tools/torch_read_speed.py STORE [--features mfcc,fbank] [--workers 2] [--epochs 2]

Both shuffle, use batches of --batch-size and the same workers; each path is timed over
--epochs full epochs after one warm-up epoch (page cache warm for both). Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import time

import torch

import featstore


def _rate(loader, epochs: int) -> float:
    for _ in loader:  # warm-up: workers started, files cached
        pass
    t0, rows = time.perf_counter(), 0
    for _ in range(epochs):
        for batch in loader:
            rows += len(batch["label"])
    return rows / (time.perf_counter() - t0)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("store")
    p.add_argument("--features", default="mfcc,fbank")
    p.add_argument("--label", default="speaker_id")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--block-size", type=int, default=32)
    p.add_argument("--epochs", type=int, default=2)
    args = p.parse_args()
    store = featstore.open(args.store)
    names = args.features.split(",")
    common = {"num_workers": args.workers, "persistent_workers": args.workers > 0}
    per_item = torch.utils.data.DataLoader(store.torch_dataset(names, label=args.label),
                                           batch_size=args.batch_size, shuffle=True,
                                           generator=torch.Generator().manual_seed(0), **common)
    batched = store.torch_loader(names, label=args.label, batch_size=args.batch_size,
                                 block_size=args.block_size, **common)
    item_rate = _rate(per_item, args.epochs)
    batch_rate = _rate(batched, args.epochs)
    print(json.dumps({"store": args.store, "rows": len(store), "features": names,
                      "workers": args.workers, "batch_size": args.batch_size,
                      "block_size": args.block_size, "per_item_rows_per_s": round(item_rate),
                      "batched_rows_per_s": round(batch_rate),
                      "speedup": round(batch_rate / item_rate, 1)}))


if __name__ == "__main__":
    main()
