"""The chunk waveforms themselves, as int16 PCM, so models can be fine-tuned from the store."""

from __future__ import annotations

import numpy as np
import torch

from featstore.extractors.base import ExtractorOptions, FeatureSpec, register

SCALE = 32768  # as 16-bit decoding (k / 32768): 16-bit audio is kept exactly; +1.0 -> 32767


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
        pcm = torch.round(batch.float() * SCALE).clamp_(-SCALE, SCALE - 1).to(torch.int16)
        return {"audio": pcm.cpu().numpy()}


@register("audio")
def make_audio(options: ExtractorOptions) -> AudioExtractor:
    return AudioExtractor(options)
