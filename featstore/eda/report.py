"""The EDA report (``featstore eda``): statistics on a subsample, figures, one markdown page."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from featstore.eda import pitch as pitch_section
from featstore.eda.figures import (
    COLORS,
    plot_gender_hists,
    plot_heatmaps,
    plot_outliers,
    plot_pca,
)
from featstore.eda.markdown import md_table
from featstore.eda.stats import (
    chunk_mean_std,
    count_outliers,
    gender_table,
    pca_embed,
    pick_utterance,
    subsample_rows,
    utterance_mfcc,
    valid_frames,
)
from featstore.errors import UserError
from featstore.pooling import frame_shift

if TYPE_CHECKING:
    import pandas as pd

DEFAULT_MAX_CHUNKS = 20_000
FIGURES = ("mfcc_by_gender.png", "outliers.png", "mfcc_heatmaps.png", "pca_gender.png",
           "pca_speaker.png")


# -- report --------------------------------------------------------------------------------------
@dataclass
class EdaResult:
    report: Path
    figures: list[Path]
    n_chunks: int


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
        hop = frame_shift(params)
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
            pitch = pitch_section.load_pitch(store, rows)

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
        paths.append(out / pitch_section.FIGURE)
        pitch_section.plot_f0(frames_f0, stats, genders, paths[-1])
        text += "\n".join(pitch_section.render(pitch_section.f0_table(stats, genders, speakers)))
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
        md_table(header), "",
        "Statistics use each chunk's mean MFCC over its real (non-padded) frames; speakers of "
        "unknown gender are labelled U.", "",
        "## 1. Coefficient distributions by gender", "",
        "![per-coefficient distributions by gender](mfcc_by_gender.png)", "",
        md_table(gtable), "",
        "Cohen's d = (mean F - mean M) / pooled sd. Chunks of one speaker are correlated, so "
        "the chunk-level d overstates certainty; the speaker-level d uses one average per "
        "speaker.", "",
        f"Largest gender separation (|d| over chunks): {best}.",
        "",
        "## 2. Outliers per coefficient", "",
        "![outlier counts](outliers.png)", "",
        md_table(otable_pct, floatfmt=".2f"), "",
        "z-score outliers: chunks with abs(x - mean) > 3 sd (population sd); IQR outliers: "
        "chunks outside [Q1 - 1.5 IQR, Q3 + 1.5 IQR]; % of analysed chunks.", "",
        "## 3. Example MFCC heatmaps", "",
        "![MFCC heatmaps](mfcc_heatmaps.png)", "",
        f"Utterances (chosen with seed {seed}): {captions}. Each coefficient is z-scored over "
        "time for display.", "",
        "## 4. PCA of per-chunk MFCC mean + std (standardised)", "",
        "![PCA by gender](pca_gender.png)", "",
        "![PCA by speaker](pca_speaker.png)", "",
        md_table(var_table), "",
    ]
    return "\n".join(lines)
