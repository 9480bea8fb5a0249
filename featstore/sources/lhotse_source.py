"""The ``lhotse:`` source: any corpus lhotse prepares (its recording and supervision manifests,
or a cut manifest) as a :class:`Corpus` of segments (see :mod:`featstore.sources.segments`).

Each supervision is one utterance: its id, its time span of the recording (in a cut manifest:
the cut's start plus the supervision's), ``subset`` the split (see
:mod:`featstore.sources.lhotse_manifests`). Labels:

* speaker: the supervision's ``speaker``;
* gender: the supervision's ``gender`` where set (F/M, any spelling featstore.sources.hf_corpus
  reads), else ``--gender-map``; a speaker labelled both ways takes the majority;
* chapter (session): the supervision's (or its cut's) custom field named by
  ``--chapter-column``, else the recording id;
* channels: all of the recording's, down-mixed (a cut's own channels in a cut manifest), or the
  one ``--channel`` names.

Bad input is recorded as problems, never fatal: a recording whose audio file is missing (its
segments skipped), one that is not a single audio file or has lhotse transforms (not applied
here, so skipped), a segment outside its recording, a supervision without speaker, a duplicate
supervision id, a channel the recording lacks, a mixed or padding cut. A file that cannot be
decoded is found, and recorded, at build time, as for every source.
"""

from __future__ import annotations

import os
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from featstore.errors import UserError
from featstore.sources.base import UNKNOWN_GENDER, Corpus, Problem, Utterance, pick_splits
from featstore.sources.hf_corpus import normalise_gender, read_gender_map
from featstore.sources.lhotse_manifests import SplitManifests, find_manifests
from featstore.sources.segments import END_TOLERANCE, Segment, read_segment, segment_path

EXTRA_HINT = 'pip install "featstore[lhotse]"'
# option -> command-line flag
FLAGS = {"gender_map": "--gender-map", "chapter": "--chapter-column", "channel": "--channel"}


def import_lhotse():
    """lhotse, or a one-line UserError naming the extra that installs it."""
    try:
        import lhotse
    except ImportError:
        raise UserError(f"lhotse sources and exports need lhotse: {EXTRA_HINT}") from None
    return lhotse


def check_options(options: dict[str, str]) -> None:
    unknown = [k for k in options if k not in FLAGS]
    if unknown:
        from featstore.sources.hf_corpus import flag_names

        raise UserError(f"{flag_names({k: '' for k in unknown})}: not for lhotse: sources "
                        f"(they take {', '.join(FLAGS.values())})")
    if "channel" in options and not str(options["channel"]).isdigit():
        raise UserError(f"--channel must be a channel number, got {options['channel']}")


def load_lhotse(arg: str | None, subsets: list[str] | None, options: dict[str, str]) -> Corpus:
    """The corpus of a ``lhotse:`` spec."""
    check_options(options)
    splits = pick_splits(find_manifests(arg), subsets, f"lhotse:{arg}")
    lhotse = import_lhotse()
    root = os.path.commonpath([str(Path(p).expanduser().absolute()) for p in arg.split(",") if p])
    builder = _Builder(root, options)
    for split, manifests in splits.items():
        for item in _items(lhotse, manifests, builder.problems):
            builder.add(split, item)
    return builder.corpus(f"lhotse manifests {arg} ({', '.join(splits)})")


@dataclass
class _Item:
    """One supervision with what its utterance needs from its cut and recording."""

    sup: object  # lhotse SupervisionSegment
    recording: object  # lhotse Recording
    manifest: Path
    offset: float = 0.0  # the cut's start in the recording
    channels: list[int] | None = None  # the cut's channels (None: the recording's)
    custom: dict = field(default_factory=dict)  # the cut's custom fields


def _load(lhotse, path: Path, kind):
    try:
        manifest = lhotse.load_manifest(path)
    except Exception as exc:  # bad JSON, unknown manifest type: lhotse raises several kinds
        text = (str(exc).strip() or type(exc).__name__).splitlines()[0][:200]
        raise UserError(f"cannot read lhotse manifest {path}: {text}") from None
    if kind is not None and not isinstance(manifest, kind):
        raise UserError(f"lhotse manifest {path} is a {type(manifest).__name__}, "
                        f"not a {kind.__name__}")
    return manifest


