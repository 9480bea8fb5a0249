"""What each step of the MFCC extractor buys: the extractor with later steps undone, one at a
time, on the decoded chunks of a source, alternated round by round, median of ``--repeat``.

    .venv/bin/python tools/mfcc_steps.py --source ../shared/data/LibriSpeech --repeat 5

Variants (each adds one step to the one before; the last is featstore's extractor):
  whole batch     torch ops on a whole batch of 256 with torch's threads, complex magnitude
                  squared, dense mel matrix (the extractor before this change, abs() aside)
  re²+im²         power from real and imaginary parts instead of abs().pow(2)
  blocks          cache-sized blocks on a thread pool, one torch thread each, reused buffers
  in-place power  re² and im² squared in place on the spectrum buffer, then one add
  banded mel      only the filterbank's nonzero bands (= featstore)
and, for the FFT, scipy.fft.rfft (pocketfft) in place of torch.fft.rfft (MKL): on the whole
batch with ``workers`` = cores, and in featstore's blocks with one worker per block.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import scipy.fft
import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from featstore import audio  # noqa: E402
from featstore.extractors import ExtractContext  # noqa: E402
from featstore.extractors.configs import MFCCConfig  # noqa: E402
from featstore.extractors.mfcc import AMIN, TOP_DB, MFCCExtractor  # noqa: E402
from featstore.machine import cores  # noqa: E402
from featstore.sources import resolve_source  # noqa: E402


class Variant(MFCCExtractor):
    """The extractor with some steps undone (flags), everything else as featstore does it."""

    def __init__(self, config, context, *, blocks=True, power="inplace", mel="banded",
                 fft="torch"):
        super().__init__(config, context)
        self.blocked, self.power_mode, self.mel_mode, self.fft = blocks, power, mel, fft
        self.dense = torch.zeros(config.n_fft // 2 + 1, config.n_mels)
        for m0, m1, lo, hi, w in self.bands:
            self.dense[lo:hi, m0:m1] = w
        if not blocks:
            self.block = 1 << 30  # one block: the whole batch, on the calling thread

    def _compute(self, x, out):
        if self.blocked:
            return super()._compute(x, out) if (self.power_mode, self.mel_mode, self.fft) == (
                "inplace", "banded", "torch") else self._steps(x, out, self._bufs.get(len(x)))
        return self._steps(x, out, None)

    def _steps(self, x, out, b):
        o = self.config
        half = o.n_fft // 2
        if b is None:  # whole batch: fresh tensors, torch's own threads
            frames = F.pad(x, (half, half)).unfold(-1, o.n_fft, o.hop_length) * self.window
            if self.fft == "scipy":
                spec = torch.from_numpy(scipy.fft.rfft(frames.numpy(), workers=cores()))
            else:
                spec = torch.fft.rfft(frames)
        else:
            b["padded"][:, half : half + x.shape[1]] = x
            torch.mul(b["padded"].unfold(-1, o.n_fft, o.hop_length), self.window,
                      out=b["frames"])
            if self.fft == "scipy":
                spec = torch.from_numpy(scipy.fft.rfft(b["frames"].numpy(), workers=1))
            else:
                spec = torch.fft.rfft(b["frames"], out=b["spec"])
        if self.power_mode == "abs":
            power = spec.abs().pow(2)
        elif self.power_mode == "mul":
            power = spec.real.square() + spec.imag.square()
        else:
            parts = torch.view_as_real(spec).square_()
            power = parts[..., 0] + parts[..., 1]
        if self.mel_mode == "dense":
            mel = power @ self.dense
        else:
            mel = torch.empty((*power.shape[:-1], o.n_mels))
            for m0, m1, lo, hi, w in self.bands:
                torch.matmul(power[..., lo:hi], w, out=mel[..., m0:m1])
        db = 10.0 * torch.log10(torch.clamp(mel, min=AMIN))
        db = torch.maximum(db, db.amax(dim=(-2, -1), keepdim=True) - TOP_DB)
        torch.matmul(db, self.dct, out=out)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--source", default="sample")
    p.add_argument("--repeat", type=int, default=5)
    args = p.parse_args()
    utts = sorted(resolve_source(args.source).utterances, key=lambda u: u.utterance_id)
    loaded = [audio.load_chunks(u.path, 16000, 32000) for u in utts]
    x = torch.from_numpy(np.concatenate([c.chunks for c in loaded]))
    n = torch.from_numpy(np.concatenate([c.counts for c in loaded]))
    seconds = float(n.sum()) / 16000
    opts = (MFCCConfig(), ExtractContext())
    variants = {
        "whole batch": Variant(*opts, blocks=False, power="abs", mel="dense"),
        "re²+im²": Variant(*opts, blocks=False, power="mul", mel="dense"),
        "re²+im², scipy.fft workers": Variant(*opts, blocks=False, power="mul", mel="dense",
                                              fft="scipy"),
        "blocks": Variant(*opts, power="mul", mel="dense"),
        "in-place power": Variant(*opts, mel="dense"),
        "banded mel (featstore)": MFCCExtractor(*opts),
        "featstore, scipy.fft": Variant(*opts, fft="scipy"),
    }
    ref = variants["banded mel (featstore)"].extract(x[:256], n[:256])["mfcc"]
    runs: dict[str, list[float]] = {k: [] for k in variants}
    for _ in range(args.repeat):
        for name, ext in variants.items():
            t0 = time.perf_counter()
            for i in range(0, len(x), 256):
                ext.extract(x[i : i + 256], n[i : i + 256])
            runs[name].append(time.perf_counter() - t0)
    print(f"{len(x)} chunks, {seconds:,.0f} s of audio, {torch.get_num_threads()} torch threads, "
          f"median of {args.repeat}\n")
    print("| variant | wall s | x real time | max abs diff vs featstore |")
    print("|---|---:|---:|---:|")
    for name, ext in variants.items():
        diff = np.abs(ext.extract(x[:256], n[:256])["mfcc"] - ref).max()
        med = statistics.median(runs[name])
        print(f"| {name} | {med:.3f} | {seconds / med:,.0f} | {diff:.1e} |")


if __name__ == "__main__":
    main()
