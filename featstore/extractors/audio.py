"""The chunk waveforms themselves, as int16 PCM, so models can be fine-tuned from the store.

On CPU in cache-sized blocks on the shared pool (``blocks``), each scaled, rounded and clamped
in one pass of a numba kernel (``kernels.pcm16``); on CUDA as torch ops in a reused buffer."""

from __future__ import annotations

import numpy as np
import torch

from featstore.extractors.base import ExtractContext, FeatureSpec, register
from featstore.extractors.blocks import ThreadBuffers, block_rows, cpu_kernels, run_blocks
from featstore.extractors.configs import AudioConfig
from featstore.pcm import PCM_MAX, PCM_MIN, PCM_SCALE


class AudioExtractor:
    name = "audio"

    def __init__(self, config: AudioConfig, context: ExtractContext,
                 backend: str | None = None) -> None:
        """``backend``: "numba" (the CPU's default) or "torch" (CUDA's); the same values."""
        self.config, self.chunk_samples = config, context.chunk_samples
        self.device = torch.device(context.device)
        self.kernels = cpu_kernels(self.device, backend)
        self.block = block_rows(self.chunk_samples * 6)
        self._bufs = ThreadBuffers(lambda n: {"x": torch.empty((n, self.chunk_samples),
                                                               device=self.device)})

    def params(self) -> dict:
        return {"sample_rate": self.config.sample_rate, "dtype": "int16", "scale": PCM_SCALE}

    def specs(self) -> list[FeatureSpec]:
        return [FeatureSpec("audio", (self.chunk_samples,), "int16", self.params())]

    def extract(self, batch: torch.Tensor, n_samples: torch.Tensor) -> dict[str, np.ndarray]:
        # A padded chunk is already zeros past n_samples, so it is stored as is. The inverse of
        # decoding (k / PCM_SCALE): a 16-bit file's samples are stored exactly; +1.0 clips.
        batch = batch.to(self.device, torch.float32)
        out = torch.empty(batch.shape, dtype=torch.int16, device=self.device)

        def rows(r: slice) -> None:
            if self.kernels is not None:
                self.kernels.pcm16(batch[r].numpy(), PCM_SCALE, PCM_MIN, PCM_MAX, out[r].numpy())
                return
            x = self._bufs.get(len(batch[r]))["x"][:, : batch.shape[1]]
            torch.mul(batch[r], PCM_SCALE, out=x).round_().clamp_(PCM_MIN, PCM_MAX)
            out[r] = x

        run_blocks(rows, len(batch), self.block, self.device)
        return {"audio": out.cpu().numpy()}


@register("audio")
def make_audio(config: AudioConfig, context: ExtractContext) -> AudioExtractor:
    return AudioExtractor(config, context)
