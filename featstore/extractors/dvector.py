"""d-vectors: Resemblyzer's pretrained GE2E speaker encoder, run on whole batches of chunks.

Resemblyzer (Wan et al.'s GE2E, trained on VoxCeleb and LibriSpeech) ships its weights,
``pretrained.pt``, inside its wheel, so this is a real pretrained model that works offline. We
read that file without importing the package (its import needs ``webrtcvad``, which compiles
from source) and rebuild the network here as resemblyzer defines it: a 3-layer LSTM of 256 on
40-band mel power frames (25 ms windows, 10 ms hop at 16 kHz), a linear layer of 256, ReLU and
L2 normalisation.

Per chunk, as ``VoiceEncoder.embed_utterance`` on the chunk's real samples: the volume is
normalised (raised to -30 dBFS, never lowered: ``preprocess_wav``'s ``normalize_volume``), the
chunk is cut into 1.6 s partials at 1.3 per second (a last partial kept when it is at least 75%
real audio), each partial is embedded, and their mean is L2-normalised. Resemblyzer's VAD
silence trimming is *not* applied: a store row is a fixed 2 s span of the utterance, and
trimming would change what it covers (and needs webrtcvad). The mel front end (STFT, mel
filterbank) runs batched on the device, and all partials of a batch go through the LSTM at once;
each chunk's partials are its own, so a result never depends on its batch mates.
"""

from __future__ import annotations

import importlib.util
import math
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch

from featstore.errors import UserError
from featstore.extractors.base import ExtractContext, FeatureSpec, register
from featstore.extractors.configs import DVectorConfig
from featstore.machine import cpu_threads, torch_threads

# resemblyzer/hparams.py
MEL_WINDOW_MS, MEL_STEP_MS, MEL_BANDS = 25, 10, 40
PARTIAL_FRAMES = 160  # 1.6 s
RATE, MIN_COVERAGE = 1.3, 0.75  # embed_utterance's defaults
TARGET_DBFS = -30.0
HIDDEN, EMBED, LSTM_LAYERS = 256, 256, 3
INT16_MAX = 2**15 - 1
# The LSTM is 3 x 160 sequential small matrix products: on CPU each is a parallel region whose
# barrier costs more than it saves when the cores are shared. Measured on a 2-core machine under
# load (64 partials): 30.8 s with 2 torch threads, 2.6 s with 1. So 1 thread on CPU.
CPU_LSTM_THREADS = 1
INSTALL = ('pip install --no-deps "resemblyzer>=0.1.4" (the pure-Python wheel carries the '
           "weights; its webrtcvad dependency is not needed here)")


def weights_path() -> Path:
    """resemblyzer's packaged pretrained.pt, found without importing resemblyzer."""
    spec = importlib.util.find_spec("resemblyzer")
    if spec is None or not spec.submodule_search_locations:
        raise UserError(f"dvector needs Resemblyzer's pretrained weights: {INSTALL}")
    for folder in spec.submodule_search_locations:
        path = Path(folder) / "pretrained.pt"
        if path.is_file():
            return path
    raise UserError(f"resemblyzer is installed but has no pretrained.pt: reinstall it ({INSTALL})")


class SpeakerEncoder(torch.nn.Module):
    """Resemblyzer's VoiceEncoder network: mel frames [B, T, 40] -> unit-norm embeddings."""

    def __init__(self) -> None:
        super().__init__()
        self.lstm = torch.nn.LSTM(MEL_BANDS, HIDDEN, LSTM_LAYERS, batch_first=True)
        self.linear = torch.nn.Linear(HIDDEN, EMBED)

    def forward(self, mels: torch.Tensor) -> torch.Tensor:
        _, (hidden, _) = self.lstm(mels)
        raw = torch.relu(self.linear(hidden[-1]))
        return raw / raw.norm(dim=1, keepdim=True).clamp_min(1e-12)


def load_encoder(path: Path) -> SpeakerEncoder:
    model = SpeakerEncoder()
    state = torch.load(path, map_location="cpu", weights_only=True)["model_state"]
    # the checkpoint also holds GE2E's training-only similarity scale and bias
    model.load_state_dict({k: v for k, v in state.items() if k.startswith(("lstm.", "linear."))})
    return model.eval()


@lru_cache(maxsize=64)
def partial_starts(n_samples: int, sample_rate: int) -> tuple[int, ...]:
    """Mel-frame starts of the partials of an utterance of ``n_samples`` (resemblyzer's
    ``compute_partial_slices`` with rate 1.3 and min_coverage 0.75)."""
    hop = sample_rate * MEL_STEP_MS // 1000
    n_frames = math.ceil((n_samples + 1) / hop)
    step = round((sample_rate / RATE) / hop)
    starts = list(range(0, max(1, n_frames - PARTIAL_FRAMES + step + 1), step))
    coverage = (n_samples - starts[-1] * hop) / (PARTIAL_FRAMES * hop)
    if coverage < MIN_COVERAGE and len(starts) > 1:
        starts.pop()
    return tuple(starts)


