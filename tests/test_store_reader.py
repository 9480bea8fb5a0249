"""Store.load returns exactly the rows asked, in the order asked, for any index array."""

from __future__ import annotations

import numpy as np
import pytest

import featstore


@pytest.mark.parametrize("rows", [
    [0, 0, 2],  # repeats inside one shard once passed the contiguity test (read rows 0, 1, 2)
    [1, 1],
    [2, 0, 0, 1],
    [5, 5, 5, 5],
    [0, 1, 1, 2, 3],
    [4, 3, 2, 1, 0],
])
def test_load_repeats_and_unsorted_in_one_shard(synthetic_store, rows):
    store = featstore.open(synthetic_store)
    everything = store.load("mfcc")
    np.testing.assert_array_equal(store.load("mfcc", rows), everything[rows])


def test_load_any_index_array_across_shards(synthetic_store):
    store = featstore.open(synthetic_store)
    assert len(store.shards) > 1
    everything = store.load("mfcc")
    rng = np.random.default_rng(0)
    last, off = len(store) - 1, int(store.offsets[1])
    cases = [
        np.array([off + 2, off, off, 0, 0, 2]),  # [0, 0, 2] again, in two shards
        rng.integers(0, len(store), size=3 * len(store)),  # many repeats, unsorted
        np.array([last, last, 0, 0, last]),
        np.repeat(np.arange(len(store))[::-1], 2),
        np.array([], dtype=np.int64),
    ]
    for rows in cases:
        np.testing.assert_array_equal(store.load("mfcc", rows), everything[rows])
    mask = rng.random(len(store)) < 0.3
    np.testing.assert_array_equal(store.load("mfcc", mask), everything[mask])
