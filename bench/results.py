"""A run folder's files: results.jsonl (one JSON object per cell, appended as cells finish)
and the per-cell test predictions that ``compare`` pairs up.

results.jsonl is append-only, so an interrupted run keeps every finished cell and ``--resume``
adds to it (after ``repair`` drops a torn last line); readers take the latest record per cell
identity (task, features, model, seed).
"""

from __future__ import annotations

import fcntl
import json
import os
from pathlib import Path

import numpy as np

from featstore.errors import UserError

RESULTS = "results.jsonl"
SPLITS = "splits.json"
ENV = "env.json"
LEADERBOARD = "leaderboard.md"
PREDICTIONS = "predictions"
IDENTITY = ("task", "features", "model", "seed")
LOCK = ".lock"


class RunLock:
    """An exclusive flock on RUN/.lock, held for a whole ``bench run``: one process appends to
    results.jsonl and writes the report (as STORE/.lock guards a store). The kernel drops it
    when the process dies, so a killed run never leaves the folder locked."""

    def __init__(self, run_dir: Path):
        self.path = Path(run_dir) / LOCK
        self.fd = None

    def __enter__(self) -> RunLock:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.fd = open(self.path, "w")
        try:
            fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self.fd.close()
            raise UserError(f"another bench run is writing to {self.path.parent}; wait for it "
                            "to finish, or choose another --out") from None
        return self

    def __exit__(self, *exc) -> None:
        fcntl.flock(self.fd, fcntl.LOCK_UN)
        self.fd.close()


def identity(record: dict) -> tuple:
    return tuple(record[k] for k in IDENTITY)


def append(run_dir: Path, record: dict) -> None:
    with open(run_dir / RESULTS, "a") as f:
        f.write(json.dumps(record, sort_keys=True) + "\n")
        f.flush()


def repair(run_dir: Path) -> None:
    """Before appending to a run a killed process left: end the file at its last whole record.
    A torn last line (no newline) would otherwise swallow the next record appended after it.
    A last line that is whole JSON and lost only its newline is kept."""
    path = Path(run_dir) / RESULTS
    data = path.read_bytes()
    if not data or data.endswith(b"\n"):
        return
    cut = data.rfind(b"\n") + 1  # 0 when the file is a single fragment
    try:
        whole = isinstance(json.loads(data[cut:]), dict)
    except ValueError:  # JSONDecodeError, or bytes that are not UTF-8
        whole = False
    with open(path, "r+b") as f:
        if whole:
            f.seek(0, 2)
            f.write(b"\n")
        else:
            f.truncate(cut)
        f.flush()
        os.fsync(f.fileno())


def read_all(run_dir: Path) -> list[dict]:
    """Every record in file order; a torn last line (killed mid-write) is ignored."""
    path = Path(run_dir) / RESULTS
    if not path.is_file():
        raise UserError(f"{run_dir} is not a bench run folder (no {RESULTS})")
    records = []
    for line in path.read_text().splitlines():
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return records


def of_plan(records: list[dict], keys: list[str]) -> tuple[list[dict], int]:
    """The last record of each of ``keys`` (a run's planned cells), in ``keys`` order, and how
    many records hold other keys (cells of earlier plans: other seeds, parameters, grid, store
    or code), which a report of this plan ignores."""
    wanted = set(keys)
    last = {r["key"]: r for r in records if r.get("key") in wanted}
    return [last[k] for k in keys if k in last], sum(r.get("key") not in wanted for r in records)


def latest(records: list[dict]) -> list[dict]:
    """The last record of each cell identity, in order of first appearance."""
    out: dict[tuple, dict] = {}
    for r in records:
        out[identity(r)] = r
    return list(out.values())


def predictions_path(run_dir: Path, key: str) -> Path:
    return Path(run_dir) / PREDICTIONS / f"{key}.npz"


def save_predictions(run_dir: Path, key: str, rows: np.ndarray, y_true: np.ndarray,
                     y_pred: np.ndarray, utterances: np.ndarray, start_sample: np.ndarray,
                     unit: np.ndarray) -> str:
    """One cell's test predictions. ``utterance_id`` + ``start_sample`` name each chunk by its
    content (stable across stores built from the same audio); ``unit`` is the independent unit
    of the task (test speaker for gender, test utterance for speaker ID)."""
    path = predictions_path(run_dir, key)
    path.parent.mkdir(exist_ok=True)
    np.savez_compressed(path, rows=rows, y_true=y_true.astype(str), y_pred=y_pred.astype(str),
                        utterance_id=utterances.astype(str),
                        start_sample=np.asarray(start_sample, dtype=np.int64),
                        unit=np.asarray(unit).astype(str))
    return str(path.relative_to(run_dir))


def save_trial_scores(run_dir: Path, key: str, arrays: dict[str, np.ndarray]) -> str:
    """A verification cell's trials (utterances, speakers, target) with their scores."""
    path = predictions_path(run_dir, key)
    path.parent.mkdir(exist_ok=True)
    np.savez_compressed(path, **{k: (v.astype(str) if v.dtype.kind in "OU" else v)
                                 for k, v in arrays.items()})
    return str(path.relative_to(run_dir))


def load_predictions(run_dir: Path, key: str) -> dict[str, np.ndarray] | None:
    path = predictions_path(run_dir, key)
    if not path.is_file():
        return None
    with np.load(path, allow_pickle=False) as data:
        return {k: data[k] for k in data.files}
