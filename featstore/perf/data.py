"""The audio every measurement sees: the first files of a source, optionally tiled ``scale``
times under new speaker ids, as a LibriSpeech-layout folder of symlinks (so ``build --source``
and the classic loop read exactly the same files), and the decode row."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from featstore import audio
from featstore.perf.timing import make_row, timed
from featstore.sources.base import Utterance


def file_seconds(path: str) -> float:
    import soundfile as sf

    try:
        info = sf.info(path)
        return info.frames / info.samplerate
    except Exception:  # unreadable: decode will say why; it adds no audio
        return 0.0


def select(utts: list[Utterance], cap: float | None) -> list[Utterance]:
    """The first utterances (in id order) totalling at least ``cap`` seconds; all if None."""
    if cap is None:
        return list(utts)
    out, total = [], 0.0
    for u in utts:
        if total >= cap:
            break
        out.append(u)
        total += file_seconds(u.path)
    return out


def copy_id(speaker: str, copy: int, width: int) -> str:
    """Speaker id of tile ``copy`` (0: the original): the copy number, then the original id
    zero-padded to ``width`` (the longest id), so ids of all copies are distinct."""
    return speaker if copy == 0 else f"{copy}{speaker.zfill(width)}"


def make_view(folder: Path, utts: list[Utterance], copies: int = 1) -> list[Utterance]:
    """A LibriSpeech-layout folder of symlinks to ``utts``, ``copies`` times over (copy k under
    new speaker ids, see ``copy_id``), with its SPEAKERS.TXT; returns the view's utterances in
    id order, their paths inside ``folder``."""
    width = max((len(u.speaker_id) for u in utts), default=1)
    out, speakers = [], {}
    for k in range(copies):
        for u in utts:
            spk = copy_id(u.speaker_id, k, width)
            utt_id = f"{spk}-{u.chapter_id}-{u.utterance_id.rsplit('-', 1)[-1]}"
            dest = folder / u.subset / spk / u.chapter_id / f"{utt_id}{Path(u.path).suffix}"
            dest.parent.mkdir(parents=True, exist_ok=True)
            dest.symlink_to(Path(u.path).resolve())
            out.append(Utterance(utt_id, str(dest), spk, u.chapter_id, u.subset, u.gender))
            speakers[spk] = (u.gender, u.subset)
    lines = [f"{s} | {g} | {sub} | 0 | perf" for s, (g, sub) in sorted(speakers.items())]
    (folder / "SPEAKERS.TXT").write_text("\n".join(lines) + "\n")
    return sorted(out, key=lambda u: u.utterance_id)


def warm_page_cache(utts: list[Utterance]) -> None:
    for u in utts:  # so no row pays for the disk and the first does not pay alone
        try:
            Path(u.path).read_bytes()
        except OSError:
            pass


def audio_seconds(decoded: list[audio.Chunks], sample_rate: int) -> float:
    """Seconds of real audio in the chunks: what the store holds of these files."""
    return float(sum(int(d.counts.sum()) for d in decoded)) / sample_rate


def measure_decode(utts: list[Utterance], sample_rate: int, chunk_samples: int, repeat: int
                   ) -> tuple[dict, list[audio.Chunks]]:
    """The decode row, and the decoded files (chunks, counts) the other rows reuse."""
    decoded: list[audio.Chunks] = []

    def run() -> None:
        decoded[:] = [audio.load_chunks(u.path, sample_rate, chunk_samples) for u in utts]

    runs = [timed(run) for _ in range(repeat)]
    row = make_row("decode", "decode", "decode", audio_seconds(decoded, sample_rate), runs,
                   f"soundfile + resample + chunk of {len(utts)} files, 1 thread (rtf per core)")
    return row, decoded


def stacked(decoded: list[audio.Chunks]) -> tuple[np.ndarray, np.ndarray]:
    """All chunks [n, samples] and their real-sample counts [n], in order."""
    return (np.concatenate([d.chunks for d in decoded]),
            np.concatenate([d.counts for d in decoded]))
