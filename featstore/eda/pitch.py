"""EDA section on pitch (stores built with the ``pitch`` feature): the F0 distribution by
gender (one figure) and Cohen's d of median log-F0, over chunks and over speakers."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from featstore.eda.figures import COLORS, new_figure, save
from featstore.eda.markdown import md_table
from featstore.eda.stats import GENDERS, cohens_d
from featstore.pitch_stats import pitch_stats
from featstore.pooling import frame_shift, valid_frames

if TYPE_CHECKING:
    import pandas as pd

    from featstore.store.reader import Store

FIGURE = "f0_by_gender.png"


def load_pitch(store: Store, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(per-chunk statistics [n, 6] as the bench ``pitch`` view, F0 of every voiced frame of
    real audio [n, frames] with 0 elsewhere)."""
    f0 = store.load("pitch/f0", rows)
    params = store.features["pitch/f0"].params
    n_samples = store.meta["n_samples"].to_numpy()[rows]
    n_real = valid_frames(n_samples, frame_shift(params), f0.shape[1])
    real = np.arange(f0.shape[1]) < n_real[:, None]
    return pitch_stats(f0, n_samples, params), np.where(real, f0, 0.0)


def f0_table(stats: np.ndarray, genders: np.ndarray, speakers: np.ndarray) -> pd.DataFrame:
    """Per gender: chunks with a voiced frame, speakers, median F0 (Hz) of the chunk medians;
    then Cohen's d (F - M) of median log-F0 over chunks and over per-speaker means."""
    import pandas as pd

    voiced = stats[:, 5] == 0  # chunks without a voiced frame have no median to compare
    median, g, spk = stats[voiced, 0].astype(np.float64), genders[voiced], speakers[voiced]
    per_spk = pd.Series(median).groupby([g, spk]).mean()
    spk_g = per_spk.index.get_level_values(0)
    rows = []
    for gender in GENDERS:
        sel = g == gender
        if sel.any():
            rows.append({"gender": gender, "chunks": int(sel.sum()),
                         "speakers": int((spk_g == gender).sum()),
                         "median F0 (Hz)": float(np.exp(np.median(median[sel])))})
    table = pd.DataFrame(rows)
    table.attrs["d_chunks"] = float(cohens_d(median[g == "F"], median[g == "M"])[0])
    table.attrs["d_speakers"] = float(cohens_d(per_spk[spk_g == "F"].to_numpy(),
                                               per_spk[spk_g == "M"].to_numpy())[0])
    table.attrs["unvoiced_chunks"] = int((~voiced).sum())
    return table


def plot_f0(frames_f0: np.ndarray, stats: np.ndarray, genders: np.ndarray, path: Path) -> None:
    """Densities by gender on a log-frequency axis: F0 of all voiced frames (left) and each
    chunk's median F0 (right)."""
    fig = new_figure(figsize=(11, 4), layout="constrained")
    left, right = fig.subplots(1, 2)
    bins = np.geomspace(50, 500, 46)
    for g in GENDERS:
        sel = genders == g
        frames = frames_f0[sel][frames_f0[sel] > 0]
        chunk = np.exp(stats[sel & (stats[:, 5] == 0), 0])
        if len(frames):
            left.hist(frames, bins=bins, density=True, alpha=0.5, color=COLORS[g],
                      label=f"{g} ({len(frames)} frames)")
        if len(chunk):
            right.hist(chunk, bins=bins, density=True, alpha=0.5, color=COLORS[g],
                       label=f"{g} ({len(chunk)} chunks)")
    for ax, title in ((left, "F0 of voiced frames"), (right, "median F0 per chunk")):
        ax.set_xscale("log")
        ax.set_xticks([50, 100, 200, 300, 500], ["50", "100", "200", "300", "500"])
        ax.set_xticks([], minor=True)  # log axes label minor ticks (6x10^1) otherwise
        ax.set_xlabel("F0 (Hz)")
        ax.set_yticks([])
        ax.set_title(title)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=8)
    fig.suptitle("F0 by gender (density)")
    save(fig, path)


def render(table: pd.DataFrame) -> list[str]:
    """The report's pitch section (markdown lines)."""
    d_chunks, d_spk = table.attrs["d_chunks"], table.attrs["d_speakers"]
    return [
        "", "## 5. Pitch (F0) by gender", "",
        f"![F0 by gender]({FIGURE})", "",
        md_table(table, floatfmt=".1f"), "",
        f"Cohen's d of median log-F0 (F - M): {d_chunks:+.2f} over chunks, {d_spk:+.2f} over "
        "speakers (one mean of chunk medians per speaker). Chunks without a voiced frame "
        f"({table.attrs['unvoiced_chunks']}) are left out.", "",
    ]
