"""The manifest types every corpus source produces: utterances with labels, and problems."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

UNKNOWN_GENDER = "U"


@dataclass(frozen=True)
class Utterance:
    """One audio file and its labels. ``gender`` is "F", "M" or "U" (unknown)."""

    utterance_id: str  # LibriSpeech style: "<speaker>-<chapter>-<utt>"
    path: str
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
