"""A torch Dataset over a store's rows: features (and an optional label column) per chunk."""

from __future__ import annotations

import torch
from torch.utils.data import Dataset

from featstore.store.rows import row_indices


class StoreDataset(Dataset):
    """Item ``i`` is ``{feature: tensor, ..., "label": str}`` for the i-th selected row.

    Safe in DataLoader workers: the Store reopens its HDF5 files in each worker process."""

    def __init__(self, store, features, label=None, rows=None):
        self.store = store
        self.features = [features] if isinstance(features, str) else list(features)
        for name in self.features:
            if name not in store.features:
                raise KeyError(f"store has no feature '{name}'")
        self.rows = row_indices(rows, len(store))  # a mask selects rows, never indices 0/1
        self.labels = None if label is None else store.meta[label].to_numpy()[self.rows]

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, i: int) -> dict:
        row = self.rows[i : i + 1]
        item = {n: torch.from_numpy(self.store.load(n, row)[0]) for n in self.features}
        if self.labels is not None:
            item["label"] = self.labels[i]
        return item
