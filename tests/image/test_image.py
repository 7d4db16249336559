"""The image, run as the manifests declare it, under a real OCI runtime (podman + runc).

`make image-test` builds the image (scripts/build-image.sh) and runs this module with
NETMESH_IMAGE set; without it the module skips. One lab network (no host-process
services: ``Lab.up(services=False)``) with five nodes:

- node-1..3: an agent container each, from the rendered DaemonSet;
- node-4: the collector container, from the rendered Deployment;
- node-5: one more agent container, but under the runtime's *default* seccomp profile
  (the one thing changed from the DaemonSet), to check the probe's failure reason.

Every container's user, capabilities, read-only root, volumes (+ readOnly), seccomp and
environment come from ``kubectl kustomize manifests`` (tests/image/podspec.py). What a
lab is not -- a cluster -- is the explicit ``*_overrides`` below. Containers, the image
test's own namespaces and links are removed even on failure; the image stays (cache).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from lab.faults import Fault
from lab.lab import Lab, get_json
from lab.netns import leftovers
from lab.settings import LabSettings
from lab.topology import LabNode
from tests.helpers import wait_for
from tests.image.podspec import container, pod_spec
from tests.image.runtime import (
    IMAGE,
    ROOT,
    Containers,
    cluster_stand_ins,
    configmaps,
    needs_image,
    podman,
    proc_status,
    quiet,
    rendered,
    require_runtime,
    share_token,
    start_collector,
    workload,
)

PREFIX = f"nmi{os.getpid() % 10000}"
SUBNET = f"10.{150 + os.getpid() % 10}.{os.getpid() // 10 % 250}.0/24"
AGENTS = 3

pytestmark = needs_image


@dataclass
class Mesh:
    lab: Lab
    collector: LabNode
    agents: list[LabNode]
    default_seccomp: LabNode
    containers: Containers  # keyed by node name
    collector_url: str
    results: dict[str, Any]  # numbers for bench-results/image.json

    def pid(self, node: LabNode) -> int:
        return self.containers.pid(node.name)

    def report(self, node: LabNode) -> dict[str, Any]:
        return dict(get_json(f"http://{node.address}:9101/api/v1/report"))

    def verdict(self) -> dict[str, Any]:
        return dict(get_json(self.collector_url + "/api/v1/rca", timeout=5))


@pytest.fixture(scope="module")
def mesh(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Mesh]:
    require_runtime()
    docs = rendered()
    agent_pod = pod_spec(workload(docs, "DaemonSet", "netmesh-agent"))

    state = tmp_path_factory.mktemp("lab")
    # No lab DNS server: up(services=False) starts no process; the agents' DNS check is
    # off below (the manifests' cluster name resolves nothing in a lab). No lab Service
    # rules (they lead to a collector on the lab's bridge): the Service check connects to
    # the collector container.
    settings = LabSettings(
        nodes=AGENTS + 2,
        prefix=PREFIX,
        subnet=SUBNET,
        state_dir=str(state),
        dns_server=False,
        service_check=False,
    )
    lab = Lab(settings)
    *agents, collector_node, seccomp_node = lab.topo.nodes
    containers = Containers(PREFIX)
    results: dict[str, Any] = {"image": IMAGE}
    try:
        lab.up(services=False)
        # The lab's token, readable by the collector's uid 65532 and the agents' root.
        token_dir = share_token(lab, tmp_path_factory.mktemp("token"))
        url = start_collector(
            containers,
            collector_node,
            docs,
            token_dir,
            {"NETMESH_REPORT_TTL": "30", "NETMESH_STALE_AFTER": "15"},
        )
        for node in [*agents, seccomp_node]:
            # The lab's own agent settings (short tests, all-out budget), minus its paths.
            overrides = {
                k: v for k, v in lab.agent_env(node).items() if k != "NETMESH_AUTH_TOKEN_FILE"
            }
            overrides["NETMESH_COLLECTOR_URL"] = url
            overrides["NETMESH_PROBE_MODE"] = "tracepoint"  # no kprobes on this kernel
            overrides.update(cluster_stand_ins(collector_node))  # no cluster DNS, Service
            pod = agent_pod
            if node is seccomp_node:
                # Kept out of the mesh; only its probe reason counts.
                overrides["NETMESH_COLLECTOR_URL"] = f"http://{node.address}:1"
                pod = runtime_default(agent_pod)
            a = container(
                pod,
                "agent",
                configmaps=configmaps(docs),
                projected_dirs={"collector-token": str(token_dir)},
                fields={"spec.nodeName": node.name, "status.hostIP": node.address},
                overrides=overrides,
            )
            containers.run(node.name, node.netns, a)
        yield Mesh(lab, collector_node, agents, seccomp_node, containers, url, results)
    finally:
        containers.print_logs()
        containers.remove()
        lab.down()
        write_results(results)
    ns, links = leftovers(PREFIX)
    assert not ns and not links, f"left {ns} {links}"
    left = containers.ids()
    assert not left, f"left containers {left}"


def write_results(results: dict[str, Any]) -> None:
    """The image's size and layers plus what the tests measured -> bench-results/image.json."""
    info = json.loads(podman("image", "inspect", IMAGE, check=False) or "[{}]")[0]
    layers = podman(
        "history", "--no-trunc", "--format", "{{.Size}}\t{{.CreatedBy}}", IMAGE, check=False
    )
    results["image_bytes"] = info.get("Size")
    results["layers"] = [line.split("\t", 1) for line in layers.splitlines() if line]
    results["date"] = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())
    out = ROOT / "bench-results"
    out.mkdir(exist_ok=True)
    (out / "image.json").write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps({k: v for k, v in results.items() if k != "layers"}, indent=2))


