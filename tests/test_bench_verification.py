"""Verification: metrics against sklearn's ROC, trial rules, the task split, cells end to end,
the speaker bootstrap and the paired comparison."""

from __future__ import annotations

import json
from math import comb

import numpy as np
import pytest
import yaml
from scipy.stats import norm
from sklearn.metrics import roc_curve

from bench.cli import main
from bench.config import ConfigError, parse
from bench.verification import compare as vcompare
from bench.verification.intervals import speaker_bootstrap, speaker_hter
from bench.verification.metrics import eer, min_dcf, scores_of
from bench.verification.trials import make_trials


def reference_eer(scores, target) -> float:
    """EER from sklearn's ROC: where FNR = 1 - TPR crosses FPR, linearly interpolated."""
    fpr, tpr, _ = roc_curve(target, scores, drop_intermediate=False)
    fnr = 1 - tpr
    i = int(np.flatnonzero(fnr - fpr <= 0)[0])
    d0, d1 = fnr[i - 1] - fpr[i - 1], fnr[i] - fpr[i]
    a = d0 / (d0 - d1)
    return float(fpr[i - 1] + a * (fpr[i] - fpr[i - 1]))


def reference_dcf(scores, target, p) -> float:
    fpr, tpr, _ = roc_curve(target, scores, drop_intermediate=False)
    return float(np.min(p * (1 - tpr) + (1 - p) * fpr) / min(p, 1 - p))


@pytest.mark.parametrize("seed", range(3))
def test_metrics_match_sklearn_roc_and_the_known_eer(seed):
    rng = np.random.default_rng(seed)
    n = 20000
    d = 2.0  # unit-variance Gaussians d apart: EER = Phi(-d/2)
    scores = np.r_[rng.normal(d, 1, n), rng.normal(0, 1, n)]
    target = np.r_[np.ones(n, bool), np.zeros(n, bool)]
    got = scores_of(scores, target)
    assert got["eer"] == pytest.approx(reference_eer(scores, target), abs=1e-9)
    assert got["eer"] == pytest.approx(norm.cdf(-d / 2), abs=0.006)
    for p in (0.01, 0.05):
        assert got[f"min_dcf_{p:g}"] == pytest.approx(reference_dcf(scores, target, p), abs=1e-12)
        assert 0 < got[f"min_dcf_{p:g}"] <= 1


def test_metrics_on_hand_computed_trials():
    scores = np.array([0.9, 0.8, 0.7, 0.6])
    target = np.array([True, False, True, False])
    assert eer(scores, target) == pytest.approx(0.5)
    # P_target 0.5: the cost is (miss + fa) / 2 / 0.5, lowest 0.5 after the first trial
    assert min_dcf(scores, target, 0.5) == pytest.approx(0.5)
    assert eer(np.array([2.0, 1.0]), np.array([True, False])) == 0.0
    assert eer(np.array([1.0, 2.0]), np.array([True, False])) == 1.0
    # tied scores are one operating point: accept both or neither
    assert eer(np.array([1.0, 1.0]), np.array([True, False])) == pytest.approx(0.5)


def test_weights_count_as_repeated_trials():
    rng = np.random.default_rng(4)
    scores, target = rng.normal(size=60), rng.random(60) < 0.3
    w = rng.integers(0, 4, 60)
    w[np.flatnonzero(target)[0]] = w[np.flatnonzero(~target)[0]] = 1
    rep = np.repeat(np.arange(60), w)
    assert eer(scores, target, w.astype(float)) == pytest.approx(eer(scores[rep], target[rep]))
    assert (min_dcf(scores, target, 0.05, weights=w.astype(float))
            == pytest.approx(min_dcf(scores[rep], target[rep], 0.05)))


def test_trials_pair_different_utterances_once():
    speakers = np.array(["a"] * 4 + ["b"] * 3 + ["c"] * 1 + ["d"] * 5)
    a, b, target = make_trials(speakers, seed=3, n_nontarget=20)
    assert (a < b).all()  # never an utterance with itself, each unordered pair once
    assert len(set(zip(a.tolist(), b.tolist(), strict=True))) == len(a)
    assert (speakers[a][target] == speakers[b][target]).all()
    assert target.sum() == comb(4, 2) + comb(3, 2) + comb(5, 2)
    assert (~target).sum() == 20 and (speakers[a][~target] != speakers[b][~target]).all()
    again = make_trials(speakers, seed=3, n_nontarget=20)
    assert all(np.array_equal(x, y) for x, y in zip((a, b, target), again, strict=True))
    other = make_trials(speakers, seed=4, n_nontarget=20)
    assert not np.array_equal(a[~target], other[0][~other[2]])
    everything = make_trials(speakers, seed=0, n_nontarget=10**6)[2]
    total = comb(13, 2) - target.sum()
    assert (~everything).sum() == total  # fewer pairs than asked: all of them


