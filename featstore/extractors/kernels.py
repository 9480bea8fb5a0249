"""The numba CPU kernels of the frame extractors (pitch, fbank).

Torch on the CPU runs each elementwise step as its own pass over a block's tensors; where a
step is a handful of such passes over data much larger than the arithmetic (YIN's lag-domain
steps, Kaldi's framing, the power spectrum), one fused loop per frame is several times
cheaper. Each kernel does the arithmetic of the torch ops it replaces, in the same precision
(float32 values; float64 where torch accumulates in float64), so the two agree to float32
rounding; tests compare them (tests/test_pitch.py, tests/test_fbank.py), and CUDA keeps the
torch ops. ``nogil``: the block workers of ``featstore.extractors.blocks`` run kernels in
parallel; ``cache``: compiled once per machine, then loaded (~0.4 core-s per process).
"""

from __future__ import annotations

import functools
import threading

import numba
import numpy as np

TINY = np.float32(np.finfo(np.float32).tiny)
OFF = np.float32(8.0)  # d' off the troughs (``Yin.OFF``): past any bound (at most 2 + margin)
GROUP = 8  # frames whose running sums ``yin_frames`` adds side by side
TILE = 1024  # output samples ``decimate`` keeps in L1 while it adds every tap


@numba.njit(nogil=True, cache=True, fastmath=False)
def yin_frames(x: np.ndarray, d: np.ndarray, step: int, per_window: int, hop: int,
               window: int, lo: int, hi: int, sample_rate: float, f0_min: float, f0_max: float,
               threshold: float, margin: float, voicing: float, f0: np.ndarray, per: np.ndarray,
               voiced: np.ndarray) -> None:
    """YIN's lag-domain steps (``Yin._lag_steps`` in ``featstore.extractors.pitch`` are the
    torch ops): F0, periodicity and voicing [n, frames] of padded chunks ``x`` [n, padded]
    (float32) from the row correlations ``d`` [n, rows, >= hi + 2] of ``Yin.correlations``:
    frame t's correlation is the sum of rows t * step .. t * step + per_window - 1.

    Frames go ``GROUP`` at a time: each one's d, then their running sums over the lags side by
    side (each a float64 chain of additions, in lag order as before: the same values, but
    eight independent chains where one frame's would wait on every addition), then each
    one's d', trough rule and parabola."""
    n, frames = f0.shape
    span = hi - lo + 3  # d' at lags lo - 1 .. hi + 1
    cmndf = np.empty(span, dtype=np.float32)
    v = np.empty(span, dtype=np.float32)
    bits, one = v.view(np.int32), np.empty(1, dtype=np.int32)
    diff = np.zeros((GROUP, hi + 2), dtype=np.float32)
    runs = np.empty((GROUP, span), dtype=np.float32)
    run = np.zeros(GROUP, dtype=np.float64)  # float64, as torch's CPU cumsum accumulates float32
    corr = np.empty(hi + 2, dtype=np.float32)
    for i in range(n):
        # energy of x[i, s : s + window] for every start s: float64 running sum, then float32
        power = np.zeros(x.shape[1] + 1, dtype=np.float64)
        acc = 0.0
        for s in range(x.shape[1]):
            sample = np.float64(x[i, s])
            acc += sample * sample
            power[s + 1] = acc
        energy = (power[window:] - power[:-window]).astype(np.float32)
        for t0 in range(0, frames, GROUP):
            for g in range(GROUP):  # d of each frame (the last group repeats its last frame)
                t = min(t0 + g, frames - 1)
                base, e0, row = t * hop, energy[t * hop], diff[g]
                first = d[i, t * step]
                if per_window == 2:  # the default (two blocks a window): the rows' sum fused into d
                    second = d[i, t * step + 1]
                    for tau in range(1, hi + 2):  # vectorised: no dependency between lags
                        dt = (energy[base + tau] + e0) - np.float32(2.0) * (first[tau]
                                                                            + second[tau])
                        row[tau] = dt if dt > 0 else np.float32(0.0)
                else:
                    corr[:] = first[: hi + 2]
                    for c in range(1, per_window):
                        other = d[i, t * step + c]
                        for tau in range(1, hi + 2):
                            corr[tau] += other[tau]
                    for tau in range(1, hi + 2):  # vectorised
                        dt = (energy[base + tau] + e0) - np.float32(2.0) * corr[tau]
                        row[tau] = dt if dt > 0 else np.float32(0.0)
            run[:] = 0.0
            for tau in range(1, lo - 1):
                for g in range(GROUP):
                    run[g] += diff[g, tau]
            for tau in range(lo - 1, hi + 2):
                for g in range(GROUP):
                    run[g] += diff[g, tau]
                    runs[g, tau - lo + 1] = np.float32(run[g])
            for g in range(min(GROUP, frames - t0)):
                t = t0 + g
                e0 = energy[t * hop]
                for k in range(span):  # vectorised
                    r, tau = runs[g, k], k + lo - 1
                    cmndf[k] = np.float32(1.0) if r <= TINY else diff[g, tau] * np.float32(tau) / r
                # troughs of d' in [lo, hi]: first below threshold or within margin of the
                # deepest; v: d' at troughs, OFF elsewhere (past any bound, as in the torch ops)
                for k in range(1, span - 1):  # vectorised: a select per lag
                    c = cmndf[k]
                    trough = (c <= cmndf[k - 1]) & (c < cmndf[k + 1])
                    v[k] = c if trough else OFF
                # the deepest trough as the minimum of the bit patterns: d' >= 0, so they order
                # as the values do, and an integer minimum vectorises where a float one cannot
                low = bits[1]
                for k in range(2, span - 1):
                    low = min(low, bits[k])
                one[0] = low
                deepest = min(one.view(np.float32)[0], np.float32(2.0))  # 2: no trough
                bound = max(deepest + np.float32(margin), np.float32(threshold))
                idx, found = 0, False
                for k in range(1, span - 1):
                    if v[k] <= bound:
                        idx, found = k - 1, True
                        break
                a, c0, c = cmndf[idx], cmndf[idx + 1], cmndf[idx + 2]
                curve = a - np.float32(2.0) * c0 + c
                shift = np.float32(0.0)
                if curve > 0:
                    shift = np.float32(0.5) * (a - c) / max(curve, TINY)
                    shift = min(max(shift, np.float32(-1.0)), np.float32(1.0))
                period = np.float32(idx + lo) + shift
                f0[i, t] = min(max(np.float32(sample_rate) / period, np.float32(f0_min)),
                               np.float32(f0_max))
                per[i, t] = min(max(np.float32(1.0) - c0, np.float32(0.0)), np.float32(1.0))
                voiced[i, t] = c0 < voicing and found and e0 > 0


