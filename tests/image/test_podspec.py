"""tests/image/podspec.py: the rendered manifests become the podman arguments (no root needed)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.image.podspec import Unsupported, container, pod_spec
from tests.image.runtime import configmaps, rendered, workload


@pytest.fixture(scope="module")
def docs() -> list[dict[str, Any]]:
    return rendered()


def _one(docs: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    (found,) = [d for d in docs if d["kind"] == kind]
    return pod_spec(found)


def _pairs(args: list[str], flag: str) -> list[str]:
    return [args[i + 1] for i, a in enumerate(args) if a == flag]


def test_agent_container_follows_the_daemonset(docs: list[dict[str, Any]]) -> None:
    c = container(
        _one(docs, "DaemonSet"),
        "agent",
        configmaps=configmaps(docs),
        projected_dirs={"collector-token": "/tmp/tok"},
        fields={"spec.nodeName": "node-1", "status.hostIP": "10.0.0.1"},
        overrides={"NETMESH_COLLECTOR_URL": "http://x:9100"},
    )
    assert _pairs(c.args, "--user") == ["0:0"]
    assert _pairs(c.args, "--cap-drop") == ["ALL"]
    assert sorted(_pairs(c.args, "--cap-add")) == ["BPF", "PERFMON"]
    assert "--read-only" in c.args and "--privileged" not in c.args
    assert set(_pairs(c.args, "--security-opt")) == {"no-new-privileges", "seccomp=unconfined"}
    mounts = _pairs(c.args, "-v")
    assert "/lib/modules:/lib/modules:ro" in mounts
    assert "/sys/kernel/tracing:/sys/kernel/tracing:ro" in mounts
    assert "/tmp/tok:/var/run/secrets/netmesh:ro" in mounts
    assert _pairs(c.args, "--tmpfs") == ["/tmp:rw,size=256m,mode=1777"]
    assert c.env["NETMESH_NODE_NAME"] == "node-1"
    assert c.env["NETMESH_ADVERTISE_ADDRESS"] == "10.0.0.1"
    assert c.env["NETMESH_COLLECTOR_URL"] == "http://x:9100"  # the override wins
    assert c.env["NETMESH_TEST_DURATION"] == "5"  # from the ConfigMap
    assert c.command == ["netmesh-agent"]


def test_collector_container_follows_the_deployment(docs: list[dict[str, Any]]) -> None:
    c = container(
        _one(docs, "Deployment"),
        "collector",
        configmaps=configmaps(docs),
        projected_dirs={},
        fields={},
        overrides={},
    )
    assert _pairs(c.args, "--user") == ["65532:65532"]
    assert _pairs(c.args, "--cap-drop") == ["ALL"] and not _pairs(c.args, "--cap-add")
    assert _pairs(c.args, "--security-opt") == ["no-new-privileges"]  # RuntimeDefault: no flag
    assert c.env["NETMESH_MODE"] == "kubernetes"
    assert c.command == ["netmesh-collector"]


def test_unknown_fields_are_refused(docs: list[dict[str, Any]]) -> None:
    with pytest.raises(Unsupported, match="Downward API"):
        container(
            _one(docs, "DaemonSet"),
            "agent",
            configmaps=configmaps(docs),
            projected_dirs={"collector-token": "/tmp/tok"},
            fields={},
            overrides={},
        )


def test_pod_endpoint_container_follows_its_daemonset() -> None:
    docs = rendered("pod-network")
    c = container(
        pod_spec(workload(docs, "DaemonSet", "netmesh-pod-endpoint")),
        "pod-endpoint",
        configmaps=configmaps(docs),
        projected_dirs={"collector-token": "/tmp/tok"},
        fields={"spec.nodeName": "node-1", "status.podIP": "10.244.1.254"},
        overrides={"NETMESH_COLLECTOR_URL": "http://x:9100"},
    )
    assert _pairs(c.args, "--user") == ["65534:65534"]  # the pod's securityContext
    assert _pairs(c.args, "--cap-drop") == ["ALL"] and not _pairs(c.args, "--cap-add")
    assert _pairs(c.args, "--security-opt") == ["no-new-privileges"]  # RuntimeDefault: no flag
    assert "--read-only" in c.args and "--privileged" not in c.args
    assert _pairs(c.args, "-v") == ["/tmp/tok:/var/run/secrets/netmesh:ro"]
    assert _pairs(c.args, "--tmpfs") == ["/tmp:rw,size=64m,mode=1777"]
    assert c.env["NETMESH_NETWORK"] == "pod"
    assert c.env["NETMESH_NODE_NAME"] == "node-1"
    assert c.env["NETMESH_ADVERTISE_ADDRESS"] == "10.244.1.254"
    assert c.env["NETMESH_BIND_ADDRESS"] == "0.0.0.0"
    assert c.command == ["netmesh-agent"]
