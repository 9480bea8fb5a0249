"""``featstore build --ray``: the pending shards of the plan built by a pool of Ray actors.
Imported only when --ray is given.

The driver (featstore/build.py) plans, holds the store lock and writes index.json, as without
Ray. Each actor loads the extractors once on its device (a whole GPU with wav2vec2, a quarter of
one for MFCC/audio only, a CPU core on a CPU build; its decode threads and MFCC pool are sized
from that CPU share, not the node's cores), reads plan.json from the shared store and
builds one shard per call with ``build_shard``: under a temporary name, published by rename.
Ray hands the shards out (``ActorPool``, featstore/ray_actors.py) and restarts an actor whose
process died, retrying its shard there (``max_restarts`` / ``max_task_retries``); a shard that
still fails stops the build, naming it, with the finished shards kept for ``--resume``. The
driver then checks that it sees every shard it was told about, and the index step
(featstore.store.index) reads each once, comparing its SHA-256 with the one its worker reported.
"""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass
from pathlib import Path

from featstore import cluster as ray_cluster
from featstore import provenance, ray_actors
from featstore.errors import UserError
from featstore.extractors import ExtractContext, entry_configs
from featstore.extractors.configs import ExtractorConfig
from featstore.store.folder import NO_RENAME, rename_replaces
from featstore.store.layout import PLAN, SHARDS, published_sha256, sha256_file, shard_name

CRASH_HOOK = "FEATSTORE_TEST_RAY_CRASH"  # tests only: "SHARD:MARKER" kills the worker once
GPU_SHARE_LIGHT = 0.25  # GPU per actor when no feature needs a whole one (MFCC, audio)
LIGHT = ("mfcc", "pitch", "fbank", "audio", "dvector")  # extractors that share a GPU


