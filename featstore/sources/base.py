"""The manifest types every corpus source produces: utterances with labels, and problems."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import BinaryIO

from featstore.errors import UserError

UNKNOWN_GENDER = "U"

# What soundfile reads: a file path or a binary file-like object.
AudioInput = str | BinaryIO


@dataclass(frozen=True)
class Utterance:
    """One audio file and its labels. ``gender`` is "F", "M" or "U" (unknown)."""

    utterance_id: str  # LibriSpeech style: "<speaker>-<chapter>-<utt>"
    path: str  # the audio file, or for a source without files the record's name in problems
    speaker_id: str
    chapter_id: str
    subset: str
    gender: str = UNKNOWN_GENDER


@dataclass(frozen=True)
class Problem:
    """Something wrong with the input that the build survived. Recorded in the store."""

    path: str
    reason: str

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class Corpus:
    """What a source yields: the utterances to extract, and what it had to skip or flag."""

    name: str  # human-readable description of where the audio came from
    root: str
    utterances: list[Utterance]
    problems: list[Problem] = field(default_factory=list)
    # Reads an utterance's audio where it is not a file at Utterance.path (a record of a
    # Hugging Face dataset, say); may raise featstore.audio.AudioError for a record without audio.
    reader: Callable[[Utterance], AudioInput] | None = None


def pick_splits(splits: dict, wanted: list[str] | None, where: str) -> dict:
    """The ``wanted`` splits of a source (``--subsets``), in that order; all when none are
    named; a split the source lacks is a UserError naming the ones it has."""
    if not wanted:
        return splits
    unknown = [s for s in wanted if s not in splits]
    if unknown:
        raise UserError(f"{where} has no split(s) {', '.join(unknown)}; "
                        f"it has {', '.join(splits) or 'none'}")
    return {s: splits[s] for s in dict.fromkeys(wanted)}
