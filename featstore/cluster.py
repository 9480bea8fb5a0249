"""Ray for ``--ray [auto|ADDRESS]``: connecting, what the cluster holds, and the check each worker
makes that it sees the shared paths. Imported only when --ray is given, so Ray stays optional.

``auto`` joins the cluster ``RAY_ADDRESS`` or a local ``ray start`` names, else starts a Ray
instance on this machine; ``ADDRESS`` (``host:port`` or ``ray://host:port``) joins that cluster.
Ray is already connected inside a process that called ``ray.init`` (tests, notebooks): that
cluster is used as it is.
"""

from __future__ import annotations

import os
import platform
from pathlib import Path

from featstore.errors import UserError

INSTALL = 'pip install "featstore[ray]"'


def ray_module():
    """``ray``, or a one-line error saying how to install it."""
    try:
        import ray
    except ImportError:
        raise UserError(f"--ray needs Ray, which is not installed: {INSTALL}") from None
    return ray


def connect(address: str) -> dict:
    """Join (or start) the cluster; returns :func:`describe` of it."""
    ray = ray_module()
    if not ray.is_initialized():
        kwargs = {"logging_level": "WARNING", "configure_logging": True}
        try:
            if address == "auto":
                # a running cluster if there is one; else a local instance (no dashboard: on a
                # laptop it only competes for cores; `ray start --head` gives one)
                try:
                    ray.init(address="auto", **kwargs)
                except ConnectionError:
                    ray.init(include_dashboard=False, **kwargs)
            else:
                ray.init(address=address, **kwargs)
        except Exception as exc:  # noqa: BLE001 - Ray raises several types for a bad address
            msg = " ".join(str(exc).split())[:300]
            raise UserError(f"--ray {address}: cannot connect to Ray: {msg}") from None
    return describe()


def describe() -> dict:
    """The cluster as provenance: alive nodes with their CPUs, GPUs and accelerator types."""
    ray = ray_module()
    nodes = []
    for node in ray.nodes():
        if not node.get("Alive"):
            continue
        res = node.get("Resources", {})
        nodes.append({
            "host": node.get("NodeManagerHostname") or node.get("NodeManagerAddress"),
            "address": node.get("NodeManagerAddress"),
            "cpus": res.get("CPU", 0), "gpus": res.get("GPU", 0),
            "accelerators": sorted(k.split(":", 1)[1] for k in res
                                   if k.startswith("accelerator_type:")),
        })
    return {"ray_version": ray.__version__, "num_nodes": len(nodes),
            "cpus": sum(n["cpus"] for n in nodes), "gpus": sum(n["gpus"] for n in nodes),
            "nodes": nodes}


def cluster_device(device: str, cluster: dict) -> str:
    """``--device`` for Ray workers, checked against the whole cluster (not this machine):
    auto -> cuda when any node has a GPU; Ray gives each worker its GPU, so cuda:N is refused."""
    if device == "auto":
        return "cuda" if cluster["gpus"] else "cpu"
    if device == "cuda":
        if not cluster["gpus"]:
            raise UserError("--device cuda: no node of the Ray cluster has a GPU; use cpu or auto")
        return device
    if device == "cpu":
        return device
    raise UserError(f"--device {device}: with --ray use cpu, cuda or auto (Ray assigns each "
                    "worker its GPU)")


def driver_device(device: str) -> str:
    """The device this process checks models or extractors on before the workers run them on
    ``device``: the same when it has it, else the CPU (a driver without a GPU)."""
    from featstore.device import resolve_device

    try:
        return resolve_device(device)
    except UserError:
        return "cpu"


def gpu_name(cluster: dict) -> str:
    """The GPU types of the cluster, for a run's device_name."""
    kinds = sorted({a for n in cluster["nodes"] for a in n["accelerators"]})
    return ", ".join(kinds) or f"{cluster['gpus']:g} GPU(s)"


def node_name() -> str:
    return platform.node()


def unseen(what: str, path: str | os.PathLike, *, is_dir: bool = True) -> str | None:
    """On a worker: None when ``path`` is there, else the one-line reason (shared storage)."""
    p = Path(path)
    if p.is_dir() if is_dir else p.is_file():
        return None
    return (f"Ray worker on {node_name()} cannot see {what} {p}: --ray needs it on a filesystem "
            "shared by every node, at the same path")
