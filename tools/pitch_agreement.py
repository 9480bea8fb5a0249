"""The pitch extractor against librosa.pyin on real speech and on harmonic tones, at each
analysis rate: the figures docs/features.md quotes.

    .venv/bin/python tools/pitch_agreement.py [--data ../shared/data/LibriSpeech]

Chunks: the first two 2 s chunks of every 10th test-other and every 8th train-clean-100 file
of the real sample (76 chunks). pyin: 50-500 Hz, frame 1024, hop 160. Per analysis rate: on
frames both call voiced, the median and share above 50 cents of |ours - pyin|, octave errors
(ratio beyond 2^(+-0.9)); voicing precision (our voiced frames pyin calls voiced) and recall;
and the largest error on harmonic tones in every inner frame (the test's tones).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

from featstore.audio import cut, decode
from featstore.extractors import make_extractor
from featstore.extractors.configs import PitchConfig

SR = 16000
TONES = (55.0, 85.0, 120.0, 220.0, 300.0, 480.0)


def chunks(root: Path) -> np.ndarray:
    files = (sorted(root.glob("test-other/*/*/*.flac"))[::10]
             + sorted(root.glob("train-clean-100/*/*/*.flac"))[::8])
    return np.concatenate([cut(decode(str(p)).samples, 32000)[0][:2] for p in files])


def tone(f0: float, n: int = 32000, harmonics: int = 8) -> np.ndarray:
    t = np.arange(n) / SR
    phases = np.random.default_rng(0).uniform(0, 2 * np.pi, harmonics)
    return 0.3 * sum(np.sin(2 * np.pi * k * f0 * t + phases[k - 1]) / k
                     for k in range(1, harmonics + 1) if k * f0 < SR / 2)


def ours(x: np.ndarray, rate: int) -> np.ndarray:
    ext = make_extractor("pitch", PitchConfig(analysis_rate=rate))
    batch = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))
    return ext.extract(batch, torch.full((len(x),), x.shape[1]))["pitch/f0"]


def main() -> None:
    import librosa

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", default="../shared/data/LibriSpeech")
    args = p.parse_args()
    x = chunks(Path(args.data))
    refs = [librosa.pyin(c, fmin=50, fmax=500, sr=SR, frame_length=1024, hop_length=160)[:2]
            for c in x]
    print(f"{len(x)} chunks")
    print("| analysis rate | median cents | > 50 cents | octave down | octave up | precision "
          "| recall | tones, max cents |")
    print("|---|---|---|---|---|---|---|---|")
    for rate in (8000, 16000):
        f0s = ours(x, rate)
        err, ratio, both, mine, theirs = [], [], 0, 0, 0
        for f0, (ref, voiced) in zip(f0s, refs, strict=True):
            n = min(len(f0), len(ref))
            f, r, v = f0[:n], ref[:n], voiced[:n]
            b = v & (f > 0)
            err.append(1200 * np.abs(np.log2(f[b] / r[b])))
            ratio.append(np.log2(f[b] / r[b]))
            both, mine, theirs = both + b.sum(), mine + (f > 0).sum(), theirs + v.sum()
        err, ratio = np.concatenate(err), np.concatenate(ratio)
        tones = max(float(np.max(1200 * np.abs(np.log2(ours(tone(f)[None], rate)[0, 5:-5] / f))))
                    for f in TONES)
        print(f"| {rate} | {np.median(err):.1f} | {np.mean(err > 50):.1%} | "
              f"{np.mean(ratio < -0.9):.1%} | {np.mean(ratio > 0.9):.1%} | {both / mine:.0%} | "
              f"{both / theirs:.0%} | {tones:.2f} |")


if __name__ == "__main__":
    main()
