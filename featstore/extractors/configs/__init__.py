"""Every extractor's config dataclass, one small module each, importable without torch: the
CLI generates its extractor flags from their fields (``flag`` metadata) at startup, and
``Store.extractor`` rebuilds an extractor from its recorded params via ``from_dict``. The
extractors themselves (torch) live one level up and are imported on demand."""

from __future__ import annotations

from featstore.extractors.configs.audio import AudioConfig
from featstore.extractors.configs.base import (
    CONFIGS,
    ExtractorConfig,
    Flag,
    bad_parameter,
    flag,
    register_config,
    show_default,
)
from featstore.extractors.configs.dvector import DVectorConfig
from featstore.extractors.configs.fbank import FbankConfig
from featstore.extractors.configs.mfcc import MFCCConfig
from featstore.extractors.configs.pitch import PitchConfig
from featstore.extractors.configs.wav2vec2 import Wav2Vec2Config
from featstore.extractors.configs.xvector import XVectorConfig

__all__ = ["CONFIGS", "AudioConfig", "DVectorConfig", "ExtractorConfig", "FbankConfig", "Flag",
           "MFCCConfig", "PitchConfig", "Wav2Vec2Config", "XVectorConfig", "bad_parameter",
           "flag", "register_config", "show_default"]
