"""Kubernetes manifests for a `kvplan fit` candidate (a view: the launch lines are the engine's).

A LeaderWorkerSet (`leaderworkerset.x-k8s.io/v1`, kubernetes-sigs/lws api/leaderworkerset/v1/
leaderworkerset_types.go): `spec.replicas` groups, each of `spec.leaderWorkerTemplate.size` pods (the leader
and size - 1 workers), one pod per node of a replica with the node's GPUs; LWS gives every container
LWS_LEADER_ADDRESS, LWS_GROUP_SIZE and LWS_WORKER_INDEX (0 for the leader), which Kubernetes expands in
`command` as $(NAME). A Service selects the leaders (vLLM's docs/deployment/frameworks/lws.md).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from kvplan.engines import get_engine

if TYPE_CHECKING:
    from kvplan.fit import Candidate

def leader_worker_set(c: Candidate) -> list[dict[str, Any]]:
    """[the LeaderWorkerSet, its leader Service] for candidate `c`."""
    engine = get_engine(c.engine)
    launch = c.launch()
    name = "kvplan-" + re.sub(r"[^a-z0-9-]+", "-", c.model_id.split("/")[-1].lower()).strip("-")[:40]
    gpus = min(c.gpus_per_replica, c.gpu.node.gpus)
    resource = "amd.com/gpu" if c.gpu.vendor == "AMD" else "nvidia.com/gpu"
    image, port = engine.container_image or "<image>", engine.serve_port

    def container(role: str, node: int | str) -> dict[str, Any]:
        command = engine.node_command(launch, node, "$(LWS_LEADER_ADDRESS)").split("  # ")[0]
        out: dict[str, Any] = {"name": role, "image": image, "command": ["/bin/sh", "-c", command],
                               "resources": {"limits": {resource: str(gpus)}}}
        if role == "leader":
            out["ports"] = [{"containerPort": port}]
        return out

    lws = {
        "apiVersion": "leaderworkerset.x-k8s.io/v1", "kind": "LeaderWorkerSet",
        "metadata": {"name": name},
        "spec": {
            "replicas": c.replicas,
            "leaderWorkerTemplate": {
                "size": launch.nodes,
                "restartPolicy": "RecreateGroupOnPodRestart",
                "leaderTemplate": {"metadata": {"labels": {"role": "leader"}},
                                   "spec": {"containers": [container("leader", 0)]}},
                "workerTemplate": {"spec": {"containers": [container("worker", "$(LWS_WORKER_INDEX)")]}},
            },
        },
    }
    service = {
        "apiVersion": "v1", "kind": "Service", "metadata": {"name": f"{name}-leader"},
        "spec": {"type": "ClusterIP", "ports": [{"name": "http", "port": port, "targetPort": port}],
                 "selector": {"leaderworkerset.sigs.k8s.io/name": name, "role": "leader"}},
    }
    return [lws, service]


def to_yaml(documents: list[dict[str, Any]]) -> str:
    import yaml

    return yaml.safe_dump_all(documents, sort_keys=False, width=1000)
