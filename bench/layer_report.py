"""Per task and upstream: accuracy by layer (one probe per layer, the ``NAME:each`` sweep, with
the leaderboard's interval) beside the softmax weights ``layer-weights`` learned on
``NAME:layers`` (mean over seeds, each seed's as a dot). Written as
``layers_<task>_<upstream>.png`` and linked from leaderboard.md."""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

import numpy as np

Interval = Callable[[list[dict]], tuple]
LAYER_VIEW = re.compile(r"^([a-z][a-z0-9_]*):(\d+)$")


def _groups(records: list[dict]) -> dict[tuple[str, str], dict]:
    """(task, upstream) -> {"probes": {(model, layer): [records]}, "weights": [records]}."""
    out: dict[tuple[str, str], dict] = defaultdict(lambda: {"probes": defaultdict(list),
                                                            "weights": []})
    for r in records:
        if r.get("status") != "ok" or r.get("model_kind") != "classifier":
            continue
        m = LAYER_VIEW.match(r["features"])
        if m:
            out[r["task"], m[1]]["probes"][r["model"], int(m[2])].append(r)
        elif r["features"].endswith(":layers") and "layer_weights" in r.get("info", {}):
            out[r["task"], r["features"].split(":")[0]]["weights"].append(r)
    # a plot needs a sweep: at least two layers of one probe model
    return {k: g for k, g in out.items()
            if len({layer for _, layer in g["probes"]}) >= 2 or g["weights"]}


def write(run_dir: Path, records: list[dict], interval: Interval) -> str:
    """The layer plots of a run; returns the leaderboard section linking them ('' if none).
    ``interval(records)``: the leaderboard's (interval, kind) for one row's records."""
    groups = _groups(records)
    if not groups:
        return ""
    lines = ["", "## Layers", "",
             "Accuracy of one probe per layer (mean over seeds, 95% interval as in the tables) "
             "beside the layer weights `layer-weights` learned (softmax, zero-initialised, so "
             "uniform = 1/L at the start; each seed a dot).", ""]
    for (task, upstream), g in sorted(groups.items()):
        name = f"layers_{task}_{upstream}.png"
        _plot(g, f"{task}: {upstream}", run_dir / name, interval)
        lines.append(f"- {task}, {upstream}: [{name}]({name})" + _weights_text(g["weights"]))
    return "\n".join(lines) + "\n"


def _weights_text(rs: list[dict]) -> str:
    if not rs:
        return ""
    w = np.mean([r["info"]["layer_weights"] for r in rs], axis=0)
    acc = np.mean([r["accuracy"] for r in rs])
    top = ", ".join(f"{i}: {w[i]:.2f}" for i in np.argsort(-w)[:3])
    return f" (layer-weights {acc:.3f} over {len(rs)} seed(s); largest weights {top})"


def _plot(g: dict, title: str, path: Path, interval: Interval) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.8))
    by_model: dict[str, list[tuple[int, list[dict]]]] = defaultdict(list)
    for (model, layer), rs in sorted(g["probes"].items()):
        by_model[model].append((layer, rs))
    for model, points in by_model.items():
        layers = [p[0] for p in points]
        acc = np.array([np.mean([r["accuracy"] for r in rs]) for _, rs in points])
        bounds = [interval(rs)[0] for _, rs in points]
        lo = np.array([b[0] if b else a for b, a in zip(bounds, acc, strict=True)])
        hi = np.array([b[1] if b else a for b, a in zip(bounds, acc, strict=True)])
        left.errorbar(layers, acc, yerr=[acc - lo, hi - acc], marker="o", capsize=3,
                      label=f"{model} per layer")
    if g["weights"]:
        acc = np.mean([r["accuracy"] for r in g["weights"]])
        left.axhline(acc, color="k", ls="--", lw=1, label="layer-weights")
        w = np.array([r["info"]["layer_weights"] for r in g["weights"]])
        x = np.arange(w.shape[1])
        right.bar(x, w.mean(0), color="tab:orange", alpha=0.7, label="mean over seeds")
        for row in w:
            right.plot(x, row, "k.", ms=4)
        right.axhline(1 / w.shape[1], color="grey", ls=":", lw=1, label="uniform (start)")
        right.legend(fontsize=8)
    else:
        right.text(0.5, 0.5, "no layer-weights rows", ha="center", va="center")
    left.set(xlabel="layer", ylabel="test accuracy", title=title)
    left.legend(fontsize=8)
    right.set(xlabel="layer (position in the view)", ylabel="learned weight",
              title="layer-weights")
    fig.tight_layout()
    fig.savefig(path, format="png")
    plt.close(fig)
