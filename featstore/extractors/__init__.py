"""Feature extractors, by name (``--features mfcc,pitch,fbank,wav2vec2,audio``)."""

from __future__ import annotations

import importlib

from featstore.errors import UserError
from featstore.extractors.base import EXTRACTORS, Extractor, ExtractorOptions, FeatureSpec

# Modules are imported on demand so an MFCC-only build never pays for importing transformers.
_MODULES = {"mfcc": "featstore.extractors.mfcc", "pitch": "featstore.extractors.pitch",
            "fbank": "featstore.extractors.fbank", "wav2vec2": "featstore.extractors.wav2vec2",
            "dvector": "featstore.extractors.dvector",
            "audio": "featstore.extractors.audio"}
NAMES = tuple(_MODULES)


def make_extractor(name: str, options: ExtractorOptions) -> Extractor:
    if name not in _MODULES:
        raise UserError(f"unknown feature '{name}'; choose from {', '.join(NAMES)}")
    importlib.import_module(_MODULES[name])
    try:
        return EXTRACTORS[name](options)
    except ValueError as exc:
        raise UserError(f"bad {name} parameter: {exc}") from None


__all__ = ["NAMES", "Extractor", "ExtractorOptions", "FeatureSpec", "make_extractor"]