def _items(lhotse, m: SplitManifests, problems: list[Problem]):
    if m.cuts is not None:
        yield from _cut_items(lhotse, _load(lhotse, m.cuts, lhotse.CutSet), m.cuts, problems)
        return
    first, second = (_load(lhotse, p, None) for p in (m.recordings, m.supervisions))
    if isinstance(first, lhotse.SupervisionSet):  # given in the other order
        first, second = second, first
    if not (isinstance(first, lhotse.RecordingSet) and isinstance(second, lhotse.SupervisionSet)):
        raise UserError(f"{m.recordings} and {m.supervisions}: expected a RecordingSet and a "
                        f"SupervisionSet, got {type(first).__name__} and {type(second).__name__}")
    recordings = {r.id: r for r in first}
    for sup in second:
        rec = recordings.get(sup.recording_id)
        if rec is None:
            problems.append(Problem(str(m.supervisions), f"supervision {sup.id}: recording "
                                    f"{sup.recording_id} is not in {m.recordings.name}; skipped"))
            continue
        yield _Item(sup, rec, m.supervisions)


def _cut_items(lhotse, cuts, path: Path, problems: list[Problem]):
    one_recording = (lhotse.MonoCut, lhotse.MultiCut)
    for cut in cuts:
        if not isinstance(cut, one_recording) or not cut.has_recording:
            what = "no audio" if isinstance(cut, one_recording) else f"a {type(cut).__name__}"
            problems.append(Problem(str(path), f"cut {cut.id}: {what} (only cuts of one "
                                    "recording are read); skipped"))
            continue
        if not cut.supervisions:
            problems.append(Problem(str(path), f"cut {cut.id} has no supervisions; skipped"))
            continue
        channels = [cut.channel] if isinstance(cut.channel, int) else list(cut.channel)
        for sup in cut.supervisions:
            yield _Item(sup, cut.recording, path, cut.start, channels, dict(cut.custom or {}))


