"""The pictures of a run's report: leaderboard.png and the confusion matrices."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def _mean(values: list) -> float | None:
    values = [v for v in values if v is not None]
    return float(np.mean(values)) if values else None


def leaderboard_png(panels: list[tuple[str, list[dict]]], path: Path) -> None:
    """One panel per task: each view / model's mean accuracy with its interval, in table order,
    and the chance line."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    height = sum(0.32 * len(rows) + 1.2 for _, rows in panels)
    fig = Figure(figsize=(8, max(3.0, height)), dpi=110)
    FigureCanvasAgg(fig)
    axes = fig.subplots(len(panels), 1, squeeze=False,
                        gridspec_kw={"height_ratios": [len(rows) + 2 for _, rows in panels]})
    for ax, (task, rows) in zip(axes[:, 0], panels, strict=True):
        y = np.arange(len(rows))[::-1]
        mean = np.array([row["accuracy"] for row in rows])
        lo = np.array([(row["interval"] or (m, m))[0] for row, m in zip(rows, mean, strict=True)])
        hi = np.array([(row["interval"] or (m, m))[1] for row, m in zip(rows, mean, strict=True)])
        ax.errorbar(mean, y, xerr=[mean - lo, hi - mean], fmt="o", capsize=3, color="tab:blue")
        chance = _mean([row["chance"] for row in rows])
        if chance is not None:
            ax.axvline(chance, color="grey", linestyle="--", label=f"chance {chance:.2f}")
            ax.legend(loc="lower left", fontsize=8)
        ax.set_yticks(y, [f"{row['features']} · {row['model']}" for row in rows], fontsize=8)
        ax.set_xlim(0, 1.02)
        ax.set_ylim(-0.7, len(rows) - 0.3)
        ax.set_title(f"{task}: accuracy, mean over seeds with 95% interval", fontsize=10)
        ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, format="png")


def confusion_png(records: list[dict], path: Path, title: str) -> None:
    """Confusion matrix summed over the seeds' test sets (rows: true, columns: predicted)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    labels = sorted({label for r in records for label in r["labels"]})
    index = {label: i for i, label in enumerate(labels)}
    total = np.zeros((len(labels), len(labels)), dtype=int)
    for r in records:
        pos = [index[label] for label in r["labels"]]
        total[np.ix_(pos, pos)] += np.asarray(r["confusion"], dtype=int)
    size = min(14, 3 + 0.35 * len(labels))
    fig = Figure(figsize=(size, size * 0.9), dpi=110)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    shares = total / np.maximum(total.sum(axis=1, keepdims=True), 1)  # colour: row share
    im = ax.imshow(shares, cmap="Blues", vmin=0, vmax=1)
    fig.colorbar(im, ax=ax, fraction=0.046, label="share of the true class")
    ax.set_xticks(range(len(labels)), labels, rotation=90, fontsize=7 if len(labels) > 12 else 9)
    ax.set_yticks(range(len(labels)), labels, fontsize=7 if len(labels) > 12 else 9)
    if len(labels) <= 20:
        for i in range(len(labels)):
            for j in range(len(labels)):
                ax.text(j, i, str(total[i, j]), ha="center", va="center", fontsize=8,
                        color="white" if shares[i, j] > 0.5 else "black")
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(f"{title}\n(test chunks, summed over {len(records)} seed(s))", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, format="png")
