"""Compare two runs cell by cell (matched on task, features, model, seed).

Chunks are paired by content, not by store: a chunk is named by (utterance_id, start_sample),
so two stores built separately from the same audio pair up even though their row numbers and
index hashes differ. A cell pairs when both runs tested exactly the same chunks with the same
true labels; otherwise its row says why no test was run.

The primary test works on independent units (the task's unit, bench/tasks/: test speakers for
gender, test sessions -- chapters of multi-chapter speakers, else utterances -- for speaker ID;
chunks of one unit are correlated): each unit's accuracy in B minus its accuracy
in A, tested with a paired sign-flip permutation test (``bench.stats.sign_flip_test``). One
more row per (task, features, model) pools the seeds that paired: each unit's difference is
averaged over the seeds that tested it, then tested the same way. The exact McNemar test on
the chunks is kept as a secondary column, indicative only, because it treats chunks as
independent and so overstates the evidence. Clusterers are compared on ARI, without a test.
Permutation seeds are fixed, so the report is reproducible.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.stats import binomtest
from tabulate import tabulate

from bench import results as rfiles
from bench.stats import sign_flip_test
from bench.verification import compare as vcompare

SIGN_FLIP_SEED = 0
CHUNK_FIELDS = ("utterance_id", "start_sample", "unit")  # absent from older runs' predictions
HEADER = ["task", "features", "model", "seed", "metric", "A", "B", "B − A", "units",
          "p (sign-flip, per unit)", "p (McNemar, chunks)", "note"]
NO_TEST = ["–", "–", "–"]  # the units and both p columns of a row without a paired test


def mcnemar(correct_a: np.ndarray, correct_b: np.ndarray) -> tuple[int, int, float]:
    """(chunks only A gets right, chunks only B gets right, exact two-sided p-value)."""
    a_only = int(np.sum(correct_a & ~correct_b))
    b_only = int(np.sum(~correct_a & correct_b))
    n = a_only + b_only
    return a_only, b_only, float(binomtest(a_only, n, 0.5).pvalue) if n else 1.0


@dataclass
class Paired:
    """One cell's predictions in both runs, aligned chunk by chunk."""

    correct_a: np.ndarray
    correct_b: np.ndarray
    unit: np.ndarray

    def unit_diffs(self) -> tuple[np.ndarray, np.ndarray]:
        """(unit ids, per-unit accuracy in B minus in A), each unit's chunks weighing equally."""
        ids, inverse = np.unique(self.unit, return_inverse=True)
        count = np.bincount(inverse)
        diff = self.correct_b.astype(float) - self.correct_a.astype(float)
        return ids, np.bincount(inverse, weights=diff, minlength=len(ids)) / count


def _content_order(pred: dict) -> np.ndarray:
    return np.lexsort((pred["start_sample"], pred["utterance_id"]))  # last key sorts first


def align(pred_a: dict | None, pred_b: dict | None) -> Paired | str:
    """Both runs' predictions sorted by (utterance_id, start_sample), or why they do not pair."""
    if pred_a is None or pred_b is None:
        return "predictions missing"
    if any(f not in p for p in (pred_a, pred_b) for f in CHUNK_FIELDS):
        return "predictions lack chunk ids (older run)"
    a = {k: v[_content_order(pred_a)] for k, v in pred_a.items() if k != "rows"}
    b = {k: v[_content_order(pred_b)] for k, v in pred_b.items() if k != "rows"}
    if not all(np.array_equal(a[f], b[f]) for f in ("utterance_id", "start_sample", "y_true")):
        return "test chunks differ: no paired test"
    repeated = (a["utterance_id"][1:] == a["utterance_id"][:-1]) & (
        a["start_sample"][1:] == a["start_sample"][:-1])
    if repeated.any():  # the same chunk twice: which prediction pairs with which is ambiguous
        return "repeated chunk ids: no paired test"
    if not np.array_equal(a["unit"], b["unit"]):
        return "test units differ: no paired test"
    return Paired(a["y_pred"] == a["y_true"], b["y_pred"] == b["y_true"], a["unit"])


def _fmt(value: float | None, sign: bool = False) -> str:
    if value is None:
        return "–"
    return f"{value:+.4f}" if sign else f"{value:.4f}"


def _cell_row(ra: dict, rb: dict, metric: str, paired: Paired | str | None) -> list:
    va, vb = ra.get(metric), rb.get(metric)
    delta = vb - va if va is not None and vb is not None else None
    row = [ra["task"], ra["features"], ra["model"], ra["seed"], metric, _fmt(va), _fmt(vb),
           _fmt(delta, sign=True)]
    if paired is None:
        return row + NO_TEST + ["clusters: no paired test"]
    if isinstance(paired, str):
        return row + NO_TEST + [paired]
    ids, diffs = paired.unit_diffs()
    p_unit = sign_flip_test(diffs, seed=SIGN_FLIP_SEED)
    _, _, p_chunk = mcnemar(paired.correct_a, paired.correct_b)
    return row + [len(ids), f"{p_unit:.4g}", f"{p_chunk:.4g}", ""]


