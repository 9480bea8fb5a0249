"""The extractor contract and registry: an extractor is built by its registered factory from
its own config (featstore.extractors.configs) and the build's ``ExtractContext``.

An extractor turns a batch of fixed-length chunks (float32 waveforms at 16 kHz, already on
the extraction device) into one or more row-aligned feature arrays. Each output must depend
only on its own chunk, never on what else is in the batch: tests check batch-of-1 against
batch-of-N for every extractor.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:  # torch is imported by the extractors themselves, not by the CLI's --help
    import numpy as np
    import torch


STORAGE_DTYPES = ("float16", "float32")  # what float features may be stored as
SAMPLE_RATE = 16000  # what a build decodes to


@dataclass(frozen=True)
class FeatureSpec:
    """One dataset in a store: ``name`` ("mfcc", "wav2vec2/mean", ...), per-row shape, dtype."""

    name: str
    shape: tuple[int, ...]
    dtype: str
    params: dict = field(default_factory=dict)


@dataclass(frozen=True)
class ExtractContext:
    """What every extractor of a build shares, beside its own config: where it runs and the
    store's chunking (the config's ``sample_rate``, where it has one, is set from this)."""

    device: str = "cpu"
    sample_rate: int = SAMPLE_RATE
    chunk_samples: int = 32000


class Extractor(Protocol):
    name: str

    def specs(self) -> list[FeatureSpec]:
        """The datasets this extractor writes, with per-row shapes."""

    def params(self) -> dict:
        """Extraction parameters recorded as provenance (JSON-serialisable)."""

    def extract(self, batch: torch.Tensor, n_samples: torch.Tensor) -> dict[str, np.ndarray]:
        """``batch``: [B, chunk_samples] float32 on the device; ``n_samples``: [B] count of real
        (non-padding) samples per chunk. Returns spec name -> array [B, *shape] on the host."""


# (config, context) -> extractor; the NAME=MODEL kinds ("upstream", "xvector") also take NAME
ExtractorFactory = Callable[..., Extractor]
EXTRACTORS: dict[str, ExtractorFactory] = {}


def register(name: str) -> Callable[[ExtractorFactory], ExtractorFactory]:
    def deco(factory: ExtractorFactory) -> ExtractorFactory:
        EXTRACTORS[name] = factory
        return factory

    return deco
