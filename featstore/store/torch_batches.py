"""A torch reading path fit for training: whole batches of rows per read.

``StoreDataset`` (one h5py read per item and feature) costs a Python round trip and an HDF5
selection per row. Here a ``BlockBatchSampler`` hands a DataLoader lists of rows: the selected
rows cut into contiguous blocks, the blocks shuffled (a new order each epoch, from ``seed``),
each batch a few blocks; ``StoreBatches`` reads a batch with one ``Store.load`` per feature
(contiguous runs are single HDF5 slices). Labels are integers with the mapping kept
(``classes``); frame-level features come with a boolean mask of the frames of real audio
(``<feature>/mask``), so padding in a short chunk never enters a loss or a pooling.

    loader = store.torch_loader(["mfcc"], label="speaker_id", batch_size=256, num_workers=2)
    for batch in loader: batch["mfcc"], batch["mfcc/mask"], batch["label"]
"""

from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import Dataset, Sampler

from featstore.pooling import valid_frames
from featstore.store.rows import row_indices

W2V_HOP = 320  # samples between wav2vec2-style frames (the conv encoder's total stride)


def real_frames(name: str, params: dict, n_samples: np.ndarray, n_frames: int) -> np.ndarray | None:
    """Frames of real audio per chunk for a frame-level feature, None for other features.
    Kaldi snip-edges frames (fbank): those that fit the real samples; centred frames (MFCC,
    pitch) and wav2vec2 frames: ``valid_frames``."""
    if params.get("snip_edges"):
        n = 1 + (np.asarray(n_samples, np.int64) - params["frame_length"]) // params["frame_shift"]
        return np.clip(n, 1, n_frames)
    if name.startswith("wav2vec2/frames/"):
        return valid_frames(n_samples, W2V_HOP, n_frames)
    if "hop_length" in params and name != "audio":
        return valid_frames(n_samples, params["hop_length"], n_frames)
    return None


class BlockBatchSampler(Sampler):
    """Batches of positions 0..n-1 made of shuffled contiguous blocks of ``block_size``."""

    def __init__(self, n: int, batch_size: int, block_size: int = 32, shuffle: bool = True,
                 seed: int = 0, drop_last: bool = False):
        if batch_size < 1 or block_size < 1:
            raise ValueError("batch_size and block_size must be positive")
        self.n, self.batch_size, self.block = n, batch_size, min(block_size, batch_size)
        self.shuffle, self.seed, self.drop_last, self.epoch = shuffle, seed, drop_last, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __iter__(self):
        starts = np.arange(0, self.n, self.block)
        if self.shuffle:
            rng = np.random.default_rng([self.seed, self.epoch])
            starts = starts[rng.permutation(len(starts))]
            self.epoch += 1
        order = np.concatenate([np.arange(s, min(s + self.block, self.n)) for s in starts]
                               or [np.empty(0, np.int64)])
        for lo in range(0, self.n, self.batch_size):
            batch = order[lo : lo + self.batch_size]
            if len(batch) < self.batch_size and self.drop_last:
                return
            yield np.sort(batch).tolist()  # sorted: one read per contiguous run

    def __len__(self) -> int:
        full, rest = divmod(self.n, self.batch_size)
        return full + (0 if self.drop_last or not rest else 1)


class StoreBatches(Dataset):
    """Indexed by a list of positions (a BlockBatchSampler's batch): a dict of tensors
    ``{feature: [B, ...], feature + "/mask": [B, frames] bool, "label": [B] int64,
    "row": [B] int64}``. Safe in DataLoader workers (the Store reopens its files there)."""

    def __init__(self, store, features, label: str | None = None, rows=None,
                 masks: bool = True):
        self.store = store
        self.features = [features] if isinstance(features, str) else list(features)
        for name in self.features:
            if name not in store.features:
                raise KeyError(f"store has no feature '{name}'")
        self.rows = row_indices(rows, len(store))
        meta = store.meta
        self.n_samples = meta["n_samples"].to_numpy()
        self.classes: list[str] | None = None
        self.labels = None
        if label is not None:
            values = meta[label].to_numpy()[self.rows]
            self.classes = sorted(set(values.tolist()))
            index = {c: i for i, c in enumerate(self.classes)}
            self.labels = np.array([index[v] for v in values], dtype=np.int64)
        self.masks = masks

    @property
    def class_to_index(self) -> dict[str, int]:
        return {c: i for i, c in enumerate(self.classes or [])}

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, positions) -> dict[str, torch.Tensor]:
        pos = np.asarray(positions, dtype=np.int64)
        rows = self.rows[pos]
        out: dict[str, torch.Tensor] = {"row": torch.from_numpy(rows)}
        for name in self.features:
            x = self.store.load(name, rows)
            out[name] = torch.from_numpy(x)
            info = self.store.features[name]
            k = (real_frames(name, info.params, self.n_samples[rows], x.shape[1])
                 if self.masks else None)
            if k is not None:
                out[f"{name}/mask"] = torch.from_numpy(np.arange(x.shape[1])[None, :] < k[:, None])
        if self.labels is not None:
            out["label"] = torch.from_numpy(self.labels[pos])
        return out


def torch_loader(store, features, label: str | None = None, rows=None, *, batch_size: int = 256,
                 block_size: int = 32, shuffle: bool = True, seed: int = 0,
                 drop_last: bool = False, masks: bool = True, **loader_kwargs):
    """A DataLoader over ``StoreBatches`` with a ``BlockBatchSampler``; ``loader_kwargs`` go
    to the DataLoader (num_workers, pin_memory, ...). Its ``dataset.classes`` is the label
    mapping."""
    from torch.utils.data import DataLoader

    ds = StoreBatches(store, features, label, rows, masks)
    sampler = BlockBatchSampler(len(ds), batch_size, block_size, shuffle, seed, drop_last)
    return DataLoader(ds, batch_size=None, sampler=sampler, **loader_kwargs)
