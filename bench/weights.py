"""Training-row weights: who counts how much in a model's loss and in model selection.

LibriSpeech speakers bring very different amounts of audio (in the real sample, the test-other
readers ~38 chunks each, most train-clean-100 readers ~6), so with equal chunk weights a few
long-recorded speakers dominate what a gender model learns. Schemes:

    speaker   every speaker weighs the same in total (default for gender)
    class     every class weighs the same in total (default for speaker ID)
    none      every chunk weighs the same

Weights are scaled to mean 1 over the rows they are computed for.
"""

from __future__ import annotations

import numpy as np

SCHEMES = ("speaker", "class", "none")  # each task names its default (bench/tasks/)


def balanced(groups: np.ndarray) -> np.ndarray:
    """1 / (rows of the row's group), scaled to mean 1: every group sums to the same weight."""
    _, inverse, counts = np.unique(np.asarray(groups), return_inverse=True, return_counts=True)
    w = 1.0 / counts[inverse]
    return w / w.mean()


def row_weights(scheme: str, labels: np.ndarray, speakers: np.ndarray) -> np.ndarray:
    """Weights of rows with these labels and speakers under ``scheme``."""
    if scheme == "speaker":
        return balanced(speakers)
    if scheme == "class":
        return balanced(labels)
    if scheme == "none":
        return np.ones(len(labels))
    raise ValueError(f"unknown weighting {scheme!r}; valid: {', '.join(SCHEMES)}")
