"""Turn the splits of a Hugging Face dataset into a :class:`Corpus`: column mapping, labels,
and a reader that hands each utterance's audio bytes to the decoder.

Columns are named by ``options`` (role -> column; the command line's ``--audio-column`` etc.);
roles left out take the defaults in :data:`DEFAULT_COLUMNS`, which are the column names of the
hub's LibriSpeech (``openslr/librispeech_asr``). Audio and speaker are required; a missing id,
chapter or gender column is fine unless it was named explicitly. A missing required or named
column is a :class:`UserError` naming the columns the dataset has.

Same bad-input policy as the folder source (each a :class:`Problem`, never fatal): a record
without a speaker is skipped, so is a second record with an utterance id already seen; a record
whose audio cannot be decoded is skipped at build time; a speaker with no usable gender keeps its
audio with gender "U". Gender comes from ``--gender-map`` (a file of speaker and sex, such as
LibriSpeech's SPEAKERS.TXT) when given, else from the gender column.

Records that are not files are named ``<root>/<split>/<speaker>/<chapter or ->/<row>`` in
problems: a LibriSpeech-shaped name, so choosing speakers keeps the problems of kept speakers.
"""

from __future__ import annotations

import io
from collections import Counter, defaultdict
from pathlib import Path
from typing import TYPE_CHECKING

from featstore.errors import UserError
from featstore.sources.base import UNKNOWN_GENDER, AudioInput, Corpus, Problem, Utterance

if TYPE_CHECKING:
    from datasets import Dataset, Features

DEFAULT_COLUMNS = {"audio": "audio", "speaker": "speaker_id", "gender": "gender", "id": "id",
                   "chapter": "chapter_id"}
REQUIRED = ("audio", "speaker")
# option -> command-line flag, for messages
FLAGS = {**{role: f"--{role}-column" for role in DEFAULT_COLUMNS}, "gender_map": "--gender-map"}
_FEMALE, _MALE = {"f", "female", "woman", "w"}, {"m", "male", "man"}


def flag_names(options: dict[str, str]) -> str:
    return ", ".join(FLAGS.get(k, k) for k in options)


def check_options(options: dict[str, str]) -> None:
    unknown = [k for k in options if k not in FLAGS]
    if unknown:
        raise UserError(f"unknown hf source option(s) {', '.join(unknown)}; "
                        f"known: {', '.join(FLAGS)}")
    if "gender" in options and "gender_map" in options:
        raise UserError("give --gender-column or --gender-map, not both")


def resolve_columns(where: str, features: Features, options: dict[str, str]) -> dict[str, str]:
    """role -> column of this split (roles without a column are left out)."""
    cols = {}
    for role, default in DEFAULT_COLUMNS.items():
        name = options.get(role, default)
        if name in features:
            cols[role] = name
        elif role in REQUIRED or role in options:
            raise UserError(f"{where} has no {role} column '{name}' (set it with "
                            f"{FLAGS[role]}); its columns: {', '.join(features)}")
    if "gender_map" in options:
        cols.pop("gender", None)
    if not _is_audio(features[cols["audio"]]):
        raise UserError(f"{where}: column '{cols['audio']}' is not audio (an Audio feature or "
                        f"bytes and path); it is {features[cols['audio']]}")
    return cols


def _is_audio(feature) -> bool:
    from datasets import Audio

    return isinstance(feature, Audio) or (isinstance(feature, dict) and "bytes" in feature)


def normalise_gender(value: str | None) -> str:
    text = (value or "").strip().lower()
    if text in _FEMALE or text.startswith("female"):
        return "F"
    if text in _MALE or text.startswith("male"):
        return "M"
    return UNKNOWN_GENDER


def read_gender_map(path: str) -> dict[str, str]:
    """speaker -> F/M/U from lines ``speaker|sex|...`` (SPEAKERS.TXT), ``speaker,sex`` or
    ``speaker<whitespace>sex``; lines starting with ; or # are comments."""
    try:
        text = Path(path).expanduser().read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        raise UserError(f"--gender-map {path}: {exc.strerror}") from None
    table = {}
    for line in text.splitlines():
        if not line.strip() or line.lstrip()[0] in ";#":
            continue
        sep = "|" if "|" in line else "," if "," in line else None
        fields = [f.strip() for f in line.split(sep)]
        if len(fields) >= 2 and fields[0]:
            table[fields[0]] = normalise_gender(fields[1])
    if not table:
        raise UserError(f"--gender-map {path} lists no speakers")
    return table


def _labels(ds: Dataset, column: str) -> list[str | None]:
    """A column's values as text (class names for a ClassLabel), None where missing."""
    from datasets import ClassLabel

    feature, values = ds.features[column], ds.select_columns([column]).to_dict()[column]
    if isinstance(feature, ClassLabel):
        return [None if v is None or v < 0 else feature.int2str(v) for v in values]
    return [None if v is None or str(v).strip() == "" else str(v).strip() for v in values]


def record_name(root: str, split: str, speaker: str | None, chapter: str, row: int) -> str:
    if speaker is None:
        return f"{root}/{split}/{row}"
    return f"{root}/{split}/{speaker.replace('/', '_')}/{chapter.replace('/', '_') or '-'}/{row}"


