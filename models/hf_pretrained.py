"""Apply an already fine-tuned Hugging Face audio classifier, without training.

Its labels are mapped to ours with ``label_map``; unmapped checkpoint labels are dropped and
the probabilities renormalised over the mapped ones (a softmax over the mapped logits).
Several checkpoint labels may map to one of ours: their probabilities add up.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .base import Classifier, softmax
from .hf_common import AudioPreparer, hf_forward, load_config, load_feature_extractor, load_model
from .inputs import as_audio
from .params import ModelConfigError, check_positive
from .registry import ModelSpec, register
from .torch_train import predict_logits


class HFPretrainedClassifier(Classifier):
    def __init__(self, params: dict, *, seed: int, device: str) -> None:
        check_positive("hf-pretrained", params, "batch_size")
        label_map = params["label_map"]
        if not label_map or not all(isinstance(k, str) for k in label_map):
            raise ModelConfigError(
                "model 'hf-pretrained': label_map must be a non-empty dict of label name -> label"
            )
        super().__init__(params, seed=seed, device=device)
        config = load_config("hf-pretrained", params["checkpoint"])
        names = {str(name): int(i) for i, name in config.id2label.items()}
        unknown = sorted(set(label_map) - set(names))
        if unknown:
            raise ModelConfigError(
                f"model 'hf-pretrained': label_map names {', '.join(unknown)} "
                "not in the checkpoint's labels "
                f"({', '.join(sorted(names))})"
            )
        self.checkpoint_labels_ = names
        self.preparer_ = AudioPreparer(load_feature_extractor(params["checkpoint"]), device)

    def fit(self, X: Any, y: Any, sample_weight: Any = None, *, X_val: Any = None,
            y_val: Any = None, val_weight: Any = None) -> HFPretrainedClassifier:
        """No training: checks that every label in ``y`` is produced by ``label_map``, records
        ``classes_`` (the sorted mapped labels) and loads the model."""
        label_map = self.params["label_map"]
        self.classes_ = np.unique(np.asarray(list(label_map.values())))
        for labels in (y, y_val):
            if labels is None:
                continue
            missing = sorted(
                set(np.unique(np.asarray(labels)).tolist()) - set(self.classes_.tolist())
            )
            if missing:
                raise ValueError(
                    f"label_map produces {self.classes_.tolist()}, but the data also has {missing}"
                )
        self._info = {}
        self._fit(X, None, None, X_val, None, None)
        return self

    def _fit(self, X: Any, y: np.ndarray | None, w: np.ndarray | None, X_val: Any,
             y_val: np.ndarray | None, w_val: np.ndarray | None) -> None:
        self.model_ = load_model("hf-pretrained", self.params["checkpoint"]).to(self.device).eval()
        # checkpoint ids kept, and the column of classes_ each one adds to
        pairs = sorted(
            (i, name)
            for name, i in self.checkpoint_labels_.items()
            if name in self.params["label_map"]
        )
        self.kept_ids_ = np.array([i for i, _ in pairs])
        self.target_ = np.searchsorted(
            self.classes_, [self.params["label_map"][name] for _, name in pairs]
        )
        ignored = sorted(set(self.checkpoint_labels_) - set(self.params["label_map"]))
        self._info.update(
            checkpoint=self.params["checkpoint"],
            ignored_checkpoint_labels=ignored,
            normalisation=self.preparer_.describe(),
        )

    def predict_proba(self, X: Any) -> np.ndarray:
        self._check_fitted()
        logits = predict_logits(
            self.model_,
            as_audio(X),
            batch_size=self.params["batch_size"],
            device=self.device,
            prepare=self.preparer_,
            forward=hf_forward,
            amp=True,  # bf16 autocast, honoured only on CUDA
        )
        # softmax over the mapped logits only = probabilities renormalised over mapped labels
        p_kept = softmax(logits[:, self.kept_ids_].astype(np.float64))
        out = np.zeros((len(p_kept), len(self.classes_)))
        np.add.at(out.T, self.target_, p_kept.T)
        return out


register(
    ModelSpec(
        name="hf-pretrained",
        kind="classifier",
        inputs=("audio",),
        defaults={"checkpoint": None, "label_map": None, "batch_size": 8},
        types={"checkpoint": str, "label_map": dict},
        required=("checkpoint", "label_map"),
        factory=HFPretrainedClassifier,
        description="Applies a fine-tuned HF audio classifier via label_map, no training.",
    )
)
