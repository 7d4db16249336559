"""The Service check and DNS from the pod network, end to end on the lab (root).

Every node namespace translates the lab's Service (a virtual IP) to the collector, as
kube-proxy does (lab/service.py); every host agent and every pod-network endpoint connects to
it and resolves the lab's name through the lab's dnsmasq. Faults:

- ``--service down`` on one node drops its own and its pods' connects before translation:
  the collector names the Service on that node, for both networks, and nothing else;
- ``--service pod-down`` drops only its pods': named "from the pod network";
- ``--dns pod-down`` drops only the DNS answers to its pods: DNS from the pod network on that
  node, while its host DNS keeps answering.

The page shows the finding (headless Chromium); after clear it goes. One lab for the module
(3 nodes, a pod each plus the pod-network endpoints; own prefix, subnet in 10.20-29, pod CIDR
in 172.24-27).
"""

from __future__ import annotations

import os
import pathlib
import time
import urllib.request
from collections.abc import Iterator
from html.parser import HTMLParser
from typing import Any

import pytest

from lab.faults import Fault
from lab.lab import Lab, get_json
from tests.e2e.labs import running_lab
from tests.e2e.page import CHROMIUM, chromium
from tests.helpers import wait_for

PID = os.getpid()
PREFIX = f"nmv{PID % 10000}"
SUBNET = f"10.{20 + PID % 10}.{PID // 10 % 250}.0/24"
POD_CIDR = f"172.{24 + PID % 4}.{PID // 4 % 16 * 16}.0/20"
NAMED_WITHIN = 30.0  # the goal for DNS; the time taken is printed


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    with running_lab(
        tmp_path_factory.mktemp("lab"),
        nodes=3,
        pods=1,
        prefix=PREFIX,
        subnet=SUBNET,
        pod_cidr=POD_CIDR,
        traffic=False,
        probe_mode="off",
        bandwidth_budget=0.05,
    ) as lab:
        yield lab


def rca(lab: Lab) -> dict[str, Any]:
    body: dict[str, Any] = get_json(lab.collector_url + "/api/v1/rca")
    return body


def check_findings(lab: Lab) -> list[tuple[str, str | None, str, tuple[str, ...]]]:
    """(layer, node, kind, networks) of every DNS and Service finding."""
    body = rca(lab)
    return [
        (f["layer"], f["node"], f["kind"], tuple(f["networks"]))
        for key in ("dns_findings", "service_findings")
        for f in body.get(key, [])
    ]


def _metrics(lab: Lab) -> str:
    with urllib.request.urlopen(lab.collector_url + "/metrics", timeout=5) as resp:
        return str(resp.read().decode())


def _ok_counts(text: str, family: str) -> dict[tuple[str, str], float]:
    """(node, network) → the family's result="ok" count."""
    out = {}
    for line in text.splitlines():
        if line.startswith(family + "{") and 'result="ok"' in line:
            node = line.split('node="')[1].split('"')[0]
            network = line.split('network="')[1].split('"')[0]
            out[(node, network)] = float(line.rsplit(" ", 1)[1])
    return out


def everyone_checks(lab: Lab) -> dict[str, Any] | None:
    """Once every host agent and pod endpoint has 3 good connects and 3 answered lookups."""
    text = _metrics(lab)
    want = {(n.name, net) for n in lab.topo.nodes for net in ("host", "pod")}
    counts = {
        family: _ok_counts(text, family)
        for family in ("netmesh_service_connects_total", "netmesh_dns_lookups_total")
    }
    for got in counts.values():
        if set(got) != want or min(got.values()) < 3:
            return None
    return counts


@pytest.fixture
def checked(lab: Lab) -> dict[str, Any]:
    counts: dict[str, Any] = wait_for(
        lambda: everyone_checks(lab), 60, 0.5, "every endpoint's Service and DNS checks"
    )
    return counts


def test_every_endpoint_reaches_the_service_and_nothing_is_named(
    lab: Lab, checked: dict[str, Any]
) -> None:
    assert check_findings(lab) == []
    text = _metrics(lab)
    target = f"{SUBNET.rsplit('.', 1)[0]}.254:{lab.settings.collector_port}"
    for node in lab.topo.nodes:
        for network in ("host", "pod"):
            up = f'netmesh_agent_service_up{{node="{node.name}",network="{network}",'
            assert f'{up}target="{target}",reason=""}} 1' in text


