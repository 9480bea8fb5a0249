"""featstore eda: the report on a synthetic store, hand-checked statistics, the no-mfcc error."""

from __future__ import annotations

import numpy as np
import pytest

import featstore
from featstore.cli import main
from featstore.eda import (
    FIGURES,
    chunk_mean_std,
    cohens_d,
    count_outliers,
    pick_utterance,
    subsample_rows,
    valid_frames,
)
from featstore.eda.pitch import FIGURE, f0_table

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def eda_out(synthetic_store, tmp_path_factory):
    out = tmp_path_factory.mktemp("eda") / "report"
    assert main(["eda", str(synthetic_store), "--out", str(out), "--seed", "3"]) == 0
    return out


def test_report_and_figures_written(eda_out, synthetic_store):
    report = (eda_out / "report.md").read_text()
    for name in FIGURES:
        data = (eda_out / name).read_bytes()
        assert data[:8] == PNG_MAGIC, name
        assert len(data) > 10_000, name  # a real plot, not an empty canvas
        assert f"]({name})" in report  # and the report embeds it
    for header in ("F mean", "F std", "M mean", "M std", "d (F-M, chunks)", "d (F-M, speakers)",
                   "z-score outliers", "IQR outliers", "explained", "cumulative"):
        assert f"| {header}" in report or f"|   {header}" in report, header
    store = featstore.open(synthetic_store)
    meta = store.meta
    assert f"| chunks     | {len(store)}" in report
    assert "8 (F=4, M=4)" in report
    assert "all " + str(len(store)) + " chunks" in report
    # the heatmap caption names one utterance of each gender, picked from the seed
    for g in ("F", "M"):
        utt = pick_utterance(meta, g, seed=3)
        assert meta.loc[meta["utterance_id"] == utt, "gender"].iloc[0] == g
        assert f"{g}: `{utt}`" in report


def test_synthetic_genders_separate(eda_out):
    """The synthetic voices differ by gender by construction: some coefficient has |d| > 1."""
    report = (eda_out / "report.md").read_text()
    line = next(x for x in report.splitlines() if x.startswith("Largest gender separation"))
    d = float(line.split("d=")[1].split(")")[0])
    assert abs(d) > 1.0


def test_pitch_section(eda_out, synthetic_store):
    """The synthetic women speak at 180-260 Hz and the men at 85-150 Hz: the F0 figure is
    drawn and the speaker-level d of median log-F0 is large and positive (F - M)."""
    assert (eda_out / FIGURE).read_bytes()[:8] == PNG_MAGIC
    report = (eda_out / "report.md").read_text()
    assert f"]({FIGURE})" in report
    line = next(x for x in report.splitlines() if x.startswith("Cohen's d of median log-F0"))
    d_chunks, d_speakers = (float(p.split(" over")[0]) for p in line.split(": ")[1].split(", ")[:2])
    assert d_chunks > 2 and d_speakers > 2
    hz = {row.split("|")[1].strip(): float(row.split("|")[4]) for row in report.splitlines()
          if row.startswith(("| F ", "| M ")) and row.count("|") == 5}
    assert 170 < hz["F"] < 270 and 80 < hz["M"] < 160


def test_f0_table_by_hand():
    # chunk medians (log Hz): F speaker a: 200, 200; F b: 220; M c: 100, 110; M d: 120; one
    # chunk of M d without a voiced frame (flag 1) is left out
    hz = np.array([200, 200, 220, 100, 110, 120, 1.0])
    stats = np.zeros((7, 6), np.float32)
    stats[:, 0] = np.log(hz)
    stats[6, 5] = 1
    genders = np.array(list("FFFMMMM"))
    speakers = np.array(list("aabccdd"))
    table = f0_table(stats, genders, speakers)
    assert table["chunks"].tolist() == [3, 3] and table["speakers"].tolist() == [2, 2]
    assert table["median F0 (Hz)"].tolist() == pytest.approx([200, 110], rel=1e-5)
    logs = np.log(hz)
    assert table.attrs["d_chunks"] == pytest.approx(cohens_d(logs[:3], logs[3:6])[0], rel=1e-5)
    spk_f = [np.log(200), np.log(220)]
    spk_m = [np.log([100, 110]).mean(), np.log(120)]
    assert table.attrs["d_speakers"] == pytest.approx(
        cohens_d(np.array(spk_f), np.array(spk_m))[0], rel=1e-5)
    assert table.attrs["unvoiced_chunks"] == 1


