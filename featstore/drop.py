"""``featstore drop``: remove feature groups and reclaim their disk space.

The index without the group is published first (atomically), then its files are deleted, so
a crash in between leaves a sound store plus files no index lists, which the next ``drop`` or
``add`` removes. A reader that opened a dropped file before keeps its handle (POSIX keeps an
unlinked file until it is closed)."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

from featstore.errors import UserError
from featstore.store.layout import ADDING, GROUPS, INDEX, fsync_dir, write_json_atomic
from featstore.store.reader import Store
from featstore.store.writer import StoreLock


def drop(store_path: Path, names: list[str], quiet: bool = False) -> dict:
    """Drop the groups ``names`` (extractor names, or a feature of the group); returns the new
    index."""
    root = Path(store_path)
    Store(root)  # a UserError unless it is a finished store
    with StoreLock(root):
        index = json.loads((root / INDEX).read_text())
        if (root / ADDING).exists():
            pending = ",".join(json.loads((root / ADDING).read_text())["extractors"])
            raise UserError(f"an add of {pending} to {root} is unfinished: finish it with "
                            "`featstore add ... --resume` before dropping")
        groups = [_group(index, root, n) for n in dict.fromkeys(names)]
        groups = list(dict.fromkeys(groups))
        new = json.loads(json.dumps(index))
        freed = sum(new["groups"].pop(g)["bytes"] for g in groups)
        new["features"] = {n: f for n, f in new["features"].items() if f.get("group") not in groups}
        if not new["features"]:
            raise UserError(f"refusing to drop every feature of {root}")
        write_json_atomic(root / INDEX, new)
        remove_unlisted(root, new)
    if not quiet:
        print(f"featstore drop: removed {', '.join(groups)} from {root} ({freed / 1e6:.1f} MB "
              "freed)", file=sys.stderr)
    return new


def _group(index: dict, root: Path, name: str) -> str:
    groups = index.get("groups", {})
    if name in groups:
        return name
    feature = index["features"].get(name)
    if feature is None:
        have = sorted({*groups, *index["features"]})
        raise UserError(f"{root} has no feature '{name}'; it has {', '.join(have)}")
    if feature.get("group") is None:
        raise UserError(f"{name} lives inside the shard files of this format 1 store and cannot "
                        "be dropped alone: rebuild the store (featstore build --overwrite)")
    return feature["group"]


def remove_unlisted(root: Path, index: dict) -> None:
    """Delete group folders the index does not list (a dropped group, or one a crash left)."""
    listed = set(index.get("groups", {}))
    for path in sorted((root / GROUPS).glob("*")) if (root / GROUPS).exists() else []:
        if path.is_dir() and path.name not in listed:
            shutil.rmtree(path)
    if (root / GROUPS).exists():
        fsync_dir(root / GROUPS)