def test_speaker_bootstrap_covers_the_estimate_and_resamples_speakers():
    rng = np.random.default_rng(0)
    spk = np.repeat(np.arange(12), 5).astype(str)
    a, b, target = make_trials(spk, seed=0, n_nontarget=800)
    scores = rng.normal(size=len(a)) + 1.5 * target
    ci = speaker_bootstrap(scores, target, spk[a], spk[b], 300, seed=1)
    point = scores_of(scores, target)
    for key in ("eer", "min_dcf_0.01", "min_dcf_0.05"):
        lo, hi = ci[f"{key}_ci"]
        assert lo <= point[key] <= hi and lo < hi
    assert speaker_bootstrap(scores, target, spk[a], spk[b], 0, seed=1)["eer_ci"] is None
    hter = speaker_hter(scores, target, spk[a], spk[b])
    assert set(hter) == set(spk) and all(0 <= v <= 1 for v in hter.values())


def test_paired_speaker_differences():
    spk = np.repeat(np.arange(20), 3).astype(str)
    utt = np.array([f"u{i}" for i in range(len(spk))])
    a, b, target = make_trials(spk, seed=0, n_nontarget=500)
    rng = np.random.default_rng(2)
    noise = rng.normal(size=len(a))

    def pred(separation):
        return {"utt_a": utt[a], "utt_b": utt[b], "spk_a": spk[a], "spk_b": spk[b],
                "score": noise + separation * target, "target": target}

    ids, diffs = vcompare.speaker_diffs(pred(0.5), pred(4.0))
    assert len(ids) == 20 and diffs.mean() < 0  # B separates better: lower per-speaker HTER
    assert vcompare.cell_p(diffs, 0) < 0.01
    shuffled = pred(4.0)
    shuffled["utt_b"] = shuffled["utt_b"][::-1]
    assert vcompare.speaker_diffs(pred(0.5), shuffled) == "trial lists differ: no paired test"


def test_config_checks_backends_and_views():
    def task(body):
        return parse({"tasks": {"verification": body}})

    cfg = task({"features": ["mfcc", "wav2vec2:6"], "models": ["cosine", "lda-cosine"],
                "nontarget_trials": 500})
    assert cfg.tasks["verification"].nontarget_trials == 500
    with pytest.raises(ConfigError, match="unknown verification backend 'logreg'"):
        task({"features": ["mfcc"], "models": ["logreg"]})
    with pytest.raises(ConfigError, match="not vector"):
        task({"features": ["mfcc-frames"], "models": ["cosine"]})
    with pytest.raises(ConfigError, match="only a verification task has trials"):
        parse({"tasks": {"gender": {"features": ["mfcc"], "models": ["logreg"],
                                    "nontarget_trials": 5}}})


@pytest.fixture(scope="module")
def verification_run(tmp_path_factory, synthetic_store):
    cfg = tmp_path_factory.mktemp("vcfg") / "v.yaml"
    cfg.write_text(yaml.safe_dump({
        "store": str(synthetic_store), "device": "cpu", "seeds": 2, "bootstrap": 50,
        "tasks": {"verification": {"features": ["mfcc", "fbank"],
                                   "models": ["cosine", "lda-cosine"]}}}))
    out = tmp_path_factory.mktemp("vruns") / "run"
    assert main(["run", str(cfg), "--out", str(out), "--quiet"]) == 0
    return out


def test_verification_run_writes_table_det_and_trials(verification_run, synthetic_store):
    import featstore

    meta = featstore.open(synthetic_store).meta
    spk = dict(zip(meta["utterance_id"], meta["speaker_id"], strict=True))
    recs = [json.loads(x) for x in (verification_run / "results.jsonl").read_text().splitlines()]
    assert len(recs) == 2 * 2 * 2 and all(r["status"] == "ok" for r in recs)
    splits = json.loads((verification_run / "splits.json").read_text())["verification"]
    for r in recs:
        assert 0 <= r["eer"] <= 1 and r["unit"] == "speaker" and r["n_target"] > 0
        part = splits[str(r["seed"])]
        train_speakers = {spk[u] for u in part["train"] + part["validation"]}
        test_utts = set(part["test"])
        lines = (verification_run / r["trials"]).read_text().split("\n")[:-1]
        assert len(lines) == r["n_target"] + r["n_nontarget"]
        for line in lines:
            label, u, w = line.split()
            assert u != w and {u, w} <= test_utts
            assert not {spk[u], spk[w]} & train_speakers
            assert (label == "1") == (spk[u] == spk[w])
    board = (verification_run / "leaderboard.md").read_text()
    assert "### Verification" in board and "minDCF 0.01" in board
    assert "## verification (speaker verification on speakers unseen" in board
    for view in ("mfcc", "fbank"):
        png = verification_run / f"det_verification_{view}.png"
        assert png.read_bytes()[:4] == b"\x89PNG" and png.name in board


def test_compare_pairs_verification_runs_per_speaker(verification_run, capsys):
    assert main(["compare", str(verification_run), str(verification_run)]) == 0
    out = capsys.readouterr().out
    rows = [line for line in out.splitlines() if line.startswith("| verification")]
    assert len(rows) == 4 * 3  # (view, backend) x (2 seeds + pooled)
    assert all("| 1 " in row for row in rows)  # identical runs: every difference is 0
