"""``featstore add``: new features for a store's existing chunks, in the same rows and order.

The new extractors' group files are written shard by shard (each under a temporary name,
published by rename) next to the ones already there, which are never opened for writing;
``adding.json`` records what is being added before the first file, so ``--resume`` after a
crash checks it is the same add and builds only the missing files; the index is replaced
atomically, last. Readers holding the old index keep reading the files it lists.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from pathlib import Path

from tqdm import tqdm

from featstore import machine, provenance
from featstore.add_input import DecodedAudio, StoredAudio
from featstore.build_setup import load_extractors
from featstore.device import resolve_device
from featstore.drop import remove_unlisted
from featstore.errors import UserError
from featstore.extractors import ExtractContext
from featstore.extractors.configs import ExtractorConfig
from featstore.pipeline import RunSettings, extract, group_parts, settle_gc
from featstore.store.groups import feature_entries, group_entry
from featstore.store.layout import ADDING, FORMAT_VERSION, INDEX, write_json_atomic
from featstore.store.plan import remove_temporaries
from featstore.store.reader import Store
from featstore.store.writer import ShardSink, StoreLock


@dataclass
class AddConfig:
    store: Path
    features: list[str]
    source: str | None = None  # decode from here (the corpus moved); None: audio or recorded
    cache_dir: str | None = None
    batch_size: int | None = None
    workers: int | None = None
    resume: bool = False
    quiet: bool = False
    device: str = "cpu"  # or cuda, auto
    # kind -> config (featstore.extractors.config_kind); a kind not here: its defaults
    configs: dict[str, ExtractorConfig] = field(default_factory=dict)
    ray: str | None = None


def comparable(params: dict) -> dict:
    """Extractor parameters as compared by add: JSON values, without where a local model lies."""
    return {k: v for k, v in json.loads(json.dumps(params)).items() if k != "local_path"}


def recorded_params(index: dict, name: str) -> dict | None:
    """The parameters extractor ``name`` was stored with, or None if the store lacks it."""
    if name in index.get("groups", {}):
        return index["groups"][name]["params"]
    if any(f.get("extractor") == name for f in index["features"].values()):  # format 1
        return index["provenance"]["params"]["extractors"].get(name, {})
    return None


def add(cfg: AddConfig) -> dict:
    """Add ``cfg.features`` to the store; returns the new index."""
    root = Path(cfg.store)
    store = Store(root)  # a UserError unless it is a finished store
    plan = json.loads((root / "plan.json").read_text())
    ray = None
    if cfg.ray is not None:  # the device is the workers', on the cluster
        from featstore.add_ray import RayAdd

        ray = RayAdd.connect(cfg.ray, cfg.device)
        device = ray.build.device
    else:
        try:
            device = resolve_device(cfg.device)
        except UserError as exc:
            raise UserError(f"--device: {exc}") from None
    context = store_context(plan, device)
    if not cfg.features:
        raise UserError("--features must name at least one feature")
    here, configs = ray.build.plan_setup(context, cfg.features, cfg.configs) if ray else (
        context, cfg.configs)
    extractors = load_extractors(cfg.features, configs, here)
    with StoreLock(root):
        store = Store(root)  # re-read under the lock: another add may have finished meanwhile
        todo = _to_add(store.index, extractors, root)
        if not todo:
            return store.index
        _adopt(root, todo, cfg.resume)
        remove_temporaries(root)
        settings = RunSettings(
            device=device, sample_rate=context.sample_rate, chunk_samples=context.chunk_samples,
            batch_size=cfg.batch_size or machine.default_batch_size(todo, device),
            decode_threads=cfg.workers if cfg.workers is not None
            else machine.decode_threads(device))
        pending = [i for i in range(len(store.shards))
                   if not all(p.path.exists() for p in group_parts(root, i, todo))]
        where, batch_size = None, settings.batch_size
        if pending and ray is not None:
            batch_size = ray.run(root, pending, todo, cfg, context)
            where = ray.build.provenance()
        elif pending:
            _build(root, store, pending, todo, audio_input(store, plan, cfg, settings),
                   settings, cfg.quiet)
        index = _publish(root, store.index, todo, device, batch_size, where)
    if not cfg.quiet:
        names = [n for e in todo for n in feature_entries(e, e.name)]
        print(f"featstore add: added {', '.join(names)} to {len(store)} chunks", file=sys.stderr)
    return index


def store_context(plan: dict, device: str) -> ExtractContext:
    """The extraction context of a store's chunks (its plan's rate and chunk length)."""
    return ExtractContext(device, plan["params"]["sample_rate"], plan["params"]["chunk_samples"])


def audio_input(store: Store, plan: dict, cfg: AddConfig, settings: RunSettings):
    """The store's own audio when it has it (and no --source says otherwise), else decoding."""
    if "audio" in store.features and cfg.source is None:
        return StoredAudio(store)
    return DecodedAudio(store, plan, cfg.source, cfg.cache_dir, settings)


