"""The build plan (``plan.json``): every utterance in id order, the shards they fall into, and
every parameter. It is written before any shard; ``--resume`` re-plans and refuses unless the
new plan equals the stored one, so the shards of one store always come from one plan."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from featstore.errors import UserError
from featstore.sources.base import Corpus, Utterance
from featstore.store.layout import (
    FORMAT_VERSION,
    GROUPS,
    INDEX,
    PLAN,
    SHARDS,
    TMP_PREFIX,
    shard_name,
    write_json_atomic,
)


def make_plan(corpus: Corpus, params: dict, shard_size: int) -> dict:
    """The plan of a build of ``corpus``: ``shard_size`` utterances per shard."""
    utts = sorted(corpus.utterances, key=lambda u: u.utterance_id)
    bounds = [(i, min(i + shard_size, len(utts))) for i in range(0, len(utts), shard_size)]
    return {
        "format_version": FORMAT_VERSION, "params": params, "source_name": corpus.name,
        "utterances": [dataclasses.asdict(u) for u in utts], "shards": bounds,
        "source_problems": [p.to_dict() for p in corpus.problems],
    }


def adopt_plan(out: Path, plan: dict) -> dict:
    """Write ``plan`` into a store that has none (dropping any index), or return the stored plan
    when it is the same build; a different build is a UserError naming the first difference."""
    path = out / PLAN
    if not path.exists():
        (out / INDEX).unlink(missing_ok=True)
        write_json_atomic(path, plan)
        return plan
    old = json.loads(path.read_text())
    new = json.loads(json.dumps(plan))  # JSON round trip so tuples and lists compare equal
    for key in ("params", "utterances", "shards"):
        if old.get(key) != new[key]:
            diff = _first_difference(old.get(key), new[key])
            raise UserError(f"cannot --resume {out}: the build differs from the one started "
                            f"there ({key}: {diff}); use --overwrite to start again")
    return old


def _first_difference(a, b) -> str:
    if isinstance(a, dict) and isinstance(b, dict):
        for k in sorted(set(a) | set(b)):
            if a.get(k) != b.get(k):
                return f"{k}: {_first_difference(a.get(k), b.get(k))}"
    if isinstance(a, list) and isinstance(b, list) and len(a) != len(b):
        return f"{len(a)} items vs {len(b)}"
    return f"{str(a)[:60]} vs {str(b)[:60]}"


def shard_utterances(plan: dict, shard: int) -> list[Utterance]:
    """The utterances of one shard, in the order its rows are written."""
    lo, hi = plan["shards"][shard]
    return [Utterance(**u) for u in plan["utterances"][lo:hi]]


def pending_shards(out: Path, plan: dict) -> list[int]:
    """Shards not yet published under their final name: what a (resumed) build must do."""
    return [i for i in range(len(plan["shards"])) if not (out / SHARDS / shard_name(i)).exists()]


def remove_temporaries(out: Path) -> None:
    """Delete half-written shard and group files left by a killed build or add (never visible
    under their final names)."""
    for tmp in [*(out / SHARDS).glob(TMP_PREFIX + "*"), *(out / GROUPS).glob(f"*/{TMP_PREFIX}*")]:
        tmp.unlink(missing_ok=True)