class _Builder:
    """Turns items into utterances, keeping problems and the votes for each speaker's gender."""

    def __init__(self, root: str, options: dict[str, str]):
        self.root, self.options = root, options
        self.problems: list[Problem] = []
        self.found: dict[str, Utterance] = {}
        self.votes: dict[str, Counter] = defaultdict(Counter)
        self.bad_recordings: dict[str, tuple[str, str]] = {}  # id -> (where, reason)
        self.skipped: Counter = Counter()  # recording id -> segments skipped with it
        self.files: dict[str, str | None] = {}  # recording id -> its file (None: unusable)
        self.no_chapter = 0

    def add(self, split: str, item: _Item) -> None:
        rec, sup = item.recording, item.sup
        file = self._file(rec, item.manifest)
        if file is None:
            self.skipped[rec.id] += 1
            return
        start, duration = item.offset + sup.start, sup.duration
        where = segment_path(Segment(file, start, duration, recording=rec.id))
        reason = self._span_problem(rec, start, duration) or (
            None if sup.speaker and str(sup.speaker).strip() else "no speaker; skipped")
        channels = None if reason else self._channels(rec, item.channels)
        if isinstance(channels, str):
            reason, channels = channels, None
        if reason is None and sup.id in self.found:
            reason = f"duplicate supervision id {sup.id}; skipped"
        if reason:
            self.problems.append(Problem(where, reason))
            return
        start = max(start, 0.0)
        duration = min(duration, rec.duration - start)
        whole = round(start * rec.sampling_rate) == 0 and (
            round(duration * rec.sampling_rate) >= rec.num_samples)
        seg = Segment(file, 0.0 if whole else start, None if whole else duration, channels,
                      rec.id)
        speaker = str(sup.speaker).strip()
        if sup.gender is not None:
            self.votes[speaker][sup.gender] += 1
        self.found[sup.id] = Utterance(sup.id, segment_path(seg), speaker,
                                       self._chapter(item), split)

    def _file(self, rec, manifest: Path) -> str | None:
        """The recording's audio file, or None (its problem noted once) when it cannot be read
        as one."""
        if rec.id in self.files:
            return self.files[rec.id]
        src = rec.sources[0] if len(rec.sources) == 1 else None
        where, reason = str(manifest), None
        if src is None:
            reason = (f"recording {rec.id} has {len(rec.sources)} audio sources (one file per "
                      "channel?): only recordings in one file are read")
        elif src.type != "file":
            reason = f"recording {rec.id} is a '{src.type}' audio source, not a file"
        elif rec.transforms:
            reason = (f"recording {rec.id} has {len(rec.transforms)} lhotse transform(s) "
                      "(speed, volume, resampling...), which featstore does not apply")
        else:
            where = str(Path(src.source).expanduser().absolute())
            if not os.path.isfile(where):
                reason = f"audio file of recording {rec.id} is missing"
        self.files[rec.id] = None if reason else where
        if reason:
            self.bad_recordings[rec.id] = (where, reason)
        return self.files[rec.id]

    @staticmethod
    def _span_problem(rec, start: float, duration: float) -> str | None:
        if duration <= 0:
            return f"empty segment (duration {duration}s); skipped"
        if (start < -END_TOLERANCE or start >= rec.duration
                or start + duration > rec.duration + END_TOLERANCE):
            return (f"segment {start:.3f}s to {start + duration:.3f}s is outside recording "
                    f"{rec.id} (0 to {rec.duration:.3f}s); skipped")
        return None

    def _channels(self, rec, cut_channels: list[int] | None) -> tuple[int, ...] | None | str:
        """The file columns to read (None: all, down-mixed), or a problem."""
        ids = list(rec.sources[0].channels)
        if "channel" in self.options:
            wanted = [int(self.options["channel"])]
            if wanted[0] not in ids:
                return f"recording {rec.id} has channels {ids}: no --channel {wanted[0]}; skipped"
        else:
            wanted = cut_channels or ids
            if sorted(wanted) == sorted(ids):
                return None
            if set(wanted) - set(ids):
                return f"cut channels {wanted} are not all in recording {rec.id} ({ids}); skipped"
        return tuple(ids.index(c) for c in wanted)

    def _chapter(self, item: _Item) -> str:
        name = self.options.get("chapter")
        if name is None:
            return item.recording.id
        value = (item.sup.custom or {}).get(name, item.custom.get(name))
        if value is None or str(value).strip() == "":
            self.no_chapter += 1
            return item.recording.id
        return str(value).strip()

    def corpus(self, name: str) -> Corpus:
        for rec_id, (where, reason) in self.bad_recordings.items():
            self.problems.append(Problem(where, f"{reason}; {self.skipped[rec_id]} segment(s) "
                                         "skipped"))
        if self.no_chapter:
            self.problems.append(Problem(self.root, f"{self.no_chapter} supervision(s) without "
                                         f"custom field '{self.options['chapter']}': chapter is "
                                         "their recording id"))
        if not self.found:
            raise UserError(f"no usable supervisions in {name}")
        genders = self._genders()
        utterances = [Utterance(u.utterance_id, u.path, u.speaker_id, u.chapter_id, u.subset,
                                genders[u.speaker_id])
                      for u in (self.found[k] for k in sorted(self.found))]
        return Corpus(name=name, root=self.root, utterances=utterances, problems=self.problems,
                      reader=read_segment)

    def _genders(self) -> dict[str, str]:
        """speaker -> F/M/U: the supervisions' gender, else --gender-map."""
        first: dict[str, str] = {}  # speaker -> its first utterance path: where problems go
        for u in self.found.values():
            first.setdefault(u.speaker_id, u.path)
        table = read_gender_map(self.options["gender_map"]) if "gender_map" in self.options else {}
        if not table and not any(self.votes.values()):
            self.problems.insert(0, Problem(self.root, "no supervision has a gender and no "
                                            "--gender-map given; gender unknown"))
            return dict.fromkeys(first, UNKNOWN_GENDER)
        genders = {}
        for speaker, where in first.items():
            counts = self.votes.get(speaker, Counter())
            known = Counter({g: n for v, n in counts.items()
                             if (g := normalise_gender(str(v))) != UNKNOWN_GENDER})
            if known:
                genders[speaker] = known.most_common(1)[0][0]
                if len(known) > 1:
                    self.problems.append(Problem(where, f"speaker {speaker} is labelled "
                                                 f"{dict(known)}; using {genders[speaker]}"))
            elif speaker in table:
                genders[speaker] = table[speaker]
            else:
                genders[speaker] = UNKNOWN_GENDER
                self.problems.append(Problem(where, f"speaker {speaker} has no gender in the "
                                             "supervisions or --gender-map; gender unknown"))
        return genders
