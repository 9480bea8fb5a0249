"""The GPU check behind scripts/gpu-check.sh: one run, one JSON summary on stdout.

(a) parity: every registered extractor on the device against the same chunks on the CPU
    (wav2vec2: random base-sized weights, bf16 on the device vs float32 on the CPU, cosine of
    the pooled vectors); (b) throughput: `featstore build` end to end (decode workers, shards,
    HDF5 writes) on the embedded sample tiled N times, at the default batch size and two others;
    (c) bench: xgboost, mlp and cnn cells on the device. Progress goes to stderr.

``--dry-run`` makes everything small (a tiny model, one copy, short training) so that the test
suite runs this same code on the CPU.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as a script: the project's packages come from the checkout
    sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from featstore import audio  # noqa: E402
from featstore.extractors import NAMES, ExtractorOptions, make_extractor  # noqa: E402
from featstore.sources import sample_path  # noqa: E402

MFCC_MAX_ABS = 0.01  # the librosa parity bound of tests/test_mfcc.py
COSINE_MIN = 0.999  # pooled wav2vec2, bf16 on the device vs float32 on the CPU
REL_P999 = 0.01  # other features: 99.9th percentile of |diff| within 1% of the CPU value range
BENCH_MODELS = {"mfcc": ["xgboost", "mlp"], "mfcc-frames": ["cnn"]}


def log(msg: str) -> None:
    print(f"gpu-check: {msg}", file=sys.stderr, flush=True)


def sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def sample_chunks(n: int, opts: ExtractorOptions) -> tuple[torch.Tensor, torch.Tensor]:
    """The first ``n`` chunks of the embedded sample (the last one of a file may be short)."""
    chunks, counts = [], []
    for path in sorted(sample_path().rglob("*.flac")):
        c, _, k = audio.cut(audio.decode(str(path), opts.sample_rate).samples, opts.chunk_samples)
        chunks += list(c)
        counts += list(k)
        if len(chunks) >= n:
            break
    return torch.as_tensor(np.stack(chunks[:n])), torch.as_tensor(np.asarray(counts[:n]))


def save_wav2vec2(path: Path, tiny: bool) -> Path:
    """Random weights: a base-sized model costs what the real one costs."""
    from transformers import Wav2Vec2Config, Wav2Vec2FeatureExtractor, Wav2Vec2Model

    small = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
                 conv_dim=(16,) * 7, num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=4)
    torch.manual_seed(0)
    Wav2Vec2Model(Wav2Vec2Config(**(small if tiny else {}))).save_pretrained(path)
    Wav2Vec2FeatureExtractor(sampling_rate=16000, do_normalize=True).save_pretrained(path)
    return path


def compare(name: str, cpu: dict, dev: dict) -> dict:
    """Per output: max |diff| (and cosine for pooled wav2vec2), with a pass/fail verdict."""
    out = {}
    for key, ref in cpu.items():
        a, b = ref.astype(np.float64), dev[key].astype(np.float64)
        diff = np.abs(a - b)
        row = {"max_abs": float(diff.max(initial=0.0)),
               "p999_abs": float(np.quantile(diff, 0.999)) if diff.size else 0.0}
        if name == "wav2vec2":
            flat_a, flat_b = a.reshape(-1, a.shape[-1]), b.reshape(-1, b.shape[-1])
            cos = (flat_a * flat_b).sum(1) / (np.linalg.norm(flat_a, axis=1)
                                              * np.linalg.norm(flat_b, axis=1) + 1e-12)
            row["min_cosine"] = float(cos.min())
            row["ok"] = row["min_cosine"] >= COSINE_MIN
        elif name == "mfcc":
            row["ok"] = row["max_abs"] < MFCC_MAX_ABS
        else:
            scale = float(np.abs(a).max(initial=0.0)) or 1.0
            row["ok"] = row["p999_abs"] <= REL_P999 * scale
        row["ok"] = bool(row["ok"] and np.isfinite(b).all())
        out[key] = row
    return out


def parity(device: str, model: Path, n_chunks: int) -> dict:
    result = {}
    for name in NAMES:
        if name == "audio":  # int16 copy of the input: nothing computed on the device
            continue
        extra = {"model": str(model)} if name == "wav2vec2" else {}
        cpu_opts = ExtractorOptions(device="cpu", compute_dtype="float32", dtype="float32",
                                    **extra)
        dev_opts = ExtractorOptions(device=device, dtype="float32", **extra)  # auto: bf16 on cuda
        batch, counts = sample_chunks(n_chunks, cpu_opts)
        ref = make_extractor(name, cpu_opts).extract(batch, counts)
        got = make_extractor(name, dev_opts).extract(batch, counts)
        result[name] = compare(name, ref, got)
        log(f"parity {name}: " + ", ".join(f"{k} max|d| {v['max_abs']:.2e}"
                                            for k, v in result[name].items()))
    return result


def tile_sample(dst: Path, copies: int) -> float:
    """The sample ``copies`` times in the LibriSpeech layout, copy k under speaker ids offset by
    k * 100000 (links, no audio copied); returns its seconds of audio."""
    import soundfile as sf

    src = sample_path()
    lines = [ln for ln in (src / "SPEAKERS.TXT").read_text().splitlines()
             if ln.strip() and not ln.startswith(";")]
    files = sorted(src.rglob("*.flac"))
    seconds = sum(sf.info(str(f)).duration for f in files) * copies
    table = []
    for k in range(copies):
        for f in files:
            subset, spk, chapter = f.parts[-4:-1]
            new = str(int(spk) + k * 100000)
            target = dst / subset / new / chapter / f.name.replace(spk, new, 1)
            target.parent.mkdir(parents=True, exist_ok=True)
            os.symlink(f, target)
        for ln in lines:
            spk, rest = ln.split("|", 1)
            table.append(f"{int(spk) + k * 100000} |{rest}")
    (dst / "SPEAKERS.TXT").write_text("\n".join(table) + "\n")
    return seconds


def build(source: Path, out: Path, feature: str, device: str, model: Path,
          batch_size: int | None) -> tuple[float, dict]:
    from featstore.cli import main as featstore_main

    args = ["build", "--source", str(source), "--out", str(out), "--overwrite", "--quiet",
            "--features", feature, "--device", device, "--model", str(model)]
    if batch_size:
        args += ["--batch-size", str(batch_size)]
    sync(device)
    start = time.perf_counter()
    if featstore_main(args) != 0:
        raise RuntimeError(f"featstore {' '.join(args)} failed")
    sync(device)
    seconds = time.perf_counter() - start
    return seconds, json.loads((out / "index.json").read_text())["provenance"]


def throughput(work: Path, device: str, model: Path, copies: int) -> list[dict]:
    tiled = work / "tiled"
    seconds = tile_sample(tiled, copies)
    log(f"tiled sample: {copies} copies, {seconds / 3600:.2f} h of audio")
    rows = []
    for feature in ("mfcc", "wav2vec2"):
        build(tiled, work / "warm", feature, device, model, None)  # CUDA init, page cache
        default = None
        for factor in (1, 0.5, 2):
            size = None if factor == 1 else max(1, int(default * factor))
            wall, prov = build(tiled, work / f"{feature}-{factor}", feature, device, model, size)
            default = default or prov["batch_size"]
            rows.append({"feature": feature, "batch_size": prov["batch_size"],
                         "default_batch": factor == 1,
                         "audio_seconds": round(seconds, 1), "wall_seconds": round(wall, 2),
                         "x_real_time": round(seconds / wall, 1)})
            log(f"{feature} batch {prov['batch_size']}: {seconds / wall:,.0f}x real time")
    return rows


def bench_cells(work: Path, device: str, model: Path, dry: bool) -> list[dict]:
    import yaml

    from bench.cli import main as bench_main

    store = work / "bench-store"
    build(sample_path(), store, "mfcc", device, model, None)
    config = {"store": str(store), "device": device, "seeds": 1,
              "tasks": {"gender": {"grid": [{"features": [v], "models": m}
                                            for v, m in BENCH_MODELS.items()]}}}
    if dry:  # the same cells, trained briefly
        config["selection"] = "validation"
        config["models"] = {"xgboost": {"n_estimators": 20}, "mlp": {"max_epochs": 3},
                            "cnn": {"max_epochs": 2}}
    (work / "bench.yaml").write_text(yaml.safe_dump(config))
    run_dir = work / "bench-run"
    bench_main(["run", str(work / "bench.yaml"), "--out", str(run_dir), "--quiet"])
    rows = []
    for line in (run_dir / "results.jsonl").read_text().splitlines():
        r = json.loads(line)
        rows.append({k: r.get(k) for k in ("features", "model", "device", "status", "error",
                                           "accuracy", "fit_seconds")})
        log(f"bench {r['model']} on {r['features']}: {r['status']}")
    return rows


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--device", default="cuda")
    p.add_argument("--copies", type=int, default=60,
                   help="tiles of the embedded sample for throughput (default 60: 5.5 h)")
    p.add_argument("--chunks", type=int, default=64, help="chunks compared for parity")
    p.add_argument("--dry-run", action="store_true", help="tiny model, 1 copy, short training")
    args = p.parse_args(argv)
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        print("gpu-check: no CUDA device here (use --device cpu for a dry run)", file=sys.stderr)
        return 2
    start = time.perf_counter()
    summary = {"device": args.device, "host": platform.node(), "torch": torch.__version__,
               "card": torch.cuda.get_device_name(0) if args.device.startswith("cuda") else
               platform.processor() or platform.machine(), "dry_run": args.dry_run}
    with tempfile.TemporaryDirectory(prefix="gpu-check-") as tmp:
        work = Path(tmp)
        os.environ.setdefault("FEATSTORE_CACHE", str(work / "cache"))
        model = save_wav2vec2(work / "w2v", tiny=args.dry_run)
        with contextlib.redirect_stdout(sys.stderr):  # stdout carries the JSON alone
            summary["parity"] = parity(args.device, model, 8 if args.dry_run else args.chunks)
            summary["throughput"] = throughput(work, args.device, model,
                                               1 if args.dry_run else args.copies)
            summary["bench"] = bench_cells(work, args.device, model, args.dry_run)
    summary["parity_ok"] = all(v["ok"] for f in summary["parity"].values() for v in f.values())
    summary["bench_ok"] = all(r["status"] == "ok" for r in summary["bench"])
    summary["seconds"] = round(time.perf_counter() - start, 1)
    print(json.dumps(summary, indent=1))
    return 0 if summary["parity_ok"] and summary["bench_ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
