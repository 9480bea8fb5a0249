"""Finding the lhotse manifests a ``lhotse:PATH`` spec names, split by split.

* ``lhotse:CUTS`` : a ``CutSet`` manifest (``.jsonl.gz`` or ``.jsonl``);
* ``lhotse:RECORDINGS,SUPERVISIONS``: a ``RecordingSet`` and a ``SupervisionSet`` (either order);
* ``lhotse:FOLDER``: one pair per split, named as lhotse's recipes name them
  (``<corpus>_recordings_<split>.jsonl.gz`` with ``<corpus>_supervisions_<split>.jsonl.gz``);
  a split with no pair but a ``<corpus>_cuts_<split>`` manifest uses that.

The split (the store's subset) is the part of the name after ``_recordings_`` / ``_supervisions_``
/ ``_cuts_``; a name without one (``cuts.jsonl.gz``) takes its folder's name.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from featstore.errors import UserError

KINDS = ("recordings", "supervisions", "cuts")
_NAME = re.compile(r"^(?:.*?_)?(?P<kind>recordings|supervisions|cuts)(?:_(?P<split>.+))?$")
_SUFFIXES = (".jsonl.gz", ".jsonl")


@dataclass
class SplitManifests:
    """The manifest files of one split: cuts, or recordings with supervisions."""

    cuts: Path | None = None
    recordings: Path | None = None
    supervisions: Path | None = None


def _stem(path: Path) -> str | None:
    for suffix in _SUFFIXES:
        if path.name.endswith(suffix):
            return path.name[: -len(suffix)]
    return None


def name_kind_split(path: Path) -> tuple[str | None, str]:
    """(kind from the file name or None, split) of a manifest file."""
    stem = _stem(path) or path.name
    m = _NAME.match(stem)
    if m is None:
        return None, path.parent.name or stem
    return m["kind"], m["split"] or path.parent.name or stem


def find_manifests(arg: str | None) -> dict[str, SplitManifests]:
    """split -> its manifests, for the argument of ``lhotse:``."""
    if not arg:
        raise UserError("the lhotse source needs manifests: lhotse:CUTS, "
                        "lhotse:RECORDINGS,SUPERVISIONS or lhotse:FOLDER")
    paths = [Path(p).expanduser() for p in arg.split(",") if p]
    for p in paths:
        if not p.exists():
            raise UserError(f"lhotse:{arg}: {p} does not exist")
    if len(paths) == 1 and paths[0].is_dir():
        return _scan_folder(paths[0])
    if len(paths) > 2 or any(p.is_dir() for p in paths):
        raise UserError(f"lhotse:{arg}: give one folder, one cuts manifest, or a recordings "
                        "and a supervisions manifest")
    split = name_kind_split(paths[0])[1]
    if len(paths) == 1:
        return {split: SplitManifests(cuts=paths[0])}
    return {split: SplitManifests(recordings=paths[0], supervisions=paths[1])}  # types checked


def _scan_folder(folder: Path) -> dict[str, SplitManifests]:
    found: dict[str, SplitManifests] = {}
    for path in sorted(folder.iterdir()):
        if not path.is_file() or _stem(path) is None:
            continue
        kind, split = name_kind_split(path)
        if kind is None:
            continue
        entry = found.setdefault(split, SplitManifests())
        if getattr(entry, kind) is not None:
            raise UserError(f"lhotse:{folder}: two {kind} manifests for split {split} "
                            f"({getattr(entry, kind).name}, {path.name})")
        setattr(entry, kind, path)
    splits = {}
    for split, entry in found.items():
        if entry.recordings and entry.supervisions:
            splits[split] = SplitManifests(recordings=entry.recordings,
                                           supervisions=entry.supervisions)
        elif entry.cuts:
            splits[split] = SplitManifests(cuts=entry.cuts)
        else:
            have = entry.recordings or entry.supervisions
            raise UserError(f"lhotse:{folder}: {have.name} has no "
                            f"{'supervisions' if entry.recordings else 'recordings'} "
                            f"manifest for split {split}")
    if not splits:
        raise UserError(f"lhotse:{folder}: no *_recordings_*/*_supervisions_* or *_cuts_* "
                        ".jsonl(.gz) manifests in it")
    return splits