@dataclass
class RayBuild:
    """A build's Ray side: the cluster joined and the workers' device."""

    cluster: dict
    device: str
    reported: dict[int, str] = dataclasses.field(default_factory=dict)  # shard -> its SHA-256

    @classmethod
    def connect(cls, address: str, device: str) -> RayBuild:
        cluster = ray_cluster.connect(address)
        return cls(cluster, ray_cluster.cluster_device(device, cluster))

    def plan_setup(self, context: ExtractContext, features: list[str],
                   configs: dict[str, ExtractorConfig]
                   ) -> tuple[ExtractContext, dict[str, ExtractorConfig]]:
        """Context and configs (kind -> config) for loading the ``features``' extractors in
        the driver, for the plan's parameters: on the workers' device when this machine has
        it, else on the CPU with the precision the workers will use (--compute-dtype auto
        means bfloat16 on CUDA)."""
        here = ray_cluster.driver_device(self.device)
        configs = entry_configs(features, configs)
        if here != self.device and self.device.startswith("cuda"):
            configs = {k: dataclasses.replace(c, compute_dtype="bfloat16")
                       if getattr(c, "compute_dtype", None) == "auto" else c
                       for k, c in configs.items()}
        return dataclasses.replace(context, device=here), configs

    def resources(self, features: list[str]) -> dict:
        if not self.device.startswith("cuda"):
            return {"num_cpus": 1}
        heavy = any(f not in LIGHT for f in features)  # any model: wav2vec2, NAME=MODEL
        return {"num_cpus": 1, "num_gpus": 1 if heavy else GPU_SHARE_LIGHT}

    def workers(self, res: dict, pending: int) -> int:
        """As many actors as the cluster fits at once (never more than shards to build)."""
        fit = self.cluster["cpus"] // res["num_cpus"]
        if res.get("num_gpus"):
            fit = min(fit, self.cluster["gpus"] // res["num_gpus"])
        return max(1, min(int(fit), pending))

    def run(self, out: Path, pending: list[int], plan: dict, cfg, context: ExtractContext,
            reader=None) -> int | list[int] | None:
        """Build the ``pending`` shards with ``cfg.configs`` and ``context`` (on the workers'
        device); returns the batch size(s) the workers used. ``reader``: the corpus's audio
        reader, pickled to the workers (None: files by path)."""
        if not pending:  # all shards there, index missing: nothing for workers to do
            return cfg.batch_size
        res = self.resources(plan["params"]["features"])
        n = self.workers(res, len(pending))
        self.cluster["workers"] = {"actors": n, **res}
        wcfg = dataclasses.replace(cfg, device=self.device, quiet=True)
        wcontext = dataclasses.replace(context, device=self.device)
        utt_paths = [u["path"] for u in plan["utterances"]]
        source = os.path.commonpath([str(Path(p).parent) for p in utt_paths])
        args = (str(out.absolute()), sha256_file(out / PLAN), source, wcfg, wcontext,
                os.environ.get(CRASH_HOOK), res["num_cpus"], reader)

        def failure(exc: Exception) -> str:
            missing = [i for i in pending if not (out / SHARDS / shard_name(i)).exists()]
            return _failure(exc, missing)

        checks, reports = ray_actors.run_pool(ShardBuilder, args, res, n, pending, desc="build",
                                              quiet=cfg.quiet, failure=failure)
        nodes = [r["node"] for r in reports]
        self.cluster["shards_built_by_node"] = {h: nodes.count(h) for h in sorted(set(nodes))}
        check_visible(out, reports)
        self.reported = {r["shard"]: r["sha256"] for r in reports}
        return ray_actors.batch_sizes(checks)

    def provenance(self) -> dict:
        """The index's provenance fields that describe where the build ran."""
        name = (ray_cluster.gpu_name(self.cluster) if self.device.startswith("cuda")
                else provenance.device_name("cpu"))
        return {**provenance.record("cpu"), "device": self.device, "device_name": name,
                "cluster": self.cluster}


def _failure(exc: Exception, missing: list[int]) -> str:
    text = ray_actors.error_text(exc)
    names = ", ".join(shard_name(i) for i in missing[:5]) + (" ..." if len(missing) > 5 else "")
    return (f"building on Ray failed ({type(exc).__name__}: {text[:300]}); not built: {names}; "
            "the finished shards are kept: rerun with --resume")


def check_visible(out: Path, reports: list[dict]) -> None:
    """Every shard a worker reported is on this machine's disk too (the index step then reads
    each once and compares its SHA-256 with the worker's: featstore.store.index)."""
    for r in sorted(reports, key=lambda r: r["shard"]):
        path = out / SHARDS / shard_name(r["shard"])
        if not path.is_file():
            raise UserError(f"shard {path} was built on {r['node']} but this machine does not "
                            "see it: --ray needs the store on storage every node shares")


class ShardBuilder:
    """A Ray actor: the extractors loaded once, then one shard per ``build`` call."""

    def __init__(self, out: str, plan_sha: str, source: str, cfg, context: ExtractContext,
                 crash: str | None, cpus: float = 1, reader=None):
        from featstore import machine

        self.out, self.plan_sha, self.source, self.cfg = Path(out), plan_sha, source, cfg
        self.context = context
        self.crash, self.reader = crash, reader
        self.plan = self.extractors = self.settings = None
        # decode threads, the MFCC block pool and torch threads from this actor's CPUs, not
        # the node's cores (its process is this actor's alone)
        machine.set_cpu_share(int(cpus))

    def check(self) -> int | str:
        """This worker's batch size, or why it cannot build (paths it does not see, other
        extraction parameters than the plan's)."""
        from featstore.build_setup import load_extractors, run_settings

        problem = (ray_cluster.unseen("the store folder", self.out / SHARDS)
                   or ray_cluster.unseen("the source", self.source))
        if problem:
            return problem
        if not rename_replaces(self.out / SHARDS, f"-{os.getpid()}-{ray_cluster.node_name()}"):
            return f"Ray worker on {ray_cluster.node_name()}: " + NO_RENAME.format(self.out)
        if sha256_file(self.out / PLAN) != self.plan_sha:
            return (f"Ray worker on {ray_cluster.node_name()} sees another plan.json in "
                    f"{self.out} than the driver: --ray needs one shared store folder")
        self.plan = json.loads((self.out / PLAN).read_text())
        try:
            entries = self.plan["params"].get("entries", {})  # NAME=MODEL features
            self.extractors = load_extractors(
                [entries.get(n, n) for n in self.plan["params"]["features"]], self.cfg.configs,
                self.context)
        except UserError as exc:
            return f"Ray worker on {ray_cluster.node_name()}: {exc}"
        mine = json.loads(json.dumps({e.name: e.params() for e in self.extractors}))
        if mine != self.plan["params"]["extractors"]:
            return (f"Ray worker on {ray_cluster.node_name()} would extract with other "
                    "parameters than the plan (another model version, or --compute-dtype auto "
                    "resolved differently): pass --compute-dtype and the same --model everywhere")
        self.settings = run_settings(self.cfg, self.context, self.extractors, self.reader)
        return self.settings.batch_size

    def build(self, shard: int) -> dict:
        from featstore.pipeline import build_shard

        if self.extractors is None:  # a restarted actor: Ray re-ran __init__ only
            ray_actors.check_again(self)
        if self.crash:
            _maybe_crash(self.crash, shard)
        try:
            build_shard(self.out, self.plan, shard, self.extractors, self.settings)
        except Exception as exc:  # name the shard in the driver's message
            raise RuntimeError(f"{shard_name(shard)} on {ray_cluster.node_name()}: "
                               f"{type(exc).__name__}: {exc}") from exc
        path = self.out / SHARDS / shard_name(shard)
        return {"shard": shard, "sha256": published_sha256(path), "node": ray_cluster.node_name()}


def _maybe_crash(hook: str, shard: int) -> None:
    """Tests only (FEATSTORE_TEST_RAY_CRASH="SHARD:MARKER"): the first worker to build SHARD
    dies in the middle of writing it, leaving its temporary file, as a killed process would;
    with no MARKER ("SHARD:") every worker that tries does."""
    target, _, marker = hook.partition(":")
    if int(target) != shard or (marker and Path(marker).exists()):
        return
    if marker:
        Path(marker).touch()
    from featstore.store import writer

    def die(*args, **kwargs):
        os._exit(1)

    writer.ShardWriter.append = die
