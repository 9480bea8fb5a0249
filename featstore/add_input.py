"""Where ``featstore add`` gets a store's chunks: its own ``audio`` feature (no decoding), or
the corpus decoded again (the recorded source, or ``--source`` when it moved), checked to be
the same audio: every utterance id there, and each chunk's start and length as stored."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch

from featstore.errors import UserError
from featstore.pipeline import Batch, RunSettings, batches
from featstore.sources import resolve_source, select_speakers
from featstore.sources.base import Utterance
from featstore.store.layout import META_COLUMNS, META_NUMERIC
from featstore.store.reader import Store


def shard_meta(store: Store, shard: int) -> dict[str, np.ndarray]:
    """A shard's metadata columns as the writer was given them."""
    grp = store._file(shard)["meta"]
    return {c: grp[c][()] for c in (*META_COLUMNS, *META_NUMERIC)}


class StoredAudio:
    """Chunks read back from the store's int16 ``audio`` feature and scaled as 16-bit decoding
    scales (k / 32768): for 16-bit source audio these are the floats the build extracted from."""

    name = "the store's audio feature"

    def __init__(self, store: Store):
        self.store = store
        self.scale = np.float32(1 / store.features["audio"].params.get("scale", 32767))

    def batches(self, shard: int, size: int) -> Iterator[Batch]:
        lo, hi = int(self.store.offsets[shard]), int(self.store.offsets[shard + 1])
        meta = shard_meta(self.store, shard)
        for start in range(lo, hi, size):
            x = self.store.load("audio", np.arange(start, min(start + size, hi)))
            x = x.astype(np.float32)
            x *= self.scale
            part = slice(start - lo, start - lo + len(x))
            yield Batch(torch.from_numpy(x), {k: v[part] for k, v in meta.items()}, [], 0)


class DecodedAudio:
    """Chunks decoded again from the corpus, each batch checked against the stored rows."""

    def __init__(self, store: Store, plan: dict, source: str | None, cache_dir: str | None,
                 settings: RunSettings):
        params = plan["params"]
        self.store, self.plan = store, plan
        self.name = source or params["source"] or "the recorded source"
        corpus = resolve_source(source or params["source"], subsets=params["subsets"],
                                speakers=params["speakers"], seed=params["seed"],
                                cache_dir=cache_dir, options=params.get("source_options") or {})
        if params["speakers"] is not None:
            corpus = select_speakers(corpus, params["speakers"], params["seed"])
        by_id = {u.utterance_id: u for u in corpus.utterances}
        missing = [u["utterance_id"] for u in plan["utterances"] if u["utterance_id"] not in by_id]
        if missing:
            raise UserError(f"{self.name} is not the audio {store.path} was built from: it has "
                            f"no utterance {missing[0]} ({len(missing)} missing)")
        self.by_id = by_id
        self.settings = RunSettings(**{**settings.__dict__, "reader": corpus.reader})

    def batches(self, shard: int, size: int) -> Iterator[Batch]:
        lo, hi = self.plan["shards"][shard]
        utts: list[Utterance] = [self.by_id[u["utterance_id"]]
                                 for u in self.plan["utterances"][lo:hi]]
        meta = shard_meta(self.store, shard)
        settings = RunSettings(**{**self.settings.__dict__, "batch_size": size})
        done = 0
        for batch in batches(utts, settings):
            n = len(batch)
            for col in ("utterance_id", "start_sample", "n_samples"):
                if not np.array_equal(batch.meta[col], meta[col][done : done + n]):
                    raise UserError(self._mismatch(batch, meta, done, col))
            done += n
            if n:
                yield batch
        if done != len(meta["n_samples"]):
            raise UserError(f"{self.name} is not the audio {self.store.path} was built from: "
                            f"shard {shard} gives {done} chunks, the store has "
                            f"{len(meta['n_samples'])}")

    def _mismatch(self, batch: Batch, meta: dict, done: int, col: str) -> str:
        got, want = batch.meta[col], meta[col][done : done + len(batch)]
        n = min(len(got), len(want))
        diff = np.flatnonzero(got[:n] != want[:n])
        k = int(diff[0]) if len(diff) else n - 1 if n else 0
        utt = batch.meta["utterance_id"][k].decode(errors="replace") if len(got) else "?"
        stored = want[k] if k < len(want) else "no chunk"
        return (f"{self.name} is not the audio {self.store.path} was built from: utterance "
                f"{utt} differs in {col} ({got[k]!r} vs {stored!r} stored)")
