"""The one reading of a ``rows=`` argument (Store.load, torch_dataset, export): integer row
indices, or a boolean mask with one entry per row; anything else is refused in one line."""

from __future__ import annotations

import numpy as np

from featstore.errors import UserError


def row_indices(rows, n: int) -> np.ndarray:
    """``rows`` (None = all of ``n`` rows) as int64 indices into ``n`` rows, in order."""
    if rows is None:
        return np.arange(n, dtype=np.int64)
    picked = np.asarray(rows)
    if picked.size == 0 and picked.ndim == 1:
        return np.empty(0, dtype=np.int64)
    if picked.dtype == bool:
        if picked.shape != (n,):
            raise UserError(f"a row mask needs one entry per row ({n}), got shape "
                            f"{picked.shape}")
        return np.flatnonzero(picked)
    if picked.dtype.kind not in "iu" or picked.ndim != 1:
        raise UserError(f"rows must be a 1-D array of row indices or a boolean mask of {n} "
                        f"entries, got {picked.ndim}-D {picked.dtype}")
    picked = picked.astype(np.int64)
    if picked.size and (picked.min() < 0 or picked.max() >= n):
        raise UserError(f"rows out of range: the store has rows 0 to {n - 1}")
    return picked