def _pooled_row(group: tuple, cells: list[tuple[dict, dict, Paired]], n_seeds: int) -> list:
    """All paired seeds of one (task, features, model): per-unit diffs averaged over seeds."""
    per_seed = [p.unit_diffs() for _, _, p in cells]
    ids, inverse = np.unique(np.concatenate([i for i, _ in per_seed]), return_inverse=True)
    diffs = np.concatenate([d for _, d in per_seed])
    unit_mean = np.bincount(inverse, weights=diffs) / np.bincount(inverse)
    p_unit = sign_flip_test(unit_mean, seed=SIGN_FLIP_SEED)
    va = float(np.mean([p.correct_a.mean() for _, _, p in cells]))  # chunk accuracy per seed
    vb = float(np.mean([p.correct_b.mean() for _, _, p in cells]))
    k = len(cells)
    note = (f"{k} seed{'s' if k > 1 else ''} pooled" if k == n_seeds
            else f"{k} of {n_seeds} seeds paired, pooled")
    return [*group, "all", "accuracy", _fmt(va), _fmt(vb), _fmt(vb - va, sign=True), len(ids),
            f"{p_unit:.4g}", "–", note]


def _rows(run_a: Path, run_b: Path, pairs: Iterable[tuple[dict, dict]]) -> list[list]:
    groups: dict[tuple, list[tuple[dict, dict]]] = {}
    for ra, rb in pairs:
        groups.setdefault((ra["task"], ra["features"], ra["model"]), []).append((ra, rb))
    rows = []
    for group, cells in groups.items():
        if cells[0][0].get("model_kind") == "backend":
            rows += _verification_rows(run_a, run_b, group, cells)
            continue
        paired_cells = []
        for ra, rb in sorted(cells, key=lambda c: c[0]["seed"]):
            if ra.get("model_kind") == "clusterer":
                rows.append(_cell_row(ra, rb, "ari", None))
                continue
            paired = align(rfiles.load_predictions(run_a, ra["key"]),
                           rfiles.load_predictions(run_b, rb["key"]))
            rows.append(_cell_row(ra, rb, "accuracy", paired))
            if isinstance(paired, Paired):
                paired_cells.append((ra, rb, paired))
        if paired_cells:
            rows.append(_pooled_row(group, paired_cells, len(cells)))
    return rows


def _verification_rows(run_a: Path, run_b: Path, group: tuple,
                       cells: list[tuple[dict, dict]]) -> list[list]:
    """EER per seed, sign-flip tested on per-speaker HTER differences; then all seeds pooled."""
    rows, paired = [], []
    for ra, rb in sorted(cells, key=lambda c: c[0]["seed"]):
        row = [*group, ra["seed"], "eer", _fmt(ra["eer"]), _fmt(rb["eer"]),
               _fmt(rb["eer"] - ra["eer"], sign=True)]
        got = vcompare.speaker_diffs(rfiles.load_predictions(run_a, ra["key"]),
                                     rfiles.load_predictions(run_b, rb["key"]))
        if isinstance(got, str):
            rows.append(row + NO_TEST + [got])
            continue
        paired.append((ra, rb, got))
        p = vcompare.cell_p(got[1], SIGN_FLIP_SEED)
        rows.append(row + [len(got[0]), f"{p:.4g}", "–", "per-speaker HTER"])
    if paired:
        n, diffs = vcompare.pooled([d for _, _, d in paired])
        va = float(np.mean([ra["eer"] for ra, _, _ in paired]))
        vb = float(np.mean([rb["eer"] for _, rb, _ in paired]))
        rows.append([*group, "all", "eer", _fmt(va), _fmt(vb), _fmt(vb - va, sign=True), n,
                     f"{vcompare.cell_p(diffs, SIGN_FLIP_SEED):.4g}", "–",
                     f"{len(paired)} of {len(cells)} seeds paired, pooled per speaker"])
    return rows


def compare(run_a: str | Path, run_b: str | Path) -> str:
    """A markdown report of the differences between the ok cells of two runs."""
    run_a, run_b = Path(run_a), Path(run_b)
    cells_a = {rfiles.identity(r): r for r in rfiles.latest(rfiles.read_all(run_a))
               if r["status"] == "ok"}
    cells_b = {rfiles.identity(r): r for r in rfiles.latest(rfiles.read_all(run_b))
               if r["status"] == "ok"}
    rows = _rows(run_a, run_b, ((ra, cells_b[i]) for i, ra in cells_a.items() if i in cells_b))
    lines = ["# Comparison of runs", "", f"- A: `{run_a}`", f"- B: `{run_b}`",
             "- chunks are paired by content (utterance, start sample), whatever the store",
             "- p (sign-flip, per unit): paired sign-flip test on per-unit accuracy differences "
             "(units: the task's, bench/tasks/: speakers for gender, sessions (chapter, else "
             "utterance) for speaker ID); seed `all` "
             "averages each unit's difference over the seeds that paired",
             "- verification rows: EER; the sign-flip test pairs each test speaker's half total "
             "error rate at its run's EER threshold (same trial list in both runs)",
             "- p (McNemar, chunks): exact McNemar on single chunks, which are correlated "
             "within a unit: indicative only", ""]
    if rows:
        lines.append(tabulate(rows, HEADER, tablefmt="github", disable_numparse=True))
    else:
        lines.append("No cell (task, features, model, seed) finished ok in both runs.")
    for name, mine, other in (("A", cells_a, cells_b), ("B", cells_b, cells_a)):
        only = [" ".join(map(str, ident)) for ident in mine if ident not in other]
        if only:
            lines += ["", f"Only in {name}: " + "; ".join(only)]
    return "\n".join(lines) + "\n"
