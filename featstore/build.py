"""The build: corpus -> plan -> shards (featstore.pipeline) -> index.

Work is planned up front (``plan.json``: the utterances, their shards, every parameter). A shard
is the unit of work and of resumption: ``featstore.pipeline.build_shard`` writes one and
publishes it whole, so ``--resume`` re-plans, checks the plan is the same, and builds only the
shards that are missing or are not the planned shard (featstore/store/shards.py);
``featstore.store.index.write_index`` checks them all and writes the index last. A full disk
stops the build with one line (exit 1) naming the shard and the space still needed. With
``--ray`` the same two public steps run on a Ray cluster: workers build the pending shards
(featstore/build_ray.py), the driver writes the index.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

from tqdm import tqdm

from featstore import audio
from featstore.build_setup import BuildConfig, load_extractors, run_settings
from featstore.device import resolve_device
from featstore.errors import DiskFull, UserError, mb
from featstore.extractors.base import SAMPLE_RATE, ExtractContext
from featstore.pipeline import RunSettings, build_shard
from featstore.sources import resolve_source, select_speakers
from featstore.store.folder import check_folder, clear_store, make_folder
from featstore.store.index import finished_index, write_index
from featstore.store.layout import INDEX, SHARDS, shard_name
from featstore.store.plan import adopt_plan, make_plan, pending_shards, remove_temporaries
from featstore.store.writer import ShardSink, StoreLock


def build(cfg: BuildConfig) -> dict:
    """Build (or resume) a store; returns its index."""
    ray = None
    if cfg.ray is not None and str(cfg.source or "").startswith("hf:"):
        # Ray workers read audio files by path; an hf: record's bytes live in the driver's dataset.
        raise UserError("--ray does not take an hf: source yet: build it without --ray")
    if cfg.ray is not None:  # the device is the workers', on the cluster
        from featstore.build_ray import RayBuild

        ray = RayBuild.connect(cfg.ray, cfg.device)
        device = ray.device
    else:
        try:
            device = resolve_device(cfg.device)
        except UserError as exc:
            raise UserError(f"--device: {exc}") from None
    if cfg.chunk_seconds <= 0:
        raise UserError("--chunk-seconds must be positive")
    context = ExtractContext(device, SAMPLE_RATE, int(round(cfg.chunk_seconds * SAMPLE_RATE)))
    if not cfg.features:
        raise UserError("--features must name at least one feature")
    out = Path(cfg.out)
    existing = check_folder(out, resume=cfg.resume, overwrite=cfg.overwrite)
    # Everything that can fail on user input (source, model) runs before the folder is touched.
    corpus = resolve_source(cfg.source, subsets=cfg.subsets, speakers=cfg.speakers,
                            seed=cfg.seed, cache_dir=cfg.cache_dir, options=cfg.source_options)
    if cfg.speakers is not None:
        corpus = select_speakers(corpus, cfg.speakers, cfg.seed)
    if not corpus.utterances:
        raise UserError(f"no utterances found in {corpus.name}")
    here, configs = ray.plan_setup(context, cfg.features, cfg.configs) if ray else (
        context, cfg.configs)
    extractors = load_extractors(cfg.features, configs, here, cfg.optional)
    make_folder(out)
    with StoreLock(out):
        if cfg.overwrite:
            clear_store(out, existing)
        plan = adopt_plan(out, make_plan(corpus, plan_params(cfg, context, extractors),
                                         cfg.shard_size))
        remove_temporaries(out)
        pending = pending_shards(out, plan)
        index = finished_index(out, len(plan["shards"])) if not pending else None
        if index is None:  # shards changed (or no index yet): only then is a new index written
            if pending:  # an old index would describe shards about to change: never leave it
                (out / INDEX).unlink(missing_ok=True)
            if ray is not None:
                batch_size = ray.run(out, pending, plan, cfg, context, corpus.reader)
            else:
                settings = run_settings(cfg, context, extractors, corpus.reader)
                build_shards(out, plan, pending, extractors, settings, quiet=cfg.quiet)
                batch_size = settings.batch_size
            index = write_index(out, plan, extractors, device=device, batch_size=batch_size,
                                where=ray.provenance() if ray else None,
                                reported=ray.reported if ray else None)
    if not cfg.quiet:
        _summary(index)
    return index


def plan_params(cfg: BuildConfig, context: ExtractContext, extractors: list) -> dict:
    """Every parameter that decides what the store holds (recorded in plan.json; a resume
    must match them)."""
    # source_options only when set: plans written before that key still resume
    return {
        "features": [e.name for e in extractors],
        "extractors": {e.name: e.params() for e in extractors},
        "sample_rate": context.sample_rate, "chunk_samples": context.chunk_samples,
        "chunk_seconds": cfg.chunk_seconds, "chunk_policy": audio.CHUNK_POLICY,
        "shard_size": cfg.shard_size, "source": cfg.source, "subsets": cfg.subsets,
        "speakers": cfg.speakers, "seed": cfg.seed,
    } | ({"source_options": cfg.source_options} if cfg.source_options else {}) \
      | _entries(extractors)


def _entries(extractors: list) -> dict:
    """NAME=MODEL features: the --features entry that rebuilds each (only when there are
    some: plans written before this key still resume)."""
    entries = {e.name: e.entry for e in extractors if getattr(e, "entry", e.name) != e.name}
    return {"entries": entries} if entries else {}


def build_shards(out: Path, plan: dict, shards: list[int], extractors: list,
                 settings: RunSettings, *, quiet: bool = False) -> None:
    """The local loop: ``build_shard`` for each of ``shards`` in turn, sharing one writer
    thread so that writing a shard overlaps extracting the next."""
    bounds = plan["shards"]
    total = sum(bounds[i][1] - bounds[i][0] for i in shards)
    sink = ShardSink()
    try:
        with tqdm(total=total, unit="utt", desc="build", disable=quiet or None) as bar:
            try:
                for i in shards:
                    build_shard(out, plan, i, extractors, settings, sink=sink,
                                progress=bar.update)
            finally:
                sink.finish()
    except DiskFull as exc:
        left = [i for i in shards if not (out / SHARDS / shard_name(i)).exists()]
        free = shutil.disk_usage(out).free
        raise DiskFull(exc.path, exc.needed, (
            f"no space left on the device for {Path(exc.path).name} in {Path(exc.path).parent} "
            "(it needs "
            f"{mb(exc.needed)}, {mb(free)} free); the {len(left)} shard(s) left need about "
            f"{mb(exc.needed * len(left))}: make room, then rerun with --resume")) from None


def _summary(index: dict) -> None:
    problems = index["problems"]
    print(f"wrote {index['num_rows']} chunks in {len(index['shards'])} shards; "
          f"{len(problems)} problem(s) recorded", file=sys.stderr)
    for p in problems[:10]:
        print(f"  {p['path']}: {p['reason']}", file=sys.stderr)
    if len(problems) > 10:
        print(f"  ... and {len(problems) - 10} more (featstore info STORE)", file=sys.stderr)
