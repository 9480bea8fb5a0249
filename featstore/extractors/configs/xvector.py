"""x-vector settings (featstore.extractors.xvector): the model comes from the
``xvector=MODEL`` entry, the precision from --compute-dtype (shared with wav2vec2)."""

from __future__ import annotations

from dataclasses import dataclass, field

from featstore.extractors.configs.base import register_config
from featstore.extractors.configs.wav2vec2 import COMPUTE_DTYPE_FLAG, ModelConfig


@register_config
@dataclass(frozen=True)
class XVectorConfig(ModelConfig):
    feature_type = "xvector"
    model: str = ""  # a *ForXVector checkpoint: the xvector=MODEL entry's
    compute_dtype: str = field(default="auto", metadata=COMPUTE_DTYPE_FLAG)
