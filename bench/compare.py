"""Compare two runs cell by cell (matched on task, features, model, seed).

For classifiers tested on the same test chunks, the difference is tested with an exact
McNemar test: under "no difference", the discordant chunks (right in one run, wrong in the
other) split 50/50, so the p-value is a two-sided binomial test on them. Chunks of one
speaker are correlated, so read p-values as indicative; the bootstrap CIs in each run's
leaderboard resample whole speakers / utterances. When the test rows differ (other store,
other split settings) the test is skipped and the table says why.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from scipy.stats import binomtest
from tabulate import tabulate

from bench import results as rfiles


def _store_hash(run_dir: Path) -> str | None:
    try:
        return json.loads((run_dir / rfiles.ENV).read_text())["store"]["index_hash"]
    except (OSError, ValueError, KeyError):
        return None


def mcnemar(correct_a: np.ndarray, correct_b: np.ndarray) -> tuple[int, int, float]:
    """(chunks only A gets right, chunks only B gets right, exact two-sided p-value)."""
    a_only = int(np.sum(correct_a & ~correct_b))
    b_only = int(np.sum(~correct_a & correct_b))
    n = a_only + b_only
    return a_only, b_only, float(binomtest(a_only, n, 0.5).pvalue) if n else 1.0


def _pair(run_a: Path, run_b: Path, ra: dict, rb: dict, same_store: bool) -> list:
    """One table row for a cell present in both runs."""
    clusterer = ra.get("model_kind") == "clusterer"
    metric = "ari" if clusterer else "accuracy"
    va, vb = ra.get(metric), rb.get(metric)
    row = [ra["task"], ra["features"], ra["model"], ra["seed"], metric, f"{va:.4f}", f"{vb:.4f}",
           f"{vb - va:+.4f}"]
    pa = rfiles.load_predictions(run_a, ra["key"])
    pb = rfiles.load_predictions(run_b, rb["key"])
    if clusterer:
        return row + ["–", "–", "–", "clusters: no paired test"]
    if pa is None or pb is None:
        return row + ["–", "–", "–", "predictions missing"]
    if (not same_store or not np.array_equal(pa["rows"], pb["rows"])
            or not np.array_equal(pa["y_true"], pb["y_true"])):
        return row + ["–", "–", "–", "test rows differ: no paired test"]
    a_only, b_only, p = mcnemar(pa["y_pred"] == pa["y_true"], pb["y_pred"] == pb["y_true"])
    return row + [a_only, b_only, f"{p:.4g}", ""]


def compare(run_a: str | Path, run_b: str | Path) -> str:
    """A markdown report of the differences between the ok cells of two runs."""
    run_a, run_b = Path(run_a), Path(run_b)
    cells_a = {rfiles.identity(r): r for r in rfiles.latest(rfiles.read_all(run_a))
               if r["status"] == "ok"}
    cells_b = {rfiles.identity(r): r for r in rfiles.latest(rfiles.read_all(run_b))
               if r["status"] == "ok"}
    store_a, store_b = _store_hash(run_a), _store_hash(run_b)
    same_store = store_a is not None and store_a == store_b
    header = ["task", "features", "model", "seed", "metric", "A", "B", "B − A", "only A right",
              "only B right", "p (exact McNemar)", "note"]
    rows = [_pair(run_a, run_b, ra, cells_b[ident], same_store)
            for ident, ra in cells_a.items() if ident in cells_b]
    lines = ["# Comparison of runs", "", f"- A: `{run_a}`", f"- B: `{run_b}`"]
    if not same_store:
        lines.append(f"- the runs used different stores (index {store_a} vs {store_b}): "
                     "no paired tests")
    lines.append("")
    if rows:
        lines.append(tabulate(rows, header, tablefmt="github", disable_numparse=True))
    else:
        lines.append("No cell (task, features, model, seed) finished ok in both runs.")
    for name, mine, other in (("A", cells_a, cells_b), ("B", cells_b, cells_a)):
        only = [" ".join(map(str, ident)) for ident in mine if ident not in other]
        if only:
            lines += ["", f"Only in {name}: " + "; ".join(only)]
    return "\n".join(lines) + "\n"
