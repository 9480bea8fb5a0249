"""Fine-tune a Hugging Face audio-classification model (e.g. wav2vec2) on raw audio chunks."""

from __future__ import annotations

from typing import Any

import numpy as np
from torch import nn

from .hf_common import AudioPreparer, hf_forward, load_config, load_feature_extractor, load_model
from .inputs import as_audio
from .params import check_fraction, check_positive
from .registry import ModelSpec, register
from .torch_train import TorchClassifier, TrainConfig


class HFFineTuneClassifier(TorchClassifier):
    """AdamW with linear warmup / decay, the best epoch by validation accuracy is kept,
    bf16 autocast on CUDA only. The new classification head is initialised from the seed."""

    cpu_threads = None  # a transformer's matrices are big enough to use every core

    def __init__(self, params: dict, *, seed: int, device: str) -> None:
        check_positive(
            "hf-finetune", params, "epochs", "lr", "batch_size", "patience", "max_train_chunks"
        )
        check_positive("hf-finetune", params, "weight_decay", allow_zero=True)
        check_fraction("hf-finetune", params, "warmup_ratio")
        super().__init__(params, seed=seed, device=device)
        # load the light parts now so a bad checkpoint fails at make_model, not after data loading
        self.hf_config_ = load_config("hf-finetune", params["checkpoint"])
        self.preparer_ = AudioPreparer(load_feature_extractor(params["checkpoint"]), device)

    def _as_input(self, X: Any) -> np.ndarray:
        return as_audio(X)

    def _fit(self, X: Any, y: np.ndarray, w: np.ndarray, X_val: Any, y_val: np.ndarray | None,
             w_val: np.ndarray | None) -> None:
        cap = self.params["max_train_chunks"]
        if cap is not None and len(X) > cap:  # CPU runs: a random subset, fixed by the seed
            keep = np.sort(np.random.default_rng(self.seed).choice(len(X), cap, replace=False))
            X, y, w = np.asarray(X)[keep], y[keep], w[keep] / w[keep].mean()
        super()._fit(X, y, w, X_val, y_val, w_val)
        self._info.update(
            checkpoint=self.params["checkpoint"], normalisation=self.preparer_.describe()
        )

    def _build(self, X: np.ndarray, n_classes: int) -> nn.Module:
        names = [str(c) for c in self.classes_]
        model = load_model(
            "hf-finetune",
            self.params["checkpoint"],
            num_labels=n_classes,
            label2id={n: i for i, n in enumerate(names)},
            id2label=dict(enumerate(names)),
            ignore_mismatched_sizes=True,  # the checkpoint may carry a head for other labels
        )
        if self.params["freeze_feature_encoder"] and hasattr(model, "freeze_feature_encoder"):
            model.freeze_feature_encoder()
        return model

    def _prepare(self, batch: np.ndarray) -> dict:
        return self.preparer_(batch)

    def _forward(self, module: nn.Module, batch: Any) -> Any:
        return hf_forward(module, batch)

    def _train_config(self) -> TrainConfig:
        p = self.params
        return TrainConfig(
            lr=p["lr"],
            max_epochs=p["epochs"],
            batch_size=p["batch_size"],
            patience=p["patience"],
            weight_decay=p["weight_decay"],
            monitor="accuracy",
            warmup_ratio=p["warmup_ratio"],
            schedule="linear",
            grad_clip=1.0,
            amp=True,  # bf16 autocast, honoured only on CUDA
        )


register(
    ModelSpec(
        name="hf-finetune",
        kind="classifier",
        inputs=("audio",),
        defaults={
            "checkpoint": None,
            "epochs": 3,
            "lr": 3e-5,
            "batch_size": 8,
            "freeze_feature_encoder": True,
            "max_train_chunks": None,
            "patience": 2,
            "weight_decay": 0.0,
            "warmup_ratio": 0.1,
        },
        types={"checkpoint": str, "max_train_chunks": (int, type(None))},
        required=("checkpoint",),
        factory=HFFineTuneClassifier,
        description="Fine-tunes a Hugging Face audio classifier on raw audio chunks.",
        iterations="epochs",
    )
)
