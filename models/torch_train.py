"""The one torch training loop (mlp, cnn and hf-finetune) and batched inference.

Batches are built from numpy arrays by index, and ``prepare`` turns a numpy batch into the
module's input on the device. That keeps big frame / audio arrays (often float16 or int16)
in their stored form and converts one batch at a time. ``forward(module, batch)`` returns
logits, so a Hugging Face model (keyword inputs, ``.logits``) uses the same loop.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from featstore.device import is_cuda

from .base import Classifier, softmax
from .device import seed_everything, torch_threads
from .params import check_fraction, check_positive

log = logging.getLogger(__name__)

Prepare = Callable[[np.ndarray], Any]
Forward = Callable[[nn.Module, Any], torch.Tensor]


def default_forward(module: nn.Module, batch: Any) -> torch.Tensor:
    return module(batch)


@dataclass
class TrainConfig:
    lr: float
    max_epochs: int
    batch_size: int
    patience: int | None = None  # epochs without improvement before stopping; None: never stop
    weight_decay: float = 0.0
    monitor: str = "loss"  # "loss" (lower is better) or "accuracy" (higher; ties broken by loss)
    warmup_ratio: float = 0.0  # linear warmup over this fraction of steps, then linear decay
    schedule: str = "constant"  # "constant" or "linear"
    grad_clip: float | None = None
    amp: bool = False  # bf16 autocast; only honoured on CUDA
    eval_batch_size: int | None = None


@dataclass
class TrainResult:
    epochs_run: int = 0
    best_epoch: int = 0
    best_val_loss: float | None = None
    best_val_accuracy: float | None = None
    stopped_early: bool = False
    history: list[dict] = field(default_factory=list)

    def to_info(self) -> dict:
        return asdict(self)


def _batches(n: int, batch_size: int, rng: np.random.Generator | None) -> list[np.ndarray]:
    order = rng.permutation(n) if rng is not None else np.arange(n)
    out = [order[i : i + batch_size] for i in range(0, n, batch_size)]
    if len(out) > 1 and len(out[-1]) == 1:
        # a batch of one breaks BatchNorm in training; fold it into the previous batch
        last = out.pop()
        out[-1] = np.concatenate([out[-1], last])
    # sorted indices within a batch: same gradient, friendlier to memmaps / h5py
    return [np.sort(b) for b in out]


def _autocast(device: str, amp: bool):
    return torch.autocast("cuda", dtype=torch.bfloat16, enabled=amp and is_cuda(device))


def _lr_lambda(config: TrainConfig, total_steps: int) -> Callable[[int], float]:
    warmup = int(round(config.warmup_ratio * total_steps))

    def f(step: int) -> float:
        if warmup and step < warmup:
            return (step + 1) / warmup
        if config.schedule == "linear":
            return max(0.0, (total_steps - step) / max(1, total_steps - warmup))
        return 1.0

    return f


@torch.no_grad()
def predict_logits(
    module: nn.Module,
    X: np.ndarray,
    *,
    batch_size: int,
    device: str,
    prepare: Prepare,
    forward: Forward = default_forward,
    amp: bool = False,
) -> np.ndarray:
    """Logits [n, k] as float32 numpy, in eval mode, in the order of ``X``."""
    module.eval()
    outs = []
    for idx in _batches(len(X), batch_size, None):
        with _autocast(device, amp):
            logits = forward(module, prepare(X[idx]))
        outs.append(logits.float().cpu().numpy())
    if not outs:
        return np.zeros((0, 0), dtype=np.float32)
    return np.concatenate(outs)


def train_classifier(
    module: nn.Module,
    X: np.ndarray,
    y: np.ndarray,
    X_val: np.ndarray | None,
    y_val: np.ndarray | None,
    *,
    w: np.ndarray | None = None,
    w_val: np.ndarray | None = None,
    config: TrainConfig,
    device: str,
    seed: int,
    prepare: Prepare,
    forward: Forward = default_forward,
    augment: Callable[[Any], Any] | None = None,
) -> TrainResult:
    """Train ``module`` (already on ``device``) with AdamW and cross-entropy, each row's loss
    weighted by ``w`` (mean 1; None: equal), the validation loss and accuracy by ``w_val``.

    With a validation set, the weights of the best epoch (by ``config.monitor``) are restored
    at the end and training stops after ``patience`` epochs without improvement. Without one,
    it runs ``max_epochs`` and keeps the last weights.
    """
    rng = np.random.default_rng(seed)
    params = [p for p in module.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=config.lr, weight_decay=config.weight_decay)
    steps_per_epoch = len(_batches(len(X), config.batch_size, None))
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, _lr_lambda(config, steps_per_epoch * config.max_epochs)
    )
    loss_fn = nn.CrossEntropyLoss(reduction="none")
    w = np.ones(len(X)) if w is None else w
    eval_bs = config.eval_batch_size or config.batch_size
    result = TrainResult()
    best_key: tuple[float, float] | None = None
    best_state: dict | None = None
    bad_epochs = 0

    for epoch in range(1, config.max_epochs + 1):
        module.train()
        total, seen = 0.0, 0
        for idx in _batches(len(X), config.batch_size, rng):
            batch = prepare(X[idx])
            if augment is not None:
                batch = augment(batch)
            target = torch.as_tensor(y[idx], device=device)
            with _autocast(device, config.amp):
                logits = forward(module, batch)
            weight = torch.as_tensor(w[idx], dtype=torch.float32, device=device)
            loss = (loss_fn(logits.float(), target) * weight).mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if config.grad_clip:
                nn.utils.clip_grad_norm_(params, config.grad_clip)
            opt.step()
            sched.step()
            total += loss.item() * len(idx)
            seen += len(idx)
        record: dict[str, Any] = {"epoch": epoch, "train_loss": total / max(seen, 1)}
        result.epochs_run = epoch

        if X_val is None or len(X_val) == 0:
            result.best_epoch = epoch
            result.history.append(record)
            log.info("epoch %d train_loss %.4f", epoch, record["train_loss"])
            continue

        logits_val = predict_logits(
            module,
            X_val,
            batch_size=eval_bs,
            device=device,
            prepare=prepare,
            forward=forward,
            amp=config.amp,
        )
        per_row = loss_fn(torch.from_numpy(logits_val), torch.as_tensor(y_val)).numpy()
        val_loss = float(np.average(per_row, weights=w_val))
        val_acc = float(np.average(logits_val.argmax(1) == y_val, weights=w_val))
        record.update(val_loss=val_loss, val_accuracy=val_acc)
        result.history.append(record)
        log.info(
            "epoch %d train_loss %.4f val_loss %.4f val_acc %.4f",
            epoch,
            record["train_loss"],
            val_loss,
            val_acc,
        )

        # larger key is better: (accuracy, -loss) or (-loss, accuracy)
        key = (val_acc, -val_loss) if config.monitor == "accuracy" else (-val_loss, val_acc)
        if not math.isfinite(val_loss):
            key = (-math.inf, -math.inf)
        if best_key is None or key > best_key:
            best_key, bad_epochs = key, 0
            best_state = {
                k: v.detach().to("cpu", copy=True) for k, v in module.state_dict().items()
            }
            result.best_epoch, result.best_val_loss, result.best_val_accuracy = (
                epoch,
                val_loss,
                val_acc,
            )
        else:
            bad_epochs += 1
            if config.patience is not None and bad_epochs >= config.patience:
                result.stopped_early = True
                break

    if best_state is not None:
        module.load_state_dict(best_state)
    module.eval()
    return result


def check_train_params(model: str, params: dict) -> None:
    """The training-loop parameters shared by simple torch classifiers (mlp, cnn)."""
    check_positive(model, params, "lr", "max_epochs", "batch_size", "patience")
    check_positive(model, params, "weight_decay", allow_zero=True)
    check_fraction(model, params, "dropout")


def torch_train_config(params: dict) -> TrainConfig:
    return TrainConfig(
        lr=params["lr"],
        weight_decay=params["weight_decay"],
        max_epochs=params["max_epochs"],
        batch_size=params["batch_size"],
        patience=params["patience"],
        monitor="loss",  # smoother than accuracy on small validation sets
    )


class TorchClassifier(Classifier):
    """A classifier whose network is trained by :func:`train_classifier`.

    Subclasses say how inputs are checked (``_as_input``), what is fitted on the training data
    before the network (``_setup``, e.g. standardisation), how the network is built
    (``_build``), how a numpy batch becomes a device tensor (``_prepare``) and the
    training configuration (``_train_config``); optionally ``_forward`` and ``_augment``.
    """

    def _as_input(self, X: Any) -> np.ndarray:
        raise NotImplementedError

    def _setup(self, X: np.ndarray, w: np.ndarray) -> None:
        pass

    def _build(self, X: np.ndarray, n_classes: int) -> nn.Module:
        raise NotImplementedError

    def _prepare(self, batch: np.ndarray) -> Any:
        raise NotImplementedError

    def _train_config(self) -> TrainConfig:
        raise NotImplementedError

    def _forward(self, module: nn.Module, batch: Any) -> torch.Tensor:
        return module(batch)

    _augment: Callable[[Any], Any] | None = None
    # torch threads for fitting and predicting on the CPU (None: torch's default, all cores);
    # one for the small networks, see models.device.torch_threads
    cpu_threads: int | None = 1

    def _fit(self, X: Any, y: np.ndarray, w: np.ndarray, X_val: Any, y_val: np.ndarray | None,
             w_val: np.ndarray | None) -> None:
        with torch_threads(self.cpu_threads, self.device):
            self._fit_network(X, y, w, X_val, y_val, w_val)

    def _fit_network(self, X: Any, y: np.ndarray, w: np.ndarray, X_val: Any,
                     y_val: np.ndarray | None, w_val: np.ndarray | None) -> None:
        X = self._as_input(X)
        X_val = self._as_input(X_val) if X_val is not None else None
        seed_everything(self.seed, self.device)
        self._setup(X, w)
        self.net_ = self._build(X, len(self.classes_)).to(self.device)
        self.config_ = self._train_config()
        result = train_classifier(
            self.net_,
            X,
            y,
            X_val,
            y_val,
            w=w,
            w_val=w_val,
            config=self.config_,
            device=self.device,
            seed=self.seed,
            prepare=self._prepare,
            forward=self._forward,
            augment=self._augment if self.params.get("augment") else None,
        )
        self._info.update(result.to_info())
        if X_val is not None and len(X_val):
            self._info["best_iteration"] = result.best_epoch
        self._info["n_train"] = len(X)
        self._info["n_parameters"] = sum(p.numel() for p in self.net_.parameters())
        self._info["n_trainable_parameters"] = sum(
            p.numel() for p in self.net_.parameters() if p.requires_grad
        )

    def predict_proba(self, X: Any) -> np.ndarray:
        self._check_fitted()
        with torch_threads(self.cpu_threads, self.device):
            logits = predict_logits(
                self.net_,
                self._as_input(X),
                batch_size=self.config_.eval_batch_size or self.config_.batch_size,
                device=self.device,
                prepare=self._prepare,
                forward=self._forward,
                amp=self.config_.amp,
            )
        return softmax(logits.astype(np.float64))
