"""The chunk waveforms themselves, as int16 PCM, so models can be fine-tuned from the store."""

from __future__ import annotations

import numpy as np
import torch

from featstore.extractors.base import ExtractorOptions, FeatureSpec, register

SCALE = 32767  # symmetric: -1.0 -> -32767, so +1.0 and -1.0 round-trip alike


class AudioExtractor:
    name = "audio"

    def __init__(self, options: ExtractorOptions) -> None:
        self.options = options

    def params(self) -> dict:
        return {"sample_rate": self.options.sample_rate, "dtype": "int16", "scale": SCALE}

    def specs(self) -> list[FeatureSpec]:
        return [FeatureSpec("audio", (self.options.chunk_samples,), "int16", self.params())]

    @torch.inference_mode()
    def extract(self, batch: torch.Tensor, n_samples: torch.Tensor) -> dict[str, np.ndarray]:
        # A padded chunk is already zeros past n_samples, so it is stored as is.
        pcm = torch.round(batch.float().clamp(-1.0, 1.0) * SCALE).to(torch.int16)
        return {"audio": pcm.cpu().numpy()}


@register("audio")
def make_audio(options: ExtractorOptions) -> AudioExtractor:
    return AudioExtractor(options)
