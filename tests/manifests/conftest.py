"""Render the kustomize manifests once per session: the default install and each component.

A render is ``kubectl kustomize`` of a throw-away overlay (in a temporary
directory) that points at ``manifests/`` and adds components, exactly as a
user's own kustomization would.
"""

from __future__ import annotations

import os
import pathlib
import shutil
import subprocess
import sys
from dataclasses import dataclass
from typing import Any

import pytest
import yaml

ROOT = pathlib.Path(__file__).resolve().parents[2]
MANIFESTS = ROOT / "manifests"
COMPONENTS = MANIFESTS / "components"

sys.path.insert(0, str(ROOT / "scripts"))
import gen_manifests  # noqa: E402

# name of a render -> components it adds to the default install
RENDERS: dict[str, tuple[str, ...]] = {
    "default": (),
    "prometheus-operator": ("prometheus-operator",),
    "network-policy": ("network-policy",),
    "agent-podmonitor": ("agent-podmonitor",),
    "privileged-agent": ("privileged-agent",),
    "pod-network": ("pod-network",),
    "pod-network-policy": ("pod-network", "network-policy"),
    # what the README recommends with kube-prometheus-stack and a policy-enforcing CNI
    "full": ("prometheus-operator", "network-policy"),
}


def dashboards_missing() -> str | None:
    """Why the prometheus-operator component cannot render yet (dashboards/ incomplete)."""
    try:
        gen_manifests.render()
    except gen_manifests.MissingSources as exc:
        return f"dashboards/ is incomplete ({exc}); the generated objects cannot exist yet"
    return None


@dataclass
class Render:
    name: str
    text: str
    docs: list[dict[str, Any]]

    def kind(self, kind: str) -> list[dict[str, Any]]:
        return [d for d in self.docs if d["kind"] == kind]

    def one(self, kind: str, name: str) -> dict[str, Any]:
        found = [d for d in self.kind(kind) if d["metadata"]["name"] == name]
        assert len(found) == 1, f"{self.name}: expected one {kind}/{name}, found {len(found)}"
        return found[0]

    def configmap_data(self, prefix: str) -> dict[str, str]:
        found = [d for d in self.kind("ConfigMap") if d["metadata"]["name"].startswith(prefix)]
        assert len(found) == 1, f"{self.name}: expected one ConfigMap {prefix}-<hash>"
        return dict(found[0]["data"])


def kustomize(path: pathlib.Path) -> str:
    if shutil.which("kubectl") is None:
        pytest.fail("kubectl (with kustomize) is not installed; it renders the manifests")
    proc = subprocess.run(
        ["kubectl", "kustomize", str(path)],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert proc.returncode == 0, f"kubectl kustomize {path} failed:\n{proc.stderr}"
    return proc.stdout


def render(name: str, workdir: pathlib.Path) -> Render:
    components = RENDERS[name]
    if "prometheus-operator" in components:
        reason = dashboards_missing()
        if reason:
            pytest.skip(reason)
    if not components:
        text = kustomize(MANIFESTS)
    else:
        overlay = workdir / name
        overlay.mkdir()
        rel = os.path.relpath(MANIFESTS, overlay)
        lines = [
            "apiVersion: kustomize.config.k8s.io/v1beta1",
            "kind: Kustomization",
            "resources:",
            f"  - {rel}",
            "components:",
            *(f"  - {rel}/components/{c}" for c in components),
        ]
        (overlay / "kustomization.yaml").write_text("\n".join(lines) + "\n")
        text = kustomize(overlay)
    docs = [d for d in yaml.safe_load_all(text) if d]
    return Render(name=name, text=text, docs=docs)


class Renderer:
    """Renders on demand, each overlay once per session."""

    def __init__(self, workdir: pathlib.Path) -> None:
        self.workdir = workdir
        self.done: dict[str, Render] = {}

    def __call__(self, name: str) -> Render:
        if name not in self.done:
            self.done[name] = render(name, self.workdir)
        return self.done[name]


@pytest.fixture(scope="session")
def renderer(tmp_path_factory: pytest.TempPathFactory) -> Renderer:
    return Renderer(tmp_path_factory.mktemp("overlays"))


@pytest.fixture(scope="session")
def default(renderer: Renderer) -> Render:
    return renderer("default")


@pytest.fixture(params=sorted(RENDERS))
def any_render(request: pytest.FixtureRequest, renderer: Renderer) -> Render:
    return renderer(str(request.param))


def containers(pod_spec: dict[str, Any]) -> list[dict[str, Any]]:
    return [*pod_spec.get("initContainers", []), *pod_spec["containers"]]


def workloads(r: Render) -> list[dict[str, Any]]:
    kinds = ("DaemonSet", "Deployment", "StatefulSet", "Job", "CronJob", "Pod")
    return [d for d in r.docs if d["kind"] in kinds]
