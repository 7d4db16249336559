"""A rate fault already in place when the agents start is named on the first sweep (root).

Six nodes on three racks, no HTTP traffic, no eBPF probe (like
test_topology_rca_lab). node-3's egress is shaped to 30 % of its peers'
rate by ``Lab.up(faults=...)`` after the network is built and before the
collector and the agents start: no agent ever measured node-3 healthy, so
only peers and capacity -- not a path's own history -- can name it.

Asserts that /api/v1/rca names node-3 (kind node, outbound) within one
bandwidth sweep (LabSettings.sweep_seconds) plus one report interval and one
RCA run of the lab being up (every agent a member), and that nothing else is
named then nor for the rest of that sweep. Prints the times (machine shared,
2 cores).
"""

from __future__ import annotations

import os
import time

import pytest

from lab.faults import Fault
from lab.settings import LabSettings
from tests.e2e.labs import need_nft, running_lab
from tests.e2e.labup import QUIET
from tests.e2e.rca_lab import named, rca_deadline, verdict, wait_verdict

PREFIX = f"nmg{os.getpid() % 10000}"
SUBNET = f"10.{65 + os.getpid() % 5}.2.0/24"


def test_rate_fault_present_before_the_agents_start_is_named_on_the_first_sweep(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    need_nft("racked lab")
    rate = int(LabSettings().baseline_rate * 0.3)
    called = time.monotonic()
    with running_lab(
        tmp_path_factory.mktemp("lab"),
        faults={"node-3": Fault(rate_bps=rate)},
        nodes=6,
        racks=3,
        prefix=PREFIX,
        subnet=SUBNET,
        **QUIET,
    ) as lab:
        up = time.monotonic()
        assert lab.faults()["node-3"]["rate_bps"] == rate
        deadline = rca_deadline(lab, 1)
        body, _ = wait_verdict(
            lab,
            named,
            deadline,
            f"a finding within one sweep ({lab.settings.sweep_seconds():.0f} s) of the agents",
        )
        took = time.monotonic() - up
        print(
            f"pre-start egress at 30 %: named {took:.1f} s after the lab was up "
            f"({up - called:.1f} s to build it and start the agents; sweep "
            f"{lab.settings.sweep_seconds():.0f} s): {body['summary']}"
        )
        assert named(body) == {("node", "node-3")}, body["summary"]
        (f,) = body["findings"]
        assert f["direction"] == "outbound", f
        # nothing else named for the rest of the first sweep
        end = up + deadline
        while time.monotonic() < end:
            b = verdict(lab)
            assert named(b) <= {("node", "node-3")}, b["summary"]
            time.sleep(1)
