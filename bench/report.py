"""leaderboard.md, leaderboard.png and the confusion-matrix PNGs of a run, from its records.

One ranked table per task (by mean test accuracy over seeds) with a computed chance row: the
share of the test set's most frequent class, i.e. what always answering the test majority
would score. The interval beside the mean is an interval for that mean (bench/stats.py).
Clusterers get their own table per task; failed cells are listed with their error.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import numpy as np
from tabulate import tabulate

from bench import layer_report, stats
from bench.crosscorpus import CROSS_NOTE, combined_interval
from bench.report_plots import confusion_png, leaderboard_png
from bench.results import LEADERBOARD
from bench.tasks import TASKS
from bench.verification import report as verification_report

PICTURE = "leaderboard.png"
INTERVAL_NOTE = (
    "95% interval: an interval for the mean over seeds beside it, the corrected resampled t "
    "interval of Nadeau & Bengio (2003): mean ± t(J−1) · sqrt((1/J + n_test/n_train) · s²), "
    "s² the variance of the J per-seed accuracies, n_test / n_train the test and training "
    "units of the task (speakers for gender; for speaker ID sessions, i.e. chapters of speakers "
    "with several, else utterances). Each seed draws new test units and retrains, so s² "
    "holds both the split-to-split variance and the sampling "
    "of test units within a split; the n_test/n_train term corrects for the overlap of "
    "training sets between seeds. With one seed (marked *) it is that split's cluster "
    "bootstrap over test units only.")


def write(run_dir: Path, records: list[dict], env: dict, notes: dict[str, list[str]]) -> None:
    layers = layer_report.write(run_dir, records, _interval)  # accuracy by layer, weights
    (run_dir / LEADERBOARD).write_text(leaderboard(records, env, notes) + layers)
    tasks = list(dict.fromkeys(r["task"] for r in records))
    panels = [(task, classifier_rows(records, task)) for task in tasks]
    if any(rows for _, rows in panels):
        leaderboard_png([(t, rows) for t, rows in panels if rows], run_dir / PICTURE)
    for task in tasks:
        if TASKS[task].kind == "verification":
            verification_report.det_png(run_dir, records, task)
            continue
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
        rs = row["records"]
        acc = [r["accuracy"] for r in rs]
        row["accuracy"], row["std"] = float(np.mean(acc)), _std(acc)
        row["interval"], row["interval_kind"] = _interval(rs)
        row["chance"] = _mean([r.get("chance_accuracy") for r in rs])
    return sorted(rows, key=lambda row: -row["accuracy"])


def _interval(rs: list[dict]) -> tuple[tuple[float, float] | None, str]:
    """(interval for the mean accuracy over seeds, "t" | "bootstrap" | "cross" | "")."""
    if rs[0].get("boot_replicates") is not None:  # cross-corpus: test speakers and seeds
        return combined_interval([r["boot_replicates"] for r in rs]), "cross"
    if len(rs) >= 2:
        n_train = _mean([r.get("n_train_units") for r in rs])
        n_test = _mean([r.get("n_test_units") for r in rs])
        if n_train and n_test:
            return stats.seed_interval([r["accuracy"] for r in rs], n_train, n_test), "t"
        return None, ""
    ci = rs[0].get("accuracy_ci")
    return (tuple(ci), "bootstrap") if ci else (None, "")


def chosen_settings(rs: list[dict]) -> str:
    """What model selection chose, over the seeds: the most common value of each setting (with
    how many seeds chose it when they disagree); trees / epochs as the median."""
    chosen = [r.get("selection", {}).get("chosen") or {} for r in rs]
    iterations = {r.get("selection", {}).get("iterations") for r in rs}
    keys = list(dict.fromkeys(k for c in chosen for k in c))
    parts = []
    for key in keys:
        values = [c[key] for c in chosen if key in c]
        if key in iterations:
            parts.append(f"{key}~{int(np.median(values))}")
            continue
        counts = defaultdict(int)
        for v in values:
            counts[json_key(v)] += 1
        best, n = max(counts.items(), key=lambda kv: kv[1])
        parts.append(f"{key}={best}" + (f" ({n}/{len(values)})" if n < len(values) else ""))
    return ", ".join(parts) or "–"


def json_key(value: object) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


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
    header = ["rank", "features", "model", "accuracy", "95% interval", "spk. acc", "utt. acc",
              "macro F1", "chosen settings", "inner CV", "fit s", "chunks/s", "peak host MB"]
    header += ["peak GPU MB"] if gpu else []
    header += ["seeds"]
    table = []
    for rank, row in enumerate(rows, 1):
        rs = row["records"]
        lo_hi = row["interval"]
        interval = "–" if lo_hi is None else (
            f"[{lo_hi[0]:.3f}, {lo_hi[1]:.3f}]" + ("*" if row["interval_kind"] == "bootstrap"
                                                   else ""))
        line = [rank, row["features"], row["model"] + _reduced(rs),
                _pm(row["accuracy"], row["std"]), interval,
                _num(_mean([r.get("speaker_accuracy") for r in rs])),
                _num(_mean([r.get("utterance_accuracy") for r in rs])),
                _num(_mean([r["f1"] for r in rs])), chosen_settings(rs),
                _num(_mean([r.get("selection", {}).get("score") for r in rs])),
                _num(_mean([r["fit_seconds"] for r in rs]), ".2f"),
                _num(_mean([r["samples_per_second"] for r in rs]), ".0f"),
                _num(max(r["peak_host_mb"] for r in rs), ".0f")]
        line += [_num(_mean([r.get("peak_gpu_mb") for r in rs]), ".0f")] if gpu else []
        table.append(line + [len(rs)])
    chance = {r["seed"]: r["chance_accuracy"] for row in rows for r in row["records"]}
    chance_std = _std(list(chance.values()))
    table.append(["–", "–", "chance (test majority share)", _pm(_mean(list(chance.values())),
                  chance_std)] + ["–"] * 9 + (["–"] if gpu else []) + [len(chance)])
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
    ignored = env.get("ignored_records", 0)
    lines += [f"- **cells**: {ok} ok, {len(records) - ok} failed, all of this run's plan; "
              f"{ignored} record(s) of other plans in results.jsonl ignored",
              f"- **selection**: {_selection_note(env)}",
              "- accuracy: chunk-level, mean ± std over seeds; " + INTERVAL_NOTE,
              "- spk. acc: mean over test speakers of each speaker's chunk accuracy; utt. acc: "
              "majority vote over each test utterance's chunks; chosen settings: what model "
              "selection picked (most common over seeds; trees / epochs: median); inner CV: "
              "the chosen candidate's held-out weighted accuracy inside the training data; "
              "peak host MB: process peak RSS (ru_maxrss) when the cell ended",
              f"- picture: [{PICTURE}]({PICTURE})", ""]
    for task in dict.fromkeys(r["task"] for r in records):
        lines += [f"## {task} ({TASKS[task].rule})", ""]
        tested = sorted({r["test_store"] for r in records if r["task"] == task
                         and r.get("test_store")})
        if tested:
            lines += [f"**Cross-corpus**: trained on `{store['path']}`, tested on the whole "
                      f"store `{', '.join(tested)}`; {CROSS_NOTE}", ""]
        lines += verification_report.section(records, task)
        for title, table in (("Classification", _classifier_table(records, task)),
                             ("Clustering (of the test part, k = number of test classes)",
                              _clusterer_table(records, task))):
            if table:
                lines += [f"### {title}", "", table, ""]
        for note in notes.get(task, []):
            lines.append(f"- note: {note}")
        lines.append("")
    if env.get("skipped"):
        lines += ["## Skipped grid entries", "",
                  "Entries the store cannot serve (run with `--skip-missing-views`):", "",
                  tabulate([[s["task"], s["features"], ", ".join(s["models"]), s["reason"]]
                            for s in env["skipped"]], ["task", "features", "models", "reason"],
                           tablefmt="github", disable_numparse=True), ""]
    failed = [r for r in records if r["status"] != "ok"]
    if failed:
        lines += ["## Failed cells", "",
                  tabulate([[r["task"], r["features"], r["model"], r["seed"], r["error"]]
                            for r in failed], ["task", "features", "model", "seed", "error"],
                           tablefmt="github", disable_numparse=True), ""]
    return "\n".join(lines)


def _selection_note(env: dict) -> str:
    config = env.get("config", {})
    method = config.get("selection", "cv")
    weighting = ", ".join(f"{t}: {body.get('weighting') or TASKS[t].weighting}"
                          for t, body in config.get("tasks", {}).items())
    how = (f"grouped stratified {config.get('folds', 5)}-fold CV inside the training data "
           "(train + validation parts), grid and trees / epochs chosen there, then one refit on "
           "all training data" if method == "cv" else
           "on the split's one validation part, no refit")
    return (f"{how} (per-model overrides in the config); training rows weighted by "
            f"{weighting} (bench/weights.py); the test part is used once, for the scores below")
