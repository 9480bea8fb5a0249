"""Batched MFCC with torch, numerically matching ``librosa.feature.mfcc``.

librosa: power mel spectrogram (Slaney mel scale and norm, centred frames, zero padding),
``power_to_db(ref=1, amin=1e-10, top_db=80)``, DCT-II (ortho). torchaudio's ``MFCC`` applies
its ``top_db`` floor across the whole batch, so a chunk's features would depend on its batch
mates; we apply the floor per chunk instead.

How it is computed (each step measured in the README's "Speed" section):
* the STFT is written out: frame views of the zero-padded chunk times the window, one
  ``torch.fft.rfft``, power as re² + im² (squared in place, then one add; no complex
  magnitude);
* the mel projection skips the filterbank's zeros: filters are grouped into a few bands of
  neighbouring filters, each multiplied with only the FFT bins it covers (the same sums as the
  dense product, a third of the work);
* on CPU, chunks go through in cache-sized blocks (a few chunks: the frame and spectrum
  tensors of a whole batch are hundreds of MB, so each step would stream them from memory),
  blocks run on a pool of threads, one per core, each with one torch thread and its own
  reused buffers (torch's own threads would synchronise on every small op); on CUDA a batch
  is one block.
"""

from __future__ import annotations

import numpy as np
import torch
import torchaudio.functional as AF

from featstore.extractors.base import ExtractContext, FeatureSpec, register
from featstore.extractors.blocks import (
    MEL_BANDS,
    ThreadBuffers,
    banded_mel,
    block_rows,
    mel_bands,
    power_spectrum,
    run_blocks,
)
from featstore.extractors.configs import MFCCConfig

TOP_DB = 80.0
AMIN = 1e-10
__all__ = ["AMIN", "MEL_BANDS", "TOP_DB", "MFCCConfig", "MFCCExtractor", "mel_bands"]


class MFCCExtractor:
    name = "mfcc"

    def __init__(self, config: MFCCConfig, context: ExtractContext) -> None:
        o = self.config = config
        self.chunk_samples = context.chunk_samples
        self.device = torch.device(context.device)
        self.window = torch.hann_window(o.n_fft, device=self.device)  # periodic, as librosa
        fbank = AF.melscale_fbanks(  # [n_freqs, n_mels]
            o.n_fft // 2 + 1, 0.0, o.sample_rate / 2, o.n_mels, o.sample_rate,
            norm="slaney", mel_scale="slaney",
        ).to(self.device)
        self.bands = mel_bands(fbank, MEL_BANDS)
        self.dct = AF.create_dct(o.n_mfcc, o.n_mels, norm="ortho").to(self.device)  # [mels, mfcc]
        self.frames = 1 + self.chunk_samples // o.hop_length
        bins = o.n_fft // 2 + 1
        chunk_bytes = (self.frames * (o.n_fft * 4 + bins * 16)
                       + (self.chunk_samples + o.n_fft) * 4)
        self.block = block_rows(chunk_bytes)
        self._bufs = ThreadBuffers(self._new_buffers)  # each block worker's own

    def params(self) -> dict:
        o = self.config
        return {
            "n_mfcc": o.n_mfcc, "n_fft": o.n_fft, "hop_length": o.hop_length, "n_mels": o.n_mels,
            "frame_shift": o.hop_length,
            "sample_rate": o.sample_rate, "window": "hann", "center": True, "pad_mode": "constant",
            "mel_scale": "slaney", "mel_norm": "slaney", "power": 2.0, "top_db": TOP_DB,
            "amin": AMIN, "ref": 1.0, "top_db_scope": "per chunk", "dct": "II, ortho",
            "layout": "frames x coefficients",
        }

    def specs(self) -> list[FeatureSpec]:
        return [FeatureSpec("mfcc", (self.frames, self.config.n_mfcc), "float32", self.params())]

    def extract(self, batch: torch.Tensor, n_samples: torch.Tensor) -> dict[str, np.ndarray]:
        o = self.config
        batch = batch.to(self.device, torch.float32)  # no autograd anywhere: plain tensors
        out = torch.empty((len(batch), self.frames, o.n_mfcc), device=self.device)
        run_blocks(lambda rows: self._compute(batch[rows], out[rows]), len(batch), self.block,
                   self.device)
        return {"mfcc": out.cpu().numpy()}

    def _new_buffers(self, n: int) -> dict[str, torch.Tensor]:
        """Work tensors for ``n`` chunks; the padding columns are zeroed once, never written."""
        o = self.config
        bins, frames, dev = o.n_fft // 2 + 1, self.frames, self.device
        return {
            "padded": torch.zeros((n, self.chunk_samples + o.n_fft), device=dev),
            "frames": torch.empty((n, frames, o.n_fft), device=dev),
            "power": torch.empty((n, frames, bins), device=dev),
            "mel": torch.empty((n, frames, o.n_mels), device=dev),
        }

    def _compute(self, x: torch.Tensor, out: torch.Tensor) -> None:
        """MFCCs of chunks ``x`` [n, samples] into ``out`` [n, frames, n_mfcc]."""
        o, b = self.config, self._bufs.get(len(x))
        half = o.n_fft // 2
        b["padded"][:, half : half + x.shape[1]] = x  # centred frames, zero padding
        frames = b["padded"].unfold(-1, o.n_fft, o.hop_length)  # a view: [n, frames, n_fft]
        torch.mul(frames, self.window, out=b["frames"])
        power = power_spectrum(b["frames"], b["power"])
        db = banded_mel(power, self.bands, b["mel"])
        db = db.clamp_(min=AMIN).log10_().mul_(10.0)  # [n, frames, n_mels]
        floor = db.amax(dim=(-2, -1), keepdim=True) - TOP_DB  # per chunk, not per batch
        torch.maximum(db, floor, out=db)
        torch.matmul(db, self.dct, out=out)


@register("mfcc")
def make_mfcc(config: MFCCConfig, context: ExtractContext) -> MFCCExtractor:
    return MFCCExtractor(config, context)
