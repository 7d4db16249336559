"""DNS end to end on the lab (root): every node resolves the lab's name through the lab's real
DNS server (dnsmasq on the bridge); `inject --dns down` on one node makes its lookups time out
and the collector names DNS on that node — not another node, not a path — shown on the page in
headless Chromium; after clear the finding goes.

One lab for the module (3 nodes, own prefix, own subnet in 10.96-10.99, state in a temp dir).
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

PREFIX = f"nmn{os.getpid() % 10000}"
SUBNET = f"10.{96 + os.getpid() % 4}.0.0/24"
NAMED_WITHIN = 30.0  # the goal; the time taken is printed


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    with running_lab(
        tmp_path_factory.mktemp("lab"),
        nodes=3,
        prefix=PREFIX,
        subnet=SUBNET,
        traffic=False,
        probe_mode="off",
        bandwidth_budget=0.05,
    ) as lab:
        yield lab


def rca(lab: Lab) -> dict[str, Any]:
    body: dict[str, Any] = get_json(lab.collector_url + "/api/v1/rca")
    return body


def findings(lab: Lab) -> list[tuple[str | None, str]]:
    return [(f["node"], f["kind"]) for f in rca(lab).get("dns_findings", [])]


def every_node_resolves(lab: Lab) -> dict[str, Any] | None:
    """The nodes' DNS checks, once every node has answered lookups of the lab's name."""
    text = _metrics(lab)
    ok = {
        line.split('node="')[1].split('"')[0]: float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith("netmesh_dns_lookups_total{") and 'result="ok"' in line
    }
    names = {n.name for n in lab.topo.nodes}
    return {"ok": ok} if set(ok) == names and all(v >= 3 for v in ok.values()) else None


def _metrics(lab: Lab) -> str:
    with urllib.request.urlopen(lab.collector_url + "/metrics", timeout=5) as resp:
        return str(resp.read().decode())


def test_every_node_resolves_the_lab_name_and_nothing_is_named(lab: Lab) -> None:
    wait_for(lambda: every_node_resolves(lab), 30, 0.5, "every node's DNS answering")
    assert findings(lab) == []
    text = _metrics(lab)
    assert f'name="collector.{PREFIX}.netmesh.test",reason=""}} 1' in text


class _Findings(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.items: list[tuple[str | None, str | None]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "li" and a.get("data-finding"):
            self.items.append((a.get("data-finding"), a.get("data-layer")))


def test_dns_down_on_one_node_is_named_as_dns_on_that_node(
    lab: Lab, tmp_path: pathlib.Path
) -> None:
    wait_for(lambda: every_node_resolves(lab), 30, 0.5, "every node's DNS answering")
    faulty = lab.topo.nodes[1].name
    started = time.monotonic()
    lab.inject(faulty, Fault(dns_down=True))
    try:
        named = wait_for(lambda: findings(lab), NAMED_WITHIN, 0.25, "a DNS finding")
        took = time.monotonic() - started
        print(f"DNS down on {faulty}: named {named} after {took:.1f} s")
        assert named == [(faulty, "failing")]
        body = rca(lab)
        finding = body["dns_findings"][0]
        assert finding["layer"] == "dns" and "timeout" in finding["summary"], finding
        assert [s["node"] for s in body["suspects"]] == []  # no path, no node suspect
        if os.path.exists(CHROMIUM):
            proc = chromium(tmp_path, "--dump-dom", lab.collector_url + "/")
            assert proc.returncode == 0, proc.stderr[-2000:]
            dom = _Findings()
            dom.feed(proc.stdout)
            assert dom.items == [(faulty, "dns")]
    finally:
        lab.clear(faulty)
    cleared = time.monotonic()
    wait_for(lambda: findings(lab) == [] or None, 30, 0.25, "no DNS finding after clear")
    print(f"finding gone {time.monotonic() - cleared:.1f} s after clear")
