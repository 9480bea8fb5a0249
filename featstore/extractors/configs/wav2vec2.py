"""Settings of the self-supervised upstreams (featstore.extractors.wav2vec2): bare ``wav2vec2``
and every ``NAME=MODEL`` entry (hubert=PATH, ...), whose model comes from the entry and whose
other settings are these flags, the same for every upstream."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from featstore.cli.types import int_list
from featstore.extractors.base import STORAGE_DTYPES
from featstore.extractors.configs.base import ExtractorConfig, flag, register_config

COMPUTE_DTYPE_NAMES = ("float32", "bfloat16", "float16")
# shared with the x-vector config: one --compute-dtype for every model
COMPUTE_DTYPE_FLAG = flag("--compute-dtype", "wav2vec2 compute precision (default {default}: "
                          "bf16 on CUDA, else float32)", choices=("auto", *COMPUTE_DTYPE_NAMES))


class ModelConfig(ExtractorConfig):
    """A config naming a hub id or a local folder in ``model``: recorded params name a local
    model by its folder name and keep the path in ``local_path``, which ``from_dict`` prefers
    while it exists."""

    @classmethod
    def from_dict(cls, data: dict) -> ModelConfig:
        local = data.get("local_path")
        if local and Path(local).expanduser().is_dir():
            data = {**data, "model": local}
        return super().from_dict(data)


@register_config
@dataclass(frozen=True)
class Wav2Vec2Config(ModelConfig):
    feature_type = "wav2vec2"
    model: str = field(default="facebook/wav2vec2-base", metadata=flag(
        "--model", "wav2vec2 hub id or local path (default {default}; other upstreams: "
        "--features NAME=MODEL)"))
    dtype: str = field(default="float16", metadata=flag(
        "--dtype", "storage dtype of wav2vec2 / upstream states (default {default})",
        choices=STORAGE_DTYPES))
    compute_dtype: str = field(default="auto", metadata=COMPUTE_DTYPE_FLAG)
    layers: tuple[int, ...] | None = field(default=None, metadata=flag(  # None: every layer
        "--layers", "wav2vec2 / upstream layers to keep, e.g. 0,6,12 or 4-8 (default "
        "{default}; the same for every upstream)", type=int_list, shown="all"))
    frames_layers: tuple[int, ...] = field(default=(), metadata=flag(
        "--frames-layers", "also keep frame-level wav2vec2 states of these layers (default "
        "{default})", type=int_list))
