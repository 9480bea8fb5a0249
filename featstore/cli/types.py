"""argparse value types and argument groups shared by the commands; each type rejects bad
input with one clear line."""

from __future__ import annotations

import argparse
import re


def _int(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got '{text}'") from None


def positive_int(text: str) -> int:
    value = _int(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {value}")
    return value


def nonneg_int(text: str) -> int:
    value = _int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected 0 or more, got {value}")
    return value


def positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got '{text}'") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text}")
    return value


def name_list(text: str) -> list[str]:
    items = [t.strip() for t in text.split(",") if t.strip()]
    if not items:
        raise argparse.ArgumentTypeError("expected a comma-separated list")
    return items


def int_list(text: str) -> tuple[int, ...]:
    """'0,6,12' or '4-8' or a mix: layer indices."""
    out = []
    for part in name_list(text):
        try:
            if "-" in part[1:]:
                lo, hi = part.split("-", 1)
                out.extend(range(int(lo), int(hi) + 1))
            else:
                out.append(int(part))
        except ValueError:
            raise argparse.ArgumentTypeError(f"bad layer list '{text}'") from None
    return tuple(dict.fromkeys(out))


def ray_address(text: str) -> str:
    """--ray's value: auto, or a Ray address host:port / ray://host:port."""
    if text == "auto" or re.fullmatch(r"(ray://)?[\w.\-]+:\d+", text):
        return text
    raise argparse.ArgumentTypeError(f"expected auto or a Ray address host:port (or "
                                     f"ray://host:port), got '{text}'")


def add_ray_argument(p: argparse.ArgumentParser, what: str) -> None:
    p.add_argument("--ray", nargs="?", const="auto", type=ray_address, metavar="auto|ADDRESS",
                   help=f"{what} on a Ray cluster: auto (alone: --ray) joins the running one or "
                   "starts one here; ADDRESS joins that cluster. Paths must be on storage every "
                   'node shares. Needs pip install "featstore[ray]"')


def add_source_arguments(p: argparse.ArgumentParser, default: str | None,
                         default_text: str) -> None:
    """--source, --subsets, --speakers, --seed, --cache-dir: the same for build and perf."""
    src = p.add_argument_group("source")
    src.add_argument("--source", default=default,
                     help="a LibriSpeech folder (root or one subset), librispeech:<subset> to "
                     "download one, synthetic, sample, or a Hugging Face dataset: hf:PATH[:split] "
                     "or hf:<hub id>[:config][:split], or lhotse manifests: lhotse:CUTS, "
                     "lhotse:RECORDINGS,SUPERVISIONS or lhotse:FOLDER "
                     f"(default {default_text})")
    src.add_argument("--subsets", type=name_list, help="only these subsets (splits of an hf: "
                     "or lhotse: source), e.g. test-other")
    src.add_argument("--speakers", type=positive_int,
                     help="keep N speakers, balanced by gender, chosen from --seed")
    src.add_argument("--seed", type=int, default=0, help="seed for --speakers (default 0)")
    src.add_argument("--cache-dir", help="download cache (default $FEATSTORE_CACHE or "
                     "~/.cache/featstore)")


def require_dir(path: str, what: str = "store") -> None:
    from pathlib import Path

    from featstore.errors import UserError

    if not Path(path).is_dir():
        raise UserError(f"{what} {path} does not exist")
