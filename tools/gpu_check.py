"""The GPU check (run it with ``bash scripts/gpu-check.sh``): is the CUDA path right, and fast?

1. parity: every registered extractor (and NAME=MODEL upstreams: HuBERT, a layer-norm WavLM,
   a WavLMForXVector, random weights) on the device against the same extractor on the CPU,
   for the same chunks of real speech (the LibriSpeech sample shipped in the package). MFCC:
   max abs difference < 0.01 (the librosa tolerance); wav2vec2 (base-sized, random weights,
   made here): cosine similarity of every pooled vector, device compute dtype (bf16 on CUDA)
   against float32 on the CPU, >= 0.999 (the same for the upstreams, xvector and dvector);
   any other extractor (pitch, fbank, ...): >= 99.9% of
   values within 1e-3 relative;
2. speed, x real time on the sample tiled to ``--seconds`` of audio: the input pipeline alone
   (decode threads + batching), the shard writer alone, the MFCC extractor alone and
   ``build()`` of MFCC at the default batch size and two others, wav2vec2-base's bare forward,
   one chunk at a time, and ``build()`` (all 13 layers pooled) at the default batch size and
   two others;
3. bench: xgboost, mlp and cnn cells (gender, one seed) on a store of the sample, on the device.

Prints progress on stderr and one JSON object on stdout; exit 0 when every check passed, 1
when one failed or could not run (its "error" says why), 2 for a usage error.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib.util
import json
import math
import os
import sys
import tempfile
import time
import traceback
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")  # nothing here needs the network

MODULES = ("torch", "torchaudio", "numpy", "soundfile", "h5py", "tqdm", "transformers",
           "sklearn", "xgboost", "pandas", "yaml", "tabulate", "scipy", "matplotlib")
COSINE_MIN = 0.999
MFCC_MAX_ABS = 0.01
CLOSE_FRACTION_MIN = 0.999
T0 = time.perf_counter()


def log(msg: str) -> None:
    print(f"gpu-check [{time.perf_counter() - T0:6.1f}s] {msg}", file=sys.stderr, flush=True)


def parse(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="gpu-check", description=__doc__.splitlines()[0])
    p.add_argument("--device", default="cuda", help="device to check against the CPU "
                   "(default cuda; cpu is a dry run of the plumbing)")
    p.add_argument("--small", action="store_true", help="a tiny model and a little audio: "
                   "the quick dry run the test suite does")
    p.add_argument("--seconds", type=float, help="audio for the speed section (default 14400, "
                   "--small 20)")
    p.add_argument("--out", type=Path, help="also write the JSON summary to this file")
    return p.parse_args(argv)


# ------------------------------------------------------------------------------------ parity


def chunks_of_sample(n: int, max_seconds: float | None = None):
    """The first ``n`` chunks (and real-sample counts) of the shipped sample, and its files."""
    import numpy as np

    from featstore import audio
    from featstore.sources import resolve_source

    utts = sorted(resolve_source("sample").utterances, key=lambda u: u.utterance_id)
    loaded = [audio.load_chunks(u.path, 16000, 32000) for u in utts[: max(1, n)]]
    x = np.concatenate([c.chunks for c in loaded])[:n]
    counts = np.concatenate([c.counts for c in loaded])[:n]
    return x, counts, utts


def compare_arrays(ref, got) -> dict:
    import numpy as np

    ref, got = np.asarray(ref, np.float64), np.asarray(got, np.float64)
    diff = np.abs(ref - got)
    close = diff <= 1e-3 * (np.abs(ref) + 1.0)
    return {"max_abs_diff": float(diff.max(initial=0.0)),
            "max_abs_ref": float(np.abs(ref).max(initial=0.0)),
            "close_fraction": float(close.mean()) if close.size else 1.0}


def cosines(ref, got):
    """Cosine similarity of each pooled vector (last axis)."""
    import numpy as np

    ref, got = np.asarray(ref, np.float64), np.asarray(got, np.float64)
    num = (ref * got).sum(-1)
    den = np.linalg.norm(ref, axis=-1) * np.linalg.norm(got, axis=-1)
    return num / np.maximum(den, 1e-30)


# NAME=MODEL features checked beside the registry: random models of these families, made
# base-sized (or tiny with --small) next to the wav2vec2 one; wavlm with a layer-norm encoder
# (the attention-mask path), xvector a WavLMForXVector
UPSTREAM_ENTRIES = {"hubert": ("hubert", False, False), "wavlm": ("wavlm", True, False),
                    "xvector": ("wavlm", False, True)}


def named_entries(folder: Path, tiny: bool) -> list[str]:
    """``NAME=PATH`` entries for UPSTREAM_ENTRIES' models (made once, saved in ``folder``)."""
    from featstore.perf.wav2vec2 import save_random_upstream

    out = []
    for name, (family, layer_norm, xvector) in UPSTREAM_ENTRIES.items():
        path = folder / f"{name}-random"
        if not path.exists():
            save_random_upstream(path, family, tiny=tiny, layer_norm=layer_norm, xvector=xvector)
        out.append(f"{name}={path}")
    return out


