"""Loading Hugging Face audio-classification checkpoints and feeding them audio chunks.

``transformers`` is imported inside the functions: it is slow to import and only the two
hf-* models need it.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import torch
from torch import nn

from .inputs import audio_to_float
from .params import ModelConfigError

SAMPLE_RATE = 16000
_HINT = (
    "pass a local path to a saved model, or set HF_HOME / HF_HUB_OFFLINE=1 with the model cached"
)


def _load_error(model: str, checkpoint: str, err: Exception) -> ModelConfigError:
    first = (str(err).strip().splitlines() or [""])[0][:200]
    return ModelConfigError(
        f"model {model!r}: cannot load checkpoint {checkpoint!r} "
        f"({type(err).__name__}: {first}); {_HINT}"
    )


def _looks_like_path(checkpoint: str) -> bool:
    # hub ids look like "org/name"; anything absolute / relative / home-based is a path
    return checkpoint.startswith(("/", ".", "~")) or os.path.exists(checkpoint)


def load_config(model: str, checkpoint: str) -> Any:
    """The checkpoint's config; fails fast (before any network retry) on a missing local path,
    and checks the architecture has an audio-classification head."""
    from transformers import AutoConfig
    from transformers.models.auto.modeling_auto import MODEL_FOR_AUDIO_CLASSIFICATION_MAPPING

    if _looks_like_path(checkpoint) and not os.path.isdir(os.path.expanduser(checkpoint)):
        raise ModelConfigError(
            f"model {model!r}: checkpoint directory {checkpoint!r} does not exist; {_HINT}"
        )
    try:
        config = AutoConfig.from_pretrained(os.path.expanduser(checkpoint))
    except (OSError, ValueError, KeyError) as e:
        raise _load_error(model, checkpoint, e) from None
    if type(config) not in MODEL_FOR_AUDIO_CLASSIFICATION_MAPPING:
        raise ModelConfigError(
            f"model {model!r}: checkpoint {checkpoint!r} ({config.model_type}) "
            "has no audio-classification head"
        )
    return config


def load_feature_extractor(checkpoint: str) -> Any | None:
    """The checkpoint's feature extractor, or None (callers then use zero-mean unit-variance)."""
    from transformers import AutoFeatureExtractor

    try:
        fe = AutoFeatureExtractor.from_pretrained(os.path.expanduser(checkpoint))
    except (OSError, ValueError, KeyError):
        return None
    rate = getattr(fe, "sampling_rate", SAMPLE_RATE)
    if rate != SAMPLE_RATE:
        raise ModelConfigError(
            f"checkpoint {checkpoint!r} expects {rate} Hz audio; the chunks are {SAMPLE_RATE} Hz"
        )
    return fe


def load_model(model: str, checkpoint: str, **kwargs: Any) -> nn.Module:
    from transformers import AutoModelForAudioClassification
    from transformers.utils import logging as hf_logging

    # A new classification head is expected when fine-tuning: no "MISSING keys" report, and no
    # progress bar inside bench's own.
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    try:
        # float32 master weights: transformers 5 would otherwise keep the checkpoint's dtype
        return AutoModelForAudioClassification.from_pretrained(
            os.path.expanduser(checkpoint), dtype=torch.float32, **kwargs
        )
    except (OSError, ValueError, KeyError) as e:
        raise _load_error(model, checkpoint, e) from None


class AudioPreparer:
    """numpy audio batch -> model keyword inputs on the device.

    int16 is scaled by 1/32768; then the checkpoint's feature extractor does what it does for
    that checkpoint (per-chunk zero-mean unit-variance when ``do_normalize``, spectrograms
    for spectrogram models); without one, per-chunk zero-mean unit-variance.
    """

    def __init__(self, feature_extractor: Any | None, device: str) -> None:
        self.fe = feature_extractor
        self.device = device

    def describe(self) -> str:
        if self.fe is None:
            return "zero-mean unit-variance per chunk (no feature extractor found)"
        return f"{type(self.fe).__name__}(do_normalize={getattr(self.fe, 'do_normalize', None)})"

    def __call__(self, batch: np.ndarray) -> dict[str, torch.Tensor]:
        x = audio_to_float(batch)
        if self.fe is None:
            x = (x - x.mean(1, keepdims=True)) / np.sqrt(x.var(1, keepdims=True) + 1e-7)
            return {"input_values": torch.from_numpy(x).to(self.device)}
        out = self.fe(x, sampling_rate=SAMPLE_RATE, return_tensors="pt")
        return {k: v.to(self.device) for k, v in out.items()}


def hf_forward(module: nn.Module, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    return module(**batch).logits
