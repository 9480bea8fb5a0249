"""``featstore perf``'s result as markdown: a header line, the rows, the speed-ups and the
resources used."""

from __future__ import annotations

import math

SPEEDUP_LABELS = {
    "mfcc_in_process": "mfcc in-process: featstore build vs classic",
    "mfcc_extractor_only": "mfcc extractor only: batched vs classic",
    "mfcc_end_to_end": "mfcc end to end (new process): featstore build vs classic",
    "wav2vec2_pipeline_vs_bare": "wav2vec2 pipeline vs bare forward",
    "wav2vec2_pipeline_vs_bare_excl_load": "wav2vec2 pipeline vs bare forward, model load "
                                           "excluded",
    "wav2vec2_batched_vs_unbatched": "wav2vec2 batched vs unbatched forward",
    "pitch_batched_vs_reference": "pitch batched vs librosa.yin one chunk at a time",
    "fbank_batched_vs_reference": "fbank batched vs torchaudio kaldi.fbank one chunk at a time",
    "default_build_wall_vs_mfcc_build": "default build's wall time / mfcc-only build's (new "
                                        "processes; lower is better)",
    "mfcc_build_vs_classic_whole_file": "mfcc end to end (new process): featstore build vs "
                                        "librosa once per whole file",
}


def _num(value: float | None, digits: int = 1) -> str:
    if value is None or not math.isfinite(value):
        return "-"
    return f"{value:,.{digits}f}"


def render_markdown(result: dict) -> str:
    from tabulate import tabulate

    tiled = f", tiled {result['scale']}x" if result["scale"] > 1 else ""
    head = (f"featstore perf on {result['device']} ({result['device_name']}), "
            f"{result['cpus']} CPUs, {result['torch_threads']} torch threads; "
            f"{result['source']}{tiled}: {result['files']} files, "
            f"{_num(result['audio_seconds'])} s of audio in {result['chunks']} chunks; "
            f"median of {result['repeat']}")
    rows = [[r["name"], _num(r["audio_seconds"]), _num(r["seconds"], 3), _num(r["rtf"]),
             r["note"]] for r in result["rows"]]
    table = tabulate(rows, headers=["what", "audio s", "wall s", "x real time", "note"],
                     tablefmt="github", colalign=("left", "right", "right", "right", "left"),
                     disable_numparse=True)
    parts = [head, "", table]
    if result["speedups"]:
        sp = [[SPEEDUP_LABELS.get(k, k), _num(v, 2)] for k, v in result["speedups"].items()]
        parts += ["", tabulate(sp, headers=["speed-up", "x"], tablefmt="github",
                               colalign=("left", "right"), disable_numparse=True)]
    if "ceiling" in result:
        parts += ["", _ceiling(result["ceiling"])]
    mem = result["peak_host_mb"]
    tail = (f"peak host memory: {mem['self']:,.0f} MB this process, {mem['children']:,.0f} MB "
            "largest child")
    if "mfcc_build_e2e" in mem:
        tail += f", {mem['mfcc_build_e2e']:,.0f} MB featstore build process"
    if "mfcc_classic_e2e" in mem:
        tail += f", {mem['mfcc_classic_e2e']:,.0f} MB classic process"
    if result["peak_gpu_mb"] is not None:
        tail += f"; peak GPU memory: {result['peak_gpu_mb']:,.0f} MB"
    parts += ["", tail]
    return "\n".join(parts)


def _ceiling(c: dict) -> str:
    """The ceiling as one paragraph: core-seconds per audio second, the rtf they allow, and
    how much of it the builds reach."""
    per = c["core_seconds_per_audio_second"]
    steps = ", ".join(f"{k} {v * 1e3:.3f}" for k, v in per.items())
    share = {k: c.get(f"{k}_build_share") for k in ("mfcc", "default")}
    return (f"ceiling on {c['cores']} cores (core-ms per audio second, CPU time: {steps}): "
            f"mfcc {_num(c['mfcc_rtf'], 0)}x real time, default build "
            f"{_num(c['default_rtf'], 0)}x; the builds (new processes) reach "
            f"{_num(100 * share['mfcc'] if share['mfcc'] else None, 0)}% and "
            f"{_num(100 * share['default'] if share['default'] else None, 0)}% of it")
