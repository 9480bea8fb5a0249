"""The chunk waveforms themselves, as int16 PCM, so models can be fine-tuned from the store."""

from __future__ import annotations

import numpy as np
import torch

from featstore.extractors.base import ExtractorOptions, FeatureSpec, register
from featstore.pcm import PCM_MAX, PCM_MIN, PCM_SCALE


class AudioExtractor:
    name = "audio"

    def __init__(self, options: ExtractorOptions) -> None:
        self.options = options

    def params(self) -> dict:
        return {"sample_rate": self.options.sample_rate, "dtype": "int16", "scale": PCM_SCALE}

    def specs(self) -> list[FeatureSpec]:
        return [FeatureSpec("audio", (self.options.chunk_samples,), "int16", self.params())]

    @torch.inference_mode()
    def extract(self, batch: torch.Tensor, n_samples: torch.Tensor) -> dict[str, np.ndarray]:
        # A padded chunk is already zeros past n_samples, so it is stored as is. The inverse of
        # decoding (k / PCM_SCALE): a 16-bit file's samples are stored exactly; +1.0 clips.
        pcm = torch.round(batch.float() * PCM_SCALE).clamp(PCM_MIN, PCM_MAX).to(torch.int16)
        return {"audio": pcm.cpu().numpy()}


@register("audio")
def make_audio(options: ExtractorOptions) -> AudioExtractor:
    return AudioExtractor(options)
