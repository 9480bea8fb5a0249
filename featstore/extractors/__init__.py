"""Feature extractors, by name (``--features mfcc,pitch,fbank,wav2vec2,dvector,audio``), plus
``NAME=MODEL`` entries: ``xvector=MODEL`` (a transformers ``*ForXVector`` checkpoint) and any
other NAME for a self-supervised upstream stored under that name (``hubert=PATH_OR_ID``).

An entry's extractor is built from the config of its kind (``config_kind``: the name, or
wav2vec2 / xvector for ``NAME=MODEL``) and the build's ``ExtractContext``."""

from __future__ import annotations

import dataclasses
import importlib
from collections.abc import Mapping

from featstore.errors import UserError
from featstore.extractors.base import EXTRACTORS, ExtractContext, Extractor, FeatureSpec
from featstore.extractors.configs import CONFIGS, ExtractorConfig, bad_parameter
from featstore.extractors.upstream import split_entry

# Modules are imported on demand so an MFCC-only build never pays for importing transformers.
_MODULES = {"mfcc": "featstore.extractors.mfcc", "pitch": "featstore.extractors.pitch",
            "fbank": "featstore.extractors.fbank", "wav2vec2": "featstore.extractors.wav2vec2",
            "dvector": "featstore.extractors.dvector",
            "audio": "featstore.extractors.audio", "xvector": "featstore.extractors.xvector"}
NAMES = tuple(n for n in _MODULES if n != "xvector")  # features named alone
KINDS = tuple(_MODULES)  # config kinds, in the order their flags are listed
ENTRY_HELP = "NAME=MODEL (an upstream stored as NAME, e.g. hubert=PATH_OR_ID), xvector=MODEL"


def config_kind(entry: str) -> str:
    """The config kind of a ``--features`` entry: its name, or for ``NAME=MODEL`` xvector or
    wav2vec2 (every other upstream)."""
    name, model = split_entry(entry)
    if model is None:
        return name
    return "xvector" if name == "xvector" else "wav2vec2"


def entry_configs(entries: list[str], configs: Mapping[str, ExtractorConfig]
                  ) -> dict[str, ExtractorConfig]:
    """kind -> config for every known kind of ``entries``: the one in ``configs``, else the
    kind's defaults."""
    kinds = dict.fromkeys(config_kind(e) for e in entries)
    return {k: configs[k] if k in configs else CONFIGS[k]() for k in kinds if k in CONFIGS}


def make_extractor(entry: str, config: ExtractorConfig | None = None,
                   context: ExtractContext | None = None) -> Extractor:
    """The extractor of one ``--features`` entry (a name, or ``NAME=MODEL``) from the config of
    its kind (None: the defaults; a ``NAME=MODEL`` entry's MODEL replaces its ``model``) and
    ``context`` (None: the defaults)."""
    name, model = split_entry(entry)
    kind = config_kind(entry)
    if model is None and name not in NAMES:
        raise UserError(f"unknown feature '{name}'; choose from {', '.join(NAMES)} or "
                        f"{ENTRY_HELP}")
    cls = CONFIGS[kind]
    config = cls() if config is None else config
    if not isinstance(config, cls):
        raise TypeError(f"{entry}: expected a {cls.__name__}, got {type(config).__name__}")
    context = context or ExtractContext()
    with bad_parameter(name):  # the store's rate, checked against the other settings
        if any(f.name == "sample_rate" for f in dataclasses.fields(config)):
            config = dataclasses.replace(config, sample_rate=context.sample_rate)
    importlib.import_module(_MODULES[kind])
    if model is not None:
        config = dataclasses.replace(config, model=model)
        extractor = EXTRACTORS["xvector" if kind == "xvector" else "upstream"](config, context,
                                                                                name)
        extractor.entry = entry  # what rebuilds it elsewhere (Ray workers: plan "entries")
        return extractor
    with bad_parameter(name):
        return EXTRACTORS[name](config, context)


__all__ = ["ENTRY_HELP", "KINDS", "NAMES", "ExtractContext", "Extractor", "FeatureSpec",
           "config_kind", "entry_configs", "make_extractor"]
