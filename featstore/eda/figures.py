"""EDA figures: each function takes computed statistics and writes one PNG.

Figures are ``matplotlib.figure.Figure`` objects rendered by the Agg canvas, not through
pyplot: nothing is registered globally, so nothing stays open and a caller's backend is
untouched.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from featstore.eda.stats import GENDERS

if TYPE_CHECKING:
    from pathlib import Path

    import pandas as pd
    from matplotlib.figure import Figure

COLORS = {"F": "tab:red", "M": "tab:blue", "U": "tab:gray"}


def new_figure(**kwargs) -> Figure:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(**kwargs)
    FigureCanvasAgg(fig)
    return fig


def save(fig: Figure, path: Path) -> None:
    fig.savefig(path, dpi=110)
    fig.clear()  # release artists; a pyplot-free Figure has nothing else to close


def plot_gender_hists(means: np.ndarray, genders: np.ndarray, path: Path) -> None:
    """A 3 x 5 grid of per-coefficient histograms, one overlaid density per gender present."""
    n_coef = means.shape[1]
    cols = 5
    rows = -(-n_coef // cols)
    fig = new_figure(figsize=(3.0 * cols, 2.4 * rows), layout="constrained")
    axes = fig.subplots(rows, cols, squeeze=False).ravel()
    present = [g for g in GENDERS if (genders == g).any()]
    n_bins = int(np.clip(np.sqrt(len(means)), 10, 40))
    for i in range(n_coef):
        ax = axes[i]
        bins = np.histogram_bin_edges(means[:, i], bins=n_bins)
        for g in present:
            ax.hist(means[genders == g, i], bins=bins, density=True, alpha=0.5, color=COLORS[g],
                    label=f"{g} (n={int((genders == g).sum())})")
        ax.set_title(f"c{i}", fontsize=10)
        ax.tick_params(labelsize=7)
        ax.set_yticks([])
    for ax in axes[n_coef:]:
        ax.axis("off")
    handles, labels = axes[0].get_legend_handles_labels()
    axes[-1].legend(handles, labels, loc="center", title="gender (chunks)")
    fig.suptitle("Per-chunk mean MFCC by gender (density)")
    save(fig, path)


def plot_outliers(table: pd.DataFrame, path: Path) -> None:
    """Grouped bars: outlier counts per coefficient, z-score rule vs IQR rule."""
    fig = new_figure(figsize=(9, 4), layout="constrained")
    ax = fig.subplots()
    x = np.arange(len(table))
    bars = ((-0.2, table.columns[1], "z-score: |z| > 3", "tab:orange"),
            (0.2, table.columns[2], "IQR: outside [Q1 - 1.5 IQR, Q3 + 1.5 IQR]", "tab:purple"))
    for offset, col, label, color in bars:
        ax.bar(x + offset, table[col], width=0.4, label=label, color=color)
    ax.set_xticks(x, table["coef"])
    ax.set_ylim(0, 1.2 * max(1, table.iloc[:, 1:3].to_numpy().max()))  # headroom for the legend
    ax.set_xlabel("MFCC coefficient")
    ax.set_ylabel("outlier chunks")
    ax.set_title("Outliers per coefficient (per-chunk mean MFCC)")
    ax.legend(loc="upper center", ncols=2)
    save(fig, path)


def plot_heatmaps(examples: list[tuple[str, str, np.ndarray, float]], path: Path) -> None:
    """One heatmap per (gender, utterance id, [coefs, frames], seconds) example, each
    coefficient z-scored over time so c1..c12 are visible next to the much larger c0."""
    fig = new_figure(figsize=(11, 2.8 * max(1, len(examples))), layout="constrained")
    axes = np.atleast_1d(fig.subplots(max(1, len(examples)), 1, squeeze=False).ravel())
    for ax, (gender, utt, mat, seconds) in zip(axes, examples, strict=False):
        sd = mat.std(axis=1, keepdims=True)
        z = (mat - mat.mean(axis=1, keepdims=True)) / np.where(sd > 0, sd, 1.0)
        extent = (0.0, seconds, -0.5, mat.shape[0] - 0.5)
        im = ax.imshow(z, aspect="auto", origin="lower", cmap="magma", extent=extent,
                       vmin=-3, vmax=3, interpolation="nearest")
        ax.set_yticks(range(0, mat.shape[0], 2), [f"c{i}" for i in range(0, mat.shape[0], 2)])
        ax.set_xlabel("time (s)")
        ax.set_title(f"{gender}: utterance {utt} ({seconds:.1f} s)")
        fig.colorbar(im, ax=ax, label="z (per coefficient)")
    if not examples:
        axes[0].text(0.5, 0.5, "no F or M utterance in this store", ha="center")
        axes[0].axis("off")
    save(fig, path)


def plot_pca(scores: np.ndarray, labels: np.ndarray, ratios: np.ndarray, title: str,
             path: Path, colors: dict[str, str] | None = None, max_legend: int = 20) -> None:
    """Scatter of PC1/PC2 coloured by label; legend only when there are <= max_legend labels."""
    from matplotlib import colormaps

    uniq = sorted(np.unique(labels).tolist())
    n_colors = 10 if len(uniq) <= 10 else 20  # tab20 pairs similar hues; avoid it when we can
    cmap = colormaps[f"tab{n_colors}"]
    fig = new_figure(figsize=(7.5, 6), layout="constrained")
    ax = fig.subplots()
    size = 14 if len(scores) < 2000 else 4
    for i, lab in enumerate(uniq):
        sel = labels == lab
        color = (colors or {}).get(lab, cmap(i % n_colors))
        ax.scatter(scores[sel, 0], scores[sel, 1], s=size, alpha=0.6, color=color,
                   label=f"{lab} (n={int(sel.sum())})", linewidths=0)
    pc2 = ratios[1] if len(ratios) > 1 else 0.0
    ax.set_xlabel(f"PC1 ({ratios[0]:.1%} of variance)")
    ax.set_ylabel(f"PC2 ({pc2:.1%} of variance)")
    if len(uniq) <= max_legend:
        ax.legend(fontsize=8, markerscale=1.5, loc="best", ncols=1 + len(uniq) // 11)
        ax.set_title(title)
    else:
        ax.set_title(f"{title} ({len(uniq)}, colours repeat; no legend)")
    save(fig, path)
