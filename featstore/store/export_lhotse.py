"""A store as a lhotse ``CutSet``: one cut per chunk, its features attached as lhotse arrays.

``OUT/cuts.jsonl.gz`` holds a ``MonoCut`` per chunk (a ``MultiCut`` where all channels of a
multi-channel file were down-mixed): its recording (the audio file the chunk came
from, read with ``Recording.from_file``; none for a source without files, such as an ``hf:``
dataset, or when the file is gone), its start in the recording (the utterance's offset there
plus the chunk's start sample) and duration (its real samples: a padded chunk's padding is not
in the recording), a supervision over the whole cut with speaker and gender (chapter and subset
in its ``custom``), and in the cut's ``custom`` the store row and each chosen feature as a
lhotse ``Array``: ``cut.load_custom("mfcc")`` gives the stored row.

Arrays go through lhotse's ``NumpyHdf5Writer`` into ``OUT/features.h5``: it stores each array raw
in its own dtype (lossless: reading gives back the stored bits, float16 included), in one file
rather than one per array (``numpy_files``), with h5py that featstore needs anyway; lhotse's
lilcom writers are lossy. Frame-level features are plain ``Array``s, not ``TemporalArray``s:
the store's frames (centred STFT frames over a fixed chunk) need not match the frame count
lhotse derives from a cut's duration, and a ``TemporalArray`` is cut to that count on load.
Array paths are absolute (lhotse reads a relative one from the working directory), so a moved
export needs its ``storage_path``s rewritten.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from featstore.errors import UserError
from featstore.sources.lhotse_source import import_lhotse
from featstore.sources.segments import Segment, parse_segment
from featstore.store.export import select_rows
from featstore.store.layout import PLAN, TMP_PREFIX

if TYPE_CHECKING:
    from featstore.store.reader import Store

CUTS = "cuts.jsonl.gz"
FEATURES = "features.h5"
INFO = "_featstore.json"
WRITER = "numpy_hdf5"
ROWS_PER_READ = 4096


def export_lhotse(store: Store, out: str | os.PathLike, features: list[str] | None = None,
                  rows=None, where: dict[str, list[str]] | None = None,
                  overwrite: bool = False) -> int:
    """Write the selected rows as ``OUT/cuts.jsonl.gz`` + ``OUT/features.h5`` (under a temporary
    name beside ``out``, then renamed). Returns the number of cuts written."""
    lhotse = import_lhotse()
    from lhotse.features.io import NumpyHdf5Writer

    out = Path(out).absolute()
    _check_out(out, overwrite)
    names = list(store.features) if features is None else list(dict.fromkeys(features))
    unknown = [n for n in names if n not in store.features]
    if unknown:
        raise UserError(f"the store has no feature(s) {', '.join(unknown)}; it has "
                        f"{', '.join(store.features)}")
    picked = select_rows(store, rows, where)
    if not picked.size:
        raise UserError("no rows selected: nothing to export")
    tmp = out.with_name(f"{TMP_PREFIX}{out.name}")
    shutil.rmtree(tmp, ignore_errors=True)  # left by a killed export
    tmp.mkdir(parents=True)
    try:
        chunks = _Chunks(lhotse, store)
        with NumpyHdf5Writer(tmp / FEATURES) as writer, \
                lhotse.CutSet.open_writer(tmp / CUTS) as cuts:
            for lo in range(0, len(picked), ROWS_PER_READ):
                part = picked[lo : lo + ROWS_PER_READ]
                meta = store.meta.iloc[part].to_dict("records")
                values = {n: store.load(n, part) for n in names}
                for i, row in enumerate(part):
                    cut = chunks.cut(int(row), meta[i])
                    for n in names:
                        key = f"{n}/{cut.id.replace('/', '_')}"
                        array = writer.store_array(key, values[n][i])
                        cut.custom[n] = dataclasses.replace(array,
                                                            storage_path=str(out / FEATURES))
                    cuts.write(cut)
        (tmp / INFO).write_text(json.dumps(
            {"featstore_store": str(store.path.absolute()), "writer": WRITER,
             "cuts_without_recording": chunks.without_recording,
             "features": {n: {"shape": list(store.features[n].shape),
                              "dtype": store.features[n].dtype,
                              "params": store.features[n].params} for n in names},
             "provenance": store.provenance}, indent=1))
        if out.exists():
            shutil.rmtree(out)
        os.replace(tmp, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return int(picked.size)


class _Chunks:
    """Makes each chunk's cut, with the recording of its utterance (read once per file)."""

    def __init__(self, lhotse, store: Store):
        self.lhotse = lhotse
        params = store.provenance["params"]
        self.rate, self.chunk = params["sample_rate"], params["chunk_samples"]
        plan = store.path / PLAN
        utts = json.loads(plan.read_text())["utterances"] if plan.is_file() else []
        self.segments = {u["utterance_id"]: parse_segment(u["path"]) for u in utts}
        self.recordings: dict[str, object] = {}
        self.without_recording = 0

    def _recording(self, seg: Segment):
        if seg.file not in self.recordings:
            rec = None
            if os.path.isfile(seg.file):
                try:
                    rec = self.lhotse.Recording.from_file(seg.file,
                                                          recording_id=seg.recording_id)
                except Exception:  # unreadable now: the cut goes without its recording
                    rec = None
            self.recordings[seg.file] = rec
        return self.recordings[seg.file]

    def cut(self, row: int, meta: dict):
        from lhotse import MonoCut, MultiCut, SupervisionSegment

        utt = meta["utterance_id"]
        seg = self.segments.get(utt) or Segment(utt)
        rec = self._recording(seg)
        self.without_recording += rec is None
        start, n = int(meta["start_sample"]), int(meta["n_samples"])
        cut_id = f"{utt}_{start // self.chunk}"
        channel = _channel(rec, seg)
        duration = n / self.rate
        offset = seg.offset + start / self.rate if rec is not None else 0.0
        gender = meta["gender"] if meta["gender"] in ("F", "M") else None
        sup = SupervisionSegment(
            id=cut_id, recording_id=rec.id if rec is not None else seg.recording or utt, start=0.0,
            duration=duration, channel=channel, speaker=meta["speaker_id"], gender=gender,
            custom={"utterance_id": utt, "chapter_id": meta["chapter_id"],
                    "subset": meta["subset"]})
        kind = MultiCut if isinstance(channel, list) else MonoCut  # all channels, down-mixed
        return kind(id=cut_id, start=offset, duration=duration, channel=channel, recording=rec,
                    supervisions=[sup],
                    custom={"store_row": row, "start_sample": start, "n_samples": n})


def _channel(rec, seg: Segment) -> int | list[int]:
    """The cut's channel ids: the segment's columns of the file, else all (down-mixed)."""
    if rec is None:
        return 0
    ids = list(rec.sources[0].channels)
    chosen = [ids[c] for c in seg.channels] if seg.channels is not None else ids
    return chosen[0] if len(chosen) == 1 else chosen


def _check_out(out: Path, overwrite: bool) -> None:
    if not out.exists():
        return
    if not overwrite:
        raise UserError(f"{out} already exists: pass --overwrite to replace it")
    if not (out / CUTS).is_file() or not (out / INFO).is_file():
        raise UserError(f"refusing to --overwrite {out}: it is not a lhotse export")


def load_cut_arrays(path: str | os.PathLike, name: str) -> np.ndarray:
    """Every cut's ``name`` array from an export, in cut order (for checks and tests)."""
    lhotse = import_lhotse()
    return np.stack([c.load_custom(name) for c in lhotse.CutSet.from_file(Path(path) / CUTS)])
