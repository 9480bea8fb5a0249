"""The build plan (``plan.json``): every utterance in id order, the shards they fall into, and
every parameter. It is written before any shard; ``--resume`` re-plans and refuses unless the
new plan equals the stored one, so the shards of one store always come from one plan."""

from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path

from featstore.errors import UserError
from featstore.sources.base import Corpus, Utterance
from featstore.store.layout import (
    FORMAT_VERSION,
    INDEX,
    PLAN,
    SHARDS,
    TMP_PREFIX,
    shard_name,
    write_json_atomic,
)
from featstore.store.shards import BadShard, read_shard


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
        if any((out / SHARDS).glob("shard-*.h5")):  # nothing says which build made them
            raise UserError(f"cannot --resume {out}: it has shards but no {PLAN}, so nothing "
                            "says which build made them; build into a new --out, or remove "
                            f"{out / SHARDS}")
        (out / INDEX).unlink(missing_ok=True)
        write_json_atomic(path, plan)
        return plan
    old = read_plan(out)
    new = json.loads(json.dumps(plan))  # JSON round trip so tuples and lists compare equal
    for key in ("params", "utterances", "shards"):
        if old.get(key) != new[key]:
            diff = _first_difference(old.get(key), new[key])
            raise UserError(f"cannot --resume {out}: the build differs from the one started "
                            f"there ({key}: {diff}); use --overwrite to start again")
    return old


def read_plan(out: Path) -> dict:
    """The stored plan; a UserError naming the file when it cannot be read."""
    path = out / PLAN
    try:
        plan = json.loads(path.read_text())
        if not isinstance(plan, dict) or not {"params", "utterances", "shards"} <= set(plan):
            raise ValueError("not a build plan")
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise UserError(f"{path} is damaged ({str(exc)[:80]}): the build there cannot be "
                        "resumed; rebuild it with --overwrite") from None
    return plan


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
    """Shards a (resumed) build must make: those not published, and those published but not
    the planned shard (truncated, another plan's, other utterances: see
    :func:`featstore.store.shards.read_shard`), which are removed, with one line each, so a
    resume rebuilds them instead of failing on them every time."""
    pending = []
    for i in range(len(plan["shards"])):
        path = out / SHARDS / shard_name(i)
        if path.exists():
            try:
                read_shard(path, plan, i)
                continue
            except BadShard as exc:
                print(f"featstore build: {path} is not the planned shard ({exc}): building it "
                      "again", file=sys.stderr)
                path.unlink()
        pending.append(i)
    return pending


def remove_temporaries(out: Path) -> None:
    """Delete half-written shards left by a killed build (never visible as shards)."""
    for tmp in (out / SHARDS).glob(TMP_PREFIX + "*"):
        tmp.unlink(missing_ok=True)
