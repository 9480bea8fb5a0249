"""leaderboard.md and the confusion-matrix PNGs of a run, from its results records.

One ranked table per task (by mean test accuracy over seeds) with a computed chance row: the
share of the test set's most frequent class, i.e. what always answering the test majority
would score. Clusterers get their own table per task; failed cells are listed with their error.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import numpy as np
from tabulate import tabulate

from bench.results import LEADERBOARD

SPLIT_RULE = {"gender": "split by speaker, test/validation speakers balanced F/M",
              "speaker": "split by utterance, every speaker on train and test"}


def write(run_dir: Path, records: list[dict], env: dict, notes: dict[str, list[str]]) -> None:
    (run_dir / LEADERBOARD).write_text(leaderboard(records, env, notes))
    for task in dict.fromkeys(r["task"] for r in records):
        rows = classifier_rows(records, task)
        if rows:
            best = rows[0]
            confusion_png(best["records"], run_dir / f"confusion_{task}.png",
                          f"{task}: {best['model']} on {best['features']}")


def _mean(values: list) -> float | None:
    values = [v for v in values if v is not None]
    return float(np.mean(values)) if values else None


def _grouped(records: list[dict], task: str, kind: str) -> list[dict]:
    groups: dict[tuple, list[dict]] = defaultdict(list)
    for r in records:
        if r["task"] == task and r.get("model_kind") == kind and r["status"] == "ok":
            groups[r["features"], r["model"]].append(r)
    return [{"features": f, "model": m, "records": rs} for (f, m), rs in groups.items()]


def classifier_rows(records: list[dict], task: str) -> list[dict]:
    """(features, model) groups of ok classifier cells, best mean accuracy first."""
    rows = _grouped(records, task, "classifier")
    for row in rows:
        acc = [r["accuracy"] for r in row["records"]]
        row["accuracy"], row["std"] = float(np.mean(acc)), _std(acc)
    return sorted(rows, key=lambda row: -row["accuracy"])


def _std(values: list[float]) -> float | None:
    return float(np.std(values, ddof=1)) if len(values) > 1 else None


def _pm(mean: float | None, std: float | None) -> str:
    if mean is None:
        return "–"
    return f"{mean:.3f}" if std is None else f"{mean:.3f} ± {std:.3f}"


def _num(value: float | None, fmt: str = ".3f") -> str:
    return "–" if value is None else format(value, fmt)


def _classifier_table(records: list[dict], task: str) -> str | None:
    rows = classifier_rows(records, task)
    if not rows:
        return None
    gpu = any(r.get("peak_gpu_mb") is not None for row in rows for r in row["records"])
    header = ["rank", "features", "model", "accuracy", "95% CI", "macro F1", "bal. acc",
              "utt. acc", "fit s", "predict s", "chunks/s", "peak host MB"]
    header += ["peak GPU MB"] if gpu else []
    header += ["seeds"]
    table = []
    for rank, row in enumerate(rows, 1):
        rs = row["records"]
        cis = np.array([r["accuracy_ci"] for r in rs if r.get("accuracy_ci")])
        ci = f"[{cis[:, 0].mean():.3f}, {cis[:, 1].mean():.3f}]" if len(cis) else "–"
        line = [rank, row["features"], row["model"] + _reduced(rs),
                _pm(row["accuracy"], row["std"]), ci, _num(_mean([r["f1"] for r in rs])),
                _num(_mean([r["balanced_accuracy"] for r in rs])),
                _num(_mean([r.get("utterance_accuracy") for r in rs])),
                _num(_mean([r["fit_seconds"] for r in rs]), ".2f"),
                _num(_mean([r["predict_seconds"] for r in rs]), ".3f"),
                _num(_mean([r["samples_per_second"] for r in rs]), ".0f"),
                _num(max(r["peak_host_mb"] for r in rs), ".0f")]
        line += [_num(_mean([r.get("peak_gpu_mb") for r in rs]), ".0f")] if gpu else []
        table.append(line + [len(rs)])
    chance = {r["seed"]: r["chance_accuracy"] for row in rows for r in row["records"]}
    chance_std = _std(list(chance.values()))
    table.append(["–", "–", "chance (test majority share)", _pm(_mean(list(chance.values())),
                  chance_std), "–", "–", "–", "–", "–", "–", "–", "–"]
                 + (["–"] if gpu else []) + [len(chance)])
    return tabulate(table, header, tablefmt="github", disable_numparse=True)


def _clusterer_table(records: list[dict], task: str) -> str | None:
    rows = _grouped(records, task, "clusterer")
    if not rows:
        return None
    for row in rows:
        row["ari"] = _mean([r["ari"] for r in row["records"]])
    rows.sort(key=lambda row: -row["ari"])
    header = ["rank", "features", "model", "ARI", "NMI", "V-measure", "purity", "silhouette",
              "seconds", "seeds"]
    table = []
    for rank, row in enumerate(rows, 1):
        rs = row["records"]
        table.append([rank, row["features"], row["model"] + _reduced(rs),
                      _pm(row["ari"], _std([r["ari"] for r in rs])),
                      *(_num(_mean([r.get(k) for r in rs]))
                        for k in ("nmi", "v_measure", "purity", "silhouette")),
                      _num(_mean([r["fit_seconds"] for r in rs]), ".2f"), len(rs)])
    return tabulate(table, header, tablefmt="github", disable_numparse=True)


def _reduced(records: list[dict]) -> str:
    return " (reduced)" if any(r.get("device_overrides") for r in records) else ""


def reduced_settings(records: list[dict]) -> dict[str, dict]:
    """model -> device-specific overrides used by any ok cell."""
    out: dict[str, dict] = {}
    for r in records:
        if r.get("device_overrides") and r["status"] == "ok":
            out[r["model"]] = r["device_overrides"]
    return out


def leaderboard(records: list[dict], env: dict, notes: dict[str, list[str]]) -> str:
    store = env["store"]
    versions = ", ".join(f"{k} {v}" for k, v in env["versions"].items() if v)
    reduced = reduced_settings(records)
    ok = sum(r["status"] == "ok" for r in records)
    lines = [
        "# Benchmark leaderboard",
        "",
        f"- **store**: `{store['path']}` (source {store['source']}, {store['chunks']} chunks, "
        f"built {store['created']}, git {store['git_commit']}, index {store['index_hash']})",
        f"- **config**: `{env['config_path']}` (hash {env['config_hash']}); "
        f"command `{env['command']}`",
        f"- **code**: git {env['git_commit']}, bench/models version {env['code_version']}",
        f"- **device**: {env['device']} ({env['device_name']})",
        f"- **versions**: {versions}",
    ]
    if reduced:
        used = "; ".join(f"{m}: " + ", ".join(f"{k}={v}" for k, v in o.items())
                         for m, o in reduced.items())
        lines.append(f"- **reduced settings**: YES, device-specific overrides were used ({used}); "
                     "rows marked (reduced) are not comparable with full runs")
    else:
        lines.append("- **reduced settings**: no")
    lines += [f"- **cells**: {ok} ok, {len(records) - ok} failed",
              "- accuracy is mean ± std over seeds; 95% CI: mean over seeds of the cluster "
              "bootstrap CI (resampling test speakers for gender, test utterances for speaker); "
              "utt. acc: majority vote over each test utterance's chunks; peak host MB: process "
              "peak RSS (ru_maxrss) when the cell ended", ""]
    for task in dict.fromkeys(r["task"] for r in records):
        lines += [f"## {task} ({SPLIT_RULE.get(task, '')})", ""]
        for title, table in (("Classification", _classifier_table(records, task)),
                             ("Clustering (of the test part, k = number of test classes)",
                              _clusterer_table(records, task))):
            if table:
                lines += [f"### {title}", "", table, ""]
        for note in notes.get(task, []):
            lines.append(f"- note: {note}")
        lines.append("")
    failed = [r for r in records if r["status"] != "ok"]
    if failed:
        lines += ["## Failed cells", "",
                  tabulate([[r["task"], r["features"], r["model"], r["seed"], r["error"]]
                            for r in failed], ["task", "features", "model", "seed", "error"],
                           tablefmt="github", disable_numparse=True), ""]
    return "\n".join(lines)


def confusion_png(records: list[dict], path: Path, title: str) -> None:
    """Confusion matrix summed over the seeds' test sets (rows: true, columns: predicted)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    labels = sorted({label for r in records for label in r["labels"]})
    index = {label: i for i, label in enumerate(labels)}
    total = np.zeros((len(labels), len(labels)), dtype=int)
    for r in records:
        pos = [index[label] for label in r["labels"]]
        total[np.ix_(pos, pos)] += np.asarray(r["confusion"], dtype=int)
    size = min(14, 3 + 0.35 * len(labels))
    fig = Figure(figsize=(size, size * 0.9), dpi=110)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    shares = total / np.maximum(total.sum(axis=1, keepdims=True), 1)  # colour: row share
    im = ax.imshow(shares, cmap="Blues", vmin=0, vmax=1)
    fig.colorbar(im, ax=ax, fraction=0.046, label="share of the true class")
    ax.set_xticks(range(len(labels)), labels, rotation=90, fontsize=7 if len(labels) > 12 else 9)
    ax.set_yticks(range(len(labels)), labels, fontsize=7 if len(labels) > 12 else 9)
    if len(labels) <= 20:
        for i in range(len(labels)):
            for j in range(len(labels)):
                ax.text(j, i, str(total[i, j]), ha="center", va="center", fontsize=8,
                        color="white" if shares[i, j] > 0.5 else "black")
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(f"{title}\n(test chunks, summed over {len(records)} seed(s))", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, format="png")
