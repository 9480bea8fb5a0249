"""The dependency floors in pyproject.toml admit only releases the code works with."""

from __future__ import annotations

from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[1]
# transformers 4.56.0 (huggingface/transformers#39782) is the first release whose
# from_pretrained takes ``dtype=``; older ones only know ``torch_dtype=``
DTYPE_KWARG_SINCE = Version("4.56.0")


def _requirement(name: str) -> Requirement:
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    return next(r for r in map(Requirement, project["dependencies"]) if r.name == name)


def test_transformers_floor_accepts_dtype_kwarg(tiny_wav2vec2):
    import torch
    import transformers
    from transformers import AutoModel

    import featstore.extractors.wav2vec2  # noqa: F401 - the code paths that pass dtype=
    import models.hf_common  # noqa: F401

    req = _requirement("transformers")
    floors = [Version(s.version) for s in req.specifier if s.operator == ">="]
    assert floors and min(floors) >= DTYPE_KWARG_SINCE, f"pyproject.toml allows {req}"
    assert Version(transformers.__version__) in req.specifier
    model = AutoModel.from_pretrained(tiny_wav2vec2, dtype=torch.float16)
    assert next(model.parameters()).dtype == torch.float16  # dtype= is honoured, not ignored
