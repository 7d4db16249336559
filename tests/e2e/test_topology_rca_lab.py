"""The RCA names racks, links and slow nodes in a lab with racks (root).

Six nodes on three rack bridges (node-1, node-2 in rack-1; node-3, node-4 in
rack-2; node-5, node-6 in rack-3) joined through the core bridge; the lab
gives every agent ``NETMESH_LABELS=rack=rack-N`` and ``NETMESH_LINK_SPEED``
= its shaped rate. One lab for the module, faults one after the other, each
cleared and the verdict back to ok before the next:

- a node's egress at 30 % of its peers: named as that node, outbound, by the
  peer criterion, within two sweeps of the injection;
- 10 % loss on rack-2's uplink: named as the rack, no node blamed;
- 10 % loss between node-1 and node-4 only: named as the link;
- node-2 at 30 % and 10 % loss into node-5 at once: both named.

Prints the time from injection to the finding (machine shared, 2 cores).
"""

from __future__ import annotations

import os
from typing import Any

from lab.fabric import UplinkFault
from lab.faults import Fault
from lab.lab import Lab
from tests.e2e.labapi import metrics_text
from tests.e2e.labs import lab_fixture
from tests.e2e.labup import QUIET
from tests.e2e.rca_lab import findings, rca_deadline, wait_clean, wait_verdict

PREFIX = f"nmj{os.getpid() % 10000}"
SUBNET = f"10.{120 + os.getpid() % 10}.0.0/24"


lab = lab_fixture(nft_for="uplink loss", nodes=6, racks=3, prefix=PREFIX, subnet=SUBNET, **QUIET)


def wait_finding(lab: Lab, want: tuple[str, str], sweeps: float) -> tuple[dict[str, Any], float]:
    return wait_verdict(
        lab, lambda b: want in findings(b), rca_deadline(lab, sweeps), f"the finding {want}"
    )


def settle(lab: Lab) -> None:
    lab.clear()
    wait_clean(lab, rca_deadline(lab, 3))


def test_clean_racks_say_nothing(lab: Lab) -> None:
    body = wait_clean(lab, rca_deadline(lab, 3))
    assert body["findings"] == [] and body["suspects"] == []
    # every ordered pair has been tested: the topology is in the metrics
    text = metrics_text(lab)
    assert 'netmesh_node_info{node="node-3",zone="",rack="rack-2"} 1' in text
    assert 'netmesh_node_link_speed_bytes{node="node-1"} 125000000\n' in text  # 1 Gbit/s


def test_slow_egress_is_named_as_the_node(lab: Lab) -> None:
    rate = int(lab.settings.baseline_rate * 0.3)
    lab.inject("node-3", Fault(rate_bps=rate))
    try:
        body, took = wait_finding(lab, ("node", "node-3"), 2)
        print(f"egress at 30 %: named in {took:.1f} s (sweep {lab.settings.sweep_seconds():.0f} s)")
        f = next(f for f in body["findings"] if f["subject"] == "node-3")
        assert f["direction"] == "outbound", body["summary"]
        assert "bandwidth-peers" in f["criteria"], f
        assert {x["kind"] for x in body["findings"]} == {"node"}, body["summary"]
    finally:
        settle(lab)


def test_uplink_loss_is_named_as_the_rack(lab: Lab) -> None:
    lab.inject_uplink("rack-2", UplinkFault(loss=0.1))
    try:
        body, took = wait_finding(lab, ("rack", "rack-2"), 2)
        print(f"rack-2 uplink 10 % loss: named in {took:.1f} s: {body['summary']}")
        assert body["suspects"] == [], body["summary"]  # no node blamed
    finally:
        settle(lab)


def test_link_loss_is_named_as_the_link(lab: Lab) -> None:
    lab.inject_link("node-1,node-4", 0.1)
    try:
        body, took = wait_finding(lab, ("link", "node-1|node-4"), 2)
        print(f"link node-1 <-> node-4 10 % loss: named in {took:.1f} s: {body['summary']}")
        assert body["suspects"] == [], body["summary"]
    finally:
        settle(lab)


def test_two_faults_of_different_kinds_are_both_named(lab: Lab) -> None:
    lab.inject("node-2", Fault(rate_bps=int(lab.settings.baseline_rate * 0.3)))
    lab.inject("node-5", Fault(loss=0.1))
    try:
        body, took = wait_verdict(
            lab,
            lambda b: {("node", "node-2"), ("node", "node-5")} <= findings(b),
            rca_deadline(lab, 2),
            "both faults named",
        )
        print(f"two faults: both named in {took:.1f} s: {body['summary']}")
        by = {f["subject"]: f for f in body["findings"]}
        assert by["node-2"]["direction"] == "outbound" and by["node-5"]["direction"] == "inbound"
    finally:
        settle(lab)
