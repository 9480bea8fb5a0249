"""Featurise new audio the way a store was built: ``Store.extractor(name)`` rebuilds a feature
group's extractor from the parameters the index recorded (its config's ``from_dict``) and cuts a
waveform into the store's chunks, so a model benchmarked on the store can be applied to new
recordings with exactly the rows it was trained on."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from featstore import audio
from featstore.errors import UserError
from featstore.extractors import NAMES, ExtractContext, make_extractor
from featstore.extractors.configs import CONFIGS, ExtractorConfig


def config_type(name: str) -> type[ExtractorConfig]:
    """The config dataclass of extractor ``name`` (a ``--features`` name, or xvector)."""
    if name not in CONFIGS:
        raise UserError(f"unknown extractor '{name}'")
    return CONFIGS[name]


def _rebuild(name: str, params: dict, context: ExtractContext):
    """(config, extractor) of group ``name`` from its recorded ``params``. A ``NAME=MODEL``
    group (hubert, wavlm, ..., xvector) is rebuilt from its ``NAME=MODEL`` entry; an upstream
    keeps the wav2vec2 extractor's config under its own name."""
    kind = "wav2vec2" if name not in CONFIGS and "num_layers_total" in params else name
    config = config_type(kind).from_dict(params)
    entry = name if name in NAMES else f"{name}={config.model}"
    return config, make_extractor(entry, config, context)


@dataclass
class StoreExtractor:
    """An extractor as the store's ``name`` group was made, and the store's chunking."""

    name: str
    config: ExtractorConfig
    extractor: object
    sample_rate: int
    chunk_samples: int
    device: str

    def __call__(self, samples: np.ndarray) -> dict[str, np.ndarray]:
        """The rows of a mono waveform (float32 in [-1, 1) at the store's sample rate): one per
        chunk, cut and padded as the build cuts (feature name -> [chunks, *shape])."""
        samples = np.asarray(samples, dtype=np.float32)
        if samples.ndim != 1:
            raise ValueError(f"expected a mono waveform [samples], got shape {samples.shape}")
        chunks, _, counts = audio.cut(samples, self.chunk_samples)
        x, n = torch.from_numpy(np.ascontiguousarray(chunks)), torch.from_numpy(counts)
        if self.device.startswith("cuda"):
            x, n = x.to(self.device), n.to(self.device)
        return self.extractor.extract(x, n)


def store_extractor(store, name: str, device: str = "cpu") -> StoreExtractor:
    groups = store.index.get("groups", {})
    if name in groups:
        params = groups[name]["params"]
    elif any(f.extractor == name for f in store.features.values() if f.group is None):
        params = store.provenance["params"]["extractors"][name]  # format 1
    else:
        raise KeyError(f"store has no {name} features; it has {sorted(groups) or 'none'}")
    build = store.provenance["params"]
    context = ExtractContext(device, build["sample_rate"], build["chunk_samples"])
    config, extractor = _rebuild(name, params, context)
    return StoreExtractor(name, config, extractor, build["sample_rate"], build["chunk_samples"],
                          device)