def test_count_outliers_by_hand():
    base = np.arange(20, dtype=float)  # 0..19; with one extra value n = 21
    x = np.column_stack([
        # Q1 = sorted[5] = 5, Q3 = sorted[15] = 15 -> IQR fences [-10, 30]: 60 is out.
        # mean 250/21 = 11.90, population sd 12.14 -> z(60) = 3.96 > 3, z(0) = -0.98.
        np.append(base, 60.0),
        # same fences, 32 is out; mean 222/21 = 10.57, sd 7.39 -> z(32) = 2.90 < 3: not out.
        np.append(base, 32.0),
        # constant column: sd 0 and IQR 0 -> nothing is an outlier.
        np.full(21, 7.0),
        # 0..17, -40, 45, 18. Sorted: -40, 0..17, 18, 45 -> Q1 = sorted[5] = 4,
        # Q3 = sorted[15] = 14, fences [-11, 29]: -40 and 45 are out (2).
        # mean 176/21 = 8.38, population sd 14.24 -> z(-40) = -3.40 (out), z(45) = 2.57 (in).
        np.append(base[:-2], [-40.0, 45.0, 18.0]),
    ])
    table = count_outliers(x)
    assert table["coef"].tolist() == ["c0", "c1", "c2", "c3"]
    assert table["z-score outliers"].tolist() == [1, 0, 0, 1]
    assert table["IQR outliers"].tolist() == [1, 1, 0, 2]


def test_cohens_d_by_hand():
    # a: mean 2, var 1; b: mean 5, var 1 -> pooled sd 1 -> d = -3
    assert cohens_d(np.array([1.0, 2.0, 3.0]), np.array([4.0, 5.0, 6.0])) == pytest.approx(-3.0)
    # a = 2,4,6,8: mean 5, var 20/3; b = 1,3: mean 2, var 2
    # pooled var = (3 * 20/3 + 1 * 2) / (4 + 2 - 2) = 5.5 -> d = 3 / sqrt(5.5)
    a = np.array([[2.0, 1.0], [4.0, 2.0], [6.0, 3.0], [8.0, 4.0]])
    b = np.array([[1.0, 1.0], [3.0, 3.0]])
    d = cohens_d(a, b)
    assert d[0] == pytest.approx(3 / np.sqrt(5.5))
    # column 2: a mean 2.5, var 5/3; b mean 2, var 2 -> pooled (5 + 2) / 4 = 1.75
    assert d[1] == pytest.approx(0.5 / np.sqrt(1.75))
    assert np.isnan(cohens_d(np.array([1.0]), np.array([1.0, 2.0]))).all()  # needs n >= 2


def test_frames_and_masked_mean():
    assert valid_frames(np.array([32000, 26320, 0]), 512, 63).tolist() == [63, 52, 1]
    mfcc = np.zeros((2, 4, 1), dtype=np.float32)
    mfcc[0, :, 0] = [1, 3, 5, 7]
    mfcc[1, :, 0] = [2, 4, 0, 0]  # last two frames are zero padding
    mean, std = chunk_mean_std(mfcc, np.array([4, 2]))
    assert mean[:, 0] == pytest.approx([4.0, 3.0])
    assert std[:, 0] == pytest.approx([np.sqrt(5.0), 1.0])


def test_subsample_is_deterministic():
    assert subsample_rows(5, 10, seed=0).tolist() == [0, 1, 2, 3, 4]
    rows = subsample_rows(1000, 50, seed=7)
    assert len(np.unique(rows)) == 50 and (np.diff(rows) > 0).all()
    assert rows.tolist() == subsample_rows(1000, 50, seed=7).tolist()
    assert rows.tolist() != subsample_rows(1000, 50, seed=8).tolist()


def test_max_chunks_subsamples(synthetic_store, tmp_path, capsys):
    assert main(["eda", str(synthetic_store), "--out", str(tmp_path), "--max-chunks", "20"]) == 0
    n = len(featstore.open(synthetic_store))
    assert f"20 of {n} chunks (random subsample, seed 0)" in (tmp_path / "report.md").read_text()
    assert "20 chunks analysed" in capsys.readouterr().out


def test_store_without_mfcc_is_a_user_error(synthetic_corpus, tmp_path, capsys):
    store = tmp_path / "audio-only"
    assert main(["build", "--source", str(synthetic_corpus), "--out", str(store), "--features",
                 "audio", "--device", "cpu", "--quiet", "--workers", "0"]) == 0
    capsys.readouterr()
    assert main(["eda", str(store), "--out", str(tmp_path / "eda")]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1
    assert "featstore build --features mfcc" in err
    assert not (tmp_path / "eda").exists()  # nothing written for a store we cannot analyse


def test_missing_store_is_a_user_error(tmp_path, capsys):
    assert main(["eda", str(tmp_path / "nope"), "--out", str(tmp_path / "eda")]) == 2
    assert len(capsys.readouterr().err.strip().splitlines()) == 1
