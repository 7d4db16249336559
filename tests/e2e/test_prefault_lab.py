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
import shutil
import time
from typing import Any

import pytest

from lab.faults import Fault
from lab.settings import LabSettings
from tests.e2e.labs import running_lab
from tests.e2e.rca_lab import rca_deadline, verdict
from tests.helpers import wait_for

PREFIX = f"nmg{os.getpid() % 10000}"
SUBNET = f"10.{65 + os.getpid() % 5}.2.0/24"


def named(body: dict[str, Any]) -> set[tuple[str, str]]:
    return {(f["kind"], f["subject"]) for f in body.get("findings", [])} | {
        ("node", s["node"]) for s in body.get("suspects", [])
    }


def test_rate_fault_present_before_the_agents_start_is_named_on_the_first_sweep(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    if shutil.which("nft") is None:
        pytest.skip("needs nft (racked lab; scripts/install-deps.sh installs nftables)")
    rate = int(LabSettings().baseline_rate * 0.3)
    called = time.monotonic()
    with running_lab(
        tmp_path_factory.mktemp("lab"),
        faults={"node-3": Fault(rate_bps=rate)},
        nodes=6,
        racks=3,
        prefix=PREFIX,
        subnet=SUBNET,
        traffic=False,
        probe_mode="off",
    ) as lab:
        up = time.monotonic()
        assert lab.faults()["node-3"]["rate_bps"] == rate
        deadline = rca_deadline(lab, 1)
        body = wait_for(
            lambda: named(b := verdict(lab)) and b,
            deadline,
            0.5,
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
