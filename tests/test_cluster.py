"""What --ray asks of a cluster, decided from the cluster's description (no Ray needed): the
workers' device, each worker's resources and how many fit. GPU clusters are described here,
since the test machine has none."""

from __future__ import annotations

import pytest

from bench.distributed import resources as cell_resources
from bench.plan import Cell
from featstore.build_ray import RayBuild
from featstore.cluster import cluster_device, gpu_name
from featstore.errors import UserError
from featstore.extractors import ExtractContext
from featstore.extractors.configs import MFCCConfig, Wav2Vec2Config

GPU_CLUSTER = {"cpus": 32.0, "gpus": 4.0, "num_nodes": 2, "nodes": [
    {"host": "a", "cpus": 16.0, "gpus": 2.0, "accelerators": ["H100"]},
    {"host": "b", "cpus": 16.0, "gpus": 2.0, "accelerators": ["H100"]}]}
CPU_CLUSTER = {"cpus": 2.0, "gpus": 0, "num_nodes": 1, "nodes": [
    {"host": "a", "cpus": 2.0, "gpus": 0, "accelerators": []}]}


def test_device_is_resolved_against_the_cluster():
    assert cluster_device("auto", GPU_CLUSTER) == "cuda"
    assert cluster_device("auto", CPU_CLUSTER) == "cpu"
    assert cluster_device("cpu", GPU_CLUSTER) == "cpu"
    assert gpu_name(GPU_CLUSTER) == "H100"
    with pytest.raises(UserError, match="no node of the Ray cluster has a GPU"):
        cluster_device("cuda", CPU_CLUSTER)
    with pytest.raises(UserError, match="Ray assigns each worker its GPU"):
        cluster_device("cuda:1", GPU_CLUSTER)


def test_build_workers_take_a_gpu_for_wav2vec2_and_a_share_for_mfcc():
    gpu = RayBuild(GPU_CLUSTER, "cuda")
    heavy = gpu.resources(["mfcc", "wav2vec2"])
    assert heavy == {"num_cpus": 1, "num_gpus": 1}
    assert gpu.workers(heavy, pending=100) == 4  # one per GPU
    light = gpu.resources(["mfcc", "audio"])
    assert 0 < light["num_gpus"] < 1
    assert gpu.workers(light, pending=100) == 16  # four per GPU
    assert gpu.workers(light, pending=3) == 3  # never more than shards to build
    cpu = RayBuild(CPU_CLUSTER, "cpu")
    assert cpu.resources(["wav2vec2"]) == {"num_cpus": 1}
    assert cpu.workers({"num_cpus": 1}, pending=100) == 2


def test_driver_without_a_gpu_plans_with_the_workers_precision():
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU: it plans on it")
    features = ["mfcc", "hubert=PATH", "xvector=PATH"]
    given = {"mfcc": MFCCConfig(n_mfcc=20), "wav2vec2": Wav2Vec2Config(layers=(1,))}
    context, configs = RayBuild(GPU_CLUSTER, "cuda").plan_setup(ExtractContext("cuda"), features,
                                                                given)
    assert context.device == "cpu" and configs["mfcc"] == given["mfcc"]
    assert configs["wav2vec2"] == Wav2Vec2Config(layers=(1,), compute_dtype="bfloat16")
    assert configs["xvector"].compute_dtype == "bfloat16"  # the defaults, as workers resolve
    context, configs = RayBuild(CPU_CLUSTER, "cpu").plan_setup(ExtractContext("cpu"), features,
                                                               given)
    assert context.device == "cpu" and configs["wav2vec2"].compute_dtype == "auto"


@pytest.mark.parametrize(("model", "device", "gpus"), [
    ("mlp", "cuda", 1), ("xgboost", "cuda", 1), ("logreg", "cuda", 0), ("gmm", "cuda", 0),
    ("mlp", "cpu", 0)])
def test_bench_cells_take_a_gpu_only_when_their_model_uses_one(model, device, gpus):
    cell = Cell("gender", "mfcc", model, 0, {}, {}, {}, "cv", "k")
    assert cell_resources(cell, device) == {"num_cpus": 1, "num_gpus": gpus}
