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
frame, so a chunk's values do not depend on its batch mates. On CPU, chunks go through in
cache-sized blocks on the shared pool (``featstore.extractors.blocks``); see ``Yin`` for how
the correlation is computed.
"""

from __future__ import annotations

import math
from dataclasses import asdict

import numpy as np
import torch
import torch.nn.functional as F

from featstore.extractors.base import ExtractContext, FeatureSpec, register
from featstore.extractors.blocks import ThreadBuffers, block_rows, run_blocks
from featstore.extractors.configs import PitchConfig  # with the frame geometry Yin reads


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


def pow2(n: int) -> int:
    return 1 << (n - 1).bit_length()


class Yin:
    """YIN of chunks in cache-sized blocks: ``compute(padded, out_f0, out_per, out_voiced)``.

    The difference function needs, per frame t and lag tau, the correlation
    c_t(tau) = sum_{j < w} x[s_t + j] x[s_t + j + tau] of the window with its shifted self, and
    the energies of the shifted windows. Energies come from one running sum over the chunk
    (float64: float32 loses the small d(tau) of clean periodic frames to cancellation), viewed
    per frame without a copy. The correlation has two exact ways:

    * blocks (when b = gcd(window, hop) is at least ``MIN_BLOCK``; the default 320 / 160 gives
      160): cut the chunk into blocks of b samples. A frame's window is w / b whole blocks, so
      c_t is the sum of the correlations of those blocks with their spans (b + lags - 1
      samples), and spans are made of the next blocks: one rfft per block (of b samples at
      size N >= b + lags - 1, a power of two: 512 here), span spectra as phase-shifted sums of
      block spectra plus the one trailing sample, conj(block) x span summed over each frame's
      blocks, one irfft per frame. Two FFTs of 512 per 10 ms frame instead of three of 648.
    * frames (otherwise): per frame, the rfft of the frame and of its window, one irfft.
    """

    MIN_BLOCK = 32
    OFF = 8.0  # added to d' (>= 0) off the troughs: past any bound (at most 2 + margin)

    def __init__(self, cfg: PitchConfig, chunk_samples: int, frames: int,
                 device: torch.device, method: str | None = None) -> None:
        self.cfg, self.frames, self.device = cfg, frames, device
        self.lags = cfg.max_lag + 2  # lags 0 .. max_lag + 1 (the parabola's right neighbour)
        self.padded = chunk_samples + cfg.frame_length
        b = math.gcd(cfg.window, cfg.hop)
        self.method = method or ("blocks" if b >= self.MIN_BLOCK else "frames")
        if self.method == "blocks":
            self.b, self.step, self.per_window = b, cfg.hop // b, cfg.window // b
            self.spans = self.per_window + 1  # whole blocks in a span (b + lags - 1 samples)
            self.heads = (frames - 1) * self.step + self.per_window  # blocks that start windows
            self.n_fft = pow2(b + self.lags - 1)
            f = torch.arange(self.n_fft // 2 + 1, dtype=torch.float64)
            self.phase = [torch.polar(torch.ones_like(f), -2 * math.pi * f * m * b / self.n_fft)
                          .to(torch.complex64).to(device) for m in range(self.spans + 1)]
        else:
            self.n_fft = fft_size(cfg.frame_length)  # >= frame length: no circular wrap
        self.tau = torch.arange(cfg.min_lag - 1, cfg.max_lag + 2, device=device,
                                dtype=torch.float32)

    def chunk_bytes(self) -> int:
        """One chunk's working set (bytes), for the block size."""
        bins, t, lags = self.n_fft // 2 + 1, self.frames, self.lags
        spectra = (self.heads + self.per_window) * 3 if self.method == "blocks" else t * 3
        return (self.padded * 16 + spectra * bins * 8 + t * self.n_fft * 4 + t * lags * 12)

    def buffers(self, n: int) -> dict[str, torch.Tensor]:
        dev, bins, t = self.device, self.n_fft // 2 + 1, self.frames
        bufs = {"corr": torch.empty((n, t, self.n_fft), device=dev),
                "diff": torch.empty((n, t, self.lags), device=dev),
                "running": torch.empty((n, t, self.lags), device=dev),
                "cmndf": torch.empty((n, t, len(self.tau)), device=dev),
                "q": torch.empty((n, t, bins), dtype=torch.complex64, device=dev)}
        if self.method == "blocks":
            blocks = self.heads + self.per_window
            bufs |= {"blocks": torch.zeros((n, blocks, self.n_fft), device=dev),  # tail: 0
                     "h": torch.empty((n, blocks, bins), dtype=torch.complex64, device=dev),
                     "s": torch.empty((n, self.heads, bins), dtype=torch.complex64, device=dev)}
        return bufs

    def _correlation(self, x: torch.Tensor, b: dict[str, torch.Tensor]) -> torch.Tensor:
        """c_t(tau) [n, frames, n_fft] (lags 0 .. lags - 1 are exact) of padded ``x``."""
        cfg, t, q = self.cfg, self.frames, b["q"]
        if self.method == "frames":
            frames = x.unfold(-1, cfg.frame_length, cfg.hop)[:, :t]
            spec = torch.fft.rfft(frames, self.n_fft)
            head = torch.fft.rfft(frames[..., : cfg.window], self.n_fft)
            torch.mul(head.conj(), spec, out=q)
            return torch.fft.irfft(q, self.n_fft, out=b["corr"])
        size, heads, blocks = self.b, self.heads, len(b["blocks"][0])
        b["blocks"][..., :size] = x[:, : blocks * size].view(len(x), blocks, size)
        h = torch.fft.rfft(b["blocks"], out=b["h"])
        span = torch.mul(h[:, 1 : heads + 1], self.phase[1], out=b["s"])
        span.add_(h[:, :heads])
        for m in range(2, self.spans):
            span.addcmul_(h[:, m : heads + m], self.phase[m])
        last = x[:, self.spans * size :: size][:, :heads]  # each span's trailing sample
        span.addcmul_(last.unsqueeze(-1).to(span.dtype), self.phase[self.spans])
        span.mul_(h[:, :heads].conj())  # per block: conj(block) x span
        end = (t - 1) * self.step + 1
        q.copy_(span[:, 0:end : self.step])
        for c in range(1, self.per_window):
            q.add_(span[:, c : end + c : self.step])
        return torch.fft.irfft(q, self.n_fft, out=b["corr"])

    def compute(self, x: torch.Tensor, b: dict[str, torch.Tensor]
                ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(f0 Hz, periodicity, voiced), each [n, frames], of frames t * hop of the padded
        chunks ``x`` [n, padded]; F0 is given for every frame (the best candidate), ``voiced``
        says whether to believe it."""
        cfg, t, lags = self.cfg, self.frames, self.lags
        w, hop = cfg.window, cfg.hop
        corr = self._correlation(x, b)[..., :lags]  # sum_j x[j] x[j + tau]
        # energy of x[i : i + w] at every i, then per frame a strided view
        power = F.pad(x.double().square_().cumsum_(-1), (1, 0))
        energy = (power[:, w:] - power[:, :-w]).float()
        energy = energy.unfold(-1, lags, hop)[:, :t]  # [n, t, lags]: x[t hop + tau : ... + w]
        e0 = energy[..., :1]
        diff = torch.add(energy, e0, out=b["diff"]).sub_(corr, alpha=2.0).clamp_min_(0.0)
        diff[..., 0] = 0.0
        lo, hi = cfg.min_lag, cfg.max_lag
        tiny = torch.finfo(torch.float32).tiny
        # d' at lags lo - 1 .. hi + 1 only: the troughs' range and its neighbours; where the
        # running sum is at most tiny (digital silence: a prefix of lags), d' = 1
        # (the running sum never decreases, so lag lo - 1 says whether any frame has such lags)
        run = torch.cumsum(diff, -1, out=b["running"])[..., lo - 1 : hi + 2]
        silent = bool((run[..., 0] <= tiny).any())
        if silent:
            run.clamp_min_(tiny)
        cmndf = torch.mul(diff[..., lo - 1 : hi + 2], self.tau, out=b["cmndf"]).div_(run)
        if silent:
            cmndf.masked_fill_(run == tiny, 1.0)

        # troughs of d' in [lo, hi]: the first one below threshold, or within margin of the
        # deepest (YIN's rule is margin 0: the deepest, which favours period multiples).
        # Arithmetic, not torch.where: ``v`` is d' at troughs and >= OFF elsewhere.
        mid = cmndf[..., 1:-1]
        off = torch.gt(mid, cmndf[..., :-2]).logical_or_(torch.ge(mid, cmndf[..., 2:]))
        v = torch.add(mid, off.view(torch.uint8), alpha=self.OFF)
        deepest = v.amin(-1, keepdim=True).clamp_max_(2.0)  # 2: no trough
        good = torch.le(v, (deepest + cfg.margin).clamp_min_(cfg.threshold))
        found, idx = good.view(torch.uint8).max(-1)  # max gives the first maximal index
        a, c0, c = (cmndf.gather(-1, (idx + k).unsqueeze(-1)).squeeze(-1) for k in (0, 1, 2))
        curve = a - 2.0 * c0 + c
        shift = torch.where(curve > 0, 0.5 * (a - c) / curve.clamp_min(tiny), 0.0)
        period = (idx + lo).to(torch.float32) + shift.clamp(-1.0, 1.0)
        f0 = (cfg.sample_rate / period).clamp(cfg.f0_min, cfg.f0_max)
        periodicity = (1.0 - c0).clamp(0.0, 1.0)
        voiced = (c0 < cfg.voicing) & found.bool() & (e0[..., 0] > 0)
        return f0, periodicity, voiced


class PitchExtractor:
    name = "pitch"

    def __init__(self, config: PitchConfig, context: ExtractContext,
                 method: str | None = None) -> None:
        """``method``: the correlation's, "blocks" or "frames" (None: blocks where they fit,
        see ``Yin``)."""
        self.config = config
        self.device = torch.device(context.device)
        self.frames = 1 + context.chunk_samples // config.hop
        self.half = config.frame_length // 2
        self.yin = Yin(config, context.chunk_samples, self.frames, self.device, method)
        # at least 4 chunks a block: a chunk's working set is ~3 MB, but 4-8 chunks took ~15%
        # less CPU than 1 (measured on the 2-core VM): fewer small ops per chunk, still in L3
        self.block = max(4, block_rows(self.yin.chunk_bytes()))
        self._bufs = ThreadBuffers(self._new_buffers)  # each block worker's own

    def params(self) -> dict:
        c = self.config
        return {**asdict(c), "hop_length": c.hop, "frame_shift": c.hop,
                "frame_length": c.frame_length, "window": c.window,
                "method": "yin (cmndf, parabolic refinement)", "center": True, "unvoiced_f0": 0.0,
                "layout": "pitch/f0: frames (Hz, 0 = unvoiced); pitch/periodicity: frames"}

    def specs(self) -> list[FeatureSpec]:
        p = self.params()
        return [FeatureSpec("pitch/f0", (self.frames,), "float32", p),
                FeatureSpec("pitch/periodicity", (self.frames,), "float32", p)]

    def compute(self, batch: torch.Tensor, n_samples: torch.Tensor
                ) -> tuple[torch.Tensor, torch.Tensor]:
        """(f0 [B, frames] Hz, 0 where unvoiced; periodicity [B, frames]) on the device."""
        c = self.config
        batch = batch.to(self.device, torch.float32)
        f0 = torch.empty((len(batch), self.frames), device=self.device)
        periodicity = torch.empty_like(f0)
        voiced = torch.empty(f0.shape, dtype=torch.bool, device=self.device)

        def rows(r: slice) -> None:
            b = self._bufs.get(len(batch[r]))
            b["x"][:, self.half : self.half + batch.shape[1]] = batch[r]  # centred frames
            f0[r], periodicity[r], voiced[r] = self.yin.compute(b["x"], b)

        run_blocks(rows, len(batch), self.block, self.device)
        centre = torch.arange(self.frames, device=self.device) * c.hop
        real = centre < n_samples.to(self.device).unsqueeze(-1)  # centre in real audio
        return (f0.masked_fill_(~(voiced & real), 0.0), periodicity.masked_fill_(~real, 0.0))

    def _new_buffers(self, n: int) -> dict[str, torch.Tensor]:
        """Work tensors for ``n`` chunks; the padding columns are zeroed once, never written."""
        return {"x": torch.zeros((n, self.yin.padded), device=self.device),
                **self.yin.buffers(n)}

    def extract(self, batch: torch.Tensor, n_samples: torch.Tensor) -> dict[str, np.ndarray]:
        f0, periodicity = self.compute(batch, n_samples)
        return {"pitch/f0": f0.cpu().numpy(), "pitch/periodicity": periodicity.cpu().numpy()}


@register("pitch")
def make_pitch(config: PitchConfig, context: ExtractContext) -> PitchExtractor:
    return PitchExtractor(config, context)
