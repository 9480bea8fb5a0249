"""Scan a LibriSpeech-layout corpus on disk into a :class:`Corpus`.

Layout: ``<root>/<subset>/<speaker>/<chapter>/<speaker>-<chapter>-<utt>.flac`` with
``<root>/SPEAKERS.TXT`` giving each reader's sex. ``root`` may also be one subset folder, in
which case SPEAKERS.TXT is looked for in its parent.

Policy for files that do not fit (each recorded as a :class:`Problem`, never fatal):

* audio at the right depth whose name is not ``<speaker>-<chapter>-<utt>`` of its folders is
  kept; its ids come from the folders and the id is ``<speaker>-<chapter>-<file stem>``;
* audio at any other depth is skipped, since speaker and chapter cannot be known;
* a second file with an utterance id already seen (e.g. ``x.flac`` next to ``x.wav``) is skipped;
* a speaker missing from SPEAKERS.TXT keeps its audio with gender "U" (one problem per speaker);
  a missing SPEAKERS.TXT gives gender "U" everywhere and a single problem.
"""

from __future__ import annotations

import os
import re
from dataclasses import replace
from pathlib import Path

from featstore.errors import UserError
from featstore.sources.base import UNKNOWN_GENDER, Corpus, Problem, Utterance

AUDIO_SUFFIXES = (".flac", ".wav")
SPEAKERS_FILE = "SPEAKERS.TXT"
_UTT_NAME = re.compile(r"^(?P<speaker>[^-]+)-(?P<chapter>[^-]+)-(?P<utt>[^-]+)$")


def read_speakers_txt(path: str | os.PathLike) -> dict[str, tuple[str, str]]:
    """Parse SPEAKERS.TXT into ``{speaker_id: (sex, subset)}``.

    ``;`` lines are comments. Fields are ``ID|SEX|SUBSET|MINUTES|NAME``; NAME may itself contain
    '|' (it does in the official file), hence the maxsplit. A sex other than F/M becomes "U".
    Lines with fewer than three fields are ignored rather than fatal: the table is only labels.
    """
    speakers: dict[str, tuple[str, str]] = {}
    text = Path(path).read_text(encoding="utf-8", errors="replace")
    for line in text.splitlines():
        if not line.strip() or line.lstrip().startswith(";"):
            continue
        fields = [f.strip() for f in line.split("|", 4)]
        if len(fields) < 3 or not fields[0]:
            continue
        sex = fields[1].upper()
        speakers[fields[0]] = (sex if sex in ("F", "M") else UNKNOWN_GENDER, fields[2])
    return speakers


def _is_audio(name: str) -> bool:
    return name.lower().endswith(AUDIO_SUFFIXES) and not name.startswith(".")


def _subset_dirs(root: Path) -> tuple[dict[str, Path], Path | None]:
    """Map subset name -> folder, and where SPEAKERS.TXT should be.

    ``root`` is a corpus root if it holds SPEAKERS.TXT, or (without one) if its audio sits four
    levels down; otherwise it is taken as a single subset folder.
    """
    if (root / SPEAKERS_FILE).is_file():
        is_corpus_root = True
    elif (root.parent / SPEAKERS_FILE).is_file():
        is_corpus_root = False
    elif (root / "LibriSpeech").is_dir():  # the folder an archive was extracted into
        return _subset_dirs(root / "LibriSpeech")
    else:
        is_corpus_root = any(
            _is_audio(p.name) for p in root.glob("*/*/*/*") if not p.name.startswith(".")
        )
    if not is_corpus_root:
        return {root.name: root}, root.parent / SPEAKERS_FILE
    subsets = {
        p.name: p for p in sorted(root.iterdir()) if p.is_dir() and not p.name.startswith(".")
    }
    return subsets, root / SPEAKERS_FILE


def _scan_subset(
    subset: str, folder: Path, utterances: dict[str, Utterance], problems: list[Problem]
) -> None:
    """Add the audio under one subset folder to ``utterances`` (keyed by id, first wins)."""
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        rel = Path(dirpath).relative_to(folder).parts
        for name in sorted(filter(_is_audio, filenames)):
            path = Path(dirpath, name)
            if len(rel) != 2:
                problems.append(Problem(str(path), "not in <subset>/<speaker>/<chapter>/; skipped"))
                continue
            speaker, chapter = rel
            stem = Path(name).stem
            m = _UTT_NAME.match(stem)
            if m and (m["speaker"], m["chapter"]) == (speaker, chapter):
                utt_id = stem
            else:
                utt_id = f"{speaker}-{chapter}-{stem}"
                why = f"name is not {speaker}-{chapter}-<utt>; id taken from folders"
                problems.append(Problem(str(path), why))
            if utt_id in utterances:
                problems.append(Problem(str(path), f"duplicate utterance id {utt_id}; skipped"))
                continue
            utterances[utt_id] = Utterance(utt_id, str(path), speaker, chapter, subset)


def scan_librispeech(root: str | os.PathLike, subsets: list[str] | None = None) -> Corpus:
    """Scan a LibriSpeech corpus root (or one subset folder); ``subsets`` filters by folder name.

    Raises UserError for a missing root, an unknown subset name, or a tree with no audio.
    Utterances come back sorted by utterance id so runs are reproducible.
    """
    root = Path(root).expanduser().resolve()
    if not root.is_dir():
        raise UserError(f"source path {root} does not exist or is not a folder")
    available, speakers_path = _subset_dirs(root)
    if subsets:
        unknown = [s for s in subsets if s not in available]
        if unknown:
            raise UserError(
                f"unknown subset(s) {', '.join(unknown)} under {root}; "
                f"available: {', '.join(available) or 'none'}"
            )
        available = {s: available[s] for s in dict.fromkeys(subsets)}

    found: dict[str, Utterance] = {}
    problems: list[Problem] = []
    for subset, folder in available.items():
        _scan_subset(subset, folder, found, problems)
    if not found:
        raise UserError(
            f"no audio ({'/'.join(AUDIO_SUFFIXES)}) found under {root}"
            f" in subset(s) {', '.join(available) or 'none'}"
        )

    table: dict[str, tuple[str, str]] | None = None
    if speakers_path is not None and speakers_path.is_file():
        table = read_speakers_txt(speakers_path)
    else:
        problems.insert(0, Problem(str(speakers_path), "SPEAKERS.TXT not found; gender unknown"))

    utterances: list[Utterance] = []
    unlisted: set[str] = set()
    for utt_id in sorted(found):
        utt = found[utt_id]
        if table is not None:
            if utt.speaker_id in table:
                utt = replace(utt, gender=table[utt.speaker_id][0])
            elif utt.speaker_id not in unlisted:
                unlisted.add(utt.speaker_id)
                problems.append(
                    Problem(str(Path(utt.path).parent.parent),
                            f"speaker {utt.speaker_id} not in SPEAKERS.TXT")
                )
        utterances.append(utt)

    return Corpus(
        name=f"LibriSpeech at {root} ({', '.join(available)})",
        root=str(root),
        utterances=utterances,
        problems=problems,
    )
