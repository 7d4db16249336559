"""checkov (a security scanner from PyPI) over the rendered manifests and the Dockerfile.

checkov pins libraries the project also uses, so it lives in a venv of its
own, ``.venv/checkov``, made by ``scripts/install-deps.sh --checkov`` (the test
runs it when the venv is missing; about 20 s once).

Every finding must be listed in ACCEPTED with the reason it is accepted, and
every accepted finding must still occur (no stale acceptances).
"""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
from typing import Any

import pytest

from tests.manifests.conftest import ROOT, Renderer

CHECKOV_VENV = pathlib.Path(os.environ.get("NETMESH_CHECKOV_VENV", ROOT / ".venv" / "checkov"))
AGENT = "DaemonSet.netmesh.netmesh-agent"
COLLECTOR = "Deployment.netmesh.netmesh-collector"

IMAGE = {
    ("CKV_K8S_43", AGENT): "image pinned by version tag; the image is built by the user "
    "(no public digest to pin); set a digest with `kustomize edit set image`",
    ("CKV_K8S_43", COLLECTOR): "same as the agent: pinned by version tag",
    ("CKV_K8S_15", AGENT): "IfNotPresent on a pinned tag: a network-validation agent must "
    "restart on a node even while the registry is unreachable",
    ("CKV_K8S_15", COLLECTOR): "IfNotPresent on a pinned tag, as for the agent",
}
AGENT_BY_DESIGN = {
    ("CKV_K8S_19", AGENT): "hostNetwork is the point: the agent measures the node's own paths",
    ("CKV_K8S_11", AGENT): "no CPU limit on purpose: CFS throttling would cap iperf3 and "
    "distort the bandwidth it measures (CPU request and memory limit are set)",
    ("CKV_K8S_23", AGENT): "root (uid 0) with all capabilities dropped except BPF and PERFMON: "
    "tracefs/debugfs are root-only (0700) and non-root containers get no effective "
    "capabilities under Kubernetes",
    ("CKV_K8S_40", AGENT): "uid 0 on purpose, see CKV_K8S_23",
    ("CKV_K8S_25", AGENT): "CAP_BPF + CAP_PERFMON: the smallest set that loads the eBPF probe, "
    "measured by test_least_privilege.py (fewer: probe down)",
    ("CKV_K8S_38", COLLECTOR): "the collector is the one component that needs the API "
    "(read-only list/watch of pods and nodes); the agent has no token",
}
NO_POLICY = {
    ("CKV2_K8S_6", "Pod.netmesh.netmesh-collector"): "NetworkPolicies are the optional "
    "components/network-policy (CNI-dependent, node ranges to be narrowed per cluster)",
    ("CKV2_K8S_6", "Pod.netmesh.netmesh-agent"): "same: components/network-policy",
}
# (CKV_K8S_31 reads only the pod's seccompProfile, RuntimeDefault; the agent *container*'s
# Unconfined is checked by tests/manifests/test_policy.py and justified in the README.)
PRIVILEGED = {
    ("CKV_K8S_16", AGENT): "the documented fallback for kernels < 5.8 (no CAP_BPF/PERFMON)",
    ("CKV_K8S_20", AGENT): "privileged implies privilege escalation (API validation)",
    ("CKV_K8S_31", AGENT): "Unconfined seccomp: old runtimes' default profiles deny bpf()",
    ("CKV_K8S_37", AGENT): "privileged: capability lists do not apply",
    ("CKV_K8S_28", AGENT): "privileged: capability lists do not apply",
}

ACCEPTED: dict[str, dict[tuple[str, str], str]] = {
    "default": {**IMAGE, **AGENT_BY_DESIGN, **NO_POLICY},
    "full": {**IMAGE, **AGENT_BY_DESIGN},
    "privileged-agent": {
        **IMAGE,
        **{k: v for k, v in AGENT_BY_DESIGN.items() if k[0] != "CKV_K8S_25"},
        **NO_POLICY,
        **PRIVILEGED,
    },
}


@pytest.fixture(scope="module")
def checkov() -> pathlib.Path:
    exe = CHECKOV_VENV / "bin" / "checkov"
    if not exe.exists():
        proc = subprocess.run(
            ["bash", str(ROOT / "scripts" / "install-deps.sh"), "--checkov"],
            env={**os.environ, "NETMESH_CHECKOV_VENV": str(CHECKOV_VENV)},
            capture_output=True,
            text=True,
            check=False,
            timeout=600,
        )
        assert proc.returncode == 0 and exe.exists(), f"cannot install checkov:\n{proc.stderr}"
    return exe


def _scan(checkov: pathlib.Path, path: pathlib.Path, framework: str) -> list[dict[str, Any]]:
    proc = subprocess.run(
        [str(checkov), "-f", str(path), "--framework", framework, "-o", "json", "--quiet"],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
        cwd=path.parent,
    )
    assert proc.returncode in (0, 1), proc.stderr
    report = json.loads(proc.stdout)
    reports = report if isinstance(report, list) else [report]
    failed: list[dict[str, Any]] = []
    for r in reports:
        if isinstance(r, dict):
            failed.extend(r.get("results", {}).get("failed_checks", []))
    return failed


def _resource(resource: str) -> str:
    """checkov names pods ``Pod.<ns>.<name>.<label>-<value>...``: keep kind.ns.name."""
    return ".".join(resource.split(".")[:3])


@pytest.mark.parametrize("name", sorted(ACCEPTED))
def test_checkov_findings_are_all_accepted(
    name: str, renderer: Renderer, checkov: pathlib.Path, tmp_path: pathlib.Path
) -> None:
    path = tmp_path / f"{name}.yaml"
    path.write_text(renderer(name).text)
    found = {(f["check_id"], _resource(f["resource"])) for f in _scan(checkov, path, "kubernetes")}
    accepted = ACCEPTED[name]
    unexpected = sorted(found - accepted.keys())
    assert not unexpected, f"checkov findings in {name} not accepted: {unexpected}"
    stale = sorted(accepted.keys() - found)
    assert not stale, f"accepted findings that no longer occur in {name}: {stale}"


def test_checkov_passes_the_dockerfile(checkov: pathlib.Path) -> None:
    failed = _scan(checkov, ROOT / "Dockerfile", "dockerfile")
    assert not failed, [(f["check_id"], f["check_name"]) for f in failed]
