"""Utterances that are a time span (and channels) of an audio file, named by their path.

A segment's ``Utterance.path`` is the file's path with a fragment saying which part of it::

    /data/rec1.flac#offset=12.5&duration=3.25&channel=1&recording=rec1

Every key is optional: ``offset`` and ``duration`` in seconds (a span; none: the whole file),
``channel`` the file's channel column(s) to keep (comma list; none: all of them, down-mixed by
the decoder), ``recording`` the lhotse recording id when it is not the file's stem. A whole file
with all channels is just its path, exactly as the folder source names it. Keeping the span in
the path puts it in plan.json (a resume checks it; an export reads it back) and lets any worker
read the audio from the path alone: :func:`read_segment` is the ``Corpus.reader`` of segment
sources, a plain module-level function, so it pickles to Ray workers as a name.

Samples follow lhotse's rule: a span starts at ``round(offset * rate)`` and holds
``round(duration * rate)`` samples at the file's own rate.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qsl, quote

import numpy as np
import soundfile as sf

from featstore.sources.base import AudioInput, Utterance

KEYS = ("offset", "duration", "channel", "recording")
# seconds a span may run past its recording's ends: lhotse's validate_recordings_and_supervisions
END_TOLERANCE = 1e-3


@dataclass(frozen=True)
class Segment:
    file: str
    offset: float = 0.0
    duration: float | None = None  # None: to the end of the file
    channels: tuple[int, ...] | None = None  # None: all, down-mixed
    recording: str | None = None  # None: the file's stem

    @property
    def recording_id(self) -> str:
        return self.recording if self.recording is not None else Path(self.file).stem

    def is_whole_file(self) -> bool:
        return self.offset == 0 and self.duration is None and self.channels is None


def segment_path(seg: Segment) -> str:
    """The utterance path naming ``seg`` (the bare file path for a whole file)."""
    parts = []
    if seg.offset or seg.duration is not None:
        parts.append(f"offset={seg.offset!r}")
    if seg.duration is not None:
        parts.append(f"duration={seg.duration!r}")
    if seg.channels is not None:
        parts.append("channel=" + ",".join(str(c) for c in seg.channels))
    if seg.recording is not None and seg.recording != Path(seg.file).stem:
        parts.append("recording=" + quote(seg.recording, safe=""))  # no '/': parents stay real
    return seg.file + ("#" + "&".join(parts) if parts else "")


def parse_segment(path: str) -> Segment:
    """The segment an utterance path names (a path without a fragment of KEYS: a whole file)."""
    head, sep, fragment = path.rpartition("#")
    fields = dict(parse_qsl(fragment, keep_blank_values=True)) if sep else {}
    if not sep or not fields or set(fields) - set(KEYS):
        return Segment(path)
    channels = fields.get("channel")
    return Segment(
        head,
        float(fields.get("offset", 0.0)),
        float(fields["duration"]) if "duration" in fields else None,
        tuple(int(c) for c in channels.split(",")) if channels else None,
        fields.get("recording"),
    )


def read_segment(utt: Utterance) -> AudioInput:
    """What to decode for ``utt``: the file itself for a whole file, else the span and channels
    as an in-memory float WAV at the file's rate (the decoder down-mixes and resamples it as it
    would the file). Raises AudioError for a span the file does not hold."""
    seg = parse_segment(utt.path)
    if seg.is_whole_file():
        return seg.file
    data, rate = _read(seg)
    buf = io.BytesIO()
    sf.write(buf, data, rate, format="WAV", subtype="FLOAT")  # float32: lossless for the read
    buf.seek(0)
    buf.name = utt.path  # soundfile's messages name the segment
    return buf


def _read(seg: Segment) -> tuple[np.ndarray, int]:
    from featstore.audio import AudioError

    try:
        with sf.SoundFile(seg.file) as f:
            rate, frames = f.samplerate, f.frames
            start = max(0, round(seg.offset * rate))
            n = frames - start if seg.duration is None else round(seg.duration * rate)
            if start < 0 or start >= frames or start + n > frames + END_TOLERANCE * rate:
                raise AudioError(f"segment {seg.offset}s + {seg.duration}s is outside the file "
                                 f"({frames / rate:.3f}s)")
            n = min(n, frames - start)
            f.seek(start)
            if f.subtype == "PCM_16":  # as featstore.audio.decode reads it: the same floats
                data = f.read(n, dtype="int16", always_2d=True).astype(np.float32)
                data *= np.float32(1 / 32768)
            else:
                data = f.read(n, dtype="float32", always_2d=True)
    except AudioError:
        raise
    except Exception as exc:  # soundfile raises several types for missing / corrupt files
        raise AudioError(f"cannot decode: {str(exc).splitlines()[0][:200]}") from None
    if seg.channels is not None:
        bad = [c for c in seg.channels if not 0 <= c < data.shape[1]]
        if bad:
            raise AudioError(f"no channel {bad[0]}: the file has {data.shape[1]}")
        data = data[:, list(seg.channels)]
    return data, rate
