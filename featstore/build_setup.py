"""What a build is given and how it runs, shared by the local build (featstore/build.py) and
the Ray workers (featstore/build_ray.py): the build's configuration, loading its extractors, and
the run settings (batch size, decode threads) chosen from the machine when not given."""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from featstore import machine
from featstore.errors import UserError
from featstore.extractors import ExtractContext, config_kind, make_extractor
from featstore.extractors.configs import ExtractorConfig
from featstore.pipeline import RunSettings
from featstore.sources.base import AudioInput, Utterance


@dataclass
class BuildConfig:
    out: Path
    source: str | None = None
    subsets: list[str] | None = None
    speakers: int | None = None
    seed: int = 0
    features: list[str] = field(default_factory=lambda: ["mfcc"])
    chunk_seconds: float = 2.0
    batch_size: int | None = None
    workers: int | None = None  # decode threads (None: machine.decode_threads)
    shard_size: int = 256  # utterances per shard
    resume: bool = False
    overwrite: bool = False
    quiet: bool = False
    cache_dir: str | None = None
    device: str = "cpu"  # or cuda, auto
    # kind -> config (featstore.extractors.config_kind); a kind not here: its defaults
    configs: dict[str, ExtractorConfig] = field(default_factory=dict)
    optional: tuple[str, ...] = ()  # features left out, with a notice, if they cannot load
    source_options: dict[str, str] = field(default_factory=dict)  # hf column mapping
    ray: str | None = None  # Ray address ("auto"): shards built on a Ray cluster


def load_extractors(features: list[str], configs: Mapping[str, ExtractorConfig],
                    context: ExtractContext, optional: tuple[str, ...] = ()) -> list:
    """The extractors of ``features``, each from the config of its kind in ``configs`` (else
    the kind's defaults) and ``context``. One named in ``optional`` that cannot be loaded (no
    network for a hub model, say) is left out with one line saying why and how to fix it; any
    other failure stops the build."""
    extractors = []
    for name in dict.fromkeys(features):
        try:
            extractors.append(make_extractor(name, configs.get(config_kind(name)), context))
        except UserError as exc:
            if name not in optional:
                raise
            print(f"featstore build: {name} features skipped, building the others: {exc} "
                  "(naming --features makes this an error)", file=sys.stderr)
    if not extractors:
        raise UserError("no feature could be extracted")
    return extractors


def run_settings(cfg: BuildConfig, context: ExtractContext, extractors: list,
                 reader: Callable[[Utterance], AudioInput] | None = None) -> RunSettings:
    """The batch size and decode threads given, else chosen from the machine; ``reader``: the
    corpus's audio reader (None: files by path)."""
    device = context.device
    return RunSettings(reader=reader,
        device=device, sample_rate=context.sample_rate, chunk_samples=context.chunk_samples,
        batch_size=cfg.batch_size or machine.default_batch_size(extractors, device),
        decode_threads=cfg.workers if cfg.workers is not None else machine.decode_threads(device),
    )
