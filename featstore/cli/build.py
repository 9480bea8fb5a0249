"""featstore build: corpus -> chunks -> features -> store."""

from __future__ import annotations

import argparse
from pathlib import Path

from featstore.cli.types import (
    add_ray_argument,
    add_source_arguments,
    int_list,
    name_list,
    nonneg_int,
    positive_float,
    positive_int,
)
from featstore.extractors import ENTRY_HELP, NAMES, ExtractorOptions
from featstore.sources.hf_corpus import DEFAULT_COLUMNS

DEFAULT_FEATURES = "mfcc,pitch,fbank,wav2vec2,dvector,audio"
# without --features, an unloadable model (or Resemblyzer's weights not installed) is a notice
OPTIONAL_BY_DEFAULT = ("wav2vec2", "dvector")


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_source_arguments(p, None, "librispeech:dev-clean")
    cols = p.add_argument_group("columns of an hf: source (--chapter-column, --gender-map: "
                                "also lhotse:)")
    for role, default in DEFAULT_COLUMNS.items():
        extra = (" (lhotse: the supervision's custom field; default the recording id)"
                 if role == "chapter" else "")
        cols.add_argument(f"--{role}-column", dest=f"col_{role}", metavar="COLUMN",
                          help=f"{role} column (default {default}){extra}")
    cols.add_argument("--gender-map", dest="col_gender_map", metavar="FILE",
                      help="speaker genders from a file (LibriSpeech's SPEAKERS.TXT, or lines "
                      "'speaker,F'), in place of a gender column (lhotse: for speakers whose "
                      "supervisions have no gender)")
    lh = p.add_argument_group("lhotse: source")
    lh.add_argument("--channel", dest="col_channel", type=lambda t: str(nonneg_int(t)),
                    metavar="N", help="read this channel of multi-channel recordings (default: "
                    "all channels, down-mixed)")
    out = p.add_argument_group("output")
    out.add_argument("--out", type=Path, default=Path("stores/default"),
                     help="store folder (default stores/default)")
    out.add_argument("--resume", action="store_true", help="finish an interrupted build")
    out.add_argument("--overwrite", action="store_true", help="replace an existing store")
    out.add_argument("--shard-size", type=positive_int, default=256,
                     help="utterances per shard: the unit of resumption (default 256)")
    feat = p.add_argument_group("features")
    feat.add_argument("--features", type=name_list,
                      help=f"comma list from {', '.join(NAMES)}, and {ENTRY_HELP} "
                      f"(default {DEFAULT_FEATURES}; by default a wav2vec2 model that cannot be "
                      "loaded, or dvector without its weights, is skipped with a notice, when "
                      "named here it is an error)")
    feat.add_argument("--chunk-seconds", type=positive_float, default=2.0)
    feat.add_argument("--n-mfcc", type=positive_int, default=13)
    feat.add_argument("--n-fft", type=positive_int, default=2048)
    feat.add_argument("--hop-length", type=positive_int, default=512)
    feat.add_argument("--n-mels", type=positive_int, default=128)
    feat.add_argument("--f0-min", type=positive_float, default=50.0,
                      help="pitch search range, lowest F0 in Hz (default 50)")
    feat.add_argument("--f0-max", type=positive_float, default=500.0,
                      help="pitch search range, highest F0 in Hz (default 500)")
    feat.add_argument("--pitch-hop-ms", type=positive_float, default=10.0,
                      help="pitch frame hop in ms (default 10)")
    feat.add_argument("--fbank-bins", type=positive_int, default=80,
                      help="Kaldi fbank mel bins (default 80; MFCC's are --n-mels)")
    feat.add_argument("--fbank-dtype", default="float16", choices=["float16", "float32"],
                      help="storage dtype of fbank frames (default float16)")
    feat.add_argument("--model", default="facebook/wav2vec2-base",
                      help="wav2vec2 hub id or local path (other upstreams: --features NAME=MODEL)")
    feat.add_argument("--dtype", default="float16", choices=["float16", "float32"],
                      help="storage dtype of wav2vec2 / upstream states (default float16)")
    feat.add_argument("--compute-dtype", default="auto", choices=["auto", "float32", "bfloat16",
                      "float16"], help="wav2vec2 compute precision (auto: bf16 on CUDA)")
    feat.add_argument("--layers", type=int_list, help="wav2vec2 / upstream layers to keep, "
                      "e.g. 0,6,12 or 4-8 (default all; the same for every upstream)")
    feat.add_argument("--frames-layers", type=int_list, default=(),
                      help="also keep frame-level wav2vec2 states of these layers")
    run = p.add_argument_group("run")
    run.add_argument("--device", default="auto", help="cpu, cuda or auto (default)")
    run.add_argument("--batch-size", type=positive_int, help="chunks per batch (default: the "
                     "smallest an extractor suggests: self-supervised models 16 on CPU and from "
                     "free GPU memory on CUDA; else 256 on CPU, 1024 on CUDA)")
    run.add_argument("--workers", type=nonneg_int, help="decoding threads, running ahead of "
                     "extraction (default: one per core on CPU, on CUDA cores - 2; at most 8); "
                     "0 decodes inline")
    add_ray_argument(run, "build the shards in parallel")
    run.add_argument("--quiet", action="store_true", help="no progress bar or summary")


def run(args: argparse.Namespace) -> int:
    from featstore.build import BuildConfig, build

    options = ExtractorOptions(
        device=args.device, n_mfcc=args.n_mfcc, n_fft=args.n_fft, hop_length=args.hop_length,
        n_mels=args.n_mels, model=args.model, dtype=args.dtype, layers=args.layers,
        frames_layers=args.frames_layers, compute_dtype=args.compute_dtype,
        f0_min=args.f0_min, f0_max=args.f0_max, pitch_hop_ms=args.pitch_hop_ms,
        fbank_bins=args.fbank_bins, fbank_dtype=args.fbank_dtype,
    )
    build(BuildConfig(
        out=args.out, source=args.source, subsets=args.subsets, speakers=args.speakers,
        seed=args.seed, features=args.features or name_list(DEFAULT_FEATURES),
        optional=() if args.features else OPTIONAL_BY_DEFAULT, chunk_seconds=args.chunk_seconds,
        batch_size=args.batch_size, workers=args.workers, shard_size=args.shard_size,
        resume=args.resume, overwrite=args.overwrite, quiet=args.quiet,
        cache_dir=args.cache_dir, extract=options, ray=args.ray,
        source_options={k[4:]: v for k, v in vars(args).items()
                        if k.startswith("col_") and v is not None},
    ))
    return 0
