"""Shared by the tests/image modules: the image under podman + runc, in lab namespaces.

- ``podman`` with this VM's runtime settings (runc, cgroupfs; crun refuses its hybrid
  cgroups) and ``Containers``: one test module's containers, all carrying its label,
  each run in a lab namespace (``--network ns:/run/netns/NAME``), removed even on failure;
- ``rendered``: ``kubectl kustomize manifests``, optionally with components added by a
  throw-away overlay (as a user's kustomization adds them);
- ``start_collector``: the collector container from the rendered Deployment, with the
  lab's token (a lab is not a cluster: static membership, the lab's shared token).

The translation of a pod template into podman arguments is tests/image/podspec.py.
"""

from __future__ import annotations

import json
import os
import pathlib
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

import pytest
import yaml

from lab.lab import Lab, get_json
from lab.topology import LabNode
from tests.helpers import wait_for
from tests.image.podspec import Container, container, pod_spec

T = TypeVar("T")
IMAGE = os.environ.get("NETMESH_IMAGE", "")
ROOT = pathlib.Path(__file__).resolve().parents[2]
MANIFESTS = ROOT / "manifests"
PODMAN = ["podman", "--runtime", "runc", "--cgroup-manager", "cgroupfs"]
# This VM: the default ulimits exceed its hard limits.
ULIMITS = ["--ulimit", "nofile=1024:1024", "--ulimit", "nproc=1000:1000"]
TOKEN_DIR = "/var/run/secrets/netmesh"
COLLECTOR_PORT = 9100  # the manifests' NETMESH_PORT

needs_image = pytest.mark.skipif(
    not IMAGE, reason="NETMESH_IMAGE unset: run `make image-test` (builds the image first)"
)


def podman(*args: str, check: bool = True, timeout: float = 120, both: bool = False) -> str:
    proc = subprocess.run(
        [*PODMAN, *args], capture_output=True, text=True, timeout=timeout, check=False
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"podman {' '.join(args)} failed: {proc.stderr.strip()}")
    return proc.stdout + proc.stderr if both else proc.stdout


def require_runtime() -> None:
    """Skip without root or podman; fail when the image to test is not there."""
    if os.geteuid() != 0 or shutil.which("podman") is None:
        pytest.skip("needs root and podman (scripts/install-deps.sh installs it)")
    podman("image", "exists", IMAGE)


def _kustomize(path: pathlib.Path) -> str:
    if shutil.which("kubectl") is None:
        pytest.fail("kubectl (with kustomize) is not installed; it renders the manifests")
    return subprocess.run(
        ["kubectl", "kustomize", str(path)], capture_output=True, text=True, check=True, timeout=60
    ).stdout


def rendered(*components: str) -> list[dict[str, Any]]:
    """The default install's objects, plus those of ``components`` (manifests/components)."""
    if not components:
        text = _kustomize(MANIFESTS)
    else:
        with tempfile.TemporaryDirectory(prefix="netmesh-overlay-") as tmp:
            rel = os.path.relpath(MANIFESTS, tmp)
            lines = ["apiVersion: kustomize.config.k8s.io/v1beta1", "kind: Kustomization"]
            lines += ["resources:", f"  - {rel}", "components:"]
            lines += [f"  - {rel}/components/{c}" for c in components]
            (pathlib.Path(tmp) / "kustomization.yaml").write_text("\n".join(lines) + "\n")
            text = _kustomize(pathlib.Path(tmp))
    return [d for d in yaml.safe_load_all(text) if d]