def _to_add(index: dict, extractors: list, root: Path) -> list:
    """The extractors the store lacks. One it has with the same parameters is a no-op (one
    line); with other parameters a UserError naming ``featstore drop``."""
    todo = []
    for e in extractors:
        old = recorded_params(index, e.name)
        if old is None:
            todo.append(e)
        elif comparable(old) == comparable(e.params()):
            print(f"featstore add: {root} already has {e.name} with these parameters; nothing to "
                  "do", file=sys.stderr)
        else:
            new = comparable(e.params())
            key = next(k for k in sorted(set(old) | set(new)) if old.get(k) != new.get(k))
            raise UserError(f"{root} already has {e.name} with other parameters ({key}: "
                            f"{old.get(key)} stored, {new.get(key)} asked); remove it first with "
                            f"`featstore drop {root} --features {e.name}`")
    return todo


def _adopt(root: Path, todo: list, resume: bool) -> None:
    """Record the add in ``adding.json``, or check that an unfinished one is this add."""
    want = {"extractors": {e.name: comparable(e.params()) for e in todo}}
    path = root / ADDING
    if path.exists():
        old = json.loads(path.read_text())
        names = ",".join(old["extractors"])
        if not resume:
            raise UserError(f"an add of {names} to {root} was interrupted: finish it with "
                            f"`featstore add {root} --features {names} --resume`")
        if old["extractors"] != want["extractors"]:
            raise UserError(f"cannot --resume: the add started in {root} was of {names} with "
                            "other parameters; pass the same --features and flags")
        return
    remove_unlisted(root, json.loads((root / INDEX).read_text()))  # a crashed drop's leftovers
    write_json_atomic(path, {**want, "started": provenance.now()})


def _build(root: Path, store: Store, pending: list[int], todo: list, audio, settings,
           quiet: bool) -> None:
    """The local loop: one writer thread shared by the shards, so writing one overlaps
    extracting the next."""
    sink = ShardSink()
    total = sum(int(store.offsets[i + 1] - store.offsets[i]) for i in pending)
    with tqdm(total=total, unit="chunk", desc="add", disable=quiet or None) as bar:
        try:
            for i in pending:
                add_shard(root, i, todo, audio, settings, sink=sink, progress=bar.update)
        finally:
            sink.finish()


def add_shard(root: Path, shard: int, todo: list, audio, settings: RunSettings, *,
              sink: ShardSink | None = None, progress=None) -> None:
    """Write the group files of ``todo`` for one shard of the store at ``root`` (published
    by rename once written; without ``sink`` this call owns a writer and returns once they are
    published). The unit a Ray add schedules."""
    settle_gc()
    own = sink is None
    sink = sink or ShardSink()
    try:
        with machine.torch_threads(_threads(todo)):
            sink.open(group_parts(root, shard, todo),
                      {"shard": shard, "format_version": FORMAT_VERSION})
            for batch in audio.batches(shard, settings.batch_size):
                sink.rows(None, extract(todo, batch, settings.device))
                if progress is not None:
                    progress(len(batch))
            sink.close_shard([])
    finally:
        if own:
            sink.finish()


def _threads(extractors: list) -> int | None:
    return max((t for e in extractors if (t := getattr(e, "num_threads", lambda: None)())),
               default=None)


def _publish(root: Path, index: dict, todo: list, device: str, batch_size, where: dict | None
             ) -> dict:
    """The new index, written atomically; then the add's record goes. ``where``: a Ray add's
    provenance (its cluster)."""
    rows = [s["rows"] for s in index["shards"]]
    new = json.loads(json.dumps(index))
    new.setdefault("groups", {})
    for e in todo:
        new["groups"][e.name] = group_entry(root, e, rows, device=device, batch_size=batch_size,
                                            where=where)
        new["features"].update(feature_entries(e, e.name))
    write_json_atomic(root / INDEX, new)
    (root / ADDING).unlink(missing_ok=True)
    return new
