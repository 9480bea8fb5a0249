"""A tiny synthetic corpus in the LibriSpeech layout, for tests and demos without downloads.

Each speaker is a source-filter "voice": a sawtooth glottal source at the speaker's own f0 (with
vibrato and a falling intonation) shaped by vowel formants scaled by the speaker's vocal-tract
length, plus a spectral tilt and a little breath noise. Women get higher f0 and shorter vocal
tracts than men, as in real speech, so MFCCs separate both gender and speaker. Pure numpy with
one FFT per syllable: the default corpus is written in a fraction of a second.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import soundfile as sf

SAMPLE_RATE = 16_000
SUBSET = "synthetic"
# Formants (F1, F2, F3 in Hz) of a few vowels for an adult male vocal tract (Peterson & Barney).
_VOWELS = np.array(
    [[730, 1090, 2440], [270, 2290, 3010], [300, 870, 2240], [530, 1840, 2480], [570, 840, 2410]],
    dtype=np.float64,
)
_BANDWIDTHS = np.array([90.0, 110.0, 170.0])


def _voices(n_speakers: int, rng: np.random.Generator) -> list[dict]:
    """Per-speaker parameters; even indices are female. f0s are spread over each gender's range
    (then jittered) so no two same-gender speakers share a pitch."""
    voices = []
    n_f = (n_speakers + 1) // 2
    f0_f = np.linspace(180, 260, n_f) if n_f > 1 else np.array([220.0])
    f0_m = np.linspace(85, 150, n_speakers - n_f) if n_speakers - n_f > 1 else np.array([115.0])
    order_f, order_m = rng.permutation(len(f0_f)), rng.permutation(len(f0_m))
    for i in range(n_speakers):
        female = i % 2 == 0
        f0 = f0_f[order_f[i // 2]] if female else f0_m[order_m[i // 2]]
        voices.append({
            "gender": "F" if female else "M",
            "f0": f0 * rng.uniform(0.98, 1.02),
            "vtl": rng.uniform(1.12, 1.25) if female else rng.uniform(0.9, 1.03),
            "tilt": rng.uniform(-1.4, -0.6),  # extra slope of the envelope, in log-log units
            "vib_rate": rng.uniform(4.0, 6.5),
            "vib_depth": rng.uniform(0.004, 0.02),
            "breath": rng.uniform(0.02, 0.08),
            "vowels": rng.permutation(len(_VOWELS))[:3],  # each speaker favours its own vowels
            "envelopes": {},  # (vowel, n_fft) -> filter magnitude, filled by _utterance
        })
    return voices


def _envelope(freqs: np.ndarray, formants: np.ndarray, tilt: float) -> np.ndarray:
    """Cascade of second-order resonances times a power-law tilt (magnitude only)."""
    gain = np.ones_like(freqs)
    for f, b in zip(formants, _BANDWIDTHS, strict=True):
        gain *= f * f / np.sqrt((f * f - freqs**2) ** 2 + (b * freqs) ** 2)
    return gain * (1.0 + freqs / 500.0) ** tilt


def _utterance(voice: dict, seconds: float, rng: np.random.Generator) -> np.ndarray:
    n = int(seconds * SAMPLE_RATE)
    t = np.arange(n, dtype=np.float32) / np.float32(SAMPLE_RATE)
    contour = 1.06 - 0.12 * t / np.float32(seconds)  # declination: pitch falls across the sentence
    vibrato = 1.0 + voice["vib_depth"] * np.sin(np.float32(2 * np.pi * voice["vib_rate"]) * t)
    f0 = np.float32(voice["f0"] * rng.uniform(0.97, 1.03) / SAMPLE_RATE) * contour * vibrato
    phase = np.cumsum(f0, dtype=np.float64)  # in cycles; float64 so long files stay in tune
    noise = rng.standard_normal(n, dtype=np.float32)
    source = (2.0 * (phase % 1.0) - 1.0).astype(np.float32) + np.float32(voice["breath"]) * noise

    out = np.zeros(n, dtype=np.float32)
    start = int(rng.uniform(0.05, 0.15) * SAMPLE_RATE)
    while start < n - 0.1 * SAMPLE_RATE:
        length = min(int(rng.uniform(0.15, 0.35) * SAMPLE_RATE), n - start)
        vowel = int(rng.choice(voice["vowels"]))
        n_fft = 1 << (length - 1).bit_length()  # power of two: odd lengths make the FFT slow
        if (vowel, n_fft) not in voice["envelopes"]:  # few distinct keys: cache, it is costly
            freqs = np.fft.rfftfreq(n_fft, 1.0 / SAMPLE_RATE)
            envelope = _envelope(freqs, _VOWELS[vowel] * voice["vtl"], voice["tilt"])
            voice["envelopes"][vowel, n_fft] = envelope.astype(np.float32)
        spectrum = np.fft.rfft(source[start : start + length], n_fft)
        shaped = np.fft.irfft(spectrum * voice["envelopes"][vowel, n_fft], n_fft)[:length]
        # The Hann window hides FFT wrap-around at the edges and gives syllable-like onsets.
        out[start : start + length] += shaped * (np.hanning(length) * rng.uniform(0.6, 1.0))
        start += length + int(rng.uniform(0.0, 0.08) * SAMPLE_RATE)
    out *= rng.uniform(0.4, 0.8) / (np.max(np.abs(out)) + 1e-9)
    out += np.float32(1e-3) * noise[::-1]  # room noise; reversed so it is not the breath noise
    return out


def make_synthetic(
    out_dir: str | os.PathLike,
    n_speakers: int = 8,
    utterances_per_speaker: int = 4,
    seconds: tuple[float, float] = (2.5, 5.0),
    seed: int = 0,
) -> Path:
    """Write ``SPEAKERS.TXT`` and ``synthetic/<spk>/<chapter>/*.flac`` under ``out_dir``; return it.

    Half the speakers are female (the extra one when odd). Everything follows from ``seed``.
    An existing ``out_dir/synthetic`` is replaced so a smaller corpus leaves no stale speakers.
    """
    if n_speakers < 1 or utterances_per_speaker < 1:
        raise ValueError("n_speakers and utterances_per_speaker must be at least 1")
    root = Path(out_dir)
    (root / "SPEAKERS.TXT").unlink(missing_ok=True)
    shutil.rmtree(root / SUBSET, ignore_errors=True)
    rng = np.random.default_rng(seed)
    lines = [
        "; Synthetic LibriSpeech-layout corpus written by featstore (make_synthetic).",
        f"; seed={seed} speakers={n_speakers} utterances_per_speaker={utterances_per_speaker}",
        ";ID  |SEX| SUBSET           |MINUTES| NAME",
    ]
    for i, voice in enumerate(_voices(n_speakers, rng)):
        speaker, chapter = str(9001 + i), str(900001 + i)
        folder = root / SUBSET / speaker / chapter
        folder.mkdir(parents=True)
        total = 0.0
        for u in range(utterances_per_speaker):
            duration = rng.uniform(*seconds)
            total += duration
            audio = _utterance(voice, duration, rng)
            sf.write(folder / f"{speaker}-{chapter}-{u:04d}.flac", audio, SAMPLE_RATE,
                     format="FLAC", subtype="PCM_16")
        lines.append(f"{speaker:<5}| {voice['gender']} | {SUBSET:<16} | {total / 60:5.2f} | "
                     f"Synthetic {voice['gender']} {i:02d} ({voice['f0']:.0f} Hz)")
    # Written last: its presence means the corpus is complete (resolve_source relies on it).
    (root / "SPEAKERS.TXT").write_text("\n".join(lines) + "\n")
    return root
