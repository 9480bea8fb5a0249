"""One verification cell: utterance embeddings, a backend fitted on the training speakers,
cosine scores of the seed's trials, and their error rates."""

from __future__ import annotations

import time

import numpy as np

from bench.crosscorpus import BOOT_SEED
from bench.verification import intervals
from bench.verification.backends import BACKENDS, cosine_scores
from bench.verification.metrics import scores_of
from bench.verification.trials import make_trials, write_trials


def utterance_embeddings(X: np.ndarray, utterances: np.ndarray,
                         speakers: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(mean of each utterance's chunk vectors, utterance ids, their speakers), sorted by id."""
    ids, first, inverse = np.unique(utterances, return_index=True, return_inverse=True)
    sums = np.zeros((len(ids), X.shape[1]))
    np.add.at(sums, inverse, np.asarray(X, dtype=np.float64))
    return sums / np.bincount(inverse)[:, None], ids, speakers[first]


def trials_path(task: str, seed: int) -> str:
    return f"trials/{task}_seed{seed}.txt"


def run(ctx, cell, take, take_test, n_nontarget: int) -> tuple[dict, dict]:
    """(the record's fields, the arrays to save as its predictions). ``take(rows)`` /
    ``take_test(rows)``: the view's vectors of those training / test rows (the test rows are
    another store's for a cross-corpus task)."""
    split = ctx.splits[cell.task][cell.seed]
    meta = ctx.store.meta
    utt, spk = meta["utterance_id"].to_numpy(), meta["speaker_id"].to_numpy()
    tmeta = ctx.test_store(cell.task).meta
    t_utt, t_spk = tmeta["utterance_id"].to_numpy(), tmeta["speaker_id"].to_numpy()
    train_rows = split.train_rows()
    start = time.perf_counter()
    E_train, _, s_train = utterance_embeddings(take(train_rows), utt[train_rows],
                                               spk[train_rows])
    backend = BACKENDS[cell.model].factory().fit(E_train, s_train)
    fit_seconds = time.perf_counter() - start
    start = time.perf_counter()
    E_test, u_test, s_test = utterance_embeddings(take_test(split.test), t_utt[split.test],
                                                  t_spk[split.test])
    a, b, target = make_trials(s_test, cell.seed, n_nontarget)
    scores = cosine_scores(backend.embed(E_test), a, b)
    score_seconds = time.perf_counter() - start
    path = ctx.run_dir / trials_path(cell.task, cell.seed)
    if not path.is_file():  # the same list for every view and backend of this seed
        write_trials(path, u_test, a, b, target)
    rec = {"n_train": len(E_train), "n_val": 0, "n_test": len(E_test),
           "n_train_units": len(np.unique(s_train)), "n_test_units": len(np.unique(s_test)),
           "n_target": int(target.sum()), "n_nontarget": int((~target).sum()),
           "unit": "speaker", "trials": trials_path(cell.task, cell.seed),
           "fit_seconds": fit_seconds, "predict_seconds": score_seconds,
           "samples_per_second": len(scores) / max(score_seconds, 1e-9),
           "embedding": "mean of the utterance's chunk vectors", "backend": backend.info()}
    rec.update(scores_of(scores, target))
    sa, sb = s_test[a], s_test[b]
    cross = split.test_store is not None  # one set of speaker draws for every seed
    rec.update(intervals.speaker_bootstrap(scores, target, sa, sb, ctx.config.bootstrap,
                                           seed=BOOT_SEED if cross else cell.seed,
                                           keep=cross))
    if cross:
        rec["test_store"] = split.test_store
        rec["boot_replicates"] = rec.pop("eer_replicates")
    rec["ci_resamples"] = "test speakers (two-way: a non-target trial weighs both draws)"
    arrays = {"utt_a": u_test[a], "utt_b": u_test[b], "spk_a": sa, "spk_b": sb,
              "score": scores, "target": target}
    return rec, arrays
