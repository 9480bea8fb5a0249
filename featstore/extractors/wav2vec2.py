"""Hidden states of a wav2vec2-family model (wav2vec2, HuBERT, WavLM, data2vec-audio), pooled
per chunk (mean and population std over time) for every selected layer, plus optional
frame-level layers; stored under the feature's name (``wav2vec2``, or the user's NAME of
``NAME=MODEL``: featstore.extractors.upstream).

Chunks are fixed-length. Group-norm encoders (wav2vec2-base and the other base checkpoints,
trained without masks) run without padding or attention mask; layer-norm encoders get an
attention mask for a zero-padded last chunk (featstore.extractors.upstream). Either way a
padded chunk is normalised and pooled over its real samples / frames only.
"""

from __future__ import annotations

import math
import os
import warnings
from pathlib import Path

import numpy as np
import torch

from featstore.errors import UserError
from featstore.extractors.base import STORAGE_DTYPES, ExtractContext, FeatureSpec, register
from featstore.extractors.configs import Wav2Vec2Config
from featstore.extractors.configs.wav2vec2 import COMPUTE_DTYPE_NAMES
from featstore.extractors.upstream import TESTED, check_family, uses_attention_mask
from featstore.machine import cpu_threads
from featstore.pooling import masked_mean_std, valid_frames

COMPUTE_DTYPES = {name: getattr(torch, name) for name in COMPUTE_DTYPE_NAMES}
NORM_EPS = 1e-7  # as Wav2Vec2FeatureExtractor.zero_mean_unit_var_norm
LOAD_FIX = ("pass a local model directory with --model, or pre-download it and set HF_HOME "
            "(and HF_HUB_OFFLINE=1)")


def load_fix(name: str) -> str:
    """How to make a model loadable, for the feature ``name`` (wav2vec2: --model; others:
    their NAME=MODEL entry)."""
    return LOAD_FIX if name == "wav2vec2" else LOAD_FIX.replace("with --model", f"as {name}=PATH")


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()).split(". ")[0]  # HF errors are multi-line paragraphs
    return text if len(text) <= 160 else text[:157] + "..."


def _looks_local(model: str) -> bool:
    # Hub ids are "name" or "org/name"; anything else is meant as a directory.
    return os.path.isabs(model) or model.startswith((".", "~")) or model.count("/") > 1


def load_model(model_id: str, name: str = "wav2vec2") -> tuple[torch.nn.Module, object, str | None]:
    """(model, feature extractor, resolved commit hash or None) for a hub id or local path."""
    from huggingface_hub.utils import logging as hub_logging
    from transformers import AutoFeatureExtractor, AutoModel
    from transformers.utils import logging as hf_logging

    hub_logging.set_verbosity_error()  # offline retries would print a warning per attempt
    hf_logging.disable_progress_bar()  # featstore draws its own progress; --quiet means quiet

    path = os.path.expanduser(model_id)
    fix = load_fix(name)
    if _looks_local(model_id) and not os.path.isdir(path):
        raise UserError(f"{name} model directory {model_id!r} does not exist; {fix}")
    revision = None
    if not os.path.isdir(path):
        try:  # pin config, weights and feature extractor to one commit, and record it
            from transformers.utils.hub import resolve_revision

            revision = resolve_revision(model_id)  # fails open (offline: returned unresolved)
        except ImportError:
            pass
    pin = {"revision": revision} if revision is not None else {}
    try:
        # fp32 master weights: autocast picks the compute dtype, CPU stays fp32
        model = AutoModel.from_pretrained(path, dtype=torch.float32, **pin)
        feature_extractor = AutoFeatureExtractor.from_pretrained(path, **pin)
    except (OSError, ValueError) as exc:  # not found, offline, bad id, no weights
        raise UserError(
            f"cannot load {name} model {model_id!r}: {fix} ({_one_line(exc)})"
        ) from exc
    commit = getattr(revision, "resolved", None) or getattr(model.config, "_commit_hash", None)
    return model, feature_extractor, commit