@numba.njit(nogil=True, cache=True, fastmath=True)
def mul_conj(a: np.ndarray, b: np.ndarray) -> None:
    """``a *= conj(b)`` for complex arrays viewed as [..., 2] float32 (re, im): one pass where
    torch's complex product with a conjugate view takes two."""
    x, y = a.reshape(-1), b.reshape(-1)
    for j in range(x.size // 2):
        ar, ai, br, bi = x[2 * j], x[2 * j + 1], y[2 * j], y[2 * j + 1]
        x[2 * j] = ar * br + ai * bi
        x[2 * j + 1] = ai * br - ar * bi



@numba.njit(nogil=True, cache=True)
def decimate(x: np.ndarray, q: int, offsets: np.ndarray, weights: np.ndarray,
             out: np.ndarray) -> None:
    """``out[i, j] = sum_p weights[p] (x[i, q j - offsets[p]] + x[i, q j + offsets[p]])``
    (the tap at offset 0 once; zero outside the row) for ``x`` [n, samples] and ``out``
    [n, m]: a symmetric filter given by its taps at offsets >= 0, ascending
    (``featstore.extractors.decimate``). Each row is split into its q phases (x[q k + r] for
    each r, zero-padded); then per tile of outputs, one contiguous pass per pair of taps."""
    n, m = out.shape
    length = x.shape[1]
    pad = offsets[-1] // q + 2
    phase = np.zeros((q, m + 2 * pad), dtype=np.float32)
    acc = np.empty(TILE, dtype=np.float32)
    for i in range(n):
        xi, row = x[i], out[i]
        for r in range(q):
            for k in range((length - r + q - 1) // q):  # the rest of the row stays zero
                phase[r, pad + k] = xi[q * k + r]
        for t0 in range(0, m, TILE):  # a tile of outputs in L1 while every tap adds to it
            size = min(m - t0, TILE)
            acc[:size] = np.float32(0.0)
            for p in range(offsets.shape[0]):
                o, w = offsets[p], weights[p]
                a, b = o // q, (-o) // q  # x[q j + o] = phase[o - q a][j + a]
                up = phase[o - q * a, pad + a + t0 : pad + a + t0 + size]
                down = phase[-o - q * b, pad + b + t0 : pad + b + t0 + size]
                if o == 0:
                    for j in range(size):  # vectorised
                        acc[j] += w * up[j]
                else:
                    for j in range(size):  # vectorised
                        acc[j] += w * (down[j] + up[j])
            row[t0 : t0 + size] = acc[:size]


@numba.njit(nogil=True, cache=True)
def kaldi_frames(x: np.ndarray, shift: int, preemphasis: float, window: np.ndarray,
                 out: np.ndarray) -> None:
    """Kaldi's framing of chunks ``x`` [n, samples] into ``out`` [n, frames, n_fft]: per frame
    of ``len(window)`` samples every ``shift``, DC removal, pre-emphasis (the first sample
    against itself), the window; ``out``'s columns past the frame (FFT padding) untouched."""
    n, frames = out.shape[0], out.shape[1]
    length = window.shape[0]
    pre = np.float32(preemphasis)
    part = np.zeros(8, dtype=np.float64)  # float64, as torch's CPU mean accumulates float32
    whole = length - length % 8
    for i in range(n):
        for t in range(frames):
            raw = x[i, t * shift : t * shift + length]
            part[:] = 0.0
            for j in range(0, whole, 8):  # eight running sums: they vectorise, one would not
                for k in range(8):
                    part[k] += raw[j + k]
            total = 0.0
            for k in range(8):
                total += part[k]
            for j in range(whole, length):
                total += raw[j]
            mean = np.float32(total / length)
            frame = out[i, t]
            first = raw[0] - mean
            frame[0] = (first - pre * first) * window[0]
            for j in range(1, length):
                frame[j] = ((raw[j] - mean) - pre * (raw[j - 1] - mean)) * window[j]


@numba.njit(nogil=True, cache=True)
def pcm16(x: np.ndarray, scale: float, lo: float, hi: float, out: np.ndarray) -> None:
    """``out`` (int16) = ``x`` (float32) times ``scale``, rounded half to even, clamped to
    [lo, hi]: the torch ops of the audio extractor in one pass (four as tensor ops)."""
    s, low, high = np.float32(scale), np.float32(lo), np.float32(hi)
    for i in range(x.shape[0]):
        for j in range(x.shape[1]):  # vectorised
            out[i, j] = np.int16(min(max(np.rint(x[i, j] * s), low), high))


@numba.njit(nogil=True, cache=True)
def power(spec: np.ndarray, out: np.ndarray) -> None:
    """|z|^2 of complex ``spec`` viewed as [..., 2] float32 (re, im) into ``out`` [...]."""
    z, p = spec.reshape(-1), out.reshape(-1)
    for j in range(p.size):
        p[j] = z[2 * j] * z[2 * j] + z[2 * j + 1] * z[2 * j + 1]


def _warm() -> None:
    """One call of each kernel with the array ranks the extractors pass (numba compiles, or
    loads, one specialisation per rank): spectra [n, rows, bins, 2], powers [n, rows, bins]."""
    f = np.zeros((1, 1, 4, 2), np.float32)
    mul_conj(f, f.copy())
    power(f, np.zeros((1, 1, 4), np.float32))
    x = np.zeros((1, 64), np.float32)
    offsets, weights = np.array([0, 1]), np.ones(2, np.float32)
    decimate(x, 2, offsets, weights, np.zeros((1, 40), np.float32)[:, 4:36])  # a view, as YIN's
    kaldi_frames(x, 8, 0.97, np.ones(16, np.float32), np.zeros((1, 1, 16), np.float32))
    pcm16(x, 32768.0, -32768.0, 32767.0, np.zeros((1, 64), np.int16))
    yin_frames(x, np.zeros((1, 1, 16), np.float32), 1, 1, 8, 8, 2, 8, 16000.0, 50.0, 500.0,
               0.1, 0.1, 0.35, np.zeros((1, 1), np.float32), np.zeros((1, 1), np.float32),
               np.zeros((1, 1), np.bool_))


@functools.cache
def warm_in_background() -> threading.Thread:
    """Load (or compile) every kernel on a side thread, once per process: an extractor calls
    it when built, so the load overlaps the build's start instead of delaying its first
    batch. A kernel's first call waits for the load (numba's compiler lock)."""
    thread = threading.Thread(target=_warm, name="kernels-warm", daemon=True)
    thread.start()
    return thread
