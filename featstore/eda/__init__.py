"""Exploratory report on a store: MFCC distributions by gender, outliers, heatmaps, PCA, and
pitch by gender when the store has it. ``stats`` computes, ``figures`` draws, ``pitch`` is the
F0 section, ``report`` ties them into ``report.md`` (``featstore eda``)."""

from __future__ import annotations

from featstore.eda.report import DEFAULT_MAX_CHUNKS, FIGURES, EdaResult, write_report
from featstore.eda.stats import (
    chunk_mean_std,
    cohens_d,
    count_outliers,
    pick_utterance,
    subsample_rows,
    valid_frames,
)

__all__ = ["DEFAULT_MAX_CHUNKS", "FIGURES", "EdaResult", "chunk_mean_std", "cohens_d",
           "count_outliers", "pick_utterance", "subsample_rows", "valid_frames", "write_report"]
