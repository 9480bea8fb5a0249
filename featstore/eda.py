"""Exploratory report on a store's MFCCs: gender distributions, outliers, heatmaps, PCA; and
its pitch by gender when the store has one (``featstore.eda_pitch``).

Statistics are plain functions on numpy arrays / DataFrames; plotting functions take their
results and write one PNG each. ``write_report`` ties them together (``featstore eda``).

Figures are built as ``matplotlib.figure.Figure`` objects rendered by the Agg canvas, not through
pyplot: nothing is registered globally, so nothing stays open and a caller's backend is untouched.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from featstore.errors import UserError
from featstore.pooling import masked_mean_std, valid_frames
from featstore.standardize import Standardizer

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.figure import Figure

    from featstore.store.reader import Store

GENDERS = ("F", "M", "U")
COLORS = {"F": "tab:red", "M": "tab:blue", "U": "tab:gray"}
DEFAULT_MAX_CHUNKS = 20_000
FIGURES = ("mfcc_by_gender.png", "outliers.png", "mfcc_heatmaps.png", "pca_gender.png",
           "pca_speaker.png")


# -- statistics ----------------------------------------------------------------------------------
def subsample_rows(n: int, max_chunks: int, seed: int) -> np.ndarray:
    """Sorted row indices: all ``n`` rows, or ``max_chunks`` of them drawn without replacement."""
    if n <= max_chunks:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, size=max_chunks, replace=False))


def chunk_mean_std(mfcc: np.ndarray, n_valid: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-chunk mean and population std over time of [chunks, frames, coefs] in float64,
    ignoring zero-padded frames (``featstore.pooling.masked_mean_std``)."""
    return masked_mean_std(np.asarray(mfcc, dtype=np.float64), n_valid, axis=1)


