"""tests/image/podspec.py: the rendered manifests become the podman arguments (no root needed)."""

from __future__ import annotations

import pathlib
import shutil
import subprocess
from typing import Any

import pytest
import yaml

from tests.image.podspec import Unsupported, container, pod_spec

ROOT = pathlib.Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def docs() -> list[dict[str, Any]]:
    if shutil.which("kubectl") is None:
        pytest.fail("kubectl (with kustomize) is not installed; it renders the manifests")
    text = subprocess.run(
        ["kubectl", "kustomize", str(ROOT / "manifests")],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout
    return [d for d in yaml.safe_load_all(text) if d]


def _one(docs: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    (found,) = [d for d in docs if d["kind"] == kind]
    return pod_spec(found)


def _configmaps(docs: list[dict[str, Any]]) -> dict[str, dict[str, str]]:
    return {d["metadata"]["name"]: d["data"] for d in docs if d["kind"] == "ConfigMap"}


def _pairs(args: list[str], flag: str) -> list[str]:
    return [args[i + 1] for i, a in enumerate(args) if a == flag]


def test_agent_container_follows_the_daemonset(docs: list[dict[str, Any]]) -> None:
    c = container(
        _one(docs, "DaemonSet"),
        "agent",
        configmaps=_configmaps(docs),
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
        configmaps=_configmaps(docs),
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
            configmaps=_configmaps(docs),
            projected_dirs={"collector-token": "/tmp/tok"},
            fields={},
            overrides={},
        )
