"""kvplan fit --emit k8s and the launch lines past one node, checked field by field against the LeaderWorkerSet
API (kubernetes-sigs/lws api/leaderworkerset/v1/leaderworkerset_types.go) and the engines' documented
multi-node commands."""

from __future__ import annotations

import yaml
from click.testing import CliRunner

from kvplan.cli import main
from kvplan.deployment import Deployment
from kvplan.engines import get_engine
from kvplan.engines.base import Launch
from kvplan.fit import Workload, search
from kvplan.model.load import load_model


def manifest(*args: str) -> list[dict]:
    r = CliRunner().invoke(main, ["fit", *args, "--emit", "k8s"])
    assert r.exit_code == 0, r.output
    return list(yaml.safe_load_all(r.output))


def test_leader_worker_set_for_two_nodes_of_deepseek_v3():
    lws, service = manifest("deepseek-v3", "--users", "100", "--seq", "8192", "--gpu", "h100", "--max-gpus", "16")
    assert (lws["apiVersion"], lws["kind"]) == ("leaderworkerset.x-k8s.io/v1", "LeaderWorkerSet")
    spec = lws["spec"]
    template = spec["leaderWorkerTemplate"]
    assert spec["replicas"] == 1 and template["size"] == 2  # one group of two pods: two nodes of 8 GPUs
    assert template["restartPolicy"] in ("RecreateGroupOnPodRestart", "RecreateGroupAfterStart", "None")
    leader = template["leaderTemplate"]["spec"]["containers"][0]
    worker = template["workerTemplate"]["spec"]["containers"][0]  # workerTemplate: the one required template
    for c in (leader, worker):
        assert c["resources"]["limits"]["nvidia.com/gpu"] == "8"
        assert c["command"][:2] == ["/bin/sh", "-c"]
        assert "--data-parallel-address $(LWS_LEADER_ADDRESS)" in c["command"][2]
    assert "--headless" not in leader["command"][2]
    assert "--headless --data-parallel-start-rank $(($(LWS_WORKER_INDEX) * 8))" in worker["command"][2]
    assert (service["kind"], service["spec"]["selector"]["leaderworkerset.sigs.k8s.io/name"]) == (
        "Service", lws["metadata"]["name"])


def test_manifest_for_one_node_and_amd_and_refusal():
    lws, _ = manifest("llama-3.1-8b", "--users", "300", "--seq", "4096", "--gpu", "mi300x", "--max-gpus", "1")
    template = lws["spec"]["leaderWorkerTemplate"]
    assert template["size"] == 1 and lws["spec"]["replicas"] >= 1
    assert template["leaderTemplate"]["spec"]["containers"][0]["resources"]["limits"] == {"amd.com/gpu": "1"}
    r = CliRunner().invoke(main, ["fit", "llama-3.1-8b", "--users", "4", "--seq", "2048", "--gpu", "h100",
                                  "--min-tokens-per-sec", "100000", "--emit", "k8s"])
    assert r.exit_code != 0 and "nothing to write a manifest for" in r.output


def test_tp_pp_across_nodes_runs_on_a_ray_cluster():
    """vLLM docs/serving/distributed_serving.md: a Ray cluster over the nodes, vllm serve on the head with the
    whole TP x PP and --distributed-executor-backend ray."""
    launch = Launch("deepseek-ai/DeepSeek-V3", 8, 2, 1, 0.9, 8192, 64, "auto", None, gpus_per_node=8)
    lines = get_engine("vllm").launch_command(launch).splitlines()
    assert lines[0] == "# node 0 (head)" and lines[1].startswith("ray start --head --port 6379 && vllm serve")
    assert "--tensor-parallel-size 8 --pipeline-parallel-size 2 --distributed-executor-backend ray" in lines[1]
    assert lines[3] == "ray start --address <HEAD_IP>:6379 --block"


def test_sglang_commands_per_node():
    """SGLang's benchmark/deepseek_v3/README.md: the same command on every node with --nnodes, --node-rank and
    --dist-init-addr; data-parallel attention as --attn-dp-size (0.5.22+) with --ep-size."""
    r = search(load_model("deepseek-v3"), Workload(100, 6144, 2048), ["h200"], max_gpus=16, engine="sglang")
    two = next(c for c in r.candidates if c.gpus_per_replica == 16 and c.dp_attention == 16)
    lines = two.command.splitlines()
    assert "--tp-size 16 --attn-dp-size 16 --ep-size 16 --nnodes 2 --node-rank 0 --dist-init-addr <HEAD_IP>:5000" \
        in lines[1]
    assert "--node-rank 1" in lines[3]
    # SGLang's head stays split over the whole TP group under data-parallel attention
    dep = Deployment(load_model("deepseek-v3"), tp=16, dp_attention=16, lm_head_over_tp=True)
    assert dep.sharding.lm_head_tp == 16 and dep.sharding.attn_tp == 1