def workload(docs: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    (found,) = [d for d in docs if d["kind"] == kind and d["metadata"]["name"] == name]
    return found


def configmaps(docs: list[dict[str, Any]]) -> dict[str, dict[str, str]]:
    return {d["metadata"]["name"]: d["data"] for d in docs if d["kind"] == "ConfigMap"}


def quiet(check: Callable[[], T | None]) -> Callable[[], T | None]:
    """``check`` that reads "not yet" from a connection refused/reset (a container starting)."""

    def run() -> T | None:
        try:
            return check()
        except (OSError, ValueError):  # URLError is an OSError
            return None

    return run


def proc_status(pid: int) -> dict[str, str]:
    text = pathlib.Path(f"/proc/{pid}/status").read_text()
    return {k: v.strip() for k, _, v in (line.partition(":") for line in text.splitlines())}


@dataclass
class Containers:
    """One test module's containers: named ``<prefix>-<key>``, labelled with the prefix."""

    prefix: str
    names: dict[str, str] = field(default_factory=dict)  # key (a node name ...) -> container

    @property
    def label(self) -> str:
        return f"netmesh-image-test={self.prefix}"

    def run(self, key: str, netns: str, c: Container, *extra: str) -> str:
        """Start ``c`` detached in network namespace ``netns``; its container name."""
        name = self.names[key] = f"{self.prefix}-{key.replace('/', '-')}"
        network = f"ns:/run/netns/{netns}"
        podman(
            "run", "-d", "--label", self.label, *ULIMITS, "--name", name, "--network", network,
            *extra, *c.args, IMAGE, *c.command,
        )  # fmt: skip
        return name

    def pid(self, key: str) -> int:
        """The container's first process, as the host sees it."""
        return int(podman("inspect", "-f", "{{.State.Pid}}", self.names[key]).strip())

    def inspect(self, key: str) -> dict[str, Any]:
        return dict(json.loads(podman("inspect", self.names[key]))[0])

    def print_logs(self, lines: int = 15) -> None:
        for name in self.names.values():
            logs = podman("logs", "--tail", str(lines), name, check=False, timeout=20, both=True)
            if logs:
                print(f"--- {name} (last lines)\n{logs}")

    def ids(self) -> list[str]:
        return podman("ps", "-a", "-q", "--filter", f"label={self.label}", check=False).split()

    def remove(self, attempts: int = 5) -> None:
        """Remove them all; retried, since podman can refuse one still stopping."""
        for _ in range(attempts):
            ids = self.ids()
            if not ids:
                return
            out = podman("rm", "-f", "-t", "2", *ids, check=False, both=True)
            print(f"podman rm {' '.join(ids)}: {out.strip()}")


def share_token(lab: Lab, directory: pathlib.Path) -> pathlib.Path:
    """The lab's token in ``directory`` (the mount's root), readable by every container's
    user: the collector's uid 65532, the agents' capability-less root, the pod endpoints'
    65534 (as a projected token is)."""
    directory.chmod(0o755)  # mktemp made it 0700
    shutil.copy(lab.token_path, directory / "token")
    (directory / "token").chmod(0o444)
    return directory


def cluster_stand_ins(collector: LabNode) -> dict[str, str]:
    """Environment for the agents and pod endpoints where a lab is not a cluster: no cluster
    DNS (the manifests' name would go to the host's resolver), and the collector's Service
    (the manifests' Service check target) is the collector container's address."""
    return {
        "NETMESH_DNS_NAME": "",
        "NETMESH_SERVICE_TARGET": f"{collector.address}:{COLLECTOR_PORT}",
    }


def start_collector(
    containers: Containers,
    node: LabNode,
    docs: list[dict[str, Any]],
    token_dir: pathlib.Path,
    extra: Mapping[str, str] | None = None,
) -> str:
    """The rendered Deployment's collector container in ``node``'s namespace; its URL once
    it answers. A lab is not a cluster: static membership, the lab's token (``extra``:
    more environment for the lab)."""
    overrides = {
        "NETMESH_MODE": "static",
        "NETMESH_AUTH": "auto",
        "NETMESH_AUTH_TOKEN_FILE": f"{TOKEN_DIR}/token",
        "NETMESH_BIND_ADDRESS": node.address,
        **(extra or {}),
    }
    c = container(
        pod_spec(workload(docs, "Deployment", "netmesh-collector")),
        "collector",
        configmaps=configmaps(docs),
        projected_dirs={},
        fields={},
        overrides=overrides,
    )
    containers.run(node.name, node.netns, c, "-v", f"{token_dir}:{TOKEN_DIR}:ro")
    url = f"http://{node.address}:{COLLECTOR_PORT}"
    wait_for(quiet(lambda: get_json(url + "/healthz")), 60, 0.3, "the collector container")
    return url