class _Findings(HTMLParser):
    """The verdict box's findings, and the agents table's DNS/Service cells by node."""

    def __init__(self) -> None:
        super().__init__()
        self.items: list[tuple[str | None, str | None]] = []
        self.checks: dict[tuple[str, str], str] = {}  # (node, dns|service) → the cell's class
        self._row: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "li" and a.get("data-finding"):
            self.items.append((a.get("data-finding"), a.get("data-layer")))
        if tag == "tr":
            self._row = a.get("data-node")
        if tag == "td" and a.get("data-check") and self._row:
            self.checks[(self._row, str(a["data-check"]))] = str(a.get("class"))


def named_after_fault(lab: Lab, node: str, fault: Fault) -> tuple[list[Any], float]:
    """Inject, wait for the first DNS/Service finding; (the findings, seconds it took)."""
    started = time.monotonic()
    lab.inject(node, fault)
    named = wait_for(lambda: check_findings(lab), NAMED_WITHIN, 0.25, "a DNS/Service finding")
    return named, time.monotonic() - started


def cleared(lab: Lab, node: str) -> None:
    lab.clear(node)
    started = time.monotonic()
    wait_for(lambda: check_findings(lab) == [] or None, 30, 0.25, "no finding after clear")
    print(f"  finding gone {time.monotonic() - started:.1f} s after clear")


def test_service_down_on_one_node_is_named_as_the_service_on_that_node(
    lab: Lab, checked: dict[str, Any], tmp_path: pathlib.Path
) -> None:
    faulty = lab.topo.nodes[1].name
    try:
        named, took = named_after_fault(lab, faulty, Fault(service_down=True))
        print(f"Service down on {faulty}: named {named} after {took:.1f} s")
        # Its host agent and its pod endpoint fail alike: both windows must fill first.
        named = wait_for(
            lambda: [f for f in check_findings(lab) if f[3] == ("host", "pod")] or None,
            NAMED_WITHIN,
            0.25,
            "the finding for both networks",
        )
        assert named == [("service", faulty, "failing", ("host", "pod"))]
        assert check_findings(lab) == named  # nothing else: no DNS finding, no other node
        body = rca(lab)
        finding = body["service_findings"][0]
        assert "timeout" in finding["summary"], finding
        assert finding["evidence"]["address"].endswith(".254"), finding
        assert body["suspects"] == []  # no path fails: no node suspect
        if os.path.exists(CHROMIUM):
            proc = chromium(tmp_path, "--dump-dom", lab.collector_url + "/")
            assert proc.returncode == 0, proc.stderr[-2000:]
            dom = _Findings()
            dom.feed(proc.stdout)
            assert dom.items == [(faulty, "service")]
            assert "verdict-findings" in proc.stdout  # warns, whatever the path verdict
            assert "the Service does not" in proc.stdout
            # the agents table: the faulty node's Service cell is red, the others' green
            services = {n: c for (n, k), c in dom.checks.items() if k == "service"}
            assert services == {
                n.name: "check down" if n.name == faulty else "check up" for n in lab.topo.nodes
            }, services
    finally:
        cleared(lab, faulty)


def test_service_down_for_one_nodes_pods_is_named_from_the_pod_network(
    lab: Lab, checked: dict[str, Any]
) -> None:
    faulty = lab.topo.nodes[0].name
    try:
        named, took = named_after_fault(lab, faulty, Fault(pod_service_down=True))
        print(f"Service down for the pods of {faulty}: named {named} after {took:.1f} s")
        assert named == [("service", faulty, "failing", ("pod",))]
        [finding] = rca(lab)["service_findings"]
        assert finding["summary"].startswith(f"Service from the pod network on {faulty}:")
    finally:
        cleared(lab, faulty)


def test_dns_down_for_one_nodes_pods_is_named_from_the_pod_network(
    lab: Lab, checked: dict[str, Any]
) -> None:
    faulty = lab.topo.nodes[2].name
    try:
        named, took = named_after_fault(lab, faulty, Fault(pod_dns_down=True))
        print(f"DNS down for the pods of {faulty}: named {named} after {took:.1f} s")
        assert named == [("dns", faulty, "failing", ("pod",))]
        # the node's own resolver keeps answering meanwhile
        before = _ok_counts(_metrics(lab), "netmesh_dns_lookups_total")[(faulty, "host")]
        wait_for(
            lambda: (
                _ok_counts(_metrics(lab), "netmesh_dns_lookups_total")[(faulty, "host")]
                >= before + 2
                or None
            ),
            15,
            0.25,
            "the host's lookups still answered",
        )
        assert check_findings(lab) == named
    finally:
        cleared(lab, faulty)
