"""The extractor contract and registry.

An extractor turns a batch of fixed-length chunks (float32 waveforms at 16 kHz, already on
the extraction device) into one or more row-aligned feature arrays. Each output must depend
only on its own chunk, never on what else is in the batch: tests check batch-of-1 against
batch-of-N for every extractor.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, fields, replace
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

if TYPE_CHECKING:  # torch is imported by the extractors themselves, not by the CLI's --help
    import numpy as np
    import torch


STORAGE_DTYPES = ("float16", "float32")  # what float features may be stored as


@dataclass(frozen=True)
class FeatureSpec:
    """One dataset in a store: ``name`` ("mfcc", "wav2vec2/mean", ...), per-row shape, dtype."""

    name: str
    shape: tuple[int, ...]
    dtype: str
    params: dict = field(default_factory=dict)


@dataclass
class ExtractorOptions:
    """Everything the command line can say about extraction. Each extractor reads its part."""

    device: str = "cpu"
    sample_rate: int = 16000
    chunk_samples: int = 32000
    # MFCC (defaults of the classic study, librosa-compatible)
    n_mfcc: int = 13
    n_fft: int = 2048
    hop_length: int = 512
    n_mels: int = 128
    # wav2vec2
    model: str = "facebook/wav2vec2-base"
    dtype: str = "float16"  # storage dtype of pooled / frame-level hidden states
    layers: tuple[int, ...] | None = None  # None: every layer
    frames_layers: tuple[int, ...] = ()
    compute_dtype: str = "auto"  # auto (bf16 on CUDA, fp32 on CPU), float32, bfloat16, float16
    # pitch (YIN)
    f0_min: float = 50.0
    f0_max: float = 500.0
    pitch_hop_ms: float = 10.0
    # Kaldi fbank
    fbank_bins: int = 80
    fbank_dtype: str = "float16"  # storage dtype


class ExtractorConfig:
    """Base of each extractor's config dataclass: ``to_dict`` / ``from_dict`` (lhotse's
    pattern), so an extractor is rebuilt from the parameters a store recorded
    (``Store.extractor``). ``OPTIONS`` maps config fields to the ``ExtractorOptions`` fields
    (the command-line flags) that set them; fields without one keep their defaults."""

    feature_type: ClassVar[str]
    OPTIONS: ClassVar[dict[str, str]] = {}

    def to_dict(self) -> dict[str, Any]:
        return {"feature_type": self.feature_type,
                **{f.name: getattr(self, f.name) for f in fields(self)}}

    @classmethod
    def from_dict(cls, data: dict[str, Any]):
        """The config from a ``to_dict`` result or an extractor's recorded params (keys that
        are not fields, such as derived facts, are ignored)."""
        names = {f.name for f in fields(cls)}
        return cls(**{k: tuple(v) if isinstance(v, list) else v
                      for k, v in data.items() if k in names})

    def options(self, base: ExtractorOptions) -> ExtractorOptions:
        """``base`` with this config's values in the options that carry them."""
        return replace(base, **{opt: getattr(self, f) for f, opt in self.OPTIONS.items()})


CONFIGS: dict[str, type[ExtractorConfig]] = {}


def register_config(cls: type[ExtractorConfig]) -> type[ExtractorConfig]:
    CONFIGS[cls.feature_type] = cls
    return cls


class Extractor(Protocol):
    name: str

    def specs(self) -> list[FeatureSpec]:
        """The datasets this extractor writes, with per-row shapes."""

    def params(self) -> dict:
        """Extraction parameters recorded as provenance (JSON-serialisable)."""

    def extract(self, batch: torch.Tensor, n_samples: torch.Tensor) -> dict[str, np.ndarray]:
        """``batch``: [B, chunk_samples] float32 on the device; ``n_samples``: [B] count of real
        (non-padding) samples per chunk. Returns spec name -> array [B, *shape] on the host."""


ExtractorFactory = Callable[[ExtractorOptions], Extractor]
EXTRACTORS: dict[str, ExtractorFactory] = {}


def register(name: str) -> Callable[[ExtractorFactory], ExtractorFactory]:
    def deco(factory: ExtractorFactory) -> ExtractorFactory:
        EXTRACTORS[name] = factory
        return factory

    return deco
