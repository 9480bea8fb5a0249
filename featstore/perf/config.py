"""What ``featstore perf`` measures and how (the command line's settings)."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class PerfConfig:
    source: str | None = "synthetic"
    subsets: list[str] | None = None
    speakers: int | None = None
    seed: int = 0
    cache_dir: str | None = None
    features: list[str] = field(default_factory=lambda: ["mfcc"])
    model: str = "facebook/wav2vec2-base"
    device: str = "auto"
    batch_size: int | None = None
    workers: int | None = None
    max_seconds: float | None = None
    scale: int = 1  # tile the selected files this many times under new speaker ids
    repeat: int = 3
    quiet: bool = False
    chunk_seconds: float = 2.0
