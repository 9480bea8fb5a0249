"""d-vector settings (featstore.extractors.dvector): none; Resemblyzer's are fixed. The config
exists so that every extractor is built, and rebuilt from a store, the same way."""

from __future__ import annotations

from dataclasses import dataclass

from featstore.extractors.configs.base import ExtractorConfig, register_config


@register_config
@dataclass(frozen=True)
class DVectorConfig(ExtractorConfig):
    feature_type = "dvector"
