"""x-vectors: the speaker embedding of any transformers ``*ForXVector`` checkpoint
(``--features xvector=microsoft/wavlm-base-plus-sv``), one per chunk.

The checkpoint's own feature extractor settings normalise each chunk over its real samples (as
the wav2vec2 extractor does). A checkpoint whose feature encoder uses layer norm gets an
attention mask for a zero-padded last chunk, so its statistics pooling sees real frames only;
a group-norm one runs unmasked, as it was trained (featstore.extractors.upstream).
"""

from __future__ import annotations

import numpy as np
import torch

from featstore.errors import UserError
from featstore.extractors.base import ExtractContext, FeatureSpec, register
from featstore.extractors.configs import XVectorConfig
from featstore.extractors.upstream import uses_attention_mask
from featstore.extractors.wav2vec2 import (
    COMPUTE_DTYPES,
    Wav2Vec2Extractor,
    _looks_local,
    _one_line,
    load_fix,
    preprocessing,
    recorded_model,
    resolve_compute_dtype,
)
from featstore.machine import cpu_threads


def load_xvector(model_id: str, name: str) -> tuple[torch.nn.Module, object, str | None]:
    import os

    from transformers import AutoFeatureExtractor, AutoModelForAudioXVector

    path = os.path.expanduser(model_id)
    if _looks_local(model_id) and not os.path.isdir(path):
        raise UserError(f"{name} model directory {model_id!r} does not exist; {load_fix(name)}")
    try:
        model = AutoModelForAudioXVector.from_pretrained(path, dtype=torch.float32)
        feature_extractor = AutoFeatureExtractor.from_pretrained(path)
    except (OSError, ValueError) as exc:  # not found, offline, no XVector head for this type
        raise UserError(f"cannot load {name} model {model_id!r} as a *ForXVector checkpoint: "
                        f"{load_fix(name)} ({_one_line(exc)})") from exc
    return model, feature_extractor, getattr(model.config, "_commit_hash", None)


class XVectorExtractor:
    def __init__(self, config: XVectorConfig, context: ExtractContext,
                 name: str = "xvector") -> None:
        self.name, self.config = name, config
        self.device = torch.device(context.device)
        self.compute_dtype = resolve_compute_dtype(config.compute_dtype, self.device)
        model, fe, self.revision = load_xvector(config.model, name)
        self.normalize, self.padding_value = preprocessing(fe, config.model, context.sample_rate)
        self.model = model.eval().to(self.device)
        self.masked = uses_attention_mask(model.config)
        self.dim = int(model.config.xvector_output_dim)
        self.model_name, self.local_path = recorded_model(config.model)

    def num_threads(self) -> int | None:
        return cpu_threads(self.device.type)

    def params(self) -> dict:
        return {"model": self.model_name, "local_path": self.local_path,
                "revision": self.revision, "model_type": self.model.config.model_type,
                "dim": self.dim, "attention_mask": self.masked, "normalize": self.normalize,
                "compute_dtype": self.compute_dtype, "dtype": "float32"}

    def specs(self) -> list[FeatureSpec]:
        return [FeatureSpec(self.name, (self.dim,), "float32", self.params())]

    normalise = Wav2Vec2Extractor.normalise  # the same per-chunk normalisation

    @torch.inference_mode()
    def extract(self, batch: torch.Tensor, n_samples: torch.Tensor) -> dict[str, np.ndarray]:
        if batch.shape[0] == 0:
            return {self.name: np.zeros((0, self.dim), np.float32)}
        x = batch.to(self.device, torch.float32)
        n = n_samples.to(self.device).clamp(1, x.shape[1]).to(torch.float32)
        if self.normalize:
            x = self.normalise(x, n)
        kw = {}
        if self.masked:
            kw["attention_mask"] = (torch.arange(x.shape[1], device=x.device)[None, :]
                                    < n[:, None]).long()
        compute = COMPUTE_DTYPES[self.compute_dtype]
        with torch.autocast(self.device.type, dtype=compute, enabled=compute != torch.float32):
            emb = self.model(x, **kw).embeddings
        return {self.name: emb.float().cpu().numpy()}


@register("xvector")
def make_xvector(config: XVectorConfig, context: ExtractContext,
                 name: str = "xvector") -> XVectorExtractor:
    return XVectorExtractor(config, context, name)
