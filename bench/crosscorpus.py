"""Cross-corpus evaluation: a task entry's ``test_store:`` trains on the main store and tests
on the whole of another store.

Checks before any model runs, each a one-line refusal (exit 2): the test store has every view
of the task, with the same feature parameters (and feature shapes) as the main store, and no
speaker is in both stores, speakers named by corpus-qualified id (``corpus_of``).

The split: the main store's usual split for the seed with its test part given to training
(the model selects inside it as usual: CV folds, or the validation part), and the test part is
every eligible row of the test store (F / M speakers for gender). The test set is the same for
every seed, so seeds vary the training only; the interval combines both sources: a cluster
bootstrap over test speakers, with one set of speaker draws shared by all seeds
(``replicates``), and a bootstrap over seeds on top (``combined_interval``).
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd

from bench.config_values import ConfigError
from featstore.store.reader import Store

CROSS_NOTE = ("95% interval: the mean over seeds under a bootstrap of the test store's "
              "speakers (the same draws for every seed) and of the seeds")
BOOT_SEED = 0  # the speaker draws, shared by every seed of a cross-corpus cell
FEATURE_OF = {"mfcc": "mfcc", "mfcc-deltas": "mfcc", "mfcc-frames": "mfcc", "fbank": "fbank",
              "fbank-frames": "fbank", "pitch": "pitch", "audio": "audio",
              "wav2vec2": "wav2vec2", "wav2vec2-frames": "wav2vec2"}


def corpus_of(store: Store) -> str:
    """The corpus a store's speaker ids belong to: LibriSpeech for every LibriSpeech-layout
    source (subsets and samples of one corpus share speaker ids), else the source name."""
    name = store.provenance.get("source_name") or str(store.path)
    return "LibriSpeech" if name.lower().startswith("librispeech") else name


def view_features(view: str, store: Store) -> dict[str, tuple]:
    """Store feature name -> (params, shape) of the features ``view`` reads."""
    out = {}
    for part in view.split("+"):
        prefix = FEATURE_OF.get(part.split(":")[0], part.split(":")[0])
        for name, info in store.features.items():
            if name == prefix or name.startswith(prefix + "/"):
                out[name] = (info.params, tuple(info.shape))
    return out


def check_stores(task: str, views: list[str], main: Store, test: Store) -> None:
    """Refuse (ConfigError) a test store that cannot be scored with models of the main one."""
    from bench.views import ViewError, parse_view

    where = f"tasks.{task}.test_store {test.path}"
    for view in views:
        try:
            parse_view(view).check(test)
        except ViewError as exc:
            raise ConfigError(f"{where}: {exc}") from None
        a, b = view_features(view, main), view_features(view, test)
        for name in sorted(set(a) | set(b)):
            if a.get(name) != b.get(name):
                diff = _first_difference(a.get(name), b.get(name))
                raise ConfigError(f"{where}: view '{view}' differs from store {main.path}: "
                                  f"feature {name} {diff}; build both with the same parameters")
    corpus_a, corpus_b = corpus_of(main), corpus_of(test)
    shared = sorted(set(_qualified(main.meta, corpus_a)) & set(_qualified(test.meta, corpus_b)))
    if shared:
        raise ConfigError(f"{where}: {len(shared)} speaker(s) are in both stores (e.g. "
                          f"{shared[0]}): a cross-corpus test needs other speakers")


def _first_difference(a: tuple | None, b: tuple | None) -> str:
    if a is None or b is None:
        return "is missing from one store"
    if a[1] != b[1]:
        return f"has shape {a[1]} vs {b[1]}"
    key = next(k for k in sorted(set(a[0]) | set(b[0]), key=str) if a[0].get(k) != b[0].get(k))
    return f"has {key}={a[0].get(key)!r} vs {b[0].get(key)!r}"


def _qualified(meta: pd.DataFrame, corpus: str) -> list[str]:
    return [f"{corpus}/{s}" for s in meta["speaker_id"].unique()]


def cross_split(split, test_meta: pd.DataFrame, test_path: str, eligible: np.ndarray):
    """``split`` of the main store with its test part moved to training, tested on the
    ``eligible`` rows of the test store."""
    train = np.sort(np.concatenate([split.train, split.test]))
    speakers = test_meta.loc[eligible, "speaker_id"].nunique()
    kept = [n for n in split.notes if "test speaker" not in n]  # the main test part trains
    notes = (*kept, "trained on the main store, no row held out for testing; tested on "
             f"{int(eligible.sum())} chunks of {speakers} speakers of {test_path}")
    return dataclasses.replace(split, train=train, test=np.flatnonzero(eligible),
                               notes=notes, test_store=test_path)


def replicates(correct: np.ndarray, clusters: np.ndarray, n_boot: int) -> list[float]:
    """Accuracy over ``n_boot`` resamples of the test speakers, drawn with BOOT_SEED (the same
    draws for every seed, since every seed tests the same speakers)."""
    _, inverse = np.unique(np.asarray(clusters), return_inverse=True)
    hits = np.bincount(inverse, weights=np.asarray(correct, dtype=float))
    sizes = np.bincount(inverse).astype(float)
    draws = np.random.default_rng(BOOT_SEED).integers(0, len(sizes), (n_boot, len(sizes)))
    return (hits[draws].sum(axis=1) / sizes[draws].sum(axis=1)).tolist()


def combined_interval(per_seed: list[list[float]], level: float = 0.95,
                      seed: int = BOOT_SEED) -> tuple[float, float] | None:
    """Percentile interval of the mean over seeds: replicate b draws J seeds with replacement
    and averages their b-th speaker-resample scores."""
    reps = np.array([r for r in per_seed if r])
    if reps.size == 0 or len({len(r) for r in per_seed}) != 1:
        return None
    j, n_boot = reps.shape
    picks = np.random.default_rng(seed).integers(0, j, (n_boot, j))
    values = reps[picks, np.arange(n_boot)[:, None]].mean(axis=1)
    alpha = (1 - level) / 2
    low, high = np.quantile(values, [alpha, 1 - alpha])
    return float(low), float(high)
