"""Batched Kaldi log-mel filterbank (``compute-fbank-feats``), on the extraction device.

The steps of ``torchaudio.compliance.kaldi.fbank`` (which takes one waveform at a time), for a
whole batch: frames of 25 ms every 10 ms that fit the chunk (``snip_edges``, Kaldi's default),
per-frame DC removal, pre-emphasis 0.97 (first sample against itself), Povey window (Hann to the
power 0.85), zero padding to the next power of two, power spectrum, Kaldi's mel bank
(``get_mel_banks``: 20 Hz to Nyquist), natural log floored at float32 epsilon. No dither
(Kaldi's default is 1.0): dither is random, so features would change from build to build.

The waveform is the float chunk in [-1, 1], as lhotse and icefall pass it. Kaldi itself (and
WeNet, which multiplies by 32768) sees int16-scale samples: their log-mels are ours plus
2 ln 32768 = 20.79 (exactly, except bins at the epsilon floor).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torchaudio.compliance.kaldi import get_mel_banks

from featstore.extractors.base import (
    ExtractorConfig,
    ExtractorOptions,
    FeatureSpec,
    register,
    register_config,
)

STORAGE_DTYPES = {"float16": torch.float16, "float32": torch.float32}
EPSILON = float(torch.finfo(torch.float32).eps)  # Kaldi's floor before the log
# Kaldi options this extractor fixes (recorded in the store with the configurable ones)
FIXED = {"window_type": "povey", "remove_dc_offset": True, "dither": 0.0, "snip_edges": True,
         "round_to_power_of_two": True, "use_power": True, "use_log_fbank": True,
         "use_energy": False, "vtln_warp": 1.0, "waveform_scale": 1.0}


@register_config
@dataclass(frozen=True)
class FbankConfig(ExtractorConfig):
    feature_type = "fbank"
    OPTIONS = {"sample_rate": "sample_rate", "num_mel_bins": "fbank_bins", "dtype": "fbank_dtype"}
    sample_rate: int = 16000
    num_mel_bins: int = 80
    frame_length_ms: float = 25.0
    frame_shift_ms: float = 10.0
    low_freq: float = 20.0
    high_freq: float = 0.0  # <= 0: offset from Nyquist, as Kaldi
    preemphasis: float = 0.97
    dtype: str = "float16"  # storage

    def __post_init__(self) -> None:
        if self.num_mel_bins < 4:  # get_mel_banks needs > 3
            raise ValueError(f"num_mel_bins must be at least 4, got {self.num_mel_bins}")
        if self.dtype not in STORAGE_DTYPES:
            raise ValueError(f"dtype must be one of {sorted(STORAGE_DTYPES)}, got {self.dtype!r}")
        nyquist = self.sample_rate / 2
        high = self.high_freq if self.high_freq > 0 else nyquist + self.high_freq
        if not 0 <= self.low_freq < high <= nyquist:
            raise ValueError(f"need 0 <= low_freq < high_freq <= {nyquist:g} Hz")

    @property
    def frame_length(self) -> int:
        return int(self.sample_rate * self.frame_length_ms / 1000)

    @property
    def frame_shift(self) -> int:
        return int(self.sample_rate * self.frame_shift_ms / 1000)

    @property
    def n_fft(self) -> int:
        return 1 << (self.frame_length - 1).bit_length()


class FbankExtractor:
    name = "fbank"

    def __init__(self, options: ExtractorOptions) -> None:
        c = FbankConfig(sample_rate=options.sample_rate, num_mel_bins=options.fbank_bins,
                        dtype=options.fbank_dtype)
        if options.chunk_samples < c.frame_length:
            raise ValueError(f"chunks of {options.chunk_samples} samples hold no "
                             f"{c.frame_length_ms:g} ms frame")
        self.config = c
        self.frames = 1 + (options.chunk_samples - c.frame_length) // c.frame_shift
        banks, _ = get_mel_banks(c.num_mel_bins, c.n_fft, float(c.sample_rate), c.low_freq,
                                 c.high_freq, 100.0, -500.0, 1.0)  # vtln off
        # [n_fft // 2 + 1, bins]: Kaldi's bank has no Nyquist column, torchaudio pads it with 0
        self.banks = F.pad(banks, (0, 1)).T.contiguous().to(options.device)
        self.window = torch.hann_window(c.frame_length, periodic=False).pow(0.85).to(options.device)

    def params(self) -> dict:
        c = self.config
        return {**asdict(c), **FIXED, "frame_length": c.frame_length, "frame_shift": c.frame_shift,
                "hop_length": c.frame_shift, "n_fft": c.n_fft, "log_floor": EPSILON,
                "reference": "torchaudio.compliance.kaldi.fbank",
                "layout": "frames x mel bins (natural log of mel power)"}

    def specs(self) -> list[FeatureSpec]:
        c = self.config
        return [FeatureSpec("fbank", (self.frames, c.num_mel_bins), c.dtype, self.params())]

    @torch.inference_mode()
    def compute(self, batch: torch.Tensor) -> torch.Tensor:
        """Log-mel energies [B, frames, bins] float32 on the device."""
        c = self.config
        frames = batch.float().unfold(-1, c.frame_length, c.frame_shift)  # [B, T, L]
        frames = frames - frames.mean(-1, keepdim=True)
        previous = torch.cat([frames[..., :1], frames[..., :-1]], dim=-1)
        frames = (frames - c.preemphasis * previous) * self.window
        spec = torch.fft.rfft(frames, c.n_fft)
        power = spec.real.square() + spec.imag.square()
        return (power @ self.banks).clamp_min(EPSILON).log()

    def extract(self, batch: torch.Tensor, n_samples: torch.Tensor) -> dict[str, np.ndarray]:
        # frames past n_samples see the zero padding, as the chunk itself does; views pool
        # over the frames that start in real audio
        out = self.compute(batch).to(STORAGE_DTYPES[self.config.dtype])
        return {"fbank": out.cpu().numpy()}


@register("fbank")
def make_fbank(options: ExtractorOptions) -> FbankExtractor:
    return FbankExtractor(options)
