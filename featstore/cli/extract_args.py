"""The extractor flags, shared by ``featstore build`` and ``featstore add``, generated from the
config fields' ``flag`` metadata (featstore.extractors.configs): a field given a flag there
reaches both commands. Configs that share a flag (``--compute-dtype``: wav2vec2, upstreams and
xvector) get one, which must agree on its default. No torch is imported here."""

from __future__ import annotations

import argparse
from dataclasses import MISSING, Field

from featstore.extractors import KINDS, config_kind
from featstore.extractors.configs import CONFIGS, ExtractorConfig, Flag, bad_parameter
from featstore.extractors.configs import show_default as show


def extractor_flags() -> dict[str, tuple[Flag, object]]:
    """flag name -> (its Flag, its default), every config's, in ``KINDS`` order."""
    out: dict[str, tuple[Flag, object]] = {}
    for kind in KINDS:
        for f in CONFIGS[kind].flag_fields():
            spec, default = f.metadata["flag"], _default(f)
            if spec.name in out and out[spec.name] != (spec, default):
                raise TypeError(f"{kind}.{f.name}: {spec.name} is declared with another help "
                                f"text or default by another config")
            out[spec.name] = (spec, default)
    return out


def _default(f: Field) -> object:
    return f.default if f.default_factory is MISSING else f.default_factory()


def add_extractor_arguments(group: argparse._ArgumentGroup) -> None:
    for spec, default in extractor_flags().values():
        text = spec.help.format(default=spec.shown or show(default))
        group.add_argument(spec.name, dest=spec.dest, type=spec.type, default=default,
                           choices=spec.choices, help=text)


def extractor_configs(args: argparse.Namespace, entries: list[str]
                      ) -> dict[str, ExtractorConfig]:
    """kind -> config from the parsed flags, for the kinds of the ``--features`` ``entries``
    only (another extractor's flags are neither used nor checked); a bad value is a
    UserError naming the feature."""
    configs = {}
    for kind in dict.fromkeys(config_kind(e) for e in entries):
        if kind not in CONFIGS:
            continue  # an unknown feature: make_extractor says so, naming the choices
        cls = CONFIGS[kind]
        with bad_parameter(kind):
            configs[kind] = cls(**{f.name: getattr(args, f.metadata["flag"].dest)
                                   for f in cls.flag_fields()})
    return configs
