"""Kaldi fbank settings (featstore.extractors.fbank), Kaldi's names and defaults."""

from __future__ import annotations

from dataclasses import dataclass, field

from featstore.cli.types import positive_int
from featstore.extractors.base import STORAGE_DTYPES
from featstore.extractors.configs.base import ExtractorConfig, flag, register_config


@register_config
@dataclass(frozen=True)
class FbankConfig(ExtractorConfig):
    feature_type = "fbank"
    sample_rate: int = 16000  # the store's: make_extractor sets it from the context
    num_mel_bins: int = field(default=80, metadata=flag(
        "--fbank-bins", "Kaldi fbank mel bins (default {default}; MFCC's are --n-mels)",
        type=positive_int))
    frame_length_ms: float = 25.0
    frame_shift_ms: float = 10.0
    low_freq: float = 20.0
    high_freq: float = 0.0  # <= 0: offset from Nyquist, as Kaldi
    preemphasis: float = 0.97
    dtype: str = field(default="float16", metadata=flag(  # storage
        "--fbank-dtype", "storage dtype of fbank frames (default {default})",
        choices=STORAGE_DTYPES))

    def __post_init__(self) -> None:
        if self.num_mel_bins < 4:  # get_mel_banks needs > 3
            raise ValueError(f"num_mel_bins must be at least 4, got {self.num_mel_bins}")
        if self.dtype not in STORAGE_DTYPES:
            raise ValueError(f"dtype must be one of {sorted(STORAGE_DTYPES)}, got {self.dtype!r}")
        nyquist = self.sample_rate / 2
        high = self.high_freq if self.high_freq > 0 else nyquist + self.high_freq
        if not 0 <= self.low_freq < high <= nyquist:
            raise ValueError(f"need 0 <= low_freq < high_freq <= {nyquist:g} Hz")

    @property
    def frame_length(self) -> int:
        return int(self.sample_rate * self.frame_length_ms / 1000)

    @property
    def frame_shift(self) -> int:
        return int(self.sample_rate * self.frame_shift_ms / 1000)

    @property
    def n_fft(self) -> int:
        return 1 << (self.frame_length - 1).bit_length()
