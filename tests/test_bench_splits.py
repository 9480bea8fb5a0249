"""Split invariants, property-style over many seeds and corpus shapes, and the leak check."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest

from bench.splits import LeakageError, check_split, describe, labels, make_split
from featstore.errors import UserError

SEEDS = range(50)


def fake_meta(seed: int, n_f: int = 7, n_m: int = 5, n_u: int = 2) -> pd.DataFrame:
    """LibriSpeech-like chunk metadata: speakers with 1..9 utterances of 1..4 chunks."""
    rng = np.random.default_rng(1000 + seed)
    rows = []
    genders = ["F"] * n_f + ["M"] * n_m + ["U"] * n_u
    for s, gender in enumerate(genders):
        speaker = str(100 + s)
        n_utts = 1 if s == 0 else 2 if s == 1 else int(rng.integers(3, 10))
        for u in range(n_utts):
            utt = f"{speaker}-{500 + s}-{u:04d}"
            subset = "dev-clean" if s % 3 else "test-other"
            for c in range(int(rng.integers(1, 5))):
                rows.append({"utterance_id": utt, "speaker_id": speaker, "gender": gender,
                             "chapter_id": str(500 + s), "subset": subset,
                             "start_sample": 32000 * c, "n_samples": 32000})
    return pd.DataFrame(rows)


def split_of(meta, task, seed, **kw):
    kw = {"validation_fraction": 0.2, "test_fraction": 0.25, **kw}
    return make_split(meta, task, seed, **kw)


def assert_rows_disjoint(split) -> None:
    parts = list(split.parts().values())
    all_rows = np.concatenate(parts)
    assert len(np.unique(all_rows)) == len(all_rows), "a row is in two parts"


@pytest.mark.parametrize("seed", SEEDS)
def test_gender_split_invariants(seed):
    meta = fake_meta(seed, n_f=4 + seed % 5, n_m=3 + seed % 4)
    split = split_of(meta, "gender", seed, test_fraction=0.2 + 0.02 * (seed % 10))
    check_split(split, meta)
    assert_rows_disjoint(split)
    spk = meta["speaker_id"].to_numpy()
    sides = [set(spk[rows]) for rows in split.parts().values()]
    assert not (sides[0] & sides[1] or sides[0] & sides[2] or sides[1] & sides[2])
    genders = meta.groupby("speaker_id")["gender"].first()
    for part in ("test", "validation"):
        counts = genders[sorted(set(spk[split.parts()[part]]))].value_counts()
        assert counts.get("F", 0) == counts.get("M", 0), f"{part} not balanced: {dict(counts)}"
    assert len(split.test) and len(split.validation)
    assert {"F", "M"} <= set(labels(meta, "gender")[split.train])
    # unknown-gender speakers are left out, and said so
    unknown = set(genders.index[genders == "U"])
    assert not unknown & set(spk[split.rows()])
    assert any("not F or M" in n and all(u in n for u in unknown) for n in split.notes)
    # every F/M row is used
    assert len(split.rows()) == int(meta["gender"].isin(["F", "M"]).sum())


@pytest.mark.parametrize("seed", SEEDS)
def test_speaker_split_invariants(seed):
    meta = fake_meta(seed)
    split = split_of(meta, "speaker", seed)
    check_split(split, meta)
    assert_rows_disjoint(split)
    utt = meta["utterance_id"].to_numpy()
    sides = {p: set(utt[rows]) for p, rows in split.parts().items()}
    assert not (sides["train"] & sides["test"] or sides["train"] & sides["validation"]
                or sides["validation"] & sides["test"])
    y = labels(meta, "speaker")
    speakers = set(meta["speaker_id"]) - {"100"}  # 100 has a single utterance
    assert set(y[split.train]) == speakers and set(y[split.test]) == speakers
    assert "100" not in set(y[split.rows()])
    assert any("single utterance" in n and "100" in n for n in split.notes)
    # speaker 101 has two utterances: train and test, no validation
    assert "101" not in set(y[split.validation])
    assert any("2 utterances" in n and "101" in n for n in split.notes)
    assert set(y[split.validation]) == speakers - {"101"}


def test_splits_are_deterministic_and_vary_with_seed():
    meta = fake_meta(0)
    for task in ("gender", "speaker"):
        a, b, c = (split_of(meta, task, s) for s in (3, 3, 4))
        for part in ("train", "validation", "test"):
            assert np.array_equal(a.parts()[part], b.parts()[part])
        assert not np.array_equal(a.test, c.test)


def test_subsets_filter_rows():
    meta = fake_meta(0)
    split = split_of(meta, "speaker", 0, subsets=["dev-clean"])
    assert set(meta["subset"].to_numpy()[split.rows()]) == {"dev-clean"}
    with pytest.raises(UserError, match="subsets nope not in the store"):
        split_of(meta, "speaker", 0, subsets=["nope"])


def test_too_few_speakers_is_a_clear_error():
    meta = fake_meta(0, n_f=1, n_m=5)
    with pytest.raises(UserError, match="at least 2 F and 2 M"):
        split_of(meta, "gender", 0)


def test_describe_gives_utterance_ids():
    meta = fake_meta(0)
    d = describe(split_of(meta, "gender", 0), meta)
    assert set(d) == {"train", "validation", "test", "notes"}
    assert all("-" in u for u in d["test"]) and d["notes"]


@pytest.mark.parametrize("task", ["gender", "speaker"])
def test_check_split_catches_injected_leaks(task):
    meta = fake_meta(1)
    split = split_of(meta, task, 1)
    check_split(split, meta)
    group = meta["speaker_id" if task == "gender" else "utterance_id"].to_numpy()
    # a row in two parts
    leak = dataclasses.replace(split, test=np.sort(np.append(split.test, split.train[0])))
    with pytest.raises(LeakageError, match="row"):
        check_split(leak, meta)
    # one row of a training speaker (gender) / utterance (speaker) with several rows
    # moved to test: no row is shared, but the speaker / utterance is on both sides
    values, counts = np.unique(group[split.train], return_counts=True)
    assert (counts > 1).any()
    row = split.train[group[split.train] == values[counts > 1][0]][0]
    moved = dataclasses.replace(split, train=split.train[split.train != row],
                                test=np.sort(np.append(split.test, row)))
    with pytest.raises(LeakageError, match="in both train and test"):
        check_split(moved, meta)
    # speaker task: a test speaker with no training data
    if task == "speaker":
        spk = meta["speaker_id"].to_numpy()
        who = spk[split.test[0]]
        no_train = dataclasses.replace(split, train=split.train[spk[split.train] != who])
        with pytest.raises(LeakageError, match="absent from training"):
            check_split(no_train, meta)
