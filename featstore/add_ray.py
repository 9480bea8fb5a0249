"""``featstore add --ray``: the new group files of the pending shards built by Ray actors, as
``build --ray`` builds shards (featstore/build_ray.py: the same cluster and resources; the same
actor pool, restarts and retries: featstore/ray_actors.py). The driver (featstore/add.py) holds
the store lock, records the add and writes the index; each actor loads the new extractors once
and writes one shard's group files per call with ``featstore.add.add_shard``."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path

from featstore import cluster as ray_cluster
from featstore import ray_actors
from featstore.build_ray import RayBuild
from featstore.errors import UserError
from featstore.extractors import ExtractContext
from featstore.store.layout import ADDING, PLAN, group_file


@dataclass
class RayAdd:
    build: RayBuild

    @classmethod
    def connect(cls, address: str, device: str) -> RayAdd:
        return cls(RayBuild.connect(address, device))

    def run(self, root: Path, pending: list[int], todo: list, cfg,
            context: ExtractContext) -> int | list[int]:
        """Write the ``pending`` shards' group files with ``cfg.configs`` and ``context`` (on
        the workers' device); returns the batch size(s) used."""
        # entries, not names: a NAME=MODEL upstream is rebuilt from its entry (make_extractor)
        names = [getattr(e, "entry", e.name) for e in todo]
        res = self.build.resources(names)
        n = self.build.workers(res, len(pending))
        self.build.cluster["workers"] = {"actors": n, **res}
        wcfg = dataclasses.replace(cfg, device=self.build.device, quiet=True, ray=None)
        wcontext = dataclasses.replace(context, device=self.build.device)
        checks, _ = ray_actors.run_pool(GroupBuilder, (str(root.absolute()), names, wcfg, wcontext),
                                        res, n, pending, desc="add", quiet=cfg.quiet,
                                        failure=_failure)
        return ray_actors.batch_sizes(checks)


def _failure(exc: Exception) -> str:
    return (f"adding on Ray failed ({type(exc).__name__}: {ray_actors.error_text(exc)[:300]}); "
            "the finished files are kept: rerun with --resume")


class GroupBuilder:
    """A Ray actor: the new extractors loaded once, then one shard's group files per call."""

    def __init__(self, root: str, names: list[str], cfg, context: ExtractContext):
        self.root, self.names, self.cfg, self.context = Path(root), names, cfg, context
        self.todo = self.settings = self.audio = None

    def check(self) -> int | str:
        """This worker's batch size, or why it cannot add (a store it does not see, other
        parameters than the driver recorded)."""
        from featstore import machine
        from featstore.add import audio_input, comparable
        from featstore.build_setup import load_extractors
        from featstore.pipeline import RunSettings
        from featstore.store.reader import Store

        problem = ray_cluster.unseen("the store folder", self.root / ADDING, is_dir=False)
        if problem:
            return problem
        ctx = self.context
        try:
            self.todo = load_extractors(self.names, self.cfg.configs, ctx)
        except UserError as exc:
            return f"Ray worker on {ray_cluster.node_name()}: {exc}"
        recorded = json.loads((self.root / ADDING).read_text())["extractors"]
        if {e.name: comparable(e.params()) for e in self.todo} != recorded:
            return (f"Ray worker on {ray_cluster.node_name()} would extract with other "
                    "parameters than the driver recorded: pass --compute-dtype and the same "
                    "--model everywhere")
        store = Store(self.root)
        plan = json.loads((self.root / PLAN).read_text())
        self.settings = RunSettings(
            device=ctx.device, sample_rate=ctx.sample_rate, chunk_samples=ctx.chunk_samples,
            batch_size=self.cfg.batch_size or machine.default_batch_size(self.todo, ctx.device),
            decode_threads=0)
        try:
            self.audio = audio_input(store, plan, self.cfg, self.settings)
        except UserError as exc:
            return f"Ray worker on {ray_cluster.node_name()}: {exc}"
        return self.settings.batch_size

    def build(self, shard: int) -> dict:
        from featstore.add import add_shard

        if self.todo is None:  # a restarted actor: Ray re-ran __init__ only
            ray_actors.check_again(self)
        try:
            add_shard(self.root, shard, self.todo, self.audio, self.settings)
        except Exception as exc:  # name the shard in the driver's message
            raise RuntimeError(f"{group_file(self.todo[0].name, shard)} on "
                               f"{ray_cluster.node_name()}: {type(exc).__name__}: {exc}") from exc
        return {"shard": shard, "node": ray_cluster.node_name()}