def runtime_default(pod: dict[str, Any]) -> dict[str, Any]:
    """The pod with RuntimeDefault seccomp everywhere (the runtime's default profile)."""
    out = json.loads(json.dumps(pod))
    out["securityContext"]["seccompProfile"] = {"type": "RuntimeDefault"}
    for c in out["containers"]:
        c["securityContext"].pop("seccompProfile", None)
    return out


def test_collector_runs_as_declared(mesh: Mesh) -> None:
    status = proc_status(mesh.pid(mesh.collector))
    assert status["Uid"].split()[:2] == ["65532", "65532"]
    assert int(status["CapEff"], 16) == 0
    assert status["NoNewPrivs"] == "1"
    info = mesh.containers.inspect(mesh.collector.name)
    assert info["HostConfig"]["ReadonlyRootfs"] is True


def test_every_agent_probe_is_up(mesh: Mesh) -> None:
    def all_up() -> list[dict[str, Any]] | None:
        reports = [mesh.report(n) for n in mesh.agents]
        probes = [r.get("probe") or {} for r in reports]
        # both programs loaded: BCC's compiler memory is freed only after the second one
        drops = [r.get("drops") or {} for r in reports]
        loaded = all(p.get("up") == 1 for p in probes) and all(d.get("up") == 1 for d in drops)
        return probes if loaded else None

    probes = wait_for(quiet(all_up), 180, 1.0, "every agent container's probes up")
    assert {p["mode"] for p in probes} == {"tracepoint"}
    rss = []
    for node in mesh.agents:
        status = proc_status(mesh.pid(node))
        assert status["Uid"].split()[0] == "0"
        assert int(status["CapEff"], 16) == (1 << 38 | 1 << 39)  # PERFMON, BPF
        rss.append(int(status["VmRSS"].split()[0]) / 1024)
    print(f"probe up in {len(probes)}/{len(mesh.agents)} agent containers; agent RSS MiB: {rss}")
    mesh.results.update(probe_up=f"{len(probes)}/{len(mesh.agents)}", agent_rss_mib=rss)
    # The goal (<= 80 MB, issue 17) is measured and reported (BENCHMARKS.md): 77-80 MiB with
    # both programs loaded is 81-84 MB, at or over it. This bound catches what would be a
    # regression, e.g. BCC's compiler staying resident (165-172 MiB while it compiles).
    assert max(rss) <= 96, rss


def test_default_seccomp_reason_names_seccomp(mesh: Mesh) -> None:
    def down() -> dict[str, Any] | None:
        probe = mesh.report(mesh.default_seccomp).get("probe") or {}
        return probe if probe.get("reason") else None

    probe = wait_for(quiet(down), 120, 1.0, "the default-seccomp agent's probe reason")
    print(f"probe under the runtime's default seccomp profile: {probe['reason']}")
    mesh.results["default_seccomp_reason"] = probe["reason"]
    assert probe["up"] == 0
    assert "denied by seccomp" in probe["reason"] and "seccompProfile" in probe["reason"]


def test_tests_run_between_containers_and_a_fault_is_named(mesh: Mesh) -> None:
    n = len(mesh.agents)
    full = n * (n - 1) * 3  # tcp, udp and the light tier per ordered pair
    sweep = mesh.lab.settings.sweep_seconds()
    body = wait_for(
        quiet(lambda: (b := mesh.verdict())["transactions"] >= full and b),
        4 * sweep + 60,
        0.5,
        "every path between the agent containers tested",
    )
    clean = quiet(lambda: mesh.verdict()["verdict"] == "ok")
    wait_for(clean, 2 * sweep + 30, 0.5, "a clean verdict")
    target = mesh.agents[1]
    mesh.lab.inject(target.name, Fault(loss=0.2))
    start = time.monotonic()
    body = wait_for(
        quiet(lambda: (b := mesh.verdict())["verdict"] == "suspects" and b),
        3 * sweep + 30,
        0.5,
        "a suspect",
    )
    took = time.monotonic() - start
    print(f"20% loss into {target.name}: named after {took:.1f}s")
    mesh.results.update(fault_named_after_s=round(took, 1), paths_tested_before_fault=full)
    assert body["suspects"][0]["node"] == target.name, body["summary"]
