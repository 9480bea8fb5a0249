"""YIN pitch settings (featstore.extractors.pitch) and the frame geometry they imply.

YIN runs at the store's sample rate divided by ``decimation``: the largest integer factor that
keeps the rate at least ``analysis_rate`` and above 4 ``f0_max`` and divides both the store's
rate and its hop (16 kHz: 8 kHz, factor 2; an 8 kHz store, or ``analysis_rate`` = the store's
rate: no decimation).
Speech F0 lies far below 4 kHz, and half the rate halves both the window and the lags: ~2x less
work for F0 within a few cents of the 16 kHz values (docs/features.md). ``analysis()`` is the
config at that rate, whose lags, window and hop ``Yin`` reads; frames stay those of the store's
rate (frame t centred on sample t * ``hop``)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Any

from featstore.cli.types import positive_float, positive_int
from featstore.extractors.configs.base import ExtractorConfig, flag, register_config


@register_config
@dataclass(frozen=True)
class PitchConfig(ExtractorConfig):
    feature_type = "pitch"
    sample_rate: int = 16000  # the store's: make_extractor sets it from the context
    f0_min: float = field(default=50.0, metadata=flag(
        "--f0-min", "pitch search range, lowest F0 in Hz (default {default})",
        type=positive_float))
    f0_max: float = field(default=500.0, metadata=flag(
        "--f0-max", "pitch search range, highest F0 in Hz (default {default})",
        type=positive_float))
    hop_ms: float = field(default=10.0, metadata=flag(
        "--pitch-hop-ms", "pitch frame hop in ms (default {default})", type=positive_float))
    analysis_rate: int = field(default=8000, metadata=flag(
        "--pitch-rate", "lowest sample rate YIN runs at, in Hz: audio is low-passed and "
        "decimated to it by an integer factor (default {default}; the store's rate: none)",
        type=positive_int))
    threshold: float = 0.1  # YIN's absolute threshold: picks the period (librosa's default)
    margin: float = 0.1  # else the first trough within this of the deepest (see yin())
    voicing: float = 0.35  # d' at the chosen trough below this: voiced (see the README)

    def __post_init__(self) -> None:
        if not 0 < self.f0_min < self.f0_max < self.sample_rate / 4:
            raise ValueError(f"need 0 < f0_min < f0_max < sample_rate / 4, got f0_min="
                             f"{self.f0_min}, f0_max={self.f0_max}")
        if self.hop < 1:
            raise ValueError(f"hop_ms must give at least one sample, got {self.hop_ms}")

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PitchConfig:
        # params recorded before analysis_rate existed are of YIN at the store's rate
        return super().from_dict({"analysis_rate": data.get("sample_rate", cls.sample_rate),
                                  **data})

    @property
    def decimation(self) -> int:
        """The factor from the store's rate to YIN's (see the module's docstring)."""
        q = max(1, self.sample_rate // self.analysis_rate)
        while q > 1 and (self.sample_rate % q or self.hop % q
                         or self.sample_rate / q <= 4 * self.f0_max):
            q -= 1
        return q

    def analysis(self) -> PitchConfig:
        """This config at YIN's rate: its lags, window, hop and frame length are YIN's."""
        rate = self.sample_rate // self.decimation
        return self if rate == self.sample_rate else replace(self, sample_rate=rate,
                                                              analysis_rate=rate)

    @property
    def hop(self) -> int:
        return int(round(self.hop_ms * self.sample_rate / 1000))

    @property
    def min_lag(self) -> int:
        return max(2, math.floor(self.sample_rate / self.f0_max))

    @property
    def max_lag(self) -> int:
        return math.ceil(self.sample_rate / self.f0_min)

    @property
    def window(self) -> int:
        """YIN's integration window: one period of f0_min."""
        return self.max_lag

    @property
    def frame_length(self) -> int:
        # lags up to max_lag + 1 (the parabola's right neighbour) over the window
        return self.window + self.max_lag + 1
