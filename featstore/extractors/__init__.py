"""Feature extractors, by name (``--features mfcc,pitch,fbank,wav2vec2,dvector,audio``), plus
``NAME=MODEL`` entries: ``xvector=MODEL`` (a transformers ``*ForXVector`` checkpoint) and any
other NAME for a self-supervised upstream stored under that name (``hubert=PATH_OR_ID``)."""

from __future__ import annotations

import dataclasses
import importlib

from featstore.errors import UserError
from featstore.extractors.base import EXTRACTORS, Extractor, ExtractorOptions, FeatureSpec
from featstore.extractors.upstream import split_entry

# Modules are imported on demand so an MFCC-only build never pays for importing transformers.
_MODULES = {"mfcc": "featstore.extractors.mfcc", "pitch": "featstore.extractors.pitch",
            "fbank": "featstore.extractors.fbank", "wav2vec2": "featstore.extractors.wav2vec2",
            "dvector": "featstore.extractors.dvector",
            "audio": "featstore.extractors.audio"}
NAMES = tuple(_MODULES)
ENTRY_HELP = "NAME=MODEL (an upstream stored as NAME, e.g. hubert=PATH_OR_ID), xvector=MODEL"


def make_extractor(entry: str, options: ExtractorOptions) -> Extractor:
    """The extractor of one ``--features`` entry: a name, or ``NAME=MODEL``."""
    name, model = split_entry(entry)
    if model is not None:
        options = dataclasses.replace(options, model=model)
        module = "featstore.extractors.xvector" if name == "xvector" else _MODULES["wav2vec2"]
        importlib.import_module(module)
        factory = EXTRACTORS["xvector" if name == "xvector" else "upstream"]
        extractor = factory(options, name)
        extractor.entry = entry  # what rebuilds it elsewhere (Ray workers: plan "entries")
        return extractor
    if name not in _MODULES:
        raise UserError(f"unknown feature '{name}'; choose from {', '.join(NAMES)} or "
                        f"{ENTRY_HELP}")
    importlib.import_module(_MODULES[name])
    try:
        return EXTRACTORS[name](options)
    except ValueError as exc:
        raise UserError(f"bad {name} parameter: {exc}") from None


__all__ = ["ENTRY_HELP", "NAMES", "Extractor", "ExtractorOptions", "FeatureSpec", "make_extractor"]
