"""A store as a Hugging Face ``datasets.Dataset``: in memory (:func:`to_hf`), saved with
``save_to_disk`` (Arrow), or as Parquet files for pandas, Spark and DuckDB (:func:`export`).

One row per chunk: ``row`` (the store row), the meta columns, and each feature as a fixed-shape
column of its stored dtype: ``List(Value(dtype), length=n)`` for a vector, ``Array2D`` ..
``Array5D`` above that. Values are copied bit for bit, so reading them back (``with_format(
"numpy", dtype=None)``: the plain numpy format casts to float32 / int64) equals ``Store.load``.
Arrays are handed to Arrow from numpy directly; building them through Python lists would be
~30x slower.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from featstore.errors import UserError
from featstore.store.layout import META_COLUMNS, META_NUMERIC, TMP_PREFIX
from featstore.store.rows import row_indices

if TYPE_CHECKING:
    from datasets import Dataset, Features

    from featstore.store.reader import Store

FORMATS = ("hf", "parquet")
PART_BYTES = 256 << 20  # rows per Parquet file / Arrow piece: about this many bytes of features
EXPORT_INFO = "_featstore.json"  # Parquet readers skip names starting with '_'


def select_rows(store: Store, rows=None, where: dict[str, list[str]] | None = None) -> np.ndarray:
    """Store rows to export, in order: ``rows`` (indices or a boolean mask; None = all) that
    match every ``where`` (meta column -> accepted values)."""
    picked = row_indices(rows, len(store))
    meta = store.meta
    for column, values in (where or {}).items():
        if column not in meta.columns:
            raise UserError(f"no meta column '{column}'; columns: {', '.join(meta.columns)}")
        keep = meta[column].astype(str).isin([str(v) for v in values]).to_numpy()
        picked = picked[keep[picked]]
    return picked


def hf_features(store: Store, names: list[str]) -> Features:
    from datasets import Array2D, Array3D, Array4D, Array5D, Features, List, Value

    arrays = {2: Array2D, 3: Array3D, 4: Array4D, 5: Array5D}
    columns = {"row": Value("int64"), **{c: Value("string") for c in META_COLUMNS},
               **{c: Value(t) for c, t in META_NUMERIC.items()}}
    for name in names:
        info = store.features[name]
        if len(info.shape) == 1:
            columns[name] = List(Value(info.dtype), length=info.shape[0])
        elif len(info.shape) in arrays:
            columns[name] = arrays[len(info.shape)](shape=info.shape, dtype=info.dtype)
        else:
            raise UserError(f"feature {name} has shape {info.shape}: only 1 to 5 dimensions "
                            "have a fixed-shape datasets type")
    return Features(columns)


def _check_names(store: Store, features: list[str] | None) -> list[str]:
    names = list(store.features) if features is None else list(dict.fromkeys(features))
    unknown = [n for n in names if n not in store.features]
    if unknown:
        raise UserError(f"the store has no feature(s) {', '.join(unknown)}; it has "
                        f"{', '.join(store.features)}")
    return names


def _to_arrow(values: np.ndarray, arrow_type):
    """Rows of ``values`` as an Arrow array of ``arrow_type`` (nested lists), without copying
    through Python objects."""
    import pyarrow as pa

    storage = arrow_type.storage_type if isinstance(arrow_type, pa.ExtensionType) else arrow_type
    levels = []
    while pa.types.is_list(storage) or pa.types.is_fixed_size_list(storage):
        levels.append(storage)
        storage = storage.value_type
    array = pa.array(np.ascontiguousarray(values).reshape(-1), type=storage)
    for size, level in zip(reversed(values.shape[1:]), reversed(levels), strict=True):
        if pa.types.is_fixed_size_list(level):
            array = pa.FixedSizeListArray.from_arrays(array, size)
        else:
            offsets = np.arange(0, len(array) + 1, size, dtype=np.int32)
            array = pa.ListArray.from_arrays(pa.array(offsets), array)
    return array


def _dataset(store: Store, names: list[str], rows: np.ndarray, features: Features) -> Dataset:
    from datasets import Dataset

    schema = features.arrow_schema
    meta = store.meta.iloc[rows]
    data = {"row": rows, **{c: meta[c].tolist() for c in META_COLUMNS},
            **{c: meta[c].to_numpy() for c in META_NUMERIC}}
    for name in names:
        data[name] = _to_arrow(store.load(name, rows), schema.field(name).type)
    return Dataset.from_dict(data, features=features)


def _description(store: Store, names: list[str]) -> dict:
    return {"featstore_store": str(store.path),
            "features": {n: {"shape": list(store.features[n].shape),
                             "dtype": store.features[n].dtype,
                             "params": store.features[n].params} for n in names},
            "provenance": store.provenance}


def to_hf(store: Store, features: list[str] | None = None, rows=None,
          where: dict[str, list[str]] | None = None) -> Dataset:
    """The selected rows and features as an in-memory ``datasets.Dataset``."""
    names = _check_names(store, features)
    ds = _dataset(store, names, select_rows(store, rows, where), hf_features(store, names))
    ds.info.description = json.dumps(_description(store, names))
    return ds


def _parts(rows: np.ndarray, store: Store, names: list[str]) -> Iterator[np.ndarray]:
    row_bytes = sum(int(np.prod(store.features[n].shape)) * np.dtype(store.features[n].dtype)
                    .itemsize for n in names) + 64
    step = max(1, PART_BYTES // row_bytes)
    for lo in range(0, len(rows), step):
        yield rows[lo : lo + step]


def export(store: Store, out: str | os.PathLike, fmt: str = "hf",
           features: list[str] | None = None, rows=None,
           where: dict[str, list[str]] | None = None, overwrite: bool = False) -> int:
    """Write the selection to ``out``, one piece of ~PART_BYTES at a time (the store need not
    fit in memory). ``hf``: a ``save_to_disk`` folder; ``parquet``: ``part-NNNNN.parquet``
    files. Written beside ``out`` under a temporary name and renamed. Returns rows written."""
    if fmt not in FORMATS:
        raise UserError(f"unknown export format {fmt}; choose from {', '.join(FORMATS)}")
    out = Path(out)
    _check_out(out, overwrite)
    names = _check_names(store, features)
    picked = select_rows(store, rows, where)
    if not picked.size:
        raise UserError("no rows selected: nothing to export")
    feats = hf_features(store, names)
    description = json.dumps(_description(store, names), indent=1)
    tmp, work = (out.with_name(f"{TMP_PREFIX}{out.name}{end}") for end in ("", "-pieces"))
    for path in (tmp, work):
        shutil.rmtree(path, ignore_errors=True)  # left by a killed export
    try:
        pieces = (_dataset(store, names, part, feats) for part in _parts(picked, store, names))
        if fmt == "parquet":
            tmp.mkdir(parents=True)
            for i, piece in enumerate(pieces):
                piece.to_parquet(str(tmp / f"part-{i:05d}.parquet"))
            (tmp / EXPORT_INFO).write_text(description)
        else:
            _save_hf(pieces, tmp, work, description)
        if out.exists():
            shutil.rmtree(out)
        os.replace(tmp, out)
    finally:
        for path in (tmp, work):
            shutil.rmtree(path, ignore_errors=True)
    return int(picked.size)


def _save_hf(pieces: Iterator[Dataset], out: Path, work: Path, description: str) -> None:
    """Each piece is saved in ``work``, then all are joined memory-mapped and saved into
    ``out``: memory holds one piece at a time."""
    from datasets import concatenate_datasets, load_from_disk

    saved = []
    for i, piece in enumerate(pieces):
        piece.save_to_disk(str(work / str(i)))
        saved.append(load_from_disk(str(work / str(i))))
    joined = concatenate_datasets(saved)
    joined.info.description = description
    joined.save_to_disk(str(out))


def _check_out(out: Path, overwrite: bool) -> None:
    if not out.exists():
        return
    if not overwrite:
        raise UserError(f"{out} already exists: pass --overwrite to replace it")
    files = [p.name for p in out.iterdir()] if out.is_dir() else []
    is_export = "state.json" in files or (
        files and all(n.endswith(".parquet") or n == EXPORT_INFO for n in files))
    if not is_export:
        raise UserError(f"refusing to --overwrite {out}: it is not an export")
