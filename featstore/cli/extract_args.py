"""The extractor flags, shared by ``featstore build`` and ``featstore add`` (a flag added here
reaches both)."""

from __future__ import annotations

import argparse

from featstore.cli.types import int_list, positive_float, positive_int
from featstore.extractors import ExtractorOptions


def add_extractor_arguments(feat: argparse._ArgumentGroup) -> None:
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


def extractor_options(args: argparse.Namespace) -> ExtractorOptions:
    return ExtractorOptions(
        device=args.device, n_mfcc=args.n_mfcc, n_fft=args.n_fft, hop_length=args.hop_length,
        n_mels=args.n_mels, model=args.model, dtype=args.dtype, layers=args.layers,
        frames_layers=args.frames_layers, compute_dtype=args.compute_dtype,
        f0_min=args.f0_min, f0_max=args.f0_max, pitch_hop_ms=args.pitch_hop_ms,
        fbank_bins=args.fbank_bins, fbank_dtype=args.fbank_dtype,
    )
