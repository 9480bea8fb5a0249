"""Batched MFCC with torchaudio, numerically matching ``librosa.feature.mfcc``.

librosa: power mel spectrogram (Slaney mel scale and norm, centred frames, zero padding),
``power_to_db(ref=1, amin=1e-10, top_db=80)``, DCT-II (ortho). torchaudio's ``MFCC`` applies
its ``top_db`` floor across the whole batch, so a chunk's features would depend on its batch
mates; we apply the floor per chunk instead. The STFT is written out (frame views, one rfft,
|X|^2 from real and imaginary parts) because torch.stft + abs().pow(2) costs ~2x more on CPU.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
import torchaudio.functional as AF

from featstore.extractors.base import ExtractorOptions, FeatureSpec, register

TOP_DB = 80.0
AMIN = 1e-10


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
        self.window = torch.hann_window(o.n_fft, device=o.device)  # periodic, as librosa
        self.fbank = AF.melscale_fbanks(  # [n_freqs, n_mels]
            o.n_fft // 2 + 1, 0.0, o.sample_rate / 2, o.n_mels, o.sample_rate,
            norm="slaney", mel_scale="slaney",
        ).to(o.device)
        self.dct = AF.create_dct(o.n_mfcc, o.n_mels, norm="ortho").to(o.device)  # [n_mels, n_mfcc]
        self.frames = 1 + o.chunk_samples // o.hop_length

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
        padded = F.pad(batch, (o.n_fft // 2, o.n_fft // 2))  # centred frames, zero padding
        frames = padded.unfold(-1, o.n_fft, o.hop_length) * self.window  # [B, frames, n_fft]
        spec = torch.fft.rfft(frames)
        power = spec.real.square() + spec.imag.square()
        db = 10.0 * torch.log10(torch.clamp(power @ self.fbank, min=AMIN))  # [B, frames, n_mels]
        floor = db.amax(dim=(-2, -1), keepdim=True) - TOP_DB  # per chunk, not per batch
        db = torch.maximum(db, floor)
        mfcc = db @ self.dct  # [B, frames, n_mfcc]
        return {"mfcc": mfcc.float().cpu().numpy()}


@register("mfcc")
def make_mfcc(options: ExtractorOptions) -> MFCCExtractor:
    return MFCCExtractor(options)
