"""Batched pitch: F0 and periodicity per 10 ms frame with YIN, on the extraction device.

YIN (de Cheveigne & Kawahara 2002) for a whole batch at once: the difference function d(tau)
of each frame over a fixed integration window (one period of f0_min) from one FFT
cross-correlation plus running energies, the cumulative mean normalised difference d'(tau),
the first trough of d' in the lag range of [f0_min, f0_max] that is below ``threshold`` or
within ``margin`` of the deepest trough, refined by a parabola through d' around it.
Periodicity is 1 - d' at that trough (1: perfectly periodic).

A frame is voiced when d' < ``voicing`` there; an unvoiced frame stores F0 = 0 Hz (so "voiced"
is ``f0 > 0`` for readers). Digital silence gives d' = 1 (periodicity 0), never NaN. Frames are
centred (frame t at sample t * hop, zero padding at the chunk's edges, as librosa's
``center=True``); frames whose centre lies in a chunk's zero padding (past ``n_samples``) are
set to unvoiced with periodicity 0, so padding never yields a pitch. Every operation is per
frame, so a chunk's values do not depend on its batch mates.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
import torch
import torch.nn.functional as F

from featstore.extractors.base import (
    ExtractorConfig,
    ExtractorOptions,
    FeatureSpec,
    register,
    register_config,
)


@register_config
@dataclass(frozen=True)
class PitchConfig(ExtractorConfig):
    feature_type = "pitch"
    OPTIONS = {"sample_rate": "sample_rate", "f0_min": "f0_min", "f0_max": "f0_max",
               "hop_ms": "pitch_hop_ms"}
    sample_rate: int = 16000
    f0_min: float = 50.0
    f0_max: float = 500.0
    hop_ms: float = 10.0
    threshold: float = 0.1  # YIN's absolute threshold: picks the period (librosa's default)
    margin: float = 0.1  # else the first trough within this of the deepest (see yin())
    voicing: float = 0.35  # d' at the chosen trough below this: voiced (see the README)

    def __post_init__(self) -> None:
        if not 0 < self.f0_min < self.f0_max < self.sample_rate / 4:
            raise ValueError(f"need 0 < f0_min < f0_max < sample_rate / 4, got f0_min="
                             f"{self.f0_min}, f0_max={self.f0_max}")
        if self.hop < 1:
            raise ValueError(f"hop_ms must give at least one sample, got {self.hop_ms}")

    @property
    def hop(self) -> int:
        return int(round(self.hop_ms * self.sample_rate / 1000))

    @property
    def min_lag(self) -> int:
        return max(2, math.floor(self.sample_rate / self.f0_max))

    @property
    def max_lag(self) -> int:
        return math.ceil(self.sample_rate / self.f0_min)

    @property
    def window(self) -> int:
        """YIN's integration window: one period of f0_min."""
        return self.max_lag

    @property
    def frame_length(self) -> int:
        # lags up to max_lag + 1 (the parabola's right neighbour) over the window
        return self.window + self.max_lag + 1


def fft_size(n: int) -> int:
    """The smallest 2^a 3^b 5^c >= n: FFT libraries are fast on such sizes, and they are up to
    2x smaller than the next power of two (641 -> 648, not 1024)."""
    best = 1 << (n - 1).bit_length()
    p5 = 1
    while p5 < best:
        p35 = p5
        while p35 < best:
            size = p35 << max(0, (math.ceil(n / p35) - 1).bit_length())
            best = min(best, size)
            p35 *= 3
        p5 *= 5
    return best