def conv_lengths(config, n_samples: int) -> list[int]:
    """Sequence length after each conv layer of the feature encoder (torch Conv1d, no padding)."""
    lengths = []
    for kernel, stride in zip(config.conv_kernel, config.conv_stride, strict=True):
        n_samples = (n_samples - kernel) // stride + 1
        lengths.append(n_samples)
    return lengths


def suggest_batch_size(model: torch.nn.Module, context: ExtractContext) -> int:
    """Batch size for when the user gives none.

    CPU: 16 (throughput is flat beyond that and memory is no concern). CUDA: free memory
    (after the model is loaded) / per-chunk activation estimate, where the estimate in elements is
      all retained hidden states      (num_layers + 1) x frames x hidden_size
      + one layer's transients        frames x (intermediate_size + heads x frames x 2)
      + the largest conv activation   2 x conv_dim x conv_length (in + out; dominates for base)
    at 4 bytes (norms and softmax stay fp32 under autocast), x2 safety margin for allocator
    fragmentation and temporaries, using 80% of free memory; clamped to [8, 1024], multiple
    of 8. For base and 2 s chunks that is ~64 MB per chunk, so ~1000 on an 80 GB GPU.
    """
    device = torch.device(context.device)
    if device.type != "cuda":
        return 16
    cfg = model.config
    lengths = conv_lengths(cfg, context.chunk_samples)
    frames = lengths[-1]
    elements = (
        (cfg.num_hidden_layers + 1) * frames * cfg.hidden_size
        + frames * (cfg.intermediate_size + cfg.num_attention_heads * frames * 2)
        + 2 * max(d * n for d, n in zip(cfg.conv_dim, lengths, strict=True))
    )
    per_chunk = elements * 4 * 2
    free, _ = torch.cuda.mem_get_info(device)
    batch = int(free * 0.8 // per_chunk) // 8 * 8
    return max(8, min(1024, batch))


def _check_layers(kind: str, layers: tuple[int, ...], total: int,
                  name: str = "wav2vec2") -> tuple[int, ...]:
    bad = [i for i in layers if not 0 <= i < total]
    if bad or len(set(layers)) != len(layers):
        raise UserError(
            f"{name} {kind} must be distinct layer indices in 0..{total - 1} "
            f"(0 = CNN/projection output, {total - 1} = last transformer layer); got {list(layers)}"
        )
    return tuple(int(i) for i in layers)


def resolve_compute_dtype(option: str, device: torch.device) -> str:
    """``--compute-dtype``: auto is bf16 on CUDA, float32 elsewhere; a name not in
    ``COMPUTE_DTYPES`` is a UserError."""
    compute = option
    if compute == "auto":
        compute = "bfloat16" if device.type == "cuda" else "float32"
    if compute not in COMPUTE_DTYPES:
        raise UserError(f"compute dtype must be auto or one of {sorted(COMPUTE_DTYPES)}; "
                        f"got {option!r}")
    return compute


def preprocessing(feature_extractor, model_id: str, sample_rate: int) -> tuple[bool, float]:
    """The checkpoint's (normalize, padding_value); a UserError when it expects another
    sample rate than the store's."""
    rate = getattr(feature_extractor, "sampling_rate", sample_rate)
    if rate != sample_rate:
        raise UserError(f"{model_id!r} expects {rate} Hz audio, the store uses {sample_rate} Hz")
    return (bool(getattr(feature_extractor, "do_normalize", False)),
            float(getattr(feature_extractor, "padding_value", 0.0)))


def recorded_model(model_id: str) -> tuple[str, str | None]:
    """(the model's name as recorded, its local path or None): a local folder is recorded by
    its name, since the full path means nothing on another machine."""
    path = Path(model_id).expanduser()
    if path.is_dir():
        return path.resolve().name, model_id
    return model_id, None


class Wav2Vec2Extractor:
    """One wav2vec2-family upstream, stored under ``name``."""

    def __init__(self, config: Wav2Vec2Config, context: ExtractContext,
                 name: str = "wav2vec2") -> None:
        self.name = name
        if config.dtype not in STORAGE_DTYPES:
            raise UserError(
                f"{name} dtype must be one of {sorted(STORAGE_DTYPES)}; got {config.dtype!r}"
            )
        self.device = torch.device(context.device)
        self.config, self.context = config, context
        self.compute_dtype = resolve_compute_dtype(config.compute_dtype, self.device)

        model, feature_extractor, self.revision = load_model(config.model, name)
        cfg = model.config
        if not hasattr(cfg, "conv_kernel"):
            raise UserError(f"{name}: {config.model!r} is not a wav2vec2-style model (no conv "
                            f"feature encoder in its config); supported: {', '.join(TESTED)}")
        self.normalize, self.padding_value = preprocessing(feature_extractor, config.model,
                                                           context.sample_rate)
        self.model = model.eval().to(self.device)

        total = cfg.num_hidden_layers + 1  # CNN/projection output + each transformer layer
        self.num_layers_total, self.dim = total, cfg.hidden_size
        self.frames = conv_lengths(cfg, context.chunk_samples)[-1]
        if self.frames < 1:
            raise UserError(f"chunks of {context.chunk_samples} samples are too short "
                            f"for {config.model!r}")
        self.hop = math.prod(cfg.conv_stride)  # samples between frame starts
        check_family(self.model, name, config.model, context.chunk_samples, self.frames)
        self.model_type = cfg.model_type
        self.masked = uses_attention_mask(cfg)
        layers = config.layers if config.layers is not None else tuple(range(total))
        self.layers = _check_layers("layers", tuple(layers), total, name)
        if not self.layers:
            raise UserError(f"{name} layers: select at least one layer")
        self.frames_layers = _check_layers("frames layers", tuple(config.frames_layers), total,
                                           name)
        self.model_name, self.local_path = recorded_model(config.model)

    def suggested_batch_size(self) -> int:
        return suggest_batch_size(self.model, self.context)

    def num_threads(self) -> int | None:
        """torch threads for extraction; build() applies them around extraction only."""
        return cpu_threads(self.device.type)

    def params(self) -> dict:
        return {
            "model": self.model_name,
            "local_path": self.local_path,
            "revision": self.revision,
            "layers": list(self.layers),
            "num_layers_total": self.num_layers_total,
            "dim": self.dim,
            "frames": self.frames,
            "pooling": "mean and population std over frames covering real samples",
            "dtype": self.config.dtype,
            "compute_dtype": self.compute_dtype,
            "normalize": self.normalize,
            "frames_layers": list(self.frames_layers),
        # the family facts only where they say something: plans of wav2vec2 stores built
        # before them still resume
        } | ({"model_type": self.model_type, "attention_mask": self.masked}
             if self.name != "wav2vec2" or self.masked or self.model_type != "wav2vec2" else {})

    def specs(self) -> list[FeatureSpec]:
        dtype = self.config.dtype
        common = {"model": self.model_name, "revision": self.revision, "dim": self.dim}
        pooled = {**common, "layers": list(self.layers)}
        out = [FeatureSpec(f"{self.name}/{stat}", (len(self.layers), self.dim), dtype, pooled)
               for stat in ("mean", "std")]
        for layer in self.frames_layers:
            params = {**common, "layers": [layer], "frames": self.frames}
            out.append(FeatureSpec(f"{self.name}/frames/{layer}", (self.frames, self.dim), dtype,
                                   params))
        return out

    def normalise(self, x: torch.Tensor, n: torch.Tensor) -> torch.Tensor:
        # Per chunk zero mean / unit variance over its real samples, as Wav2Vec2FeatureExtractor;
        # padding is set to padding_value as the feature extractor does with an attention mask.
        real = torch.arange(x.shape[1], device=x.device)[None, :] < n[:, None]
        mean = (x * real).sum(1, keepdim=True) / n[:, None]
        var = (((x - mean) * real) ** 2).sum(1, keepdim=True) / n[:, None]
        return torch.where(real, (x - mean) / torch.sqrt(var + NORM_EPS), self.padding_value)

    def unmasked_frames(self, n: torch.Tensor) -> torch.Tensor:
        """Conv output length of ``n`` real samples (float, at least 1): the frames a mask keeps."""
        cfg = self.model.config
        for kernel, stride in zip(cfg.conv_kernel, cfg.conv_stride, strict=True):
            n = torch.div(n - kernel, stride, rounding_mode="floor") + 1
        return n.clamp(1, self.frames)

    @torch.inference_mode()
    def extract(self, batch: torch.Tensor, n_samples: torch.Tensor) -> dict[str, np.ndarray]:
        store = getattr(torch, self.config.dtype)
        if batch.shape[1] != self.context.chunk_samples:
            raise ValueError(f"expected chunks of {self.context.chunk_samples} samples, "
                             f"got {batch.shape[1]}")
        if batch.shape[0] == 0:
            return {s.name: np.zeros((0, *s.shape), s.dtype) for s in self.specs()}
        x = batch.to(self.device, torch.float32)
        n = n_samples.to(self.device).clamp(1, x.shape[1]).to(torch.float32)
        if self.normalize:
            x = self.normalise(x, n)
        compute = COMPUTE_DTYPES[self.compute_dtype]
        mask = {}
        if self.masked:  # layer-norm encoders: mask a padded chunk's padding, as in training
            real = torch.arange(x.shape[1], device=x.device)[None, :] < n[:, None]
            mask = {"attention_mask": real.long()}
        with torch.autocast(self.device.type, dtype=compute, enabled=compute != torch.float32), \
                warnings.catch_warnings():
            # WavLM passes its float position bias beside the bool padding mask: torch warns
            warnings.filterwarnings("ignore", "Support for mismatched key_padding_mask")
            hidden = self.model(x, output_hidden_states=True, **mask).hidden_states
        if hidden[0].shape[1] != self.frames:
            raise RuntimeError(f"model gave {hidden[0].shape[1]} frames, expected {self.frames}")

        # Frames whose receptive field starts inside the real audio: ceil(n / hop), at least 1
        # (float32 on the device, as n); with a mask, no more than the frames it leaves unmasked
        # (those whose whole receptive field is real audio: the others are zeroed).
        k = valid_frames(n, self.hop, self.frames)
        if self.masked:
            k = torch.minimum(k, self.unmasked_frames(n))
        # Pool several layers per op: on CPU torch's per-op thread start-up dominates ~100 small
        # ops, so stack all layers; on CUDA one at a time, as a stack is GBs at batch 1024.
        group = len(self.layers) if self.device.type == "cpu" else 1
        means, stds = [], []
        for i in range(0, len(self.layers), group):
            h = torch.stack([hidden[j] for j in self.layers[i : i + group]], 1).float()
            mean, std = masked_mean_std(h, k, axis=2)  # [B, G, D], float32
            means.append(mean)
            stds.append(std)
        out = {f"{self.name}/mean": torch.cat(means, 1), f"{self.name}/std": torch.cat(stds, 1)}
        out.update({f"{self.name}/frames/{layer}": hidden[layer] for layer in self.frames_layers})
        # cast on the device: halves the transfer for float16 storage
        return {name: v.to(store).cpu().numpy() for name, v in out.items()}


@register("wav2vec2")
def make_wav2vec2(config: Wav2Vec2Config, context: ExtractContext) -> Wav2Vec2Extractor:
    return Wav2Vec2Extractor(config, context)


@register("upstream")
def make_upstream(config: Wav2Vec2Config, context: ExtractContext,
                  name: str) -> Wav2Vec2Extractor:
    """``NAME=MODEL``: the model in ``config.model`` (the entry's), stored under ``name``."""
    return Wav2Vec2Extractor(config, context, name)
