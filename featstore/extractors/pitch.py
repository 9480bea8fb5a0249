"""Batched pitch: F0 and periodicity per 10 ms frame with YIN, on the extraction device.

YIN runs at the config's analysis rate (8 kHz by default): each chunk is low-passed and
decimated first (``featstore.extractors.decimate``), which halves both the window and the lags
at 16 kHz; frames stay at the store's positions (see ``configs/pitch.py``).

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
from featstore.extractors.blocks import ThreadBuffers, block_rows, cpu_kernels, run_blocks
from featstore.extractors.configs import PitchConfig  # with the frame geometry Yin reads
from featstore.extractors.decimate import FILTER, decimate, decimated_length


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
    """YIN of chunks in cache-sized blocks: ``compute(buffers(n), f0, periodicity, voiced)``.

    The difference function needs, per frame t and lag tau, the correlation
    c_t(tau) = sum_{j < w} x[s_t + j] x[s_t + j + tau] of the window with its shifted self, and
    the energies of the shifted windows. Energies come from one running sum over the chunk
    (float64: float32 loses the small d(tau) of clean periodic frames to cancellation). The
    correlation has two exact ways:

    * blocks (when b = gcd(window, hop) is at least ``MIN_BLOCK``; the default 160 / 80 at
      8 kHz gives 80): a frame's window is w / b whole blocks, so c_t is the sum of its blocks'
      correlations D_k with the N samples from their start (N = 256 >= b + lags - 1, so the
      block's circular product with that segment does not wrap at any lag read): per 10 ms,
      two 256-point rffts and one irfft, and each frame adds its blocks' D_k in the lag domain.
    * frames (otherwise): per frame, the rfft of the frame and of its window, one irfft.

    The lag-domain steps (d, its running sum, d', the trough rule, the parabola) run as torch
    ops on CUDA, and fused into one pass per frame on the CPU
    (``featstore.extractors.kernels``, numba): there a dozen tensor ops over every lag cost
    more than the FFTs. ``backend`` picks one ("torch" or "numba"; default by device).
    """

    MIN_BLOCK = 32
    OFF = 8.0  # added to d' (>= 0) off the troughs: past any bound (at most 2 + margin)

    def __init__(self, cfg: PitchConfig, chunk_samples: int, frames: int,
                 device: torch.device, method: str | None = None,
                 backend: str | None = None) -> None:
        self.cfg, self.frames, self.device = cfg, frames, device
        self.lags = cfg.max_lag + 2  # lags 0 .. max_lag + 1 (the parabola's right neighbour)
        b = math.gcd(cfg.window, cfg.hop)
        self.method = method or ("blocks" if b >= self.MIN_BLOCK else "frames")
        self.kernels = cpu_kernels(device, backend)
        self.backend = "torch" if self.kernels is None else "numba"
        self.padded = chunk_samples + cfg.frame_length
        if self.method == "blocks":
            # rows of D: blocks; frame t sums rows t * step .. t * step + per_window - 1
            self.b, self.step, self.per_window = b, cfg.hop // b, cfg.window // b
            self.rows = (frames - 1) * self.step + self.per_window
            self.n_fft = pow2(b + self.lags - 1)
            self.padded = max(self.padded, (self.rows - 1) * b + self.n_fft)
        else:
            self.step, self.per_window, self.rows = 1, 1, frames
            self.n_fft = fft_size(cfg.frame_length)  # >= frame length: no circular wrap
        self.tau = torch.arange(cfg.min_lag - 1, cfg.max_lag + 2, device=device,
                                dtype=torch.float32)

    def chunk_bytes(self) -> int:
        """One chunk's working set (bytes), for the block size."""
        # x (+ its float64 energies); per row two spectra and the heads / D rows
        return self.padded * 16 + self.rows * ((self.n_fft // 2 + 1) * 16 + self.n_fft * 8)

    def correlations(self, x: torch.Tensor, heads: torch.Tensor | None = None) -> torch.Tensor:
        """D [n, rows, n_fft] of padded ``x`` [n, padded]: per row (block or frame) the
        correlation of its window part with the samples from its start; lags < ``lags`` exact.
        ``heads``: a zeroed [n, rows, n_fft] work buffer for the numba backend (its columns
        past the window part stay zero), which multiplies the spectra in one pass."""
        cfg = self.cfg
        if self.method == "frames":
            seg, head = x.unfold(-1, cfg.frame_length, cfg.hop)[:, : self.rows], cfg.window
        else:
            seg, head = x.unfold(-1, self.n_fft, self.b)[:, : self.rows], self.b
        spec = torch.fft.rfft(seg, self.n_fft)
        if heads is None:
            spec.mul_(torch.fft.rfft(seg[..., :head], self.n_fft).conj())
        else:
            heads[..., :head] = seg[..., :head]
            self.kernels.mul_conj(torch.view_as_real(spec).numpy(),
                                  torch.view_as_real(torch.fft.rfft(heads)).numpy())
        return torch.fft.irfft(spec, self.n_fft)

    def frame_correlations(self, d: torch.Tensor) -> torch.Tensor:
        """c_t(tau) [n, frames, lags]: each frame's sum of its rows of ``d``."""
        d, end = d[..., : self.lags], (self.frames - 1) * self.step + 1
        corr = d[:, 0:end : self.step].clone()
        for c in range(1, self.per_window):
            corr.add_(d[:, c : end + c : self.step])
        return corr

    def buffers(self, n: int) -> dict[str, torch.Tensor]:
        """Work tensors for ``n`` chunks (zeroed: their padding columns are never written)."""
        bufs = {"x": torch.zeros((n, self.padded), device=self.device)}
        if self.backend == "numba":
            bufs["heads"] = torch.zeros((n, self.rows, self.n_fft))
        return bufs

    def compute(self, b: dict[str, torch.Tensor], f0: torch.Tensor, periodicity: torch.Tensor,
                voiced: torch.Tensor) -> None:
        """f0 (Hz), periodicity and voiced, each [n, frames], of frames t * hop of the padded
        chunks ``b["x"]`` [n, padded] (``b``: from ``buffers``), into the given tensors; F0 is
        given for every frame (the best candidate), ``voiced`` says whether to believe it."""
        x = b["x"]
        if self.backend == "torch":
            corr = self.frame_correlations(self.correlations(x))
            f0[:], periodicity[:], voiced[:] = self._lag_steps(x, corr)
            return
        c = self.cfg
        self.kernels.yin_frames(
            x.numpy(), self.correlations(x, b["heads"]).numpy(), self.step, self.per_window,
            c.hop, c.window, c.min_lag, c.max_lag, float(c.sample_rate), c.f0_min, c.f0_max,
            c.threshold, c.margin, c.voicing, f0.numpy(), periodicity.numpy(), voiced.numpy())

    def _lag_steps(self, x: torch.Tensor, corr: torch.Tensor
                   ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The torch ops from the correlations (``kernels.yin_frames`` is the fused CPU pass)."""
        cfg, t, lags = self.cfg, self.frames, self.lags
        w, hop = cfg.window, cfg.hop
        # energy of x[i : i + w] at every i, then per frame a strided view
        power = F.pad(x.double().square_().cumsum_(-1), (1, 0))
        energy = (power[:, w:] - power[:, :-w]).float()
        energy = energy.unfold(-1, lags, hop)[:, :t]  # [n, t, lags]: x[t hop + tau : ... + w]
        e0 = energy[..., :1]
        diff = torch.add(energy, e0).sub_(corr, alpha=2.0).clamp_min_(0.0)
        diff[..., 0] = 0.0
        lo, hi = cfg.min_lag, cfg.max_lag
        tiny = torch.finfo(torch.float32).tiny
        # d' at lags lo - 1 .. hi + 1 only: the troughs' range and its neighbours; where the
        # running sum is at most tiny (digital silence: a prefix of lags), d' = 1
        # (the running sum never decreases, so lag lo - 1 says whether any frame has such lags)
        run = torch.cumsum(diff, -1)[..., lo - 1 : hi + 2]
        silent = bool((run[..., 0] <= tiny).any())
        if silent:
            run.clamp_min_(tiny)
        cmndf = torch.mul(diff[..., lo - 1 : hi + 2], self.tau).div_(run)
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
                 method: str | None = None, backend: str | None = None) -> None:
        """``method``: the correlation's, "blocks" or "frames" (None: blocks where they fit);
        ``backend``: the lag-domain steps', "torch" or "numba" (None: numba on the CPU); see
        ``Yin``."""
        self.config, self.q = config, config.decimation
        self.device = torch.device(context.device)
        self.frames = 1 + context.chunk_samples // config.hop
        at = config.analysis()  # YIN's rate: frame t at its sample t * hop / q
        assert at.hop * self.q == config.hop
        self.half = at.frame_length // 2
        self.yin = Yin(at, decimated_length(context.chunk_samples, self.q), self.frames,
                       self.device, method, backend)
        self.block = block_rows(self.yin.chunk_bytes())
        self._bufs = ThreadBuffers(self.yin.buffers)  # each block worker's own

    def params(self) -> dict:
        c = self.config
        return {**asdict(c), "hop_length": c.hop, "frame_shift": c.hop,
                "frame_length": c.frame_length, "window": c.window,
                "method": "yin (cmndf, parabolic refinement)", "center": True, "unvoiced_f0": 0.0,
                "decimation": self.q, "yin_sample_rate": c.sample_rate // self.q,
                "lowpass": None if self.q == 1 else FILTER,
                "layout": "pitch/f0: frames (Hz, 0 = unvoiced); pitch/periodicity: frames"}

    def specs(self) -> list[FeatureSpec]:
        p = self.params()
        return [FeatureSpec("pitch/f0", (self.frames,), "float32", p),
                FeatureSpec("pitch/periodicity", (self.frames,), "float32", p)]

    def compute(self, batch: torch.Tensor, n_samples: torch.Tensor
                ) -> tuple[torch.Tensor, torch.Tensor]:
        """(f0 [B, frames] Hz, 0 where unvoiced; periodicity [B, frames]) on the device."""
        batch = batch.to(self.device, torch.float32)
        n_samples = n_samples.to(self.device)
        f0 = torch.empty((len(batch), self.frames), device=self.device)
        periodicity = torch.empty_like(f0)
        voiced = torch.empty(f0.shape, dtype=torch.bool, device=self.device)
        m = decimated_length(batch.shape[1], self.q)
        centre = torch.arange(self.frames, device=self.device) * self.config.hop

        def rows(r: slice) -> None:  # every step per block: on the CPU, on its worker
            b = self._bufs.get(len(batch[r]))
            out = b["x"][:, self.half : self.half + m]  # centred frames
            decimate(batch[r], self.q, out, self.yin.kernels)
            self.yin.compute(b, f0[r], periodicity[r], voiced[r])
            real = centre < n_samples[r].unsqueeze(-1)  # centre in real audio
            f0[r].masked_fill_(~(voiced[r] & real), 0.0)
            periodicity[r].masked_fill_(~real, 0.0)

        run_blocks(rows, len(batch), self.block, self.device)
        return f0, periodicity

    def extract(self, batch: torch.Tensor, n_samples: torch.Tensor) -> dict[str, np.ndarray]:
        f0, periodicity = self.compute(batch, n_samples)
        return {"pitch/f0": f0.cpu().numpy(), "pitch/periodicity": periodicity.cpu().numpy()}


@register("pitch")
def make_pitch(config: PitchConfig, context: ExtractContext) -> PitchExtractor:
    return PitchExtractor(config, context)
