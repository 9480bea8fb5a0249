"""The batched torch reading path: every selected row once per epoch in shuffled contiguous
blocks, the same values as Store.load, integer labels with their mapping, real-frame masks."""

from __future__ import annotations

import numpy as np
import torch

import featstore
from featstore.pooling import valid_frames
from featstore.store.torch_batches import BlockBatchSampler


def test_sampler_covers_every_row_once_in_contiguous_blocks():
    s = BlockBatchSampler(103, batch_size=16, block_size=4, seed=1)
    first = list(s)
    flat = np.concatenate(first)
    assert sorted(flat.tolist()) == list(range(103)) and len(first) == len(s) == 7
    runs = [b for b in first if len(b) == 16]
    # each batch is a few blocks of 4 consecutive rows (the short last block shifts one)
    for b in runs:
        assert len({x // 4 for x in b}) <= 5
    assert [list(b) for b in s] != [list(b) for b in first]  # a new order each epoch
    assert len(list(BlockBatchSampler(103, 16, 4, drop_last=True))) == 6
    again = BlockBatchSampler(103, batch_size=16, block_size=4, seed=1)
    assert [list(b) for b in again] == [list(b) for b in first]  # seeded


def test_loader_batches_equal_the_store(synthetic_store):
    store = featstore.open(synthetic_store)
    rows = np.flatnonzero((store.meta.subset != "x").to_numpy())[::2]
    loader = store.torch_loader(["mfcc", "fbank", "pitch/f0"], label="speaker_id", rows=rows,
                                batch_size=8, block_size=2, num_workers=2,
                                multiprocessing_context="fork")
    classes = loader.dataset.classes
    assert classes == sorted(store.meta.speaker_id.unique())
    seen = []
    n_samples = store.meta.n_samples.to_numpy()
    for batch in loader:
        r = batch["row"].numpy()
        seen += r.tolist()
        for name in ("mfcc", "fbank", "pitch/f0"):
            np.testing.assert_array_equal(batch[name].numpy(), store.load(name, r))
        assert batch["label"].dtype == torch.int64
        assert [classes[i] for i in batch["label"]] == store.meta.speaker_id.to_numpy()[r].tolist()
        k = valid_frames(n_samples[r], 512, 63)
        assert (batch["mfcc/mask"].sum(1).numpy() == k).all()
        assert batch["fbank/mask"].shape == batch["fbank"].shape[:2]
    assert sorted(seen) == sorted(rows.tolist())


def test_masks_mark_the_padding_of_a_short_chunk(synthetic_store):
    store = featstore.open(synthetic_store)
    n = store.meta.n_samples.to_numpy()
    from featstore.store.torch_batches import StoreBatches

    ds = StoreBatches(store, ["mfcc", "audio"])
    short = int(np.argmin(n))
    item = ds[[short]]
    assert "audio/mask" not in item
    mask = item["mfcc/mask"][0].numpy()
    assert mask.sum() == valid_frames(n[short], 512, 63)
    assert mask[: mask.sum()].all() and not mask[mask.sum():].any()
