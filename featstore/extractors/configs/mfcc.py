"""MFCC settings (featstore.extractors.mfcc): librosa's defaults of the classic study."""

from __future__ import annotations

from dataclasses import dataclass, field

from featstore.cli.types import positive_int
from featstore.extractors.configs.base import ExtractorConfig, flag, register_config


@register_config
@dataclass(frozen=True)
class MFCCConfig(ExtractorConfig):
    feature_type = "mfcc"
    n_mfcc: int = field(default=13, metadata=flag(
        "--n-mfcc", "MFCC coefficients per frame (default {default})", type=positive_int))
    n_fft: int = field(default=2048, metadata=flag(
        "--n-fft", "MFCC FFT size in samples (default {default})", type=positive_int))
    hop_length: int = field(default=512, metadata=flag(
        "--hop-length", "MFCC frame hop in samples (default {default})", type=positive_int))
    n_mels: int = field(default=128, metadata=flag(
        "--n-mels", "MFCC mel bands (default {default})", type=positive_int))
    sample_rate: int = 16000  # the store's: make_extractor sets it from the context

    def __post_init__(self) -> None:
        for key in ("n_mfcc", "n_fft", "hop_length", "n_mels"):
            if getattr(self, key) <= 0:
                raise ValueError(f"{key} must be positive")
        if self.n_mfcc > self.n_mels:
            raise ValueError(f"n_mfcc ({self.n_mfcc}) cannot exceed n_mels ({self.n_mels})")
