"""Corpus sources: turn a ``--source`` spec into a :class:`Corpus`, and pick speakers from it.

A spec is ``<name>`` or ``<name>:<argument>`` for a registered source, otherwise a local path
(write ``./synthetic`` to mean a folder that happens to share a source's name):

* ``librispeech:<subset>[,<subset>...]`` (default ``librispeech:dev-clean``): download, then scan;
* ``synthetic``: generate a small corpus (see :mod:`featstore.sources.synthetic`), then scan;
* ``sample``: the real LibriSpeech sample shipped inside the package (22 speakers, 52 files;
  ``featstore/data/librispeech-sample``, CC BY 4.0), for offline first runs;
* ``hf:PATH`` or ``hf:<hub id>[:config][:split]``: a Hugging Face ``datasets`` dataset (see
  :mod:`featstore.sources.hf`); its columns are named by the request's ``options``;
* ``lhotse:CUTS``, ``lhotse:RECORDINGS,SUPERVISIONS`` or ``lhotse:FOLDER``: lhotse manifests,
  one utterance per supervision segment (see :mod:`featstore.sources.lhotse_source`);
* a path: a LibriSpeech-layout corpus root or one subset folder.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from featstore.errors import UserError
from featstore.sources.base import UNKNOWN_GENDER, Corpus, Problem, Utterance
from featstore.sources.download import default_cache_dir, fetch_librispeech
from featstore.sources.librispeech import read_speakers_txt, scan_librispeech
from featstore.sources.synthetic import make_synthetic

__all__ = [
    "DEFAULT_SOURCE", "SOURCES", "Corpus", "Problem", "Utterance", "default_cache_dir",
    "fetch_librispeech", "make_synthetic", "read_speakers_txt", "resolve_source",
    "scan_librispeech", "select_speakers",
]

DEFAULT_SOURCE = "librispeech:dev-clean"
SYNTHETIC_MIN_SPEAKERS = 8


@dataclass(frozen=True)
class SourceRequest:
    """What a source handler may need besides its own argument."""

    subsets: list[str] | None
    speakers: int | None
    seed: int
    cache_dir: Path
    work_dir: Path | None
    options: dict[str, str]  # hf column mapping (sources.hf_corpus), lhotse labels and channel


def _librispeech(arg: str | None, req: SourceRequest) -> Corpus:
    wanted = [s for s in (arg or "dev-clean").split(",") if s]
    if req.subsets and set(req.subsets) - set(wanted):
        raise UserError(
            f"--subsets {','.join(req.subsets)} asks for subsets the source librispeech:"
            f"{','.join(wanted)} does not include; name them in --source instead"
        )
    folders = [fetch_librispeech(subset, req.cache_dir) for subset in wanted]
    # Scan only what was asked for: the cache may hold other subsets from earlier runs.
    return scan_librispeech(folders[0].parent, req.subsets or wanted)


def _synthetic(arg: str | None, req: SourceRequest) -> Corpus:
    if arg:
        raise UserError(f"the synthetic source takes no argument (got 'synthetic:{arg}')")
    # Enough speakers for --speakers to pick from; the folder name keeps variants apart.
    n = max(SYNTHETIC_MIN_SPEAKERS, req.speakers or 0)
    out = (req.work_dir or req.cache_dir) / f"synthetic-seed{req.seed}-n{n}"
    if not (out / "SPEAKERS.TXT").is_file():  # written last, so present means complete
        make_synthetic(out, n_speakers=n, seed=req.seed)
    return scan_librispeech(out, req.subsets)


def sample_path() -> Path:
    """The embedded LibriSpeech sample, found as package data (works from an install too)."""
    from importlib.resources import files

    return Path(str(files("featstore") / "data" / "librispeech-sample"))


def _sample(arg: str | None, req: SourceRequest) -> Corpus:
    if arg:
        raise UserError(f"the sample source takes no argument (got 'sample:{arg}')")
    return scan_librispeech(sample_path(), req.subsets)


def _hf(arg: str | None, req: SourceRequest) -> Corpus:
    from featstore.sources.hf import load_hf  # imports datasets (seconds): only when asked for

    return load_hf(arg, req.subsets, req.cache_dir, req.options)


def _lhotse(arg: str | None, req: SourceRequest) -> Corpus:
    from featstore.sources.lhotse_source import load_lhotse  # imports lhotse: only when asked

    return load_lhotse(arg, req.subsets, req.options)


# name -> handler(argument after ':' or None, request). Add a source by adding an entry.
SOURCES: dict[str, Callable[[str | None, SourceRequest], Corpus]] = {
    "librispeech": _librispeech,
    "synthetic": _synthetic,
    "sample": _sample,
    "hf": _hf,
    "lhotse": _lhotse,
}
# Sources that take ``options`` (each checks its own); the others refuse them.
TAKES_OPTIONS = ("hf", "lhotse")


def resolve_source(
    spec: str | None,
    *,
    subsets: list[str] | None = None,
    speakers: int | None = None,
    seed: int = 0,
    cache_dir: str | os.PathLike | None = None,
    work_dir: str | os.PathLike | None = None,
    options: dict[str, str] | None = None,
) -> Corpus:
    """Turn a ``--source`` spec into a Corpus (see the module docstring for the forms).

    ``speakers`` only sizes the synthetic corpus here; call :func:`select_speakers` to pick.
    ``options`` (column mapping, labels) are for the hf and lhotse sources only.
    """
    spec = DEFAULT_SOURCE if spec is None else spec
    name, _, arg = spec.partition(":")
    if options and name not in TAKES_OPTIONS:
        from featstore.sources.hf_corpus import FLAGS
        from featstore.sources.lhotse_source import FLAGS as LHOTSE_FLAGS

        names = ", ".join({**FLAGS, **LHOTSE_FLAGS}.get(k, k) for k in options)
        raise UserError(f"{names}: for hf: sources only (and lhotse: for "
                        f"--gender-map, --chapter-column, --channel; the source is {spec})")
    request = SourceRequest(
        subsets=subsets or None,
        speakers=speakers,
        seed=seed,
        cache_dir=Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir(),
        work_dir=Path(work_dir).expanduser() if work_dir is not None else None,
        options=dict(options or {}),
    )
    handler = SOURCES.get(name)
    if handler is not None:
        return handler(arg or None, request)
    path = Path(spec).expanduser()
    if not path.exists():
        raise UserError(
            f"source path {spec} does not exist (known sources: {', '.join(SOURCES)})"
        )
    return scan_librispeech(path, request.subsets)


def _speaker_key(speaker_id: str) -> tuple:
    # Numeric ids in numeric order (LibriSpeech ids are integers), others after, by text.
    return (0, int(speaker_id), "") if speaker_id.isdigit() else (1, 0, speaker_id)


def select_speakers(corpus: Corpus, n: int, seed: int) -> Corpus:
    """Keep ``n`` speakers: ``n // 2`` female and ``n - n // 2`` male, drawn with ``seed``.

    If one gender runs short the other fills in; speakers of unknown gender are used only when
    F and M together cannot reach ``n`` (they would skew a gender-balanced set otherwise).
    Problems about dropped speakers go too; corpus-level ones stay.
    """
    if n < 1:
        raise UserError(f"--speakers must be at least 1 (got {n})")
    by_gender: dict[str, list[str]] = {"F": [], "M": [], UNKNOWN_GENDER: []}
    for speaker, gender in {u.speaker_id: u.gender for u in corpus.utterances}.items():
        by_gender.get(gender, by_gender[UNKNOWN_GENDER]).append(speaker)
    total = sum(len(s) for s in by_gender.values())
    if n > total:
        raise UserError(f"--speakers {n} but the corpus has only {total} speakers")

    rng = np.random.default_rng(seed)
    pools: dict[str, list[str]] = {}
    for gender, group in by_gender.items():  # always F, M, U: the draws are reproducible
        group.sort(key=_speaker_key)  # scan order must not matter, only the seed
        pools[gender] = [group[i] for i in rng.permutation(len(group))]
    n_f = min(n // 2, len(pools["F"]))
    n_m = min(n - n_f, len(pools["M"]))
    n_f = min(n - n_m, len(pools["F"]))  # females fill in when males run short
    kept = set(pools["F"][:n_f] + pools["M"][:n_m] + pools[UNKNOWN_GENDER][: n - n_f - n_m])

    utterances = [u for u in corpus.utterances if u.speaker_id in kept]
    dropped = [u for u in corpus.utterances if u.speaker_id not in kept]
    dropped_paths = {Path(u.path) for u in dropped}
    # A speaker's folder is <subset>/<speaker>; problems at or below it are about that speaker.
    dropped_dirs = {Path(u.path).parent.parent for u in dropped}
    kept_dirs = {Path(u.path).parent.parent for u in utterances}

    def about_dropped(problem: Problem) -> bool:
        path = Path(problem.path)
        if path in dropped_paths:
            return True
        owners = [p for p in (path, *path.parents) if p in dropped_dirs or p in kept_dirs]
        return bool(owners) and owners[0] in dropped_dirs

    return Corpus(
        name=f"{corpus.name}, {n} speakers (seed {seed})",
        root=corpus.root,
        utterances=utterances,
        problems=[p for p in corpus.problems if not about_dropped(p)],
        reader=corpus.reader,
    )
