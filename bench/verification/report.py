"""The verification section of leaderboard.md and its DET curves (one picture per view)."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import numpy as np
from tabulate import tabulate

from bench import stats
from bench.crosscorpus import combined_interval
from bench.results import load_predictions
from bench.verification.metrics import P_TARGETS, SortedTrials, dcf_key

METRICS = ("eer", *(dcf_key(p) for p in P_TARGETS))
NOTE = ("EER and minDCF (P_target 0.01 / 0.05, C_miss = C_fa = 1, normalised) on trials of "
        "test speakers never seen in training; mean ± std over seeds, 95% interval for the "
        "mean EER: the corrected resampled t interval over seeds with test / training speakers "
        "as units, or with one seed (marked *) the two-way speaker bootstrap; lower is better")


def rows(records: list[dict], task: str) -> list[dict]:
    """(features, backend) groups of ok cells, lowest mean EER first."""
    groups: dict[tuple, list[dict]] = defaultdict(list)
    for r in records:
        if r["task"] == task and r["status"] == "ok" and r.get("model_kind") == "backend":
            groups[r["features"], r["model"]].append(r)
    out = []
    for (features, model), rs in groups.items():
        row = {"features": features, "model": model, "records": rs}
        for m in METRICS:
            row[m] = float(np.mean([r[m] for r in rs]))
        out.append(row)
    return sorted(out, key=lambda row: row["eer"])


def interval(rs: list[dict], metric: str = "eer") -> str:
    if rs[0].get("boot_replicates") is not None:  # cross-corpus: test speakers and seeds
        lo_hi, mark = combined_interval([r["boot_replicates"] for r in rs]), ""
    elif len(rs) >= 2:
        lo_hi = stats.seed_interval([r[metric] for r in rs],
                                    float(np.mean([r["n_train_units"] for r in rs])),
                                    float(np.mean([r["n_test_units"] for r in rs])))
        mark = ""
    else:
        lo_hi, mark = rs[0].get(f"{metric}_ci"), "*"
    return "–" if lo_hi is None else f"[{lo_hi[0]:.3f}, {lo_hi[1]:.3f}]{mark}"


def _pm(rs: list[dict], metric: str) -> str:
    values = [r[metric] for r in rs]
    mean = float(np.mean(values))
    return f"{mean:.3f}" if len(values) < 2 else f"{mean:.3f} ± {np.std(values, ddof=1):.3f}"


def table(records: list[dict], task: str) -> str | None:
    ranked = rows(records, task)
    if not ranked:
        return None
    header = ["rank", "features", "backend", "EER", "95% interval", "minDCF 0.01",
              "minDCF 0.05", "target / non-target trials", "test / train speakers",
              "fit s", "seeds"]
    body = []
    for rank, row in enumerate(ranked, 1):
        rs = row["records"]
        body.append([rank, row["features"], row["model"], _pm(rs, "eer"), interval(rs),
                     _pm(rs, dcf_key(0.01)), _pm(rs, dcf_key(0.05)),
                     f"{np.mean([r['n_target'] for r in rs]):.0f} / "
                     f"{np.mean([r['n_nontarget'] for r in rs]):.0f}",
                     f"{np.mean([r['n_test_units'] for r in rs]):.0f} / "
                     f"{np.mean([r['n_train_units'] for r in rs]):.0f}",
                     f"{np.mean([r['fit_seconds'] for r in rs]):.2f}", len(rs)])
    return tabulate(body, header, tablefmt="github", disable_numparse=True)


def det_name(task: str, view: str) -> str:
    return f"det_{task}_{''.join(c if c.isalnum() or c in '-_' else '_' for c in view)}.png"


def section(records: list[dict], task: str) -> list[str]:
    """The task's leaderboard lines: the table, the note, links to the DET pictures."""
    text = table(records, task)
    if text is None:
        return []
    views = list(dict.fromkeys(row["features"] for row in rows(records, task)))
    trials = sorted({r["trials"] for r in records if r["task"] == task and r.get("trials")})
    return ["### Verification", "", text, "", f"- {NOTE}",
            "- DET curves: " + ", ".join(f"[{v}]({det_name(task, v)})" for v in views),
            "- trial lists (1 = same speaker): " + ", ".join(f"`{t}`" for t in trials), ""]


def det_png(run_dir: Path, records: list[dict], task: str) -> list[str]:
    """One DET picture per view (every backend's curve, trials of the lowest seed); the paths
    written, relative to the run folder."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from scipy.stats import norm

    by_view: dict[str, list[dict]] = defaultdict(list)
    for row in rows(records, task):
        by_view[row["features"]].append(row)
    written = []
    ticks = np.array([0.001, 0.01, 0.05, 0.2, 0.5])
    for view, view_rows in by_view.items():
        fig = Figure(figsize=(5, 5), dpi=110)
        FigureCanvasAgg(fig)
        ax = fig.add_subplot()
        for row in view_rows:
            first = min(row["records"], key=lambda r: r["seed"])
            pred = load_predictions(run_dir, first["key"])
            if pred is None:
                continue
            p_miss, p_fa = SortedTrials(pred["score"], pred["target"]).rates()
            eps = 1e-4
            ax.plot(norm.ppf(np.clip(p_fa[0], eps, 1 - eps)),
                    norm.ppf(np.clip(p_miss[0], eps, 1 - eps)),
                    label=f"{row['model']} (EER {first['eer']:.3f}, seed {first['seed']})")
        ax.plot(norm.ppf([1e-3, 0.5]), norm.ppf([1e-3, 0.5]), color="grey", lw=0.6, ls=":")
        ax.set_xticks(norm.ppf(ticks), [f"{t:g}" for t in ticks])
        ax.set_yticks(norm.ppf(ticks), [f"{t:g}" for t in ticks])
        ax.set_xlim(norm.ppf(5e-4), norm.ppf(0.6))
        ax.set_ylim(norm.ppf(5e-4), norm.ppf(0.6))
        ax.set_xlabel("false acceptance rate")
        ax.set_ylabel("miss rate")
        ax.set_title(f"{task}: DET, {view}", fontsize=10)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="upper right")
        fig.tight_layout()
        rel = det_name(task, view)
        fig.savefig(run_dir / rel, format="png")
        written.append(rel)
    return written
