"""``index.json``: written last, once every planned shard is checked, so a store with an index
is complete. It lists the shards (rows, utterances, SHA-256), the features, every recorded
problem and the provenance of the build."""

from __future__ import annotations

import json
from pathlib import Path

from featstore import provenance
from featstore.errors import UserError
from featstore.store.groups import feature_entries, group_entry
from featstore.store.layout import (
    FORMAT_VERSION,
    INDEX,
    SHARDS,
    published_sha256,
    shard_name,
    write_json_atomic,
)
from featstore.store.shards import BadShard, read_shard


def check_shards(out: Path, plan: dict, reported: dict[int, str] | None = None) -> list[dict]:
    """One index entry per planned shard, each read back from its published file (its SHA-256
    from the bytes written where this process wrote it: ``published_sha256``);
    a UserError names shards that are missing or are not the shard the plan says (the build is
    unfinished or the folder was tampered with). ``reported``: shard -> the SHA-256 its Ray
    worker reported; a shard that differs was overwritten by another writer."""
    entries, bad = [], []
    for i, (lo, hi) in enumerate(plan["shards"]):
        path = out / SHARDS / shard_name(i)
        try:
            shard = read_shard(path, plan, i)
        except BadShard as exc:
            bad.append(f"{path.name} ({exc})")
            continue
        sha = published_sha256(path)
        if reported is not None and i in reported and reported[i] != sha:
            raise UserError(f"shard {path} differs from what its Ray worker wrote (another "
                            "writer?): remove it and rerun with --resume")
        entries.append({"file": path.name, "rows": shard["rows"], "utterances": hi - lo,
                        "sha256": sha, "problems": shard["problems"]})
    if bad:
        more = f" and {len(bad) - 5} more" if len(bad) > 5 else ""
        raise UserError(f"{out}: shard(s) missing or bad: {', '.join(bad[:5])}{more}; "
                        "finish the build with --resume")
    return entries


def finished_index(out: Path, num_shards: int) -> dict | None:
    """The index of a store whose shards are all there already, or None if it needs writing.
    A resume with nothing to build keeps index.json byte-identical (its created time, host and
    command line would otherwise change every time)."""
    try:
        index = json.loads((out / INDEX).read_text())
    except (OSError, ValueError):
        return None
    return index if len(index.get("shards", ())) == num_shards else None


def write_index(out: Path, plan: dict, extractors: list, *, device: str,
                batch_size: int | list[int] | None, where: dict | None = None,
                reported: dict[int, str] | None = None) -> dict:
    """Check every planned shard, then write ``index.json`` atomically; returns the index.
    ``extractors`` give the feature specs; ``batch_size`` is the one the shards were built with
    (a list when Ray workers chose different ones); ``where``: the provenance of a Ray build
    (its cluster), in place of this machine's; ``reported``: see :func:`check_shards`."""
    shards = check_shards(out, plan, reported)
    problems = list(plan["source_problems"])
    for s in shards:
        problems += s.pop("problems")
    rows = [s["rows"] for s in shards]
    features: dict[str, dict] = {}
    for e in extractors:
        features.update(feature_entries(e, e.name))
    index = {
        "format_version": FORMAT_VERSION,
        "num_rows": sum(rows),
        "shards": shards,
        "features": features,
        "groups": {e.name: group_entry(out, e, rows, device=device, batch_size=batch_size,
                                       where=where) for e in extractors},
        "problems": problems,
        "provenance": {**(where or provenance.record(device)), "params": plan["params"],
                       "source_name": plan["source_name"],
                       "batch_size": batch_size},  # the size used, default or not
    }
    write_json_atomic(out / INDEX, index)
    return index
