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
                name: FeatureInfo(name, tuple(f["shape"]), f["dtype"], f.get("params", {}))
                for name, f in self.index["features"].items()
            }
            self.shards = self.index["shards"]
            self.offsets = np.cumsum([0] + [int(s["rows"]) for s in self.shards])
            files = [self.path / SHARDS / s["file"] for s in self.shards]
            lacking = {"provenance", "problems"} - set(self.index)
            if lacking:
                raise KeyError(f"no {', '.join(sorted(lacking))}")
        except (OSError, UnicodeDecodeError, ValueError, KeyError, TypeError) as exc:
            raise UserError(f"{index} is damaged ({_reason(exc)}): rewrite it with the build's "
                            "command and --resume") from None
        missing = [f.name for f in files if not f.is_file()]
        if missing:
            raise UserError(f"store {self.path} is missing shard(s) {', '.join(missing[:3])}"
                            f"{' ...' if len(missing) > 3 else ''}: rebuild them with the "
                            "build's command and --resume")
        self._files: dict[int, h5py.File] = {}
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
    def load(self, name: str, rows=None) -> np.ndarray:
        """Feature ``name`` for ``rows`` (indices or a boolean mask of one entry per row; None =
        all), in that order; other ``rows`` are a UserError."""
        if name not in self.features:
            raise KeyError(f"store has no feature '{name}'; it has {sorted(self.features)}")
        info = self.features[name]
        rows = row_indices(rows, len(self))
        out = np.empty((len(rows), *info.shape), dtype=info.dtype)
        order = np.argsort(rows, kind="stable")
        sorted_rows = rows[order]
        shard_of = np.searchsorted(self.offsets, sorted_rows, side="right") - 1
        for shard in np.unique(shard_of):
            sel = shard_of == shard
            local = sorted_rows[sel] - self.offsets[shard]
            ds = self._file(int(shard))[f"features/{name}"]
            out[order[sel]] = _read_rows(ds, local)
        return out

    def _file(self, i: int) -> h5py.File:
        if os.getpid() != self._pid:  # forked: never reuse the parent's handles
            self._files, self._pid = {}, os.getpid()
        if i not in self._files:
            path = self.path / SHARDS / self.shards[i]["file"]
            try:
                self._files[i] = h5py.File(path, "r")
            except OSError as exc:
                raise UserError(f"shard {path} is damaged ({_reason(exc)}): `featstore verify "
                                f"{self.path}` names what is wrong; remove the shard and rerun "
                                "the build's command with --resume") from None
        return self._files[i]

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

    def torch_dataset(self, features: str | list[str], label: str | None = None, rows=None):
        from featstore.store.torch_dataset import StoreDataset

        return StoreDataset(self, features, label, rows)

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


def _read_rows(ds: h5py.Dataset, local: np.ndarray) -> np.ndarray:
    """Sorted local row indices (repeats allowed); a contiguous run is read as one slice (much
    faster in h5py)."""
    if local.size == 0:
        return np.empty((0, *ds.shape[1:]), dtype=ds.dtype)
    # consecutive steps of 1, not span == count: [0, 0, 2] has span 3 and 3 rows
    if np.all(np.diff(local) == 1):
        return ds[local[0] : local[-1] + 1]
    lo, hi = local[0], local[-1] + 1
    if (hi - lo) <= 4 * local.size:  # dense enough: one read, then select
        return ds[lo:hi][local - lo]
    unique, inverse = np.unique(local, return_inverse=True)  # h5py wants strictly increasing
    return ds[unique][inverse]


def open(path: str | os.PathLike) -> Store:  # noqa: A001 - the public API is featstore.open
    """Open a finished store for reading."""
    return Store(path)
