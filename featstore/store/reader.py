"""Reading a store back: metadata as a DataFrame, any feature for any rows as numpy arrays.

HDF5 handles are opened lazily and per process: a Store created in the parent and used inside
DataLoader workers reopens its files after the fork instead of sharing a handle (which breaks).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

import h5py
import numpy as np

from featstore.errors import UserError
from featstore.store.layout import INDEX, META_COLUMNS, META_NUMERIC, PLAN, SHARDS
from featstore.store.rows import row_indices

if TYPE_CHECKING:
    import pandas as pd


@dataclass(frozen=True)
class FeatureInfo:
    name: str
    shape: tuple[int, ...]
    dtype: str
    params: dict
    group: str | None = None  # None: inside the shard files (a format 1 store)
    extractor: str | None = None  # the extractor that made it


class Store:
    """A finished store. Use ``featstore.open(path)``."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        index = self.path / INDEX
        if not index.exists():
            if (self.path / PLAN).exists():
                raise UserError(f"store {self.path} is incomplete: finish it with "
                                "`featstore build ... --resume`")
            raise UserError(f"{self.path} is not a feature store (no {INDEX})")
        try:
            self.index = json.loads(index.read_text())
            self.features = {
                name: FeatureInfo(name, tuple(f["shape"]), f["dtype"], f.get("params", {}),
                                  f.get("group"), f.get("extractor"))
                for name, f in self.index["features"].items()
            }
            self.shards = self.index["shards"]
            self.offsets = np.cumsum([0] + [int(s["rows"]) for s in self.shards])
            files = [self.path / SHARDS / s["file"] for s in self.shards]
            files += [self.path / f["file"] for g in self.index.get("groups", {}).values()
                      for f in g["files"]]
            lacking = {"provenance", "problems"} - set(self.index)
            if lacking:
                raise KeyError(f"no {', '.join(sorted(lacking))}")
        except (OSError, UnicodeDecodeError, ValueError, KeyError, TypeError) as exc:
            raise UserError(f"{index} is damaged ({_reason(exc)}): rewrite it with the build's "
                            "command and --resume") from None
        missing = [str(f.relative_to(self.path)) for f in files if not f.is_file()]
        if missing:
            raise UserError(f"store {self.path} is missing shard(s) {', '.join(missing[:3])}"
                            f"{' ...' if len(missing) > 3 else ''}: rebuild them with the "
                            "build's command and --resume")
        self._files: dict[str, h5py.File] = {}
        self._pid = os.getpid()

    # -- metadata ---------------------------------------------------------------------------
    @property
    def provenance(self) -> dict:
        return self.index["provenance"]

    @property
    def problems(self) -> list[dict]:
        return self.index["problems"]

    def __len__(self) -> int:
        return int(self.offsets[-1])

    @cached_property
    def meta(self) -> pd.DataFrame:
        """One row per chunk: ids and labels, start sample and number of real samples."""
        import pandas as pd  # lazily: keeps `featstore build` start-up short

        parts = []
        for i in range(len(self.shards)):
            grp = self._file(i)["meta"]
            cols = {c: np.char.decode(grp[c][()], "utf-8") for c in META_COLUMNS}
            cols.update({c: grp[c][()] for c in META_NUMERIC})
            parts.append(pd.DataFrame(cols))
        if not parts:
            return pd.DataFrame({c: [] for c in (*META_COLUMNS, *META_NUMERIC)})
        return pd.concat(parts, ignore_index=True)

    # -- features ---------------------------------------------------------------------------
    def load(self, name: str, rows=None, layers=None) -> np.ndarray:
        """Feature ``name`` for ``rows`` (indices or a boolean mask of one entry per row; None =
        all), in that order; other ``rows`` are a UserError. ``layers``: for a per-layer feature
        (wav2vec2's pooled states, [layers, dim] rows), only these layer numbers (as recorded in
        its params), read alone: each layer is its own column of HDF5 chunks, so one of L layers
        reads ~1/L of the bytes."""
        if name not in self.features:
            raise KeyError(f"store has no feature '{name}'; it has {sorted(self.features)}")
        info = self.features[name]
        pos = None if layers is None else self.layer_positions(name, layers)
        shape = info.shape if pos is None else (len(pos), *info.shape[1:])
        rows = row_indices(rows, len(self))
        out = np.empty((len(rows), *shape), dtype=info.dtype)
        order = np.argsort(rows, kind="stable")
        sorted_rows = rows[order]
        shard_of = np.searchsorted(self.offsets, sorted_rows, side="right") - 1
        for shard in np.unique(shard_of):
            sel = shard_of == shard
            local = sorted_rows[sel] - self.offsets[shard]
            ds = self._file(self.file_of(name, int(shard)))[f"features/{name}"]
            out[order[sel]] = _read_rows(ds, local, pos)
        return out

    def layer_positions(self, name: str, layers) -> list[int]:
        """Positions in feature ``name``'s rows of the given layer numbers."""
        stored = list(self.features[name].params.get("layers") or [])
        if not stored:
            raise KeyError(f"feature '{name}' has no layers")
        absent = [int(x) for x in layers if int(x) not in stored]
        if absent:
            raise KeyError(f"feature '{name}' has no layer(s) {absent}; stored: {stored}")
        return [stored.index(int(x)) for x in layers]

    def file_of(self, name: str, shard: int) -> str:
        """The file (relative to the store) holding feature ``name`` of ``shard``."""
        group = self.features[name].group
        if group is None:
            return f"{SHARDS}/{self.shards[shard]['file']}"
        return self.index["groups"][group]["files"][shard]["file"]

    def _file(self, rel: str | int) -> h5py.File:
        if isinstance(rel, int):  # a shard's metadata file
            rel = f"{SHARDS}/{self.shards[rel]['file']}"
        if os.getpid() != self._pid:  # forked: never reuse the parent's handles
            self._files, self._pid = {}, os.getpid()
        if rel not in self._files:
            path = self.path / rel
            try:
                self._files[rel] = h5py.File(path, "r")
            except OSError as exc:
                raise UserError(f"shard {path} is damaged ({_reason(exc)}): `featstore verify "
                                f"{self.path}` names what is wrong; remove the shard and rerun "
                                "the build's command with --resume") from None
        return self._files[rel]

    def close(self) -> None:
        for f in self._files.values():
            f.close()
        self._files = {}

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __getstate__(self) -> dict:  # picklable for spawn-based DataLoader workers
        state = self.__dict__.copy()
        state["_files"] = {}
        return state

    def extractor(self, name: str, device: str = "cpu"):
        """Extractor ``name`` rebuilt from the parameters this store recorded for it, with the
        store's chunking: ``store.extractor("mfcc")(waveform)`` gives the rows the store would
        hold for that audio (see :mod:`featstore.store.featurize`)."""
        from featstore.store.featurize import store_extractor

        return store_extractor(self, name, device)

    def torch_dataset(self, features: str | list[str], label: str | None = None, rows=None):
        from featstore.store.torch_dataset import StoreDataset

        return StoreDataset(self, features, label, rows)

    def torch_loader(self, features: str | list[str], label: str | None = None, rows=None,
                     **kwargs):
        """A DataLoader reading whole batches (shuffled contiguous blocks of rows), integer
        labels (``loader.dataset.classes``) and frame masks: see
        :mod:`featstore.store.torch_batches`."""
        from featstore.store.torch_batches import torch_loader

        return torch_loader(self, features, label, rows, **kwargs)

    def to_hf(self, features: list[str] | None = None, rows=None,
              where: dict[str, list[str]] | None = None):
        """The chosen rows (indices or mask, then ``where`` meta filters) with their meta
        columns and ``features`` (None = all) as an in-memory ``datasets.Dataset``; see
        :mod:`featstore.store.export` for the types and ``featstore export`` for big stores."""
        from featstore.store.export import to_hf

        return to_hf(self, features, rows, where)


