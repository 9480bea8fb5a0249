"""Batched Kaldi log-mel filterbank (``compute-fbank-feats``), on the extraction device.

The steps of ``torchaudio.compliance.kaldi.fbank`` (which takes one waveform at a time), for a
whole batch: frames of 25 ms every 10 ms that fit the chunk (``snip_edges``, Kaldi's default),
per-frame DC removal, pre-emphasis 0.97 (first sample against itself), Povey window (Hann to the
power 0.85), zero padding to the next power of two, power spectrum, Kaldi's mel bank
(``get_mel_banks``: 20 Hz to Nyquist), natural log floored at float32 epsilon. No dither
(Kaldi's default is 1.0): dither is random, so features would change from build to build.

On CPU, chunks go through in cache-sized blocks on the shared pool (``blocks``), each step
writing into reused buffers, in Kaldi's order of operations (so the values match torchaudio's
to float32 rounding: reordering the DC removal and the pre-emphasis changes the lowest bins of
loud frames, 20 nepers below the peak, by ~2e-3). The mel product skips the bank's zeros
(banded, as the MFCC extractor).

The waveform is the float chunk in [-1, 1], as lhotse and icefall pass it. Kaldi itself (and
WeNet, which multiplies by 32768) sees int16-scale samples: their log-mels are ours plus
2 ln 32768 = 20.79 (exactly, except bins at the epsilon floor).
"""

from __future__ import annotations

from dataclasses import asdict

import numpy as np
import torch
import torch.nn.functional as F
from torchaudio.compliance.kaldi import get_mel_banks

from featstore.extractors.base import ExtractContext, FeatureSpec, register
from featstore.extractors.blocks import (
    MEL_BANDS,
    ThreadBuffers,
    banded_mel,
    block_rows,
    cpu_kernels,
    mel_bands,
    power_spectrum,
    run_blocks,
)
from featstore.extractors.configs import FbankConfig

EPSILON = float(torch.finfo(torch.float32).eps)  # Kaldi's floor before the log
# Kaldi options this extractor fixes (recorded in the store with the configurable ones)
FIXED = {"window_type": "povey", "remove_dc_offset": True, "dither": 0.0, "snip_edges": True,
         "round_to_power_of_two": True, "use_power": True, "use_log_fbank": True,
         "use_energy": False, "vtln_warp": 1.0, "waveform_scale": 1.0}


class FbankExtractor:
    name = "fbank"

    def __init__(self, config: FbankConfig, context: ExtractContext,
                 backend: str | None = None) -> None:
        """``backend``: "numba" (fused framing and power spectrum, the CPU's default) or
        "torch" (the ops, CUDA's); the same values to float32 rounding."""
        c = self.config = config
        if context.chunk_samples < c.frame_length:
            raise ValueError(f"chunks of {context.chunk_samples} samples hold no "
                             f"{c.frame_length_ms:g} ms frame")
        self.device = torch.device(context.device)
        self.frames = 1 + (context.chunk_samples - c.frame_length) // c.frame_shift
        banks, _ = get_mel_banks(c.num_mel_bins, c.n_fft, float(c.sample_rate), c.low_freq,
                                 c.high_freq, 100.0, -500.0, 1.0)  # vtln off
        # [n_fft // 2 + 1, bins]: Kaldi's bank has no Nyquist column, torchaudio pads it with 0
        self.banks = F.pad(banks, (0, 1)).T.contiguous().to(self.device)
        self.bands = mel_bands(self.banks, MEL_BANDS)
        self.window = torch.hann_window(c.frame_length, periodic=False).pow(0.85).to(self.device)
        assert self.window[0] == 0  # frames' first sample is left at 0 (see _new_buffers)
        self.kernels = cpu_kernels(self.device, backend)
        bins = c.n_fft // 2 + 1
        self.block = block_rows(self.frames * (c.frame_length * 8 + c.n_fft * 4 + bins * 16
                                               + c.num_mel_bins * 4))
        self._bufs = ThreadBuffers(self._new_buffers)  # each block worker's own

    def params(self) -> dict:
        c = self.config
        return {**asdict(c), **FIXED, "frame_length": c.frame_length, "frame_shift": c.frame_shift,
                "hop_length": c.frame_shift, "n_fft": c.n_fft, "log_floor": EPSILON,
                "reference": "torchaudio.compliance.kaldi.fbank",
                "layout": "frames x mel bins (natural log of mel power)"}

    def specs(self) -> list[FeatureSpec]:
        c = self.config
        return [FeatureSpec("fbank", (self.frames, c.num_mel_bins), c.dtype, self.params())]

    def compute(self, batch: torch.Tensor, dtype: torch.dtype = torch.float32) -> torch.Tensor:
        """Log-mel energies [B, frames, bins] in ``dtype`` on the device."""
        batch = batch.to(self.device, torch.float32)
        out = torch.empty((len(batch), self.frames, self.config.num_mel_bins), dtype=dtype,
                          device=self.device)
        run_blocks(lambda rows: self._compute(batch[rows], out[rows]), len(batch), self.block,
                   self.device)
        return out

    def _new_buffers(self, n: int) -> dict[str, torch.Tensor]:
        """Work tensors for ``n`` chunks. ``frames``: the FFT's zero padding, and the first
        sample (Kaldi's pre-emphasis of it meets the Povey window's 0), are zeroed once and
        never written."""
        c, t, dev = self.config, self.frames, self.device
        bins, length = c.n_fft // 2 + 1, c.frame_length
        bufs = {"frames": torch.zeros((n, t, c.n_fft), device=dev),
                "power": torch.empty((n, t, bins), device=dev),
                "mel": torch.empty((n, t, c.num_mel_bins), device=dev)}
        if self.kernels is None:  # the torch ops' intermediates
            bufs |= {"centred": torch.empty((n, t, length), device=dev),
                     "previous": torch.empty((n, t, length - 1), device=dev)}
        return bufs

    def _compute(self, x: torch.Tensor, out: torch.Tensor) -> None:
        """Log-mels of chunks ``x`` [n, samples] into ``out`` [n, frames, bins]."""
        c, b = self.config, self._bufs.get(len(x))
        if self.kernels is not None:
            k = self.kernels
            k.kaldi_frames(x.numpy(), c.frame_shift, c.preemphasis, self.window.numpy(),
                           b["frames"].numpy())
            power = b["power"]
            k.power(torch.view_as_real(torch.fft.rfft(b["frames"])).numpy(), power.numpy())
        else:
            length = c.frame_length
            raw = x.unfold(-1, length, c.frame_shift)[:, : self.frames]  # a view: [n, t, length]
            centred = torch.sub(raw, raw.mean(-1, keepdim=True), out=b["centred"])  # DC removal
            previous = torch.mul(centred[..., :-1], c.preemphasis, out=b["previous"])
            frames = b["frames"][..., 1:length]
            torch.sub(centred[..., 1:], previous, out=frames).mul_(self.window[1:])
            power = power_spectrum(b["frames"], b["power"])
        mel = banded_mel(power, self.bands, b["mel"])
        out.copy_(mel.clamp_min_(EPSILON).log_())

    def extract(self, batch: torch.Tensor, n_samples: torch.Tensor) -> dict[str, np.ndarray]:
        # frames past n_samples see the zero padding, as the chunk itself does; views pool
        # over the frames that start in real audio
        out = self.compute(batch, getattr(torch, self.config.dtype))
        return {"fbank": out.cpu().numpy()}


@register("fbank")
def make_fbank(config: FbankConfig, context: ExtractContext) -> FbankExtractor:
    return FbankExtractor(config, context)
