"""``featstore verify``: checksums, shapes, finite values and index consistency."""

from __future__ import annotations

import json
from pathlib import Path

import h5py
import numpy as np

from featstore.store.layout import INDEX, META_COLUMNS, META_NUMERIC, PLAN, SHARDS, sha256_file


def verify(path) -> list[str]:
    """Every problem found, one line each; an empty list means the store is sound."""
    root = Path(path)
    if not (root / INDEX).exists():
        return [f"{root}: no {INDEX} (not a store, or an unfinished build)"]
    try:
        index = json.loads((root / INDEX).read_text())
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        return [f"{INDEX}: unreadable ({str(exc)[:80]})"]
    if not isinstance(index, dict) or not {"shards", "features", "num_rows"} <= set(index):
        return [f"{INDEX}: damaged (not a store index)"]
    errors = []
    plan = None
    if (root / PLAN).exists():
        try:
            plan = json.loads((root / PLAN).read_text())
            len(plan["shards"])
        except (OSError, UnicodeDecodeError, ValueError, KeyError, TypeError) as exc:
            errors.append(f"{PLAN}: damaged ({str(exc)[:80]}); the store reads, but cannot be "
                          "resumed")
            plan = None
    if plan is not None and len(plan["shards"]) != len(index["shards"]):
        errors.append(f"index lists {len(index['shards'])} shards, plan has {len(plan['shards'])}")
    total = 0
    for shard in index["shards"]:
        file = root / SHARDS / shard["file"]
        if not file.exists():
            errors.append(f"{shard['file']}: missing")
            continue
        if sha256_file(file) != shard["sha256"]:
            errors.append(f"{shard['file']}: sha256 does not match the index")
        errors += [f"{shard['file']}: {e}" for e in _check_shard(file, shard, index["features"])]
        total += shard["rows"]
    listed = {f["file"] for f in index["shards"]}
    extra = sorted(p.name for p in (root / SHARDS).glob("*.h5") if p.name not in listed)
    errors += [f"{name}: shard not in the index" for name in extra]
    if total != index["num_rows"]:
        errors.append(f"index says {index['num_rows']} rows, shards hold {total}")
    return errors


def _check_shard(file, shard: dict, features: dict) -> list[str]:
    errors = []
    try:
        with h5py.File(file, "r") as f:
            names = [f"meta/{c}" for c in (*META_COLUMNS, *META_NUMERIC)]
            names += [f"features/{n}" for n in features]
            for name in names:
                if name not in f:
                    errors.append(f"{name}: missing")
                    continue
                ds = f[name]
                if ds.shape[0] != shard["rows"]:
                    errors.append(f"{name}: {ds.shape[0]} rows, index says {shard['rows']}")
                fname = name.removeprefix("features/")
                if name.startswith("features/") and list(ds.shape[1:]) != features[fname]["shape"]:
                    errors.append(f"{name}: shape {ds.shape[1:]}, index says "
                                  f"{features[fname]['shape']}")
                errors += _check_values(name, ds)
    except OSError as exc:
        errors.append(f"unreadable ({str(exc).splitlines()[0]})")
    return errors


def _check_values(name: str, ds: h5py.Dataset) -> list[str]:
    """Read every chunk (fletcher32 is checked on read) and, for floats, look for NaN/inf."""
    step = max(1, ds.chunks[0] if ds.chunks else 1024)
    for lo in range(0, ds.shape[0], step):
        try:
            block = ds[lo : lo + step]
        except OSError as exc:
            return [f"{name}: rows {lo}..{lo + step - 1} fail their checksum ({exc})"]
        if block.dtype.kind == "f" and not np.isfinite(block).all():
            return [f"{name}: non-finite values in rows {lo}..{lo + step - 1}"]
    return []
