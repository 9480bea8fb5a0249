"""The wav2vec2 section: the model's bare forward on pre-normalised chunks already on the
device (batched, and one chunk at a time) against the real ``build()`` of the same files."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import torch

from featstore import audio
from featstore.extractors import ExtractContext, make_extractor
from featstore.extractors.configs import Wav2Vec2Config
from featstore.machine import default_batch_size
from featstore.perf.data import audio_seconds, stacked
from featstore.perf.timing import alternate, make_row, timed

UNBATCHED_CHUNKS = {"cpu": 30, "cuda": 256}


def measure(decoded: list[audio.Chunks], context: ExtractContext, model: str,
            batch_size: int | None, repeat: int, pipeline: Callable[[], float]
            ) -> tuple[list[dict], float]:
    """Rows wav2vec2_bare, wav2vec2_unbatched and wav2vec2_build (``pipeline``: the timed real
    build() of the same files). The batched forward and the pipeline alternate, so a busy
    machine slows both alike and their ratio stays meaningful. Also returns the seconds of one
    model load with imports warm (what build() pays first)."""
    from featstore.extractors.wav2vec2 import COMPUTE_DTYPES, load_model

    # imports transformers, loads the model
    ext = make_extractor("wav2vec2", Wav2Vec2Config(model=model), context)
    t0 = time.perf_counter()
    load_model(model)  # again, imports now warm: the cost build() pays
    load_seconds = time.perf_counter() - t0
    batch_size = batch_size or default_batch_size([ext], context.device)
    device = context.device
    compute = COMPUTE_DTYPES[ext.compute_dtype]
    chunks, counts = stacked(decoded)
    x, n = torch.from_numpy(chunks).to(device), torch.from_numpy(counts).to(device)
    with torch.inference_mode():
        n = n.clamp(1, x.shape[1]).to(torch.float32)
        x = ext.normalise(x, n) if ext.normalize else x  # the pipeline's own normalisation

    @torch.inference_mode()
    def forward(batch: torch.Tensor) -> None:
        with torch.autocast(torch.device(device).type, dtype=compute,
                            enabled=compute != torch.float32):
            ext.model(batch, output_hidden_states=True)

    def batched() -> None:
        for i in range(0, len(x), batch_size):
            forward(x[i : i + batch_size])

    few = x[: UNBATCHED_CHUNKS["cuda" if device.startswith("cuda") else "cpu"]]

    def unbatched() -> None:
        for i in range(len(few)):
            forward(few[i : i + 1])

    forward(x[:batch_size])  # warm-up: first-call allocations, kernel selection
    forward(x[:1])
    seconds = audio_seconds(decoded, context.sample_rate)
    runs = alternate({"bare": lambda: timed(batched, device), "build": pipeline}, repeat)
    built = make_row("wav2vec2_build", "wav2vec2", "wav2vec2 pipeline (featstore build, "
                     "in-process)", seconds, runs["build"], "build(): decode + normalise + "
                     f"forward + pooling + writing, incl. model load (~{load_seconds:.1f} s)",
                     batch_size)
    bare = make_row("wav2vec2_bare", "wav2vec2", "wav2vec2 bare forward", seconds, runs["bare"],
                    f"model forward + hidden states on {len(x)} pre-normalised chunks on "
                    f"{device} ({ext.compute_dtype})", batch_size)
    single = make_row("wav2vec2_unbatched", "wav2vec2", "wav2vec2 unbatched loop",
                      float(counts[: len(few)].sum()) / context.sample_rate,
                      [timed(unbatched, device) for _ in range(repeat)],
                      f"the same forward one chunk at a time, first {len(few)} chunks", 1)
    return [bare, single, built], load_seconds


def save_random_wav2vec2(path: Path, *, tiny: bool = False, seed: int = 0) -> Path:
    """A randomly initialised wav2vec2 saved like a hub model (``save_pretrained``), loadable
    with ``--model PATH`` where no weights can be downloaded. Default: base-sized (94.4M
    parameters, 12 layers of 768: the cost of ``facebook/wav2vec2-base``); ``tiny``: 2 layers of
    32 on base's conv stack (2 s -> 99 frames), for tests."""
    from transformers import Wav2Vec2Config, Wav2Vec2FeatureExtractor, Wav2Vec2Model
    from transformers.utils import logging

    logging.disable_progress_bar()

    small = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                 intermediate_size=64, conv_dim=(16,) * 7, num_conv_pos_embeddings=16,
                 num_conv_pos_embedding_groups=4)
    torch.manual_seed(seed)
    Wav2Vec2Model(Wav2Vec2Config(**(small if tiny else {}))).save_pretrained(path)
    Wav2Vec2FeatureExtractor(sampling_rate=16000, do_normalize=True).save_pretrained(path)
    return Path(path)


FAMILIES = {"wav2vec2": ("Wav2Vec2Config", "Wav2Vec2Model"),
            "hubert": ("HubertConfig", "HubertModel"), "wavlm": ("WavLMConfig", "WavLMModel"),
            "data2vec-audio": ("Data2VecAudioConfig", "Data2VecAudioModel")}


def save_random_upstream(path: Path, family: str = "wav2vec2", *, tiny: bool = True,
                         layer_norm: bool = False, xvector: bool = False, seed: int = 0) -> Path:
    """A randomly initialised wav2vec2 / HuBERT / WavLM / data2vec-audio saved like a hub model
    (the tiny one: 2 layers of 32 on base's conv stack); ``layer_norm``: a layer-norm feature
    encoder, as the large checkpoints have; ``xvector``: the family's ``*ForXVector`` model."""
    import transformers
    from transformers import Wav2Vec2FeatureExtractor
    from transformers.utils import logging

    logging.disable_progress_bar()
    config_name, model_name = FAMILIES[family]
    small = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                 intermediate_size=64, conv_dim=(16,) * 7, num_conv_pos_embeddings=16,
                 num_conv_pos_embedding_groups=4) if tiny else {}
    if layer_norm and family != "data2vec-audio":
        small |= {"feat_extract_norm": "layer", "do_stable_layer_norm": True}
    if xvector:
        small |= {"tdnn_dim": (16, 16, 16), "tdnn_kernel": (3, 3, 1), "tdnn_dilation": (1, 2, 1),
                  "xvector_output_dim": 24} if tiny else {}
        model_name = model_name.replace("Model", "ForXVector")
    torch.manual_seed(seed)
    config = getattr(transformers, config_name)(**small)
    getattr(transformers, model_name)(config).save_pretrained(path)
    masked = layer_norm or family == "data2vec-audio"
    Wav2Vec2FeatureExtractor(sampling_rate=16000, do_normalize=True,
                             return_attention_mask=masked).save_pretrained(path)
    return Path(path)