def build_corpus(name: str, root: str, splits: dict[str, Dataset],
                 options: dict[str, str]) -> Corpus:
    """The corpus of ``splits`` (split name -> Dataset; the split becomes the subset)."""
    found: dict[str, Utterance] = {}
    rows: dict[str, tuple[str, int]] = {}  # utterance id -> (split, row)
    problems: list[Problem] = []
    votes: dict[str, Counter] = defaultdict(Counter)  # speaker -> gender column values
    audio_columns = {}
    for split, ds in splits.items():
        cols = resolve_columns(f"{name} split {split}", ds.features, options)
        audio_columns[split] = cols["audio"]
        labels = {role: _labels(ds, col) for role, col in cols.items() if role != "audio"}
        for row in range(len(ds)):
            speaker = labels["speaker"][row]
            chapter = (labels["chapter"][row] if "chapter" in labels else None) or ""
            path = record_name(root, split, speaker, chapter, row)
            if speaker is None:
                problems.append(Problem(path, "no speaker; skipped"))
                continue
            utt_id = labels["id"][row] if "id" in labels else None
            if utt_id is None:
                utt_id = f"{split}-{row:06d}"
                if "id" in labels:
                    problems.append(Problem(path, f"no utterance id; id {utt_id} from the row"))
            if utt_id in found:
                problems.append(Problem(path, f"duplicate utterance id {utt_id}; skipped"))
                continue
            if "gender" in labels:
                votes[speaker][labels["gender"][row]] += 1
            found[utt_id] = Utterance(utt_id, path, speaker, chapter, split)
            rows[utt_id] = (split, row)
    if not found:
        raise UserError(f"no usable records in {name} (split(s) {', '.join(splits) or 'none'})")

    genders = _speaker_genders(root, found.values(), votes, options, problems)
    utterances = [
        Utterance(u.utterance_id, u.path, u.speaker_id, u.chapter_id, u.subset,
                  genders.get(u.speaker_id, UNKNOWN_GENDER))
        for u in (found[k] for k in sorted(found))
    ]
    return Corpus(name=name, root=root, utterances=utterances, problems=problems,
                  reader=RecordReader(splits, audio_columns, rows))


def _speaker_genders(root: str, utts, votes: dict[str, Counter], options: dict[str, str],
                     problems: list[Problem]) -> dict[str, str]:
    """speaker -> F/M/U, one problem per speaker left unknown (and for conflicting labels)."""
    first = {}  # speaker -> its first utterance: where a speaker's problem is filed
    for u in utts:
        first.setdefault(u.speaker_id, u)
    where = {s: str(Path(u.path).parent.parent) for s, u in first.items()}
    if "gender_map" in options:
        table = read_gender_map(options["gender_map"])
        for speaker in first:
            if speaker not in table:
                problems.append(Problem(where[speaker], f"speaker {speaker} not in --gender-map"))
        return {s: table.get(s, UNKNOWN_GENDER) for s in first}
    if not votes:
        problems.insert(0, Problem(root, f"no gender column '{options.get('gender', 'gender')}' "
                                   "and no --gender-map; gender unknown"))
        return {}
    genders = {}
    for speaker in first:
        counts = votes.get(speaker, Counter({None: 1}))
        known = Counter({g: n for v, n in counts.items()
                         if (g := normalise_gender(v)) != UNKNOWN_GENDER})
        genders[speaker] = known.most_common(1)[0][0] if known else UNKNOWN_GENDER
        if not known:
            values = ", ".join(sorted(repr(v) for v in counts if v is not None))
            problems.append(Problem(where[speaker], f"speaker {speaker} has no F/M gender"
                                    f"{f' (values {values})' if values else ''}; gender unknown"))
        elif len(known) > 1:
            problems.append(Problem(where[speaker], f"speaker {speaker} is labelled "
                                    f"{dict(known)}; using {genders[speaker]}"))
    return genders


class _Record(io.BytesIO):
    """Audio bytes that soundfile's error messages name by the record, not by memory address."""

    def __init__(self, data: bytes, name: str):
        super().__init__(data)
        self.name = name

    def __repr__(self) -> str:
        return repr(self.name)


class RecordReader:
    """Reads an utterance's audio from its dataset row as encoded bytes (never decoded by
    ``datasets``, so no audio decoder package is needed). Safe in forked workers: the datasets
    are memory-mapped Arrow files."""

    def __init__(self, splits: dict[str, Dataset], audio_columns: dict[str, str],
                 rows: dict[str, tuple[str, int]]):
        from datasets import Audio

        self.rows = rows
        self.columns = audio_columns
        self.audio = {}
        for split, ds in splits.items():
            col = audio_columns[split]
            ds = ds.select_columns([col])
            if isinstance(ds.features[col], Audio):
                ds = ds.cast_column(col, Audio(decode=False))
            self.audio[split] = ds

    def __call__(self, utt: Utterance) -> AudioInput:
        from featstore.audio import AudioError

        split, row = self.rows[utt.utterance_id]
        value = self.audio[split][row][self.columns[split]] or {}
        if value.get("bytes"):
            return _Record(value["bytes"], utt.path)
        if value.get("path") and Path(value["path"]).is_file():
            return value["path"]
        where = f" (path {value['path']} is not a file)" if value.get("path") else ""
        raise AudioError(f"no audio in the record{where}")