def yin(signal: torch.Tensor, cfg: PitchConfig, n_frames: int
        ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(f0 Hz, periodicity, voiced), each [B, n_frames], of frames t * hop of ``signal``
    [B, samples] float32 (padded by the caller); F0 is given for every frame (the best
    candidate), ``voiced`` says whether to believe it."""
    w, lags, hop = cfg.window, cfg.max_lag + 2, cfg.hop
    frames = signal.unfold(-1, cfg.frame_length, hop)[:, :n_frames]  # [B, T, L]
    n_fft = fft_size(cfg.frame_length)  # >= frame length: no circular wrap
    spec = torch.fft.rfft(frames, n_fft)
    head = torch.fft.rfft(frames[..., :w], n_fft)
    corr = torch.fft.irfft(head.conj() * spec, n_fft)[..., :lags]  # sum_j x[j] x[j + tau]
    # energy of x[tau : tau + w] in each frame, from one running sum over the whole signal in
    # float64 (float32 loses the small d(tau) of clean periodic frames to cancellation)
    power = F.pad(signal.double().square().cumsum(-1), (1, 0))
    ends = power[:, w:].unfold(-1, lags, hop)[:, :n_frames]
    energy = (ends - power.unfold(-1, lags, hop)[:, :n_frames]).to(signal.dtype)
    diff = (energy[..., :1] + energy - 2.0 * corr).clamp_min(0.0)
    diff[..., 0] = 0.0
    tau = torch.arange(lags, device=signal.device, dtype=signal.dtype)
    running = diff.cumsum(-1)
    tiny = torch.finfo(signal.dtype).tiny
    cmndf = torch.where(running > tiny, diff * tau / running.clamp_min(tiny),
                        torch.ones_like(diff))
    cmndf[..., 0] = 1.0

    # troughs of d' in [min_lag, max_lag]: the first one below threshold, or within margin of
    # the deepest (YIN's rule is margin 0: the deepest, which favours period multiples)
    lo, hi = cfg.min_lag, cfg.max_lag
    mid = cmndf[..., lo : hi + 1]
    trough = (mid <= cmndf[..., lo - 1 : hi]) & (mid < cmndf[..., lo + 1 : hi + 2])
    deepest = torch.where(trough, mid, torch.full_like(mid, 2.0)).amin(-1, keepdim=True)
    good = trough & (mid <= torch.clamp_min(deepest + cfg.margin, cfg.threshold))
    idx = good.to(torch.uint8).argmax(-1) + lo  # argmax returns the first maximal index
    a, b, c = (cmndf.gather(-1, (idx + k).unsqueeze(-1)).squeeze(-1) for k in (-1, 0, 1))
    curve = a - 2.0 * b + c
    shift = torch.where(curve > 0, 0.5 * (a - c) / curve.clamp_min(tiny), torch.zeros_like(b))
    period = idx.to(signal.dtype) + shift.clamp(-1.0, 1.0)
    f0 = (cfg.sample_rate / period).clamp(cfg.f0_min, cfg.f0_max)
    periodicity = (1.0 - b).clamp(0.0, 1.0)
    voiced = (b < cfg.voicing) & good.any(-1) & (energy[..., 0] > 0)
    return f0, periodicity, voiced


class PitchExtractor:
    name = "pitch"

    def __init__(self, options: ExtractorOptions) -> None:
        self.config = PitchConfig(sample_rate=options.sample_rate, f0_min=options.f0_min,
                                  f0_max=options.f0_max, hop_ms=options.pitch_hop_ms)
        self.options = options
        self.frames = 1 + options.chunk_samples // self.config.hop

    def params(self) -> dict:
        c = self.config
        return {**asdict(c), "hop_length": c.hop, "frame_length": c.frame_length,
                "window": c.window, "method": "yin (cmndf, parabolic refinement)",
                "center": True, "unvoiced_f0": 0.0,
                "layout": "pitch/f0: frames (Hz, 0 = unvoiced); pitch/periodicity: frames"}

    def specs(self) -> list[FeatureSpec]:
        p = self.params()
        return [FeatureSpec("pitch/f0", (self.frames,), "float32", p),
                FeatureSpec("pitch/periodicity", (self.frames,), "float32", p)]

    @torch.inference_mode()
    def compute(self, batch: torch.Tensor, n_samples: torch.Tensor
                ) -> tuple[torch.Tensor, torch.Tensor]:
        """(f0 [B, frames] Hz, 0 where unvoiced; periodicity [B, frames]) on the device."""
        c = self.config
        half = c.frame_length // 2
        padded = F.pad(batch.float(), (half, c.frame_length - half))
        f0, periodicity, voiced = yin(padded, c, self.frames)
        centre = torch.arange(self.frames, device=batch.device) * c.hop
        real = centre < n_samples.to(batch.device).unsqueeze(-1)  # centre in real audio
        return (torch.where(voiced & real, f0, torch.zeros_like(f0)),
                torch.where(real, periodicity, torch.zeros_like(periodicity)))

    def extract(self, batch: torch.Tensor, n_samples: torch.Tensor) -> dict[str, np.ndarray]:
        f0, periodicity = self.compute(batch, n_samples)
        return {"pitch/f0": f0.cpu().numpy(), "pitch/periodicity": periodicity.cpu().numpy()}


@register("pitch")
def make_pitch(options: ExtractorOptions) -> PitchExtractor:
    return PitchExtractor(options)
