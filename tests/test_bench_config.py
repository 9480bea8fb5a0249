"""benchmarks.yaml validation: every mistake is one line naming the key, exit code 2."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

import models
from bench import config as cfg
from bench import selection
from bench.cli import main
from bench.views import parse_view, split_names
from featstore.errors import UserError

ROOT = Path(__file__).resolve().parents[1]
GOOD = {
    "store": "stores/x",
    "seeds": 2,
    "tasks": {
        "gender": {"features": ["mfcc"], "models": ["majority", "logreg"]},
        "speaker": {"grid": [{"features": ["mfcc"], "models": ["mlp"]},
                             {"features": ["mfcc-frames"], "models": ["cnn"]}]},
    },
    "models": {"mlp": {"max_epochs": 5, "cpu": {"max_epochs": 2}}},
}


def write(tmp_path: Path, data) -> Path:
    path = tmp_path / "b.yaml"
    path.write_text(data if isinstance(data, str) else yaml.safe_dump(data))
    return path


def error_of(tmp_path: Path, data) -> str:
    with pytest.raises(cfg.ConfigError) as exc:
        cfg.load(write(tmp_path, data))
    message = str(exc.value)
    assert "\n" not in message
    return message


def with_(**changes) -> dict:
    import copy

    data = copy.deepcopy(GOOD)
    data.update(changes)
    return data


def test_good_config_expands(tmp_path):
    c = cfg.load(write(tmp_path, GOOD))
    assert c.seeds == (0, 1)
    assert c.tasks["gender"].combinations() == [("mfcc", "majority"), ("mfcc", "logreg")]
    assert c.tasks["speaker"].combinations() == [("mfcc", "mlp"), ("mfcc-frames", "cnn")]
    cpu, gpu = c.model_plan("mlp", "cpu"), c.model_plan("mlp", "cuda:0")
    assert (cpu.params, cpu.overrides) == ({"max_epochs": 2}, {"max_epochs": 2})
    assert (gpu.params, gpu.overrides) == ({"max_epochs": 5}, {})
    assert cpu.search == {k: list(v) for k, v in models.MODELS["mlp"].search.items()}
    assert cpu.selection == "cv" and cpu.seeds == (0, 1)
    assert c.hash() == cfg.load(write(tmp_path, GOOD)).hash()
    assert c.hash() != cfg.load(write(tmp_path, with_(seeds=[0, 5]))).hash()


def test_repo_benchmarks_yaml_is_valid():
    c = cfg.load(ROOT / "benchmarks.yaml")
    assert set(c.tasks) == {"gender", "speaker", "verification"} and len(c.seeds) == 5
    assert ("wav2vec2:6", "lda-cosine") in c.tasks["verification"].combinations()
    assert ("dvector", "cosine") in c.tasks["verification"].combinations()
    assert c.selection == "cv" and c.folds == 5
    assert ("audio", "hf-finetune") in c.tasks["gender"].combinations()
    assert ("wav2vec2:all", "pca-kmeans") in c.tasks["speaker"].combinations()
    for task, names in (("gender", ("logreg", "mlp")),
                         ("speaker", ("logreg", "mlp", "gmm", "pca-kmeans"))):
        combos = c.tasks[task].combinations()
        assert all(("dvector", m) in combos for m in names)
        for up in ("wav2vec2", "hubert", "wavlm"):  # the layer sweep and the learned weights
            assert (f"{up}:each", "logreg") in combos
            assert (f"{up}:layers", "layer-weights") in combos
    plan = c.model_plan("hf-finetune", "cpu")
    assert plan.overrides and plan.selection == "validation"  # CPU runs are marked as reduced
    assert plan.seeds == (0, 1)
    # the cnn tries one candidate on the CPU (marked reduced), its whole grid on CUDA
    cpu, cuda = c.model_plan("cnn", "cpu"), c.model_plan("cnn", "cuda")
    assert cpu.overrides and len(selection.candidates(cpu.search)) == 1
    assert not cuda.overrides and len(selection.candidates(cuda.search)) == 4


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (with_(sedes=3), ["unknown key 'sedes'", "valid keys: store"]),
        (with_(seeds="three"), ["seeds must be", "str 'three'"]),
        (with_(seeds=[0, 0]), ["seeds lists a seed twice"]),
        (with_(test_fraction=1.5), ["test_fraction must be a number in (0, 1)"]),
        (with_(validation_fraction=True), ["validation_fraction must be a number"]),
        (with_(bootstrap=-1), ["bootstrap must be an integer >= 0"]),
        (with_(device="gpu"), ["invalid device 'gpu'", "auto, cpu, cuda"]),
        (with_(tasks={"age": {"features": ["mfcc"], "models": ["logreg"]}}),
         ["unknown task 'age'", "gender, speaker"]),
        (with_(tasks={"gender": {"features": ["mfcc"], "models": ["svm"]}}),
         ["tasks.gender.models", "unknown model 'svm'", "valid models:", "logreg", "mlp"]),
        (with_(tasks={"gender": {"features": ["mfcc", "wav2vec2:x"], "models": ["logreg"]}}),
         ["tasks.gender.features", "unknown feature view 'wav2vec2:x'", "mfcc-frames"]),
        (with_(tasks={"gender": {"features": ["mfcc"], "models": ["cnn"]}}),
         ["model 'cnn' takes frames", "view 'mfcc' is vector"]),
        (with_(tasks={"gender": {"features": "mfcc", "models": ["logreg"], "subset": ["x"]}}),
         ["tasks.gender: unknown key 'subset'", "subsets"]),
        (with_(tasks={"gender": {"features": [], "models": ["logreg"]}}),
         ["tasks.gender.features must be a non-empty list"]),
        (with_(tasks={"gender": {"models": ["logreg"]}}), ["tasks.gender: missing key 'features'"]),
        (with_(tasks={"gender": {"grid": [{"features": ["mfcc"], "model": ["x"]}]}}),
         ["tasks.gender.grid[0]: unknown key 'model'"]),
        (with_(models={"mlp": {"hidden": [3]}}),
         ["models.mlp: unknown key 'hidden'", "hidden_sizes"]),
        (with_(models={"mlp": {"cpu": {"epochs": 1}}}), ["models.mlp.cpu: unknown key 'epochs'"]),
        (with_(models={"resnet": {}}), ["models: unknown model 'resnet'"]),
        (with_(selection="grid"), ["selection: invalid value str 'grid'", "cv, validation"]),
        (with_(folds=1), ["folds must be an integer >= 2"]),
        (with_(tasks={"gender": {"features": ["mfcc"], "models": ["logreg"],
                                 "weighting": "chunk"}}),
         ["tasks.gender.weighting", "speaker, class, none"]),
        (with_(models={"xgboost": {"search": {"depth": [2]}}}),
         ["models.xgboost.search: unknown key 'depth'", "max_depth"]),
        (with_(models={"xgboost": {"search": {"max_depth": 4}}}),
         ["models.xgboost.search.max_depth must be a non-empty list"]),
        (with_(models={"mlp": {"cpu": {"seeds": 0}}}), ["models.mlp.cpu.seeds must be"]),
        (with_(tasks=[1, 2]), ["tasks must be a mapping"]),
        ("tasks: [a\n", ["invalid YAML at line 2"]),
        ("- 1\n- 2\n", ["the config must be a mapping"]),
    ],
)
def test_bad_config_is_one_line_naming_the_key(tmp_path, data, expected):
    message = error_of(tmp_path, data)
    for part in expected:
        assert part in message


def test_overrides_and_filters(tmp_path):
    c = cfg.load(write(tmp_path, GOOD))
    only = cfg.with_overrides(c, models=["logreg"], seeds=3, store="elsewhere")
    assert list(only.tasks) == ["gender"] and only.seeds == (0, 1, 2)
    assert only.tasks["gender"].combinations() == [("mfcc", "logreg")]
    assert only.store == "elsewhere"
    assert list(cfg.with_overrides(c, tasks=["speaker"]).tasks) == ["speaker"]
    for kwargs, part in (({"models": ["xgboost"]}, "--models: xgboost not in the config"),
                         ({"features": ["audio"]}, "--features: audio not in the config"),
                         ({"tasks": ["age"]}, "--tasks: age not in the config"),
                         ({"models": ["cnn"], "features": ["mfcc"]}, "select no cells"),
                         ({"device": "tpu"}, "invalid device 'tpu'")):
        with pytest.raises(cfg.ConfigError, match=part):
            cfg.with_overrides(c, **kwargs)


def test_view_names():
    assert parse_view("mfcc").kind == "vector"
    assert parse_view("mfcc-frames").kind == "frames"
    assert parse_view("audio").kind == "audio"
    assert parse_view("wav2vec2:6").layers == (6,)
    assert parse_view("wav2vec2:0,6,12").layers == (0, 6, 12)
    assert parse_view("wav2vec2:4-6,9").layers == (4, 5, 6, 9)
    assert parse_view("wav2vec2:all").layers is None
    assert parse_view("wav2vec2-frames:3").kind == "frames"
    for bad in ("wav2vec2", "wav2vec2:", "wav2vec2:6-4", "wav2vec2:a", "mfcc:1",
                "wav2vec2-frames:x"):
        with pytest.raises(UserError, match="unknown feature view"):
            parse_view(bad)
    assert split_names("mfcc,wav2vec2:0,6,12,audio,wav2vec2:4-8") == [
        "mfcc", "wav2vec2:0,6,12", "audio", "wav2vec2:4-8"]


@pytest.mark.parametrize(
    ("argv", "part"),
    [
        (["run", "MISSING"], "not found"),
        (["run", "CONFIG", "--models", "xgboost"], "--models: xgboost not in the config"),
        (["run", "CONFIG", "--resume"], "--resume needs --out"),
        (["run", "CONFIG", "--store", "NOSTORE"], "not found: build it"),
        (["run", "CONFIG", "--seeds", "0"], "--seeds"),
        (["run", "BAD"], "unknown model 'svm'"),
        (["frob"], "invalid choice"),
    ],
)
def test_cli_errors_exit_2_with_one_line(tmp_path, capsys, argv, part):
    good = write(tmp_path, GOOD)
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(with_(tasks={"gender": {"features": ["mfcc"],
                                                          "models": ["svm"]}})))
    names = {"CONFIG": str(good), "BAD": str(bad), "MISSING": str(tmp_path / "nope.yaml"),
             "NOSTORE": str(tmp_path / "nostore")}
    assert run_cli([names.get(a, a) for a in argv]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("bench")
    assert part in err


def run_cli(argv: list[str]) -> int:
    try:
        return main(argv)
    except SystemExit as exc:  # argparse usage errors
        return exc.code


def test_list_names_tasks_views_and_models(capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    for part in ("gender", "speaker", "<upstream>:<layer>", "mfcc-frames", "pca-kmeans",
                 "dvector", "<upstream>:layers", "layer-weights",
                 "clusterer", "hf-finetune", "frames, vector"):
        assert part in out