def _reason(exc: Exception) -> str:
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return text[:100]


def _read_rows(ds: h5py.Dataset, local: np.ndarray, pos: list[int] | None = None) -> np.ndarray:
    """Sorted local row indices (repeats allowed); a contiguous run is read as one slice (much
    faster in h5py). ``pos``: only these positions along the first axis after rows (layers),
    each read as its own slab so h5py touches only their chunks."""
    if pos is not None:
        return np.stack([_read_rows(_Layer(ds, p), local) for p in pos], axis=1)
    if local.size == 0:
        return np.empty((0, *ds.shape[1:]), dtype=ds.dtype)
    # consecutive steps of 1, not span == count: [0, 0, 2] has span 3 and 3 rows
    if np.all(np.diff(local) == 1):
        return ds[local[0] : local[-1] + 1]
    lo, hi = local[0], local[-1] + 1
    if (hi - lo) <= 4 * local.size:  # dense enough: one read, then select
        return ds[lo:hi][local - lo]
    unique, inverse = np.unique(local, return_inverse=True)  # h5py wants strictly increasing
    breaks = np.flatnonzero(np.diff(unique) != 1) + 1
    if len(breaks) < max(4, len(unique) // 16):  # a few runs (batched reading): slices
        runs = np.split(unique, breaks)
        return np.concatenate([ds[r[0] : r[-1] + 1] for r in runs])[inverse]
    return ds[unique][inverse]


class _Layer:
    """One layer of a [rows, layers, dim] dataset, sliced like a [rows, dim] one."""

    def __init__(self, ds: h5py.Dataset, pos: int):
        self.ds, self.pos = ds, pos
        self.shape, self.dtype = (ds.shape[0], *ds.shape[2:]), ds.dtype

    def __getitem__(self, rows):
        return self.ds[rows, self.pos]


def open(path: str | os.PathLike) -> Store:  # noqa: A001 - the public API is featstore.open
    """Open a finished store for reading."""
    return Store(path)
