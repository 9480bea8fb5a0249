"""Model selection inside the training data, sample weights, the split protocols of issue 8."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

import models
from bench import selection, weights
from bench.splits import check_split, make_split, split_groups

VECTOR_CLASSIFIERS = ["majority", "logreg", "xgboost", "mlp", "gmm"]
FAST = {
    "majority": {},
    "logreg": {},
    "xgboost": {"n_estimators": 60, "early_stopping_rounds": 10},
    "mlp": {"hidden_sizes": [16], "max_epochs": 25, "patience": 4, "batch_size": 32},
    "gmm": {"n_components": 1},
    "cnn": {"channels": [4], "max_epochs": 4, "patience": 2, "batch_size": 16},
}


@pytest.fixture(autouse=True, scope="module")
def one_torch_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def speakers_data(seed: int = 0, n_speakers: int = 24, shift: float = 1.0):
    """Gender-like data: each speaker has a personal offset and 2..30 chunks."""
    rng = np.random.default_rng(seed)
    X, y, spk = [], [], []
    for s in range(n_speakers):
        label = "F" if s % 2 else "M"
        centre = rng.normal(scale=0.7, size=6) + shift * (label == "F")
        n = int(rng.integers(2, 31))
        X.append(centre + rng.normal(size=(n, 6)))
        y += [label] * n
        spk += [f"s{s}"] * n
    X = np.concatenate(X).astype(np.float32)
    y, spk = np.array(y), np.array(spk)
    return selection.TrainingData(X, y, weights.balanced(spk), spk)


# ---- grouped inner folds ----------------------------------------------------------------


@pytest.mark.parametrize("seed", range(10))
def test_inner_folds_never_share_a_group(seed):
    data = speakers_data(seed)
    folds = selection.inner_folds(data, 5, seed)
    assert len(folds) == 5
    covered = np.zeros(len(data.y), dtype=int)
    for tr, va in folds:
        assert not set(data.groups[tr]) & set(data.groups[va])
        assert set(data.y[va]) <= set(data.y[tr])
        covered[va] += 1
    assert covered.max() == 1  # each row validated at most once


def test_inner_folds_on_a_speaker_task_use_session_groups():
    """Speaker ID: groups are utterances (or chapters); a class with fewer rows than folds
    falls back to plain grouped folds, and unscorable validation rows are dropped."""
    rng = np.random.default_rng(0)
    rows = []
    for s in range(4):
        for u in range(2 if s == 0 else 6):
            for _ in range(int(rng.integers(1, 4))):
                rows.append((f"spk{s}", f"spk{s}-u{u}"))
    y = np.array([r[0] for r in rows])
    groups = np.array([r[1] for r in rows])
    data = selection.TrainingData(rng.normal(size=(len(y), 3)), y, np.ones(len(y)), groups)
    for tr, va in selection.inner_folds(data, 5, seed=1):
        assert not set(groups[tr]) & set(groups[va])
        assert set(y[va]) <= set(y[tr])


def test_split_groups_follow_chapters_when_a_speaker_has_several():
    meta = pd.DataFrame({
        "speaker_id": ["a", "a", "a", "b", "b"],
        "chapter_id": ["1", "1", "2", "7", "7"],
        "utterance_id": ["a-1-0", "a-1-1", "a-2-0", "b-7-0", "b-7-1"],
    })
    assert list(split_groups(meta, "speaker")) == ["a-1", "a-1", "a-2", "b-7-0", "b-7-1"]
    assert list(split_groups(meta, "gender")) == ["a", "a", "a", "b", "b"]


# ---- selection and refit ----------------------------------------------------------------


def test_refit_uses_the_chosen_settings(monkeypatch):
    """logreg: a grid where C matters; the refit is one fit on all training rows, without a
    validation part, with the candidate that scored best inside the folds."""
    data = speakers_data(3, shift=1.5)
    calls = []
    fit = models.base.Classifier.fit

    def spy(self, X, y, sample_weight=None, **kw):
        calls.append((self.params["C"], len(X), kw.get("X_val") is not None))
        return fit(self, X, y, sample_weight, **kw)

    monkeypatch.setattr(models.base.Classifier, "fit", spy)
    model, chosen = selection.fit_cv("logreg", {}, {"C": [1e-6, 1.0]}, data, folds=4, seed=0,
                                     device="cpu")
    scores = {c["params"]["C"]: c["score"] for c in chosen.candidates}
    best = max(scores, key=scores.get)
    assert best == 1.0 and scores[1.0] > scores[1e-6]
    assert chosen.chosen == {"C": best} and model.params["C"] == best
    assert calls[-1] == (best, len(data.y), False)  # the refit: all rows, no validation
    assert len(calls) == 2 * 4 + 1 and all(val for _, _, val in calls[:-1])
    assert chosen.score == pytest.approx(scores[best])


def test_iterations_are_the_mean_best_over_folds():
    data = speakers_data(4)
    model, chosen = selection.fit_cv("xgboost", FAST["xgboost"], {"max_depth": [2]}, data,
                                     folds=3, seed=0, device="cpu")
    iters = chosen.candidates[0]["iterations"]
    assert len(iters) == 3 and all(i >= 1 for i in iters)
    expected = max(10, int(round(np.mean(iters))))  # min_rounds = 10
    assert chosen.chosen["n_estimators"] == expected
    assert model.info()["n_trees"] == expected and "best_iteration" not in model.info()


def test_validation_mode_keeps_the_best_fitted_model():
    data = speakers_data(5)
    spk = data.groups
    val_mask = np.isin(spk, ["s0", "s1", "s2", "s3"])
    model, chosen = selection.fit_validation(
        "mlp", FAST["mlp"], {"weight_decay": [1e-4, 1e-2]}, data.take(np.flatnonzero(~val_mask)),
        data.take(np.flatnonzero(val_mask)), seed=0, device="cpu")
    assert chosen.method == "validation" and len(chosen.candidates) == 2
    assert model.params["weight_decay"] == chosen.chosen["weight_decay"]
    assert chosen.chosen["max_epochs"] == model.info()["best_epoch"]


def test_xgboost_never_keeps_fewer_than_min_rounds():
    """Labels independent of X: validation loss is best after the first tree or two."""
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(200, 5)), rng.integers(0, 2, 200)
    Xv, yv = rng.normal(size=(100, 5)), rng.integers(0, 2, 100)
    model = models.make_model("xgboost", {"learning_rate": 0.3}, seed=0, device="cpu")
    info = model.fit(X, y, X_val=Xv, y_val=yv).info()
    assert info["n_trees"] >= 10
    assert model.model_.get_booster().num_boosted_rounds() >= 10


# ---- sample weights ---------------------------------------------------------------------


def test_balanced_weights_give_every_group_the_same_mass():
    groups = np.array(["a"] * 30 + ["b"] * 2 + ["c"] * 8)
    w = weights.balanced(groups)
    mass = {g: w[groups == g].sum() for g in "abc"}
    assert np.allclose(list(mass.values()), mass["a"]) and w.mean() == pytest.approx(1)
    assert np.all(weights.row_weights("none", groups, groups) == 1)


def imbalanced(seed: int = 0):
    """Class F: speaker A (90 rows near class M) and speaker B (10 rows, far off); class M:
    speakers C and D, 150 rows each. Speaker-balanced weights make F weigh as much as M and
    B as much as A."""
    rng = np.random.default_rng(seed)
    X = np.concatenate([rng.normal(0.3, 1, (90, 4)), rng.normal(2.0, 1, (10, 4)),
                        rng.normal(0, 1, (300, 4))])
    X = np.concatenate([X, rng.normal(size=(400, 1))], axis=1).astype(np.float32)
    y = np.array(["F"] * 100 + ["M"] * 300)
    speakers = np.array(["A"] * 90 + ["B"] * 10 + ["C"] * 150 + ["D"] * 150)
    return X, y, speakers


@pytest.mark.parametrize("name", VECTOR_CLASSIFIERS)
def test_sample_weights_change_the_fit(name):
    X, y, speakers = imbalanced()
    plain = models.make_model(name, FAST[name], seed=0, device="cpu").fit(X, y)
    weighted = models.make_model(name, FAST[name], seed=0, device="cpu").fit(
        X, y, weights.balanced(speakers))
    b = speakers == "B"
    f = list(plain.classes_).index("F")
    p0, p1 = plain.predict_proba(X[b])[:, f].mean(), weighted.predict_proba(X[b])[:, f].mean()
    assert p1 > p0 + 0.02, (p0, p1)


def test_weights_are_scale_free_and_checked():
    X, y, _ = imbalanced()
    w = weights.balanced(y)
    a = models.make_model("logreg", {}, seed=0, device="cpu").fit(X, y, w).predict_proba(X)
    b = models.make_model("logreg", {}, seed=0, device="cpu").fit(X, y, 7 * w).predict_proba(X)
    np.testing.assert_allclose(a, b, rtol=1e-6)
    model = models.make_model("logreg", {}, seed=0, device="cpu")
    for bad in (-w, np.zeros(len(y)), w[:5]):
        with pytest.raises(ValueError, match="sample_weight"):
            model.fit(X, y, bad)


def test_cnn_takes_sample_weights():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 10, 4)).astype(np.float32)
    y = np.array(["F"] * 10 + ["M"] * 50)
    X[:10] += 0.3
    a = models.make_model("cnn", FAST["cnn"], seed=0, device="cpu").fit(X, y)
    b = models.make_model("cnn", FAST["cnn"], seed=0, device="cpu").fit(X, y, weights.balanced(y))
    assert not np.allclose(a.predict_proba(X), b.predict_proba(X))


# ---- the contract, over the registry ------------------------------------------------------


@pytest.mark.parametrize("name", VECTOR_CLASSIFIERS)
def test_classifier_contract(name):
    X, y, _ = imbalanced(1)
    model = models.make_model(name, FAST[name], seed=3, device="cpu")
    assert not [k for k in vars(model) if k.endswith("_") and not k.startswith("_")]
    assert model.fit(X, y) is model
    proba = model.predict_proba(X)
    np.testing.assert_allclose(proba.sum(1), 1.0, atol=1e-6)
    twin = models.clone(model)
    assert twin.get_params() == model.get_params() and twin.classes_ is None
    np.testing.assert_allclose(twin.fit(X, y).predict_proba(X), proba, atol=1e-6)
    assert models.clone(model, **{}).random_state == 3


def test_gmm_on_wide_vectors_projects_first():
    rng = np.random.default_rng(0)
    y = np.repeat(["a", "b", "c"], 25)
    X = rng.normal(size=(75, 400)) + 2.0 * (y[:, None] == np.array(["a", "b", "c"]))[:, :1]
    X[:, 1] += 2.0 * (y == "b")
    model = models.make_model("gmm", {"n_components": 2, "pca_components": 8}, seed=0,
                              device="cpu").fit(X, y)
    assert model.info()["dimensions"] == 8
    assert np.mean(model.predict(X) == y) > 0.9


# ---- split protocol ------------------------------------------------------------------------


def two_subset_meta(seed: int) -> pd.DataFrame:
    """40 F and 40 M speakers, a quarter of each from "test-other" (many chunks each), the
    rest from "train-clean-100" (one utterance)."""
    rows = []
    for g in "FM":
        for s in range(40):
            other = s < 10
            spk = f"{g}{s}"
            for u in range(5 if other else 1):
                for c in range(3):
                    rows.append({"speaker_id": spk, "gender": g, "chapter_id": "1",
                                 "utterance_id": f"{spk}-1-{u}", "start_sample": c * 32000,
                                 "subset": "test-other" if other else "train-clean-100",
                                 "n_samples": 32000})
    return pd.DataFrame(rows)


@pytest.mark.parametrize("seed", range(8))
def test_gender_split_is_stratified_by_subset(seed):
    meta = two_subset_meta(seed)
    split = make_split(meta, "gender", seed, validation_fraction=0.2, test_fraction=0.25)
    check_split(split, meta)
    test = meta.iloc[split.test].groupby("speaker_id").first()
    for g in "FM":
        mine = test[test["gender"] == g]
        assert len(mine) == 10
        # 10 of 40 per gender, a quarter from test-other: exactly 2 or 3, never 0 or 6
        assert 2 <= (mine["subset"] == "test-other").sum() <= 3


def test_speaker_split_is_session_disjoint_where_possible():
    rows = []
    for spk, chapters in (("a", ["1", "2", "3", "4"]), ("b", ["9"]), ("c", ["5", "6"])):
        for ch in chapters:
            for u in range(4):
                rows.append({"speaker_id": spk, "gender": "F", "chapter_id": ch,
                             "utterance_id": f"{spk}-{ch}-{u}", "subset": "x",
                             "start_sample": 0, "n_samples": 32000})
    meta = pd.DataFrame(rows)
    split = make_split(meta, "speaker", 0, validation_fraction=0.2, test_fraction=0.25)
    check_split(split, meta)
    session = (meta["speaker_id"] + "-" + meta["chapter_id"]).to_numpy()
    for a, b in (("train", "test"), ("train", "validation"), ("validation", "test")):
        pa, pb = split.parts()[a], split.parts()[b]
        shared = set(session[pa]) & set(session[pb])
        assert shared <= {"b-9"}, shared  # only the one-chapter speaker shares a session
    assert any("share a session" in n and "b" in n for n in split.notes)
    assert any("1 speaker(s)" in n or "2 speaker(s) split by chapter" in n for n in split.notes)