def parity(device: str, model: Path, n_chunks: int, tiny: bool = True) -> dict:
    import torch

    from featstore.extractors import NAMES, ExtractContext, config_kind, make_extractor
    from featstore.extractors.configs import CONFIGS

    x, counts, _ = chunks_of_sample(n_chunks)
    xt, nt = torch.from_numpy(x), torch.from_numpy(counts)
    out = {"chunks": len(x)}
    for name in [*NAMES, *named_entries(model.parent, tiny)]:
        entry: dict = {}
        try:
            cls = CONFIGS[config_kind(name)]
            fields = {f.name for f in dataclasses.fields(cls)}
            given = {"model": str(model), "compute_dtype": "float32"}
            cpu = make_extractor(name, cls(**{k: v for k, v in given.items() if k in fields}),
                                 ExtractContext("cpu"))
            dev = make_extractor(name, cls(**({"model": str(model)} if "model" in fields
                                              else {})), ExtractContext(device))
            ref, got = cpu.extract(xt, nt), dev.extract(xt.to(device), nt.to(device))
            for key in ref:
                entry[key] = compare_arrays(ref[key], got[key])
            name = name.split("=")[0]
            if name in ("wav2vec2", "dvector") or name in UPSTREAM_ENTRIES:
                entry["compute_dtype"] = getattr(dev, "compute_dtype", "float32")
                entry["min_cosine"] = float(min(cosines(ref[k], got[k]).min() for k in ref))
                entry["ok"] = entry["min_cosine"] >= COSINE_MIN
            elif name == "mfcc":
                entry["ok"] = entry["mfcc"]["max_abs_diff"] < MFCC_MAX_ABS
            else:
                entry["ok"] = all(v["close_fraction"] >= CLOSE_FRACTION_MIN
                                  for k, v in entry.items() if isinstance(v, dict))
        except Exception as exc:  # one extractor failing must not hide the others
            entry = {"ok": False, "error": f"{type(exc).__name__}: {exc}"[:300]}
        out[name.split("=")[0]] = entry
        log(f"parity {name.split('=')[0]}: {'ok' if entry['ok'] else 'FAILED'}")
    out["ok"] = all(v["ok"] for v in out.values() if isinstance(v, dict))
    return out


# ------------------------------------------------------------------------------------- speed