def cohens_d(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Standardised difference (mean(a) - mean(b)) / pooled sd, per column; NaN if undefined."""
    a, b = np.atleast_2d(np.asarray(a, float).T).T, np.atleast_2d(np.asarray(b, float).T).T
    na, nb = len(a), len(b)
    if na < 2 or nb < 2:
        return np.full(a.shape[1], np.nan)
    pooled = ((na - 1) * a.var(axis=0, ddof=1) + (nb - 1) * b.var(axis=0, ddof=1)) / (na + nb - 2)
    with np.errstate(divide="ignore", invalid="ignore"):
        return (a.mean(axis=0) - b.mean(axis=0)) / np.sqrt(pooled)


def gender_table(means: np.ndarray, genders: np.ndarray, speakers: np.ndarray) -> pd.DataFrame:
    """Per coefficient: mean/std per gender, Cohen's d (F - M) over chunks and over speakers.

    Chunks of one speaker are not independent, so d over per-speaker averages is given too."""
    import pandas as pd

    table = pd.DataFrame({"coef": [f"c{i}" for i in range(means.shape[1])]})
    for g in GENDERS:
        sel = genders == g
        if sel.any():
            table[f"{g} mean"] = means[sel].mean(axis=0)
            table[f"{g} std"] = means[sel].std(axis=0, ddof=1) if sel.sum() > 1 else np.nan
    f, m = genders == "F", genders == "M"
    table["d (F-M, chunks)"] = cohens_d(means[f], means[m])
    per_spk = pd.DataFrame(means).groupby([genders, speakers]).mean()
    spk_g = per_spk.index.get_level_values(0)
    table["d (F-M, speakers)"] = cohens_d(per_spk.to_numpy()[spk_g == "F"],
                                          per_spk.to_numpy()[spk_g == "M"])
    return table


def count_outliers(x: np.ndarray, z_thresh: float = 3.0, iqr_k: float = 1.5) -> pd.DataFrame:
    """Per column of [n, coefs]: rows with |z| > z_thresh (population sd) and rows outside
    [Q1 - k IQR, Q3 + k IQR] (linearly interpolated quartiles)."""
    import pandas as pd
    x = np.asarray(x, dtype=np.float64)
    z = Standardizer.fit(x).transform(x)  # a constant column: all z = 0
    q1, q3 = np.percentile(x, [25, 75], axis=0)
    iqr = q3 - q1
    iqr_out = (x < q1 - iqr_k * iqr) | (x > q3 + iqr_k * iqr)
    return pd.DataFrame({
        "coef": [f"c{i}" for i in range(x.shape[1])],
        "z-score outliers": (np.abs(z) > z_thresh).sum(axis=0),
        "IQR outliers": iqr_out.sum(axis=0),
    })


def pca_embed(vectors: np.ndarray, n_components: int = 10) -> tuple[np.ndarray, np.ndarray]:
    """Standardise columns, fit PCA; returns (first two component scores, explained ratios)."""
    from sklearn.decomposition import PCA
    k = max(1, min(n_components, *vectors.shape))
    pca = PCA(n_components=k, random_state=0)
    scores = pca.fit_transform(Standardizer.fit(vectors).transform(vectors))
    if k < 2:  # one chunk or one column: pad so the scatter still has a y axis
        scores = np.column_stack([scores, np.zeros(len(scores))])
    return scores[:, :2], pca.explained_variance_ratio_


def pick_utterance(meta: pd.DataFrame, gender: str, seed: int) -> str | None:
    """One utterance of ``gender``, chosen reproducibly from ``seed`` (None if there is none)."""
    ids = np.sort(meta.loc[meta["gender"] == gender, "utterance_id"].unique())
    if not len(ids):
        return None
    return str(ids[np.random.default_rng(seed).integers(len(ids))])


def utterance_mfcc(store: Store, utterance_id: str, hop_length: int) -> tuple[np.ndarray, int]:
    """All chunks of an utterance concatenated in time: ([coefs, frames] with padding dropped,
    number of real samples covered)."""
    meta = store.meta
    rows = meta.index[meta["utterance_id"] == utterance_id].to_numpy()
    rows = rows[np.argsort(meta.loc[rows, "start_sample"].to_numpy(), kind="stable")]
    mfcc = store.load("mfcc", rows)
    n_valid = valid_frames(meta.loc[rows, "n_samples"].to_numpy(), hop_length, mfcc.shape[1])
    mat = np.concatenate([m[:v] for m, v in zip(mfcc, n_valid, strict=True)]).T
    return mat, int(meta.loc[rows, "n_samples"].sum())


# -- plotting ------------------------------------------------------------------------------------
def _new_figure(**kwargs) -> Figure:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(**kwargs)
    FigureCanvasAgg(fig)
    return fig


def _save(fig: Figure, path: Path) -> None:
    fig.savefig(path, dpi=110)
    fig.clear()  # release artists; a pyplot-free Figure has nothing else to close


def plot_gender_hists(means: np.ndarray, genders: np.ndarray, path: Path) -> None:
    """A 3 x 5 grid of per-coefficient histograms, one overlaid density per gender present."""
    n_coef = means.shape[1]
    cols = 5
    rows = -(-n_coef // cols)
    fig = _new_figure(figsize=(3.0 * cols, 2.4 * rows), layout="constrained")
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
    _save(fig, path)


def plot_outliers(table: pd.DataFrame, path: Path) -> None:
    """Grouped bars: outlier counts per coefficient, z-score rule vs IQR rule."""
    fig = _new_figure(figsize=(9, 4), layout="constrained")
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
    _save(fig, path)


def plot_heatmaps(examples: list[tuple[str, str, np.ndarray, float]], path: Path) -> None:
    """One heatmap per (gender, utterance id, [coefs, frames], seconds) example, each
    coefficient z-scored over time so c1..c12 are visible next to the much larger c0."""
    fig = _new_figure(figsize=(11, 2.8 * max(1, len(examples))), layout="constrained")
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
    _save(fig, path)


def plot_pca(scores: np.ndarray, labels: np.ndarray, ratios: np.ndarray, title: str,
             path: Path, colors: dict[str, str] | None = None, max_legend: int = 20) -> None:
    """Scatter of PC1/PC2 coloured by label; legend only when there are <= max_legend labels."""
    from matplotlib import colormaps

    uniq = sorted(np.unique(labels).tolist())
    n_colors = 10 if len(uniq) <= 10 else 20  # tab20 pairs similar hues; avoid it when we can
    cmap = colormaps[f"tab{n_colors}"]
    fig = _new_figure(figsize=(7.5, 6), layout="constrained")
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
    _save(fig, path)


# -- report --------------------------------------------------------------------------------------
@dataclass
class EdaResult:
    report: Path
    figures: list[Path]
    n_chunks: int


def _md_table(df: pd.DataFrame, floatfmt: str = ".3f") -> str:
    from tabulate import tabulate

    return tabulate(df, headers="keys", tablefmt="github", showindex=False, floatfmt=floatfmt)


def write_report(store_path: str | os.PathLike, out_dir: str | os.PathLike,
                 max_chunks: int = DEFAULT_MAX_CHUNKS, seed: int = 0) -> EdaResult:
    """Compute everything on a deterministic subsample and write report.md + PNGs to out_dir."""
    from featstore.store.reader import Store
    from featstore.store.summary import summarize

    if max_chunks < 2:
        raise UserError(f"--max-chunks must be at least 2, got {max_chunks}")
    out = Path(out_dir)
    with Store(store_path) as store:
        if "mfcc" not in store.features:
            raise UserError(f"store {store_path} has no mfcc feature (it has "
                            f"{', '.join(sorted(store.features)) or 'none'}); rebuild it with "
                            "`featstore build --features mfcc`")
        if len(store) == 0:
            raise UserError(f"store {store_path} has no chunks")
        out.mkdir(parents=True, exist_ok=True)
        summary = summarize(store)
        info = store.features["mfcc"]
        params = info.params
        hop = int(params.get("hop_length", 512))
        sample_rate = float(params.get("sample_rate", 16000))

        rows = subsample_rows(len(store), max_chunks, seed)
        meta = store.meta.iloc[rows].reset_index(drop=True)
        genders = np.where(meta["gender"].isin(["F", "M"]), meta["gender"], "U")
        speakers = meta["speaker_id"].to_numpy()
        n_valid = valid_frames(meta["n_samples"].to_numpy(), hop, info.shape[0])
        means, stds = chunk_mean_std(store.load("mfcc", rows), n_valid)

        # 1-2. distributions, effect sizes and outliers on per-chunk means
        gtable = gender_table(means, genders, speakers)
        otable = count_outliers(means)
        # 3. example utterances (all their chunks, even those outside the subsample)
        examples = []
        for g in ("F", "M"):
            utt = pick_utterance(store.meta, g, seed)
            if utt is not None:
                mat, n_samples = utterance_mfcc(store, utt, hop)
                examples.append((g, utt, mat, n_samples / sample_rate))
        # 4. PCA of [mean, std] per chunk
        scores, ratios = pca_embed(np.hstack([means, stds]))
        # 5. pitch
        pitch = None
        if "pitch/f0" in store.features:
            from featstore import eda_pitch

            pitch = eda_pitch.load_pitch(store, rows)

    paths = [out / name for name in FIGURES]
    plot_gender_hists(means, genders, paths[0])
    plot_outliers(otable, paths[1])
    plot_heatmaps(examples, paths[2])
    plot_pca(scores, genders, ratios, "PCA of per-chunk MFCC mean+std, by gender", paths[3],
             colors=COLORS)
    plot_pca(scores, speakers, ratios, "PCA of per-chunk MFCC mean+std, by speaker", paths[4])

    text = _render(summary, len(rows), seed, gtable, otable, examples, ratios)
    if pitch is not None:
        stats, frames_f0 = pitch
        paths.append(out / eda_pitch.FIGURE)
        eda_pitch.plot_f0(frames_f0, stats, genders, paths[-1])
        text += "\n".join(eda_pitch.render(eda_pitch.f0_table(stats, genders, speakers)))
    report = out / "report.md"
    report.write_text(text)
    return EdaResult(report, paths, len(rows))


def _render(summary: dict, n_used: int, seed: int, gtable: pd.DataFrame, otable: pd.DataFrame,
            examples: list, ratios: np.ndarray) -> str:
    import pandas as pd

    n_total = summary["num_chunks"]
    sampled = (f"all {n_total} chunks" if n_used == n_total
               else f"{n_used} of {n_total} chunks (random subsample, seed {seed})")
    by_gender = ", ".join(f"{g}={n}" for g, n in summary["speakers_by_gender"].items())
    header = pd.DataFrame({"": ["store", "chunks", "utterances", "speakers", "hours", "problems",
                                "analysed"],
                           "value": [summary["path"], str(n_total), str(summary["num_utterances"]),
                                     f"{summary['num_speakers']} ({by_gender})",
                                     f"{summary['hours']:.3f}", str(len(summary["problems"])),
                                     sampled]})
    d_col = "d (F-M, chunks)"
    ranked = gtable.dropna(subset=[d_col]).sort_values(d_col, key=abs, ascending=False)
    best = ", ".join(f"{r.coef} (d={r[d_col]:+.2f})" for _, r in ranked.head(3).iterrows())
    best = best or "n/a (needs >= 2 chunks of F and of M)"
    otable_pct = otable.assign(**{
        "z %": 100 * otable.iloc[:, 1] / n_used, "IQR %": 100 * otable.iloc[:, 2] / n_used})
    cum = np.cumsum(ratios)
    var_table = pd.DataFrame({"component": [f"PC{i + 1}" for i in range(len(ratios))],
                              "explained": ratios, "cumulative": cum})
    captions = "; ".join(f"{g}: `{u}` ({sec:.1f} s)" for g, u, _, sec in examples)
    captions = captions or "no F or M utterance in this store"
    lines = [
        "# MFCC exploratory report", "",
        _md_table(header), "",
        "Statistics use each chunk's mean MFCC over its real (non-padded) frames; speakers of "
        "unknown gender are labelled U.", "",
        "## 1. Coefficient distributions by gender", "",
        "![per-coefficient distributions by gender](mfcc_by_gender.png)", "",
        _md_table(gtable), "",
        "Cohen's d = (mean F - mean M) / pooled sd. Chunks of one speaker are correlated, so "
        "the chunk-level d overstates certainty; the speaker-level d uses one average per "
        "speaker.", "",
        f"Largest gender separation (|d| over chunks): {best}.",
        "",
        "## 2. Outliers per coefficient", "",
        "![outlier counts](outliers.png)", "",
        _md_table(otable_pct, floatfmt=".2f"), "",
        "z-score outliers: chunks with abs(x - mean) > 3 sd (population sd); IQR outliers: "
        "chunks outside [Q1 - 1.5 IQR, Q3 + 1.5 IQR]; % of analysed chunks.", "",
        "## 3. Example MFCC heatmaps", "",
        "![MFCC heatmaps](mfcc_heatmaps.png)", "",
        f"Utterances (chosen with seed {seed}): {captions}. Each coefficient is z-scored over "
        "time for display.", "",
        "## 4. PCA of per-chunk MFCC mean + std (standardised)", "",
        "![PCA by gender](pca_gender.png)", "",
        "![PCA by speaker](pca_speaker.png)", "",
        _md_table(var_table), "",
    ]
    return "\n".join(lines)
