"""The one shard check: is a published shard file the shard the plan says? Used by ``--resume``
(a bad shard is rebuilt, not kept) and before index.json is written (a bad shard stops the
index). It reads the attributes and the utterance ids only, never the features, so it is cheap
enough to run on every shard of every resume; ``featstore verify`` reads everything."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import h5py
import numpy as np

from featstore.store.layout import META_COLUMNS, META_NUMERIC

PLAN_ATTR = "plan_sha256"  # a shard's fingerprint of its part of the plan


class BadShard(Exception):
    """A shard file that is not the planned shard; the message says why, in a few words."""


def plan_fingerprint(plan: dict, shard: int) -> str:
    """SHA-256 of what decides shard ``shard``'s content: the parameters and its utterances."""
    lo, hi = plan["shards"][shard]
    part = {"params": plan["params"], "utterances": plan["utterances"][lo:hi]}
    return hashlib.sha256(json.dumps(part, sort_keys=True).encode()).hexdigest()


def read_shard(path: Path, plan: dict, shard: int) -> dict:
    """``{"rows", "problems"}`` of the published shard ``shard`` at ``path``; BadShard when the
    file is missing, unreadable (truncated, say), another shard, made by another plan, or does
    not hold exactly the planned utterances (each either has rows or a recorded problem)."""
    if not path.is_file():
        raise BadShard("missing")
    try:
        with h5py.File(path, "r") as f:
            attrs = dict(f.attrs)
            rows = int(attrs["num_rows"])
            problems = json.loads(attrs["problems"])
            if int(attrs["shard"]) != shard:
                raise BadShard(f"holds shard {int(attrs['shard'])}")
            if PLAN_ATTR in attrs and attrs[PLAN_ATTR] != plan_fingerprint(plan, shard):
                raise BadShard("made by another plan")
            for name in [f"meta/{c}" for c in (*META_COLUMNS, *META_NUMERIC)] + [
                    f"features/{n}" for n in _names(f.get("features"))]:
                if f[name].shape[0] != rows:
                    raise BadShard(f"{name} has {f[name].shape[0]} rows, not {rows}")
            ids = set(np.char.decode(np.unique(f["meta/utterance_id"][()]), "utf-8").tolist())
    except BadShard:
        raise
    except (OSError, KeyError, ValueError, TypeError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise BadShard(f"unreadable ({first[:120]})") from None
    lo, hi = plan["shards"][shard]
    utts = plan["utterances"][lo:hi]
    planned = {u["utterance_id"] for u in utts}
    failed = {p["path"] for p in problems}
    covered = ids | {u["utterance_id"] for u in utts if u["path"] in failed}
    if ids - planned or covered != planned:
        raise BadShard("holds other utterances than the plan's")
    return {"rows": rows, "problems": problems}


def _names(group) -> list[str]:
    """Dataset paths under ``features/`` (wav2vec2's are nested: ``wav2vec2/mean``)."""
    if group is None:
        return []
    names: list[str] = []
    group.visititems(lambda name, obj: names.append(name) if isinstance(obj, h5py.Dataset)
                     else None)
    return names
