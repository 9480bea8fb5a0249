"""Settings of the stored waveforms (featstore.extractors.audio): only the store's rate."""

from __future__ import annotations

from dataclasses import dataclass

from featstore.extractors.configs.base import ExtractorConfig, register_config


@register_config
@dataclass(frozen=True)
class AudioConfig(ExtractorConfig):
    feature_type = "audio"
    sample_rate: int = 16000  # the store's: make_extractor sets it from the context