def speed(device: str, model: Path, seconds: float, tmp: Path) -> dict:
    import torch

    from featstore import machine, pipeline
    from featstore.extractors import ExtractContext, make_extractor
    from featstore.extractors.configs import Wav2Vec2Config
    from featstore.perf import builds
    from featstore.perf import mfcc as perf_mfcc
    from featstore.perf import wav2vec2 as perf_w2v
    from featstore.perf.config import PerfConfig
    from featstore.perf.data import audio_seconds, make_view, measure_decode, warm_page_cache
    from featstore.perf.timing import timed
    from featstore.sources import resolve_source

    utts = sorted(resolve_source("sample").utterances, key=lambda u: u.utterance_id)
    warm_page_cache(utts)
    _, decoded = measure_decode(utts, 16000, 32000, 1)
    sample_seconds = audio_seconds(decoded, 16000)
    copies = max(1, math.ceil(seconds / sample_seconds))
    view_dir = tmp / "view"
    view = make_view(view_dir, utts, copies)
    decoded = decoded * copies  # the same files behind every tile
    total = sample_seconds * copies
    out: dict = {"audio_seconds": total, "files": len(view), "tiles": copies,
                 "decode_threads": machine.decode_threads(device), "cpus": machine.cores()}
    log(f"speed: {total:,.0f} s of audio ({copies} tiles of the sample)")

    def rtf(secs: float) -> float:
        return total / secs

    # the input pipeline alone: decode threads + batching (+ pinning on CUDA)
    settings = pipeline.RunSettings(device, 16000, 32000, machine.default_batch_size([], device),
                                    machine.decode_threads(device))
    out["input_pipeline_rtf"] = rtf(timed(lambda: sum(len(b) for b in pipeline.batches(
        view, settings))))
    out["writer_wav2vec2_rtf"] = writer_rtf(tmp)
    log(f"speed: input pipeline {out['input_pipeline_rtf']:,.0f}x, writer (wav2vec2 pooled) "
        f"{out['writer_wav2vec2_rtf']:,.0f}x real time")

    cfg = PerfConfig(device=device, model=str(model), repeat=1)
    context = ExtractContext(device)
    mfcc_row = perf_mfcc.measure_batched(decoded, context, None, 1)
    default = mfcc_row["batch_size"]
    out["mfcc"] = {"extractor_rtf": mfcc_row["rtf"], "default_batch_size": default,
                   "build_rtf": {}}
    for size in (max(1, default // 4), default, default * 2):
        secs = builds.in_process(view_dir, "mfcc", cfg, device, tmp, batch_size=size)()
        out["mfcc"]["build_rtf"][str(size)] = rtf(secs)
        log(f"speed: mfcc build, batch {size}: {rtf(secs):,.0f}x real time")

    ext = make_extractor("wav2vec2", Wav2Vec2Config(model=str(model)), context)
    default = machine.default_batch_size([ext], device)
    del ext
    if device.startswith("cuda"):
        torch.cuda.empty_cache()
    w2v: dict = {"default_batch_size": default, "build_rtf": {}}
    pipeline_run = builds.in_process(view_dir, "wav2vec2", cfg, device, tmp, batch_size=default)
    with machine.torch_threads(machine.cpu_threads(device)):
        rows, load = perf_w2v.measure(decoded, context, str(model), default, 1, pipeline_run)
    by_id = {r["id"]: r for r in rows}
    w2v.update(bare_forward_rtf=by_id["wav2vec2_bare"]["rtf"],
               unbatched_rtf=by_id["wav2vec2_unbatched"]["rtf"], load_seconds=load)
    w2v["build_rtf"][str(default)] = by_id["wav2vec2_build"]["rtf"]
    log(f"speed: wav2vec2 bare forward {w2v['bare_forward_rtf']:,.0f}x, build at batch "
        f"{default}: {by_id['wav2vec2_build']['rtf']:,.0f}x real time")
    for size in (max(1, default // 4), max(1, default // 2)):
        secs = builds.in_process(view_dir, "wav2vec2", cfg, device, tmp, batch_size=size)()
        w2v["build_rtf"][str(size)] = rtf(secs)
        log(f"speed: wav2vec2 build, batch {size}: {rtf(secs):,.0f}x real time")
    best = max(w2v["build_rtf"].values())
    w2v["pipeline_vs_bare"] = w2v["build_rtf"][str(default)] / w2v["bare_forward_rtf"]
    w2v["best_build_rtf"] = best
    # what would hold the build back: the slowest of the stages, each measured alone
    stages = {"input pipeline": out["input_pipeline_rtf"], "writer": out["writer_wav2vec2_rtf"],
              "model forward": w2v["bare_forward_rtf"]}
    w2v["slowest_stage"] = min(stages, key=stages.get)
    out["wav2vec2"] = w2v
    out["peak_gpu_mb"] = (torch.cuda.max_memory_allocated(device) / 2**20
                          if device.startswith("cuda") else None)
    return out


def writer_rtf(tmp: Path, rows: int = 2048) -> float:
    """x real time of the shard writer alone on wav2vec2-base's pooled rows (2 x 13 x 768
    float16 per 2 s chunk), through the same ShardSink thread a build uses."""
    import numpy as np

    from featstore.extractors.base import FeatureSpec
    from featstore.perf.timing import timed
    from featstore.store.layout import META_COLUMNS
    from featstore.store.writer import ShardPart, ShardSink

    specs = [FeatureSpec(f"wav2vec2/{s}", (13, 768), "float16") for s in ("mean", "std")]
    rng = np.random.default_rng(0)
    batch = 256
    feats = {s.name: rng.normal(size=(batch, 13, 768)).astype(np.float16) for s in specs}
    meta = {c: np.array([b"1234-123456-0000"] * batch) for c in META_COLUMNS}
    meta.update(start_sample=np.zeros(batch, np.int64), n_samples=np.full(batch, 32000, np.int32))

    def run() -> None:
        sink = ShardSink()
        sink.open([ShardPart(tmp / "writer-meta.h5", [], {c: 16 for c in META_COLUMNS}),
                   ShardPart(tmp / "writer-check.h5", specs)], {"shard": 0})
        for _ in range(rows // batch):
            sink.rows(meta, feats)
        sink.close_shard([])
        sink.finish()

    seconds = timed(run)
    (tmp / "writer-check.h5").unlink()
    (tmp / "writer-meta.h5").unlink()
    return rows * 2.0 / seconds


# ------------------------------------------------------------------------------------- bench


def bench_cells(device: str, small: bool, tmp: Path) -> dict:
    from bench.cli import main as bench_main
    from featstore.build import BuildConfig, build

    store = tmp / "bench-store"
    build(BuildConfig(out=store, source="sample", features=["mfcc"], quiet=True, device=device))
    epochs = (3, 2) if small else (60, 15)
    config = tmp / "bench.yaml"
    config.write_text(json.dumps({  # JSON is YAML
        "store": str(store), "out": str(tmp / "results"), "device": device, "seeds": 1,
        "selection": "validation", "bootstrap": 0,
        "tasks": {"gender": {"grid": [{"features": ["mfcc"], "models": ["xgboost", "mlp"]},
                                      {"features": ["mfcc-frames"], "models": ["cnn"]}]}},
        "models": {"mlp": {"max_epochs": epochs[0]}, "cnn": {"max_epochs": epochs[1]}},
    }))
    run = tmp / "bench-run"
    code = bench_main(["run", str(config), "--out", str(run), "--quiet"])
    cells = {}
    for line in (run / "results.jsonl").read_text().splitlines():
        r = json.loads(line)
        cells[r["model"]] = {
            "features": r["features"], "status": r["status"], "device": r.get("device"),
            "accuracy": r.get("accuracy"), "fit_seconds": r.get("fit_seconds"),
            "peak_gpu_mb": r.get("peak_gpu_mb"), "error": r.get("error")}
        log(f"bench {r['model']} on {r['features']}: {r['status']} ({r.get('device')})")
    ok = code == 0 and set(cells) == {"xgboost", "mlp", "cnn"} and all(
        c["status"] == "ok" and str(c["device"]).split(":")[0] == device.split(":")[0]
        for c in cells.values())
    return {"ok": ok, "exit_code": code, "cells": cells}


# -------------------------------------------------------------------------------------- main


def run_section(summary: dict, name: str, needs: tuple[str, ...], fn) -> None:
    missing = [m for m in needs if importlib.util.find_spec(m) is None]
    if missing:
        summary[name] = {"ok": False, "error": f"missing modules: {', '.join(missing)}"}
        log(f"{name}: skipped, missing {', '.join(missing)}")
        return
    try:
        t0 = time.perf_counter()
        summary[name] = fn()
        summary[name]["seconds"] = time.perf_counter() - t0
    except Exception as exc:
        traceback.print_exc(file=sys.stderr)
        summary[name] = {"ok": False, "error": f"{type(exc).__name__}: {exc}"[:300]}


def main(argv: list[str] | None = None) -> int:
    args = parse(sys.argv[1:] if argv is None else argv)
    missing = [m for m in MODULES if importlib.util.find_spec(m) is None]
    summary: dict = {"schema": 1, "device": args.device, "small": args.small,
                     "python": sys.executable, "missing_modules": missing}
    if "torch" in missing:
        summary.update(ok=False, error="torch is not installed")
        print(json.dumps(summary))
        return 1
    import torch

    from featstore import provenance
    from featstore.device import resolve_device
    from featstore.errors import UserError

    try:
        device = resolve_device(args.device)
    except UserError as exc:
        print(f"gpu-check: error: --device: {exc}", file=sys.stderr)
        return 2
    summary.update(device=device, device_name=provenance.device_name(device),
                   torch=torch.__version__, cuda=torch.version.cuda,
                   versions=provenance.versions(("librosa",)))
    seconds = args.seconds or (20.0 if args.small else 14_400.0)
    with tempfile.TemporaryDirectory(prefix="gpu-check-") as tmp_name:
        tmp = Path(tmp_name)
        model = tmp / "wav2vec2-random"
        if "transformers" not in missing:
            from featstore.perf.wav2vec2 import save_random_wav2vec2

            save_random_wav2vec2(model, tiny=args.small)
            log(f"made a random {'tiny' if args.small else 'base-sized'} wav2vec2 in {model}")
        base = ("torch", "torchaudio", "numpy", "soundfile")
        run_section(summary, "parity", base, lambda: parity(device, model, 8 if args.small
                                                            else 64, args.small))
        run_section(summary, "speed", (*base, "h5py", "tqdm", "transformers"),
                    lambda: speed(device, model, seconds, tmp))
        if "wav2vec2" in summary["speed"]:
            summary["speed"]["ok"] = True  # ran; how fast is reported
        run_section(summary, "bench", (*base, "h5py", "sklearn", "xgboost", "pandas", "yaml",
                                       "tabulate"), lambda: bench_cells(device, args.small, tmp))
    summary["seconds"] = time.perf_counter() - T0
    summary["ok"] = all(summary[s].get("ok") for s in ("parity", "speed", "bench"))
    text = json.dumps(summary)
    if args.out:
        args.out.write_text(text + "\n")
    print(text)
    return 0 if summary["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
