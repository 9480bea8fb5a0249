"""The main job's path on the embedded sample: `featstore build` with the default features
(wav2vec2 optional), `verify`, then `bench run --skip-missing-views`, with a loadable tiny
model and with none."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from bench.cli import main as bench_main
from featstore.cli import main as featstore_main


def small_config(path: Path, store: Path) -> Path:
    path.write_text(yaml.safe_dump({
        "store": str(store), "device": "cpu", "seeds": 2, "folds": 3,
        "models": {"hf-finetune": {"epochs": 1, "max_train_chunks": 16, "batch_size": 4,
                                   "selection": "validation", "seeds": 1}},
        "tasks": {
            "gender": {"grid": [{"features": ["mfcc"], "models": ["majority", "logreg"]},
                                {"features": ["mfcc+pitch"], "models": ["logreg"]},
                                {"features": ["wav2vec2:all"], "models": ["logreg"]},
                                {"features": ["audio"], "models": ["hf-finetune"]}]},
            "speaker": {"grid": [{"features": ["mfcc"], "models": ["logreg"]},
                                 {"features": ["wav2vec2:1"], "models": ["logreg"]}]},
        },
    }))
    return path


def _has_dvector_weights() -> bool:
    from featstore.errors import UserError
    from featstore.extractors.dvector import weights_path

    try:
        return weights_path().is_file()
    except UserError:
        return False


@pytest.mark.parametrize("loadable", [True, False])
def test_main_path_on_the_embedded_sample(loadable, tiny_wav2vec2, tmp_path, capsys):
    model = str(tiny_wav2vec2) if loadable else str(tmp_path / "no-such-model")
    store = tmp_path / "store"
    assert featstore_main(["build", "--source", "sample", "--out", str(store), "--device", "cpu",
                           "--model", model, "--workers", "0", "--quiet"]) == 0
    err = capsys.readouterr().err
    index = json.loads((store / "index.json").read_text())
    features = index["provenance"]["params"]["features"]
    # dvector is a default feature where Resemblyzer's weights are installed (set-up does)
    dvector = ["dvector"] if _has_dvector_weights() else []
    if loadable:
        assert features == ["mfcc", "pitch", "fbank", "wav2vec2", *dvector, "audio"]
        assert "wav2vec2 features skipped" not in err
    else:
        notice = [line for line in err.splitlines() if "wav2vec2 features skipped" in line]
        assert len(notice) == 1 and "--model" in notice[0]
        assert features == ["mfcc", "pitch", "fbank", *dvector, "audio"]
    assert featstore_main(["verify", str(store)]) == 0

    run = tmp_path / "run"
    config = small_config(tmp_path / "bench.yaml", store)
    assert bench_main(["run", str(config), "--out", str(run), "--quiet",
                       "--skip-missing-views"]) == 0
    board = (run / "leaderboard.md").read_text()
    assert "## gender" in board and "## speaker" in board
    assert (run / "leaderboard.png").is_file()
    assert "| mfcc+pitch" in board.split("## speaker")[0]
    if loadable:
        assert "Skipped grid entries" not in board and "| wav2vec2:all" in board
        assert "hf-finetune" in board.split("## speaker")[0]
    else:  # no wav2vec2 views, and no checkpoint for hf-finetune to fine-tune
        skipped = board.split("## Skipped grid entries")[1]
        assert "wav2vec2:all" in skipped and "wav2vec2:1" in skipped
        assert "hf-finetune" in skipped and "checkpoint" in skipped


def test_named_features_make_an_unloadable_model_an_error(tmp_path, capsys):
    rc = featstore_main(["build", "--source", "sample", "--out", str(tmp_path / "s"),
                         "--features", "mfcc,wav2vec2", "--model", str(tmp_path / "none"),
                         "--device", "cpu", "--quiet"])
    assert rc == 2 and not (tmp_path / "s" / "index.json").exists()
    assert "Traceback" not in capsys.readouterr().err
