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

import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import cache

import numpy as np
import torch
import torchaudio.functional as AF

from featstore.extractors.base import (
    ExtractorConfig,
    ExtractorOptions,
    FeatureSpec,
    register,
    register_config,
)
from featstore.machine import cores

TOP_DB = 80.0
AMIN = 1e-10
BLOCK_BYTES = 4 << 20  # a CPU block's working set: ~ one core's share of a typical L3
MEL_BANDS = 8  # groups of neighbouring mel filters (more bands: less zero work, more overlap)


def mel_bands(fbank: torch.Tensor, groups: int) -> list[tuple[int, int, int, int, torch.Tensor]]:
    """The filterbank [bins, mels] as ``groups`` blocks of neighbouring filters: (first mel,
    end mel, first bin, end bin, the block's weights), covering every nonzero weight."""
    n_mels = fbank.shape[1]
    out = []
    for g in range(min(groups, n_mels)):
        m0, m1 = g * n_mels // groups, (g + 1) * n_mels // groups
        bins = (fbank[:, m0:m1] != 0).any(1).nonzero().flatten()
        lo, hi = (int(bins[0]), int(bins[-1]) + 1) if len(bins) else (0, 1)
        out.append((m0, m1, lo, hi, fbank[lo:hi, m0:m1].contiguous()))
    return out


@register_config
@dataclass(frozen=True)
class MFCCConfig(ExtractorConfig):
    feature_type = "mfcc"
    OPTIONS = {"n_mfcc": "n_mfcc", "n_fft": "n_fft", "hop_length": "hop_length",
               "n_mels": "n_mels", "sample_rate": "sample_rate"}
    n_mfcc: int = 13
    n_fft: int = 2048
    hop_length: int = 512
    n_mels: int = 128
    sample_rate: int = 16000


@cache
def _pool(threads: int) -> ThreadPoolExecutor:
    """CPU block workers, shared by every MFCC extractor; each uses one torch thread (the
    setting is per thread) so blocks, not ops, run in parallel."""
    return ThreadPoolExecutor(threads, thread_name_prefix="mfcc",
                              initializer=torch.set_num_threads, initargs=(1,))


