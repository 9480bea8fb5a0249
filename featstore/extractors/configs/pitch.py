"""YIN pitch settings (featstore.extractors.pitch) and the frame geometry they imply."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from featstore.cli.types import positive_float
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
    threshold: float = 0.1  # YIN's absolute threshold: picks the period (librosa's default)
    margin: float = 0.1  # else the first trough within this of the deepest (see yin())
    voicing: float = 0.35  # d' at the chosen trough below this: voiced (see the README)

    def __post_init__(self) -> None:
        if not 0 < self.f0_min < self.f0_max < self.sample_rate / 4:
            raise ValueError(f"need 0 < f0_min < f0_max < sample_rate / 4, got f0_min="
                             f"{self.f0_min}, f0_max={self.f0_max}")
        if self.hop < 1:
            raise ValueError(f"hop_ms must give at least one sample, got {self.hop_ms}")

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
