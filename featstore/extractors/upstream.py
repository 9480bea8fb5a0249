"""Self-supervised upstreams by the user's name: ``--features hubert=PATH_OR_ID,wavlm=...``.

Each ``NAME=MODEL`` entry is one more wav2vec2-family extractor (featstore.extractors.wav2vec2)
stored under NAME (``NAME/mean``, ``NAME/std``, ``NAME/frames/L``); bare ``wav2vec2`` takes its
model from ``--model`` as before. The per-family facts come from the checkpoint's config, never
from the name the user chose:

* supported (tested with tiny random checkpoints): wav2vec2, HuBERT, WavLM, data2vec-audio,
  i.e. a convolutional feature encoder (``conv_kernel`` / ``conv_stride``) followed by a
  transformer whose ``hidden_states`` hold one state per conv frame. Other model types with
  such a config are tried once on a silent chunk at load time and refused in one line when
  their hidden states do not have that shape; anything else is refused in one line.
* padding: a feature encoder with layer norm (``feat_extract_norm == "layer"``, e.g. the large
  wav2vec2 / HuBERT / WavLM checkpoints; data2vec-audio always) was trained with an attention
  mask, so a zero-padded last chunk gets one, and is pooled over the frames the model leaves
  unmasked. Group-norm encoders (the base checkpoints) were trained without masks: they keep
  the unmasked forward, pooled over the frames whose receptive field starts in real audio.
"""

from __future__ import annotations

import re

from featstore.errors import UserError

TESTED = ("wav2vec2", "hubert", "wavlm", "data2vec-audio")
ALWAYS_LAYER_NORM = ("data2vec-audio",)  # no feat_extract_norm key: its conv stack uses layer norm
# names with a meaning of their own: not available as an upstream's name
RESERVED = ("mfcc", "pitch", "fbank", "audio", "dvector", "xvector")
NAME = re.compile(r"^[a-z][a-z0-9_]*$")  # no '-', ':' or '+': bench view syntax uses them


def split_entry(entry: str) -> tuple[str, str | None]:
    """'hubert=facebook/hubert-base-ls960' -> ('hubert', 'facebook/hubert-base-ls960');
    'mfcc' -> ('mfcc', None)."""
    name, sep, model = entry.partition("=")
    name, model = name.strip(), model.strip()
    if not sep:
        return name, None
    if not model:
        raise UserError(f"--features {entry!r}: give a model after '=' (a hub id or a path)")
    if not NAME.match(name):
        raise UserError(f"--features {entry!r}: a feature name is lower-case letters, digits and "
                        "'_', starting with a letter (e.g. hubert=MODEL)")
    if name in RESERVED and name != "xvector":
        raise UserError(f"--features {entry!r}: '{name}' is a built-in feature and takes no "
                        "model; pick another name for the upstream (e.g. ssl1=MODEL)")
    return name, model


def uses_attention_mask(config) -> bool:
    """Whether the checkpoint's feature encoder was trained with an attention mask."""
    return (getattr(config, "feat_extract_norm", None) == "layer"
            or config.model_type in ALWAYS_LAYER_NORM)


def check_family(model, name: str, model_id: str, chunk_samples: int, frames: int) -> None:
    """Refuse, in one line, a checkpoint this extractor cannot pool layer by layer."""
    import torch

    cfg = model.config
    kind = getattr(cfg, "model_type", type(model).__name__)
    if not (hasattr(cfg, "conv_kernel") and hasattr(cfg, "conv_stride")
            and hasattr(cfg, "num_hidden_layers")):
        raise UserError(f"{name}: {model_id!r} ({kind}) has no wav2vec2-style convolutional "
                        f"feature encoder; supported: {', '.join(TESTED)}")
    if kind in TESTED:
        return
    want = (cfg.num_hidden_layers + 1, frames, cfg.hidden_size)
    try:
        with torch.inference_mode():
            device = next(model.parameters()).device
            out = model(torch.zeros(1, chunk_samples, device=device), output_hidden_states=True)
        hidden = out.hidden_states
        got = (len(hidden), hidden[0].shape[1], hidden[0].shape[2])
    except Exception as exc:  # noqa: BLE001 - any failure means "not servable", in one line
        raise UserError(f"{name}: {model_id!r} ({kind}) cannot be run with "
                        f"output_hidden_states: {type(exc).__name__}; supported: "
                        f"{', '.join(TESTED)}") from None
    if got != want:
        raise UserError(f"{name}: {model_id!r} ({kind}) gives hidden states of (layers, frames, "
                        f"dim) {got}, not one per conv frame {want}; supported: "
                        f"{', '.join(TESTED)}")