class MFCCExtractor:
    name = "mfcc"

    def __init__(self, options: ExtractorOptions):
        o = options
        for key in ("n_mfcc", "n_fft", "hop_length", "n_mels"):
            if getattr(o, key) <= 0:
                raise ValueError(f"{key} must be positive")
        if o.n_mfcc > o.n_mels:
            raise ValueError(f"n_mfcc ({o.n_mfcc}) cannot exceed n_mels ({o.n_mels})")
        self.options = o
        self.device = torch.device(o.device)
        self.window = torch.hann_window(o.n_fft, device=o.device)  # periodic, as librosa
        fbank = AF.melscale_fbanks(  # [n_freqs, n_mels]
            o.n_fft // 2 + 1, 0.0, o.sample_rate / 2, o.n_mels, o.sample_rate,
            norm="slaney", mel_scale="slaney",
        ).to(o.device)
        self.bands = mel_bands(fbank, MEL_BANDS)
        self.dct = AF.create_dct(o.n_mfcc, o.n_mels, norm="ortho").to(o.device)  # [n_mels, n_mfcc]
        self.frames = 1 + o.chunk_samples // o.hop_length
        bins = o.n_fft // 2 + 1
        chunk_bytes = self.frames * (o.n_fft * 4 + bins * 16) + (o.chunk_samples + o.n_fft) * 4
        self.block = max(1, BLOCK_BYTES // chunk_bytes)
        self.threads = cores()
        self._local = threading.local()  # each block worker's buffers

    @property
    def config(self) -> MFCCConfig:
        o = self.options
        return MFCCConfig(o.n_mfcc, o.n_fft, o.hop_length, o.n_mels, o.sample_rate)

    def params(self) -> dict:
        o = self.options
        return {
            "n_mfcc": o.n_mfcc, "n_fft": o.n_fft, "hop_length": o.hop_length, "n_mels": o.n_mels,
            "sample_rate": o.sample_rate, "window": "hann", "center": True, "pad_mode": "constant",
            "mel_scale": "slaney", "mel_norm": "slaney", "power": 2.0, "top_db": TOP_DB,
            "amin": AMIN, "ref": 1.0, "top_db_scope": "per chunk", "dct": "II, ortho",
            "layout": "frames x coefficients",
        }

    def specs(self) -> list[FeatureSpec]:
        return [FeatureSpec("mfcc", (self.frames, self.options.n_mfcc), "float32", self.params())]

    def extract(self, batch: torch.Tensor, n_samples: torch.Tensor) -> dict[str, np.ndarray]:
        o = self.options
        batch = batch.to(self.device, torch.float32)  # no autograd anywhere: plain tensors
        if self.device.type != "cpu":
            out = torch.empty((len(batch), self.frames, o.n_mfcc), device=self.device)
            self._compute(batch, out)
            return {"mfcc": out.cpu().numpy()}
        out = torch.empty((len(batch), self.frames, o.n_mfcc))
        starts = range(0, len(batch), self.block)
        if len(starts) == 1:
            self._compute(batch, out)
        else:
            spans = [slice(i, i + self.block) for i in starts]
            list(_pool(self.threads).map(lambda s: self._compute(batch[s], out[s]), spans))
        return {"mfcc": out.numpy()}

    def _buffers(self, n: int) -> dict[str, torch.Tensor]:
        """This thread's work tensors for ``n`` chunks, grown when needed and then reused, so a
        block never pays for fresh pages. The padding columns are zeroed once and never written."""
        o = self.options
        bufs = getattr(self._local, "bufs", None)
        if bufs is None or len(bufs["padded"]) < n:
            bins, frames, dev = o.n_fft // 2 + 1, self.frames, self.device
            bufs = self._local.bufs = {
                "padded": torch.zeros((n, o.chunk_samples + o.n_fft), device=dev),
                "frames": torch.empty((n, frames, o.n_fft), device=dev),
                "spec": torch.empty((n, frames, bins), dtype=torch.complex64, device=dev),
                "power": torch.empty((n, frames, bins), device=dev),
                "mel": torch.empty((n, frames, o.n_mels), device=dev),
            }
        return {k: v[:n] for k, v in bufs.items()}

    def _compute(self, x: torch.Tensor, out: torch.Tensor) -> None:
        """MFCCs of chunks ``x`` [n, samples] into ``out`` [n, frames, n_mfcc]."""
        o, b = self.options, self._buffers(len(x))
        half = o.n_fft // 2
        b["padded"][:, half : half + x.shape[1]] = x  # centred frames, zero padding
        frames = b["padded"].unfold(-1, o.n_fft, o.hop_length)  # a view: [n, frames, n_fft]
        torch.mul(frames, self.window, out=b["frames"])
        spec = torch.fft.rfft(b["frames"], out=b["spec"])
        parts = torch.view_as_real(spec).square_()  # [n, frames, bins, 2]: re², im² in place
        power = torch.add(parts[..., 0], parts[..., 1], out=b["power"])
        mel = b["mel"]
        for m0, m1, lo, hi, weights in self.bands:
            torch.matmul(power[..., lo:hi], weights, out=mel[..., m0:m1])
        db = mel.clamp_(min=AMIN).log10_().mul_(10.0)  # [n, frames, n_mels]
        floor = db.amax(dim=(-2, -1), keepdim=True) - TOP_DB  # per chunk, not per batch
        torch.maximum(db, floor, out=db)
        torch.matmul(db, self.dct, out=out)


@register("mfcc")
def make_mfcc(options: ExtractorOptions) -> MFCCExtractor:
    return MFCCExtractor(options)
