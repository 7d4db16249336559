"""The light tier in the lab (root): loss by direction and an MTU blackhole, seen by the collector.

Three nodes, each agent probing the others continuously (the agents' default
light-tier settings); iperf3 tests are spaced by a small budget so the light
tier is what measures. Faults are the lab's own: receiver-side loss into one
node (iptables statistic on its INPUT) and a lowered link MTU on one node.
"""

from __future__ import annotations

import os
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from lab.faults import Fault
from lab.lab import Lab
from tests.e2e.labapi import metrics_text, ordered_pairs
from tests.e2e.labs import lab_fixture
from tests.e2e.labup import LIGHT_TIER
from tests.e2e.rca_lab import suspects, wait_verdict
from tests.helpers import wait_for

# E2E_PREFIX / E2E_SUBNET_BYTE: another prefix and range on a shared machine
PREFIX = os.environ.get("E2E_PREFIX", "nml") + str(os.getpid() % 10000)
SUBNET = f"10.{int(os.environ.get('E2E_SUBNET_BYTE', 200 + os.getpid() % 15))}.9.0/24"

Samples = dict[str, dict[tuple[str, str], float]]


lab = lab_fixture(nodes=3, prefix=PREFIX, subnet=SUBNET, **LIGHT_TIER)


def light(lab: Lab) -> Samples:
    out: Samples = {}
    for fam in text_string_to_metric_families(metrics_text(lab)):
        if fam.name.startswith("netmesh_light_"):
            for s in fam.samples:
                key = (s.labels["source_node"], s.labels["destination_node"])
                out.setdefault(s.name, {})[key] = s.value
    return out


def names(lab: Lab) -> list[str]:
    return [n.name for n in lab.topo.nodes]


def every_path(lab: Lab, samples: Samples, family: str) -> dict[tuple[str, str], float] | None:
    values = samples.get(family, {})
    return values if ordered_pairs(lab) <= values.keys() else None


def test_clean_mesh_measures_every_pair_without_loss(lab: Lab) -> None:
    def clean() -> Samples | None:
        s = light(lab)
        rtt = every_path(lab, s, "netmesh_light_rtt_median_seconds")
        loss = every_path(lab, s, "netmesh_light_loss_ratio")
        mtu = every_path(lab, s, "netmesh_light_mtu_loss_ratio")  # an MTU probe every 10 s
        if rtt is None or loss is None or mtu is None or any(v > 0.02 for v in loss.values()):
            return None
        return s

    s = wait_for(clean, 60, 1.0, "light-tier data for every pair, no loss")
    assert all(0 < v < 0.05 for v in s["netmesh_light_rtt_median_seconds"].values())
    # the RTT histogram of every pair, through the real agents and collector
    counts = every_path(lab, s, "netmesh_light_rtt_seconds_count")
    sums = every_path(lab, s, "netmesh_light_rtt_seconds_sum")
    assert counts is not None and sums is not None
    assert all(counts[k] > 0 and 0 < sums[k] / counts[k] < 0.05 for k in counts), (counts, sums)
    assert all(v == 0 for v in s["netmesh_light_mtu_loss_ratio"].values())


def test_loss_into_a_node_is_forward_loss_towards_it_and_return_loss_from_it(lab: Lab) -> None:
    victim = names(lab)[1]
    others = [n for n in names(lab) if n != victim]
    lab.inject(victim, Fault(loss=0.3))
    try:

        def attributed() -> Samples | None:
            s = light(lab)
            fwd, ret = (
                s.get("netmesh_light_forward_loss_ratio", {}),
                s.get("netmesh_light_return_loss_ratio", {}),
            )
            for o in others:
                into, out_of = (o, victim), (victim, o)
                if not (fwd.get(into, 0) > 0.15 and ret.get(out_of, 0) > 0.15):
                    return None
            return s

        s = wait_for(attributed, 60, 1.0, f"forward loss into {victim}, return loss from it")
        fwd, ret = s["netmesh_light_forward_loss_ratio"], s["netmesh_light_return_loss_ratio"]
        for o in others:
            assert ret[(o, victim)] < 0.05, "echoes from the victim's responder are not dropped"
            assert fwd[(victim, o)] < 0.05, "the victim's probes leave it unharmed"
        a, b = others
        assert s["netmesh_light_loss_ratio"][(a, b)] < 0.05, "a path that avoids the victim"
    finally:
        lab.clear(victim)


def test_lowered_mtu_is_an_mtu_blackhole_while_small_probes_pass(lab: Lab) -> None:
    victim = names(lab)[2]
    others = [n for n in names(lab) if n != victim]
    lab.inject(victim, Fault(mtu=1400))
    try:

        def blackhole() -> Samples | None:
            # small probes pass (once an earlier fault's window has passed) while MTU probes vanish
            s = light(lab)
            mtu = s.get("netmesh_light_mtu_loss_ratio", {})
            loss = s.get("netmesh_light_loss_ratio", {})
            if all(mtu.get((o, victim), 0) >= 0.99 for o in others) and all(
                loss.get((o, victim), 1) < 0.05 for o in others
            ):
                return s
            return None

        wait_for(blackhole, 60, 1.0, f"MTU probes into {victim} vanish, small ones pass")
        a, b = others

        def others_clean() -> Samples | None:
            # A path that avoids the victim loses no MTU probe — once the previous test's
            # loss into one of its ends has left the MTU window (3 MTU intervals, 30 s).
            s = blackhole()
            return s if s and s["netmesh_light_mtu_loss_ratio"].get((a, b)) == 0 else None

        wait_for(others_clean, 45, 1.0, f"{a} -> {b} losing no MTU probe, the blackhole held")

        def named(rca: dict[str, Any]) -> bool:
            mtu = [
                p
                for p in rca.get("failing_paths", [])
                if any("MTU blackhole" in r for r in p["reasons"])
            ]
            return victim in suspects(rca) and bool(mtu)

        # (an earlier fault's iperf3 results stay the latest of their paths until the
        # next test, a round or two later at this budget: that node may be named too)
        rca, _ = wait_verdict(
            lab, named, 90, f"the RCA names {victim} with MTU-blackhole paths", 1.0
        )
        for p in rca["failing_paths"]:
            if p["protocol"] == "light" and any("MTU" in r for r in p["reasons"]):
                assert victim in (p["source"], p["destination"]), p
    finally:
        lab.clear(victim)
