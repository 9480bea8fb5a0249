"""The classic way, as notebooks do it: ``librosa.load`` + ``librosa.feature.mfcc`` one file
(and one 2 s chunk) at a time, with our parameters and chunk policy. One source for both the
in-process runs (exec'd) and the new-process runs (``python -c``), so both run the very same
code."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

from featstore.extractors import ExtractContext
from featstore.extractors.configs import MFCCConfig
from featstore.perf.timing import run_process, timed
from featstore.sources.base import Utterance

CODE = '''
import numpy as np
import librosa

def classic_mfcc(path, chunk, sr, n_mfcc, n_fft, hop_length, n_mels):
    y, _ = librosa.load(path, sr=sr)
    feats, real = [], 0
    for start in range(0, max(len(y) - chunk, 0) + 1, chunk):
        c = y[start:start + chunk]
        real += len(c)
        if len(c) < chunk:
            c = np.pad(c, (0, chunk - len(c)))
        feats.append(librosa.feature.mfcc(y=c, sr=sr, n_mfcc=n_mfcc, n_fft=n_fft,
                                          hop_length=hop_length, n_mels=n_mels).T)
    return feats, real
'''
MAIN = '''
import sys
paths = open(sys.argv[1]).read().splitlines()
args = [int(a) for a in sys.argv[3:]]
out = []
for p in paths:
    out += classic_mfcc(p, *args)[0]
np.save(sys.argv[2], np.stack(out))
'''
# The strongest honest classic baseline: one librosa.feature.mfcc per whole file (no chunking),
# each result saved, as a script would do it.
WHOLE_FILE = '''
import os
import sys
import numpy as np
import librosa
paths = open(sys.argv[1]).read().splitlines()
sr, n_mfcc, n_fft, hop_length, n_mels = (int(a) for a in sys.argv[3:])
for i, p in enumerate(paths):
    y, _ = librosa.load(p, sr=sr)
    m = librosa.feature.mfcc(y=y, sr=sr, n_mfcc=n_mfcc, n_fft=n_fft, hop_length=hop_length,
                             n_mels=n_mels)
    np.save(os.path.join(sys.argv[2], f"{i}.npy"), m.T)
'''
MISSING = "skipped: librosa is not installed (a dev dependency)"


def classic_function() -> Callable | None:
    """``classic_mfcc(path, *mfcc_args)`` -> (features, real samples); None without librosa."""
    namespace: dict = {}
    try:
        exec(CODE, namespace)  # noqa: S102 -- our own constant, see CODE
    except ImportError:
        return None
    return namespace["classic_mfcc"]


def mfcc_args(context: ExtractContext) -> tuple[int, ...]:
    """The classic script's arguments: the context's chunking, our MFCC defaults."""
    c = MFCCConfig()
    return (context.chunk_samples, context.sample_rate, c.n_mfcc, c.n_fft, c.hop_length,
            c.n_mels)


def in_process(utts: list[Utterance], context: ExtractContext
               ) -> tuple[Callable[[], float], list[int]] | None:
    """A timed call of the classic loop over ``utts`` in this process (warmed up: librosa's
    lazy imports and numba caches), and a list that receives the real samples it saw; None
    without librosa."""
    classic = classic_function()
    if classic is None:
        return None
    args = mfcc_args(context)
    classic(utts[0].path, *args)
    real: list[int] = []

    def run() -> float:
        return timed(lambda: real.append(sum(classic(u.path, *args)[1] for u in utts)))

    return run, real


def new_process(utts: list[Utterance], context: ExtractContext, tmp: Path
                ) -> tuple[Callable[[], float], list[float]] | None:
    """A timed run of the classic loop as its own ``python -c`` process (start-up and imports
    included), and a list that receives each run's peak memory (MB); None without librosa."""
    if classic_function() is None:
        return None
    paths = tmp / "classic-files.txt"
    paths.write_text("\n".join(u.path for u in utts) + "\n")
    args = [str(a) for a in mfcc_args(context)]
    peaks: list[float] = []

    def run() -> float:
        seconds, peak = run_process([sys.executable, "-c", CODE + MAIN, str(paths),
                                     str(tmp / "classic.npy"), *args], tmp,
                                    "the classic librosa script")
        peaks.append(peak)
        return seconds

    return run, peaks


def whole_file_process(utts: list[Utterance], context: ExtractContext, tmp: Path
                       ) -> Callable[[], float] | None:
    """A timed run of ``WHOLE_FILE`` as its own ``python -c`` process (start-up and imports
    included); None without librosa."""
    if classic_function() is None:
        return None
    paths = tmp / "whole-file-paths.txt"
    paths.write_text("\n".join(u.path for u in utts) + "\n")
    out = tmp / "whole-file-mfcc"
    out.mkdir(exist_ok=True)
    args = [str(a) for a in mfcc_args(context)[1:]]

    def run() -> float:
        return run_process([sys.executable, "-c", WHOLE_FILE, str(paths), str(out), *args], tmp,
                           "the whole-file librosa script")[0]

    return run