class DVectorExtractor:
    name = "dvector"

    def __init__(self, config: DVectorConfig, context: ExtractContext) -> None:
        if context.sample_rate != 16000:
            raise UserError(f"dvector needs 16 kHz audio, the store uses {context.sample_rate} Hz")
        self.config, self.sample_rate = config, context.sample_rate
        self.device = torch.device(context.device)
        self.weights = weights_path()
        self.model = load_encoder(self.weights).to(self.device)
        rate = context.sample_rate
        self.n_fft, self.hop = rate * MEL_WINDOW_MS // 1000, rate * MEL_STEP_MS // 1000
        import torchaudio

        # librosa.feature.melspectrogram's defaults: periodic Hann, power 2, Slaney mel bands
        # with Slaney area normalisation, centred frames with zero padding
        fb = torchaudio.functional.melscale_fbanks(
            self.n_fft // 2 + 1, 0.0, rate / 2, MEL_BANDS, rate, norm="slaney", mel_scale="slaney")
        self.fbank = fb.to(self.device)
        self.window = torch.hann_window(self.n_fft, periodic=True, device=self.device)
        starts = partial_starts(context.chunk_samples, rate)
        # every chunk is padded to the furthest sample any partial of a full chunk reads
        self.padded = (starts[-1] + PARTIAL_FRAMES) * self.hop

    def num_threads(self) -> int | None:
        return cpu_threads(self.device.type)

    def params(self) -> dict:
        return {
            "model": "resemblyzer GE2E VoiceEncoder (pretrained.pt)",
            "dim": EMBED,
            "mel": {"bands": MEL_BANDS, "window_ms": MEL_WINDOW_MS, "hop_ms": MEL_STEP_MS,
                    "power": 2.0},
            "partials": {"frames": PARTIAL_FRAMES, "rate": RATE, "min_coverage": MIN_COVERAGE},
            "volume_normalisation_dbfs": TARGET_DBFS,
            "vad_trimming": False,
            "dtype": "float32",
        }

    def specs(self) -> list[FeatureSpec]:
        return [FeatureSpec("dvector", (EMBED,), "float32", self.params())]

    def normalise_volume(self, x: torch.Tensor, n: torch.Tensor) -> torch.Tensor:
        """Raise each chunk's real samples to -30 dBFS (never lower: increase_only)."""
        rms = torch.sqrt((x * INT16_MAX).square().sum(1) / n.clamp_min(1)) / INT16_MAX
        change = TARGET_DBFS - 20 * torch.log10(rms.clamp_min(1e-10))
        gain = torch.where((change > 0) & (rms > 0), 10 ** (change / 20), torch.ones_like(rms))
        return x * gain[:, None]

    def mels(self, x: torch.Tensor) -> torch.Tensor:
        """[B, samples] -> mel power frames [B, frames, 40], as librosa computes them."""
        spec = torch.stft(x, self.n_fft, self.hop, window=self.window, center=True,
                          pad_mode="constant", return_complex=True)
        return (spec.abs().square().transpose(1, 2) @ self.fbank).float()

    @torch.inference_mode()
    def extract(self, batch: torch.Tensor, n_samples: torch.Tensor) -> dict[str, np.ndarray]:
        if batch.shape[0] == 0:
            return {"dvector": np.zeros((0, EMBED), np.float32)}
        x = batch.to(self.device, torch.float32)
        counts = n_samples.to(self.device).clamp(1, x.shape[1])
        real = torch.arange(x.shape[1], device=x.device)[None, :] < counts[:, None]
        x = self.normalise_volume(torch.where(real, x, 0.0), counts.to(torch.float32))
        x = torch.nn.functional.pad(x, (0, max(0, self.padded - x.shape[1])))
        mels = self.mels(x)
        owner, starts = [], []
        for i, n in enumerate(counts.tolist()):
            s = partial_starts(int(n), self.sample_rate)
            owner += [i] * len(s)
            starts += s
        index = torch.tensor(starts, device=self.device)[:, None] + torch.arange(
            PARTIAL_FRAMES, device=self.device)
        owner_t = torch.tensor(owner, device=self.device)
        threads = CPU_LSTM_THREADS if self.device.type == "cpu" else None
        with torch_threads(threads):
            partials = self.model(mels[owner_t[:, None], index])  # [P, 160, 40] -> [P, 256]
        total = torch.zeros(len(counts), EMBED, device=self.device).index_add_(0, owner_t,
                                                                              partials)
        out = total / total.norm(dim=1, keepdim=True).clamp_min(1e-12)
        return {"dvector": out.cpu().numpy()}


@register("dvector")
def make_dvector(config: DVectorConfig, context: ExtractContext) -> DVectorExtractor:
    return DVectorExtractor(config, context)
