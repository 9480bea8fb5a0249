"""Feature groups: one extractor's datasets, one file per shard under ``groups/<name>/``.

The index lists each group with its files (rows, SHA-256), size on disk, the extractor's
parameters and its own provenance (when it was added, device, code version, batch size), and
each feature with the group holding it. A feature without a group (a format 1 store) lives in
the shard files.
"""

from __future__ import annotations

from pathlib import Path

import h5py

from featstore import provenance
from featstore.errors import UserError
from featstore.store.layout import GROUPS, group_file, published_sha256


def feature_entries(extractor, group: str | None) -> dict[str, dict]:
    """The index entries of an extractor's features."""
    out = {}
    for s in extractor.specs():
        out[s.name] = {"shape": list(s.shape), "dtype": s.dtype, "params": s.params,
                       "extractor": extractor.name}
        if group is not None:
            out[s.name]["group"] = group
    return out


def group_entry(out: Path, extractor, rows: list[int], *, device: str,
                batch_size: int | list[int] | None, where: dict | None = None) -> dict:
    """The index entry of ``extractor``'s group, each file read back and checked against the
    shard's row count; a UserError names missing or short files."""
    files, bad = [], []
    for i, n in enumerate(rows):
        rel = group_file(extractor.name, i)
        try:
            with h5py.File(out / rel, "r") as f:
                ok = int(f.attrs["num_rows"]) == n and int(f.attrs["shard"]) == i
        except (OSError, KeyError, ValueError):
            ok = False
        if not ok:
            bad.append(rel)
            continue
        files.append({"file": rel, "rows": n, "sha256": published_sha256(out / rel)})
    if bad:
        more = f" and {len(bad) - 5} more" if len(bad) > 5 else ""
        raise UserError(f"{out}: group file(s) missing or unreadable: {', '.join(bad[:5])}{more}"
                        "; finish with --resume")
    prov = where or provenance.record(device)
    return {
        "extractor": extractor.name, "params": extractor.params(), "files": files,
        "bytes": sum((out / f["file"]).stat().st_size for f in files),
        "added": provenance.now(),
        "provenance": {"device": prov.get("device", device), "batch_size": batch_size,
                       **{k: prov.get(k) for k in ("git_commit", "versions", "host",
                                                     "device_name", "command")},
                       **({"cluster": prov["cluster"]} if "cluster" in prov else {})},
    }


def group_of(index: dict, name: str) -> str | None:
    """The group holding feature ``name`` (None: the shard files, a format 1 store)."""
    return index["features"][name].get("group")


def group_dir(out: Path, group: str) -> Path:
    return out / GROUPS / group
