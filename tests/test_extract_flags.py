"""The extractor flags of ``featstore build`` / ``add``, generated from the config fields'
metadata: each is in both commands' --help with its default, reaches its config, and a bad
value is one line and exit 2; the CLI's startup and ``featstore info`` never import torch."""

from __future__ import annotations

import dataclasses
import re
import subprocess
import sys
from pathlib import Path

import pytest

from featstore.cli import OneLineParser, main
from featstore.cli.extract_args import (
    add_extractor_arguments,
    extractor_configs,
    extractor_flags,
)
from featstore.extractors import KINDS
from featstore.extractors.configs import CONFIGS, PitchConfig, Wav2Vec2Config, show_default

ROOT = Path(__file__).resolve().parents[1]
FLAGGED = [(kind, f) for kind in KINDS for f in CONFIGS[kind].flag_fields()]


def _help(command: str, capsys) -> dict[str, str]:
    """flag -> its entry (joined over wrapped lines) in ``featstore COMMAND --help``."""
    with pytest.raises(SystemExit):
        main([command, "--help"])
    entries: dict[str, str] = {}
    flag = None
    for line in capsys.readouterr().out.splitlines():
        if m := re.match(r"  (--[a-z0-9-]+)", line):
            flag = m.group(1)
            entries[flag] = line
        elif flag and line.startswith("     "):  # the entry's help, wrapped
            entries[flag] += " " + line.strip()
        else:
            flag = None
    return entries


@pytest.mark.parametrize("command", ["build", "add"])
def test_every_flagged_field_is_in_help_with_its_default(command, capsys):
    shown = _help(command, capsys)
    for kind, f in FLAGGED:
        spec = f.metadata["flag"]
        assert spec.name in shown, (kind, f.name)
        default = spec.shown or show_default(f.default)
        assert f"default {default}" in shown[spec.name], (kind, f.name, shown[spec.name])


def _value(f: dataclasses.Field) -> tuple[str, object]:
    """A command-line value other than the field's default, and what it parses to."""
    spec, default = f.metadata["flag"], f.default
    if spec.choices:
        text = next(c for c in reversed(spec.choices) if c != default)
        return text, text
    if f.name in ("layers", "frames_layers"):
        return "1,2", (1, 2)
    if isinstance(default, str):
        return "some/model", "some/model"
    return str(default * 2), type(default)(default * 2)  # 26 <= 256 mels, 100 < 1000 Hz


def test_a_flag_value_reaches_every_config_that_has_the_field():
    parser = OneLineParser()
    add_extractor_arguments(parser.add_argument_group("features"))
    argv, want = [], {}
    for kind, f in FLAGGED:
        text, value = _value(f)
        argv += [f.metadata["flag"].name, text]
        want[kind, f.name] = value
    configs = extractor_configs(parser.parse_args(argv), ["mfcc", "pitch", "fbank", "wav2vec2",
                                                          "hubert=x", "xvector=y"])
    assert set(configs) == {"mfcc", "pitch", "fbank", "wav2vec2", "xvector"}
    for (kind, name), value in want.items():
        assert getattr(configs[kind], name) == value, (kind, name)


def test_configs_only_for_the_features_asked_for():
    parser = OneLineParser()
    add_extractor_arguments(parser.add_argument_group("features"))
    args = parser.parse_args(["--f0-min", "300", "--f0-max", "200"])  # bad for pitch only
    assert set(extractor_configs(args, ["mfcc", "ssl=m"])) == {"mfcc", "wav2vec2"}
    assert extractor_configs(parser.parse_args([]), ["pitch"]) == {"pitch": PitchConfig()}


def test_shared_flags_are_declared_once_with_one_default(monkeypatch):
    flags = extractor_flags()
    assert len(flags) == len({f.metadata["flag"].name for _, f in FLAGGED})
    assert flags["--compute-dtype"][1] == "auto"
    users = {kind for kind, f in FLAGGED if f.metadata["flag"].name == "--compute-dtype"}
    assert users == {"wav2vec2", "xvector"}

    @dataclasses.dataclass(frozen=True)
    class Clash(Wav2Vec2Config):  # --dtype again, with another default
        feature_type = "clash"
        dtype: str = dataclasses.field(
            default="float32", metadata=Wav2Vec2Config.__dataclass_fields__["dtype"].metadata)

    import featstore.cli.extract_args as ea

    monkeypatch.setitem(CONFIGS, "clash", Clash)
    monkeypatch.setattr(ea, "KINDS", (*KINDS, "clash"))
    with pytest.raises(TypeError, match="--dtype"):
        extractor_flags()


@pytest.mark.parametrize(("argv", "message"), [
    (["--features", "mfcc", "--n-mfcc", "200"], "bad mfcc parameter: n_mfcc (200) cannot exceed"),
    (["--features", "fbank", "--fbank-bins", "2"], "bad fbank parameter: num_mel_bins"),
    (["--features", "mfcc", "--n-fft", "0"], "--n-fft: expected a positive number"),
    (["--features", "wav2vec2", "--dtype", "int8"], "--dtype: invalid choice"),
])
def test_bad_values_are_one_line_and_exit_2(argv, message, tmp_path, synthetic_corpus, capsys):
    try:
        rc = main(["build", "--source", str(synthetic_corpus), "--out", str(tmp_path / "s"),
                   "--quiet", *argv])
    except SystemExit as exc:  # argparse's own checks (types, choices)
        rc = exc.code
    err = capsys.readouterr().err
    assert rc == 2 and message in err and err.count("\n") == 1, err
    assert not (tmp_path / "s").exists()


def _modules_after(code: str) -> list[str]:
    run = subprocess.run([sys.executable, "-c", "import sys\n" + code + "\nprint(sorted("
                          "{'torch', 'torchaudio', 'transformers'} & set(sys.modules)))"],
                         cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    return run.stdout.strip().splitlines()


def test_help_and_info_do_not_import_torch(synthetic_store):
    assert _modules_after("from featstore.cli import main\ntry:\n    main(['--help'])\n"
                          "except SystemExit:\n    pass")[-1] == "[]"
    for command in ("build", "add"):
        assert _modules_after(f"from featstore.cli import main\ntry:\n    main(['{command}', "
                              "'--help'])\nexcept SystemExit:\n    pass")[-1] == "[]"
    out = _modules_after(f"from featstore.cli import main\nassert main(['info', "
                         f"{str(synthetic_store)!r}]) == 0")
    assert out[-1] == "[]" and any("mfcc" in line for line in out[:-1])
