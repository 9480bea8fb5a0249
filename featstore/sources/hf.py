"""The ``hf:`` source: a Hugging Face ``datasets`` dataset, local or on the hub.

* ``hf:PATH[:split]``: a folder written by ``Dataset.save_to_disk`` / ``DatasetDict.save_to_disk``
  (read with ``load_from_disk``), or data ``load_dataset`` reads from a local path (a folder of
  Parquet files, a ``.parquet`` file, an audio folder);
* ``hf:<hub id>[:config][:split]``: ``load_dataset(id, config, split=...)`` from the hub, e.g.
  ``hf:openslr/librispeech_asr:clean:validation``; ``hf:<id>::<split>`` names a split alone.

Splits become the store's subsets; ``--subsets`` picks splits. Downloads and ``datasets``'
Arrow conversions go to ``<cache dir>/hf``. A hub split larger than :data:`STREAM_ABOVE_BYTES`
is streamed instead: its records (only the columns the build uses) are written once into one
Arrow dataset in the cache, without the Parquet download copy and without other splits.
Column mapping, labels and the audio reader are in :mod:`featstore.sources.hf_corpus`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from featstore.errors import UserError
from featstore.sources.base import Corpus, pick_splits
from featstore.sources.hf_corpus import build_corpus, check_options, resolve_columns

if TYPE_CHECKING:
    from datasets import Dataset

STREAM_ABOVE_BYTES = 4 << 30
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*(/[\w.-]+)?$")
_SAVED = ("dataset_dict.json", "state.json")  # what save_to_disk writes
_FILE_BUILDERS = {".parquet": "parquet", ".arrow": "arrow"}


@dataclass(frozen=True)
class HfSpec:
    target: str  # resolved local path or hub id
    config: str | None
    split: str | None
    local: bool


def parse_spec(arg: str | None) -> HfSpec:
    """``PATH[:split]`` when that path exists, else ``<hub id>[:config][:split]``."""
    if not arg:
        raise UserError("the hf source needs a dataset: hf:PATH or hf:<hub id>[:config][:split]")
    if Path(arg).expanduser().exists():
        return HfSpec(str(Path(arg).expanduser().resolve()), None, None, True)
    head, _, split = arg.rpartition(":")
    if head and Path(head).expanduser().exists():
        return HfSpec(str(Path(head).expanduser().resolve()), None, split or None, True)
    parts = arg.split(":")
    if len(parts) > 3 or not _HUB_ID.match(parts[0]):
        raise UserError(f"hf:{arg}: no such path, and not a hub id[:config][:split]")
    parts += [""] * (3 - len(parts))
    return HfSpec(parts[0], parts[1] or None, parts[2] or None, False)


def load_hf(arg: str | None, subsets: list[str] | None, cache_dir: Path,
            options: dict[str, str], streaming: bool | None = None) -> Corpus:
    """The corpus of an ``hf:`` spec. ``streaming``: None decides by size (hub only)."""
    check_options(options)
    spec = parse_spec(arg)
    if spec.split and subsets and set(subsets) != {spec.split}:
        raise UserError(f"--subsets {','.join(subsets)} but the source names split {spec.split}")
    wanted = [spec.split] if spec.split else subsets
    root = spec.target + (f":{spec.config}" if spec.config else "")
    name = f"Hugging Face dataset {root}"
    if spec.local and any((Path(spec.target) / f).is_file() for f in _SAVED):
        splits = pick_splits(_load_from_disk(spec.target), wanted, name)
    else:
        splits = _load_dataset(spec, wanted, cache_dir / "hf", options, streaming, name)
    return build_corpus(f"{name} ({', '.join(splits)})", root, splits, options)


def _load_from_disk(path: str) -> dict[str, Dataset]:
    from datasets import DatasetDict, load_from_disk

    try:
        loaded = load_from_disk(path)
    except Exception as exc:  # a damaged folder: datasets raises several kinds
        raise UserError(f"cannot read hf dataset {path}: {_first_line(exc)}") from None
    if isinstance(loaded, DatasetDict):
        return dict(loaded)
    return {str(loaded.split) if loaded.split else Path(path).name: loaded}


def _load_dataset(spec: HfSpec, wanted: list[str] | None, cache_dir: Path,
                  options: dict[str, str], streaming: bool | None, name: str) -> dict:
    """``load_dataset`` for a hub id or a local path; every split asked for (None: all)."""
    import datasets

    path, kwargs = spec.target, {"cache_dir": str(cache_dir)}
    suffix = Path(path).suffix.lower()
    if spec.local and Path(path).is_file() and suffix in _FILE_BUILDERS:
        path, kwargs["data_files"] = _FILE_BUILDERS[suffix], spec.target
    try:
        if streaming is None:
            streaming = not spec.local and _larger_than(path, spec.config, wanted, kwargs,
                                                        STREAM_ABOVE_BYTES)
        if wanted:
            loaded = {s: datasets.load_dataset(path, spec.config, split=s, streaming=streaming,
                                               **kwargs) for s in dict.fromkeys(wanted)}
        else:
            loaded = dict(datasets.load_dataset(path, spec.config, streaming=streaming,
                                                **kwargs))
        if streaming:
            loaded = {s: _spool(path, spec.config, s, stream, kwargs,
                                resolve_columns(f"{name} split {s}", _features(stream, name),
                                                options))
                      for s, stream in loaded.items()}
    except UserError:
        raise
    except Exception as exc:  # not found, no network, bad config or split: datasets' words
        cause = exc
        while cause.__cause__ is not None:  # "error while generating the dataset" says little
            cause = cause.__cause__
        hint = ""
        if isinstance(cause, ImportError):  # datasets encodes audio-folder files with torchcodec
            hint = (" (datasets needs it to read an audio folder; a Parquet or save_to_disk "
                    "copy of the data needs nothing more)")
        raise UserError(f"cannot load {name}: {_first_line(cause)}{hint}") from None
    return loaded


def _features(stream, name: str):
    if stream.features is None:
        raise UserError(f"cannot stream {name}: it does not declare its columns")
    return stream.features


def _larger_than(path: str, config: str | None, wanted: list[str] | None, kwargs: dict,
                 limit: int) -> bool:
    """Whether the hub's metadata says the splits asked for hold more than ``limit`` bytes
    (False when it does not say)."""
    from datasets import load_dataset_builder

    info = load_dataset_builder(path, config, **kwargs).info
    splits = info.splits or {}
    size = sum(splits[s].num_bytes or 0 for s in wanted or splits if s in splits)
    return (size or info.dataset_size or 0) > limit


def _spool(path: str, config: str | None, split: str, stream, kwargs: dict,
           columns: dict[str, str]) -> Dataset:
    """One Arrow dataset in the cache holding ``columns`` of a streamed split, written once
    (``datasets`` reuses it while path, config, split and columns are the same)."""
    from datasets import Dataset, Features, Value

    keep = tuple(dict.fromkeys(columns.values()))  # a tuple: datasets shards lists in gen_kwargs
    features = Features({c: stream.features[c] for c in keep})
    features[columns["audio"]] = {"bytes": Value("binary"), "path": Value("string")}  # encoded
    return Dataset.from_generator(
        _stream_records, features=features, cache_dir=kwargs["cache_dir"],
        gen_kwargs={"path": path, "config": config, "split": split, "columns": keep,
                    "audio": columns["audio"], "data_files": kwargs.get("data_files")},
    )


def _stream_records(path, config, split, columns, audio, data_files):
    """The records of a streamed split, ``columns`` only, audio as undecoded bytes."""
    from datasets import Audio, load_dataset

    stream = load_dataset(path, config, split=split, streaming=True, data_files=data_files)
    stream = stream.select_columns(list(columns))
    if isinstance(stream.features[audio], Audio):
        stream = stream.cast_column(audio, Audio(decode=False))
    yield from stream


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0][:300]
