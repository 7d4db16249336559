"""On-demand bandwidth sweeps in the lab (root): real agents, real iperf3, the real collector.

Four nodes; the budgeted plan is sparse but active (budget 0.1: a round of
tcp+udp every ~40 s). A sweep of one node is requested through the API; every
pair of that node, both directions and both protocols, must get a fresh iperf3
result tagged with the sweep, and no test anywhere may fail with iperf3's
"server is busy" (the agents' own counters, from the moment they all plan with
the same member list to the end of the module; the budgeted plan itself may
collide while the lab starts and agents adopt the list one after another: that
count is printed). The budgeted plan must not run in the sweep's window. Bad requests
get their 4xx and change nothing. ``netmesh-check --bandwidth`` exits 0 on the
clean lab. The time from request to the last result is printed (BENCHMARKS.md).
"""

from __future__ import annotations

import json
import os
import pathlib
import time
import urllib.error
import urllib.request
from typing import Any

import pytest

from agent.schedule import PlanSettings, slot_number, slot_tests
from lab.lab import Lab
from netmesh.wire import Member
from tests.e2e.labapi import agent_report
from tests.e2e.labs import lab_fixture
from tests.e2e.labup import QUIET
from tests.e2e.test_check_lab import lab_args, netmesh_check
from tests.e2e.webdriver import CHROMEDRIVER, CHROMIUM, chromium
from tests.helpers import wait_for

PREFIX = f"nmo{os.getpid() % 10000}"
SUBNET = f"10.{140 + os.getpid() % 10}.9.0/24"
NODES = 4
BENCH_DIR = pathlib.Path(__file__).resolve().parents[2] / "bench-results"


lab = lab_fixture(nodes=NODES, prefix=PREFIX, subnet=SUBNET, **QUIET, bandwidth_budget=0.1)


@pytest.fixture(scope="module")
def baseline(lab: Lab) -> dict[str, int]:
    """Busy tests counted by each agent once all plan with the same full member list.

    While the lab starts, agents adopt the member list one report after another
    and briefly plan with different lists: the budgeted plan can collide then,
    on its own. From here on, no agent may count another busy test.
    """

    def converged() -> bool:
        reports = [agent_report(lab, n.name) for n in lab.topo.nodes]
        epochs = {r["agent"]["epoch"] for r in reports}
        return len(epochs) == 1 and all(r["agent"]["members"] == NODES for r in reports)

    wait_for(converged, 60, 0.5, "every agent on the same full member list")
    settings = plan_settings(lab)
    first = slot_number(time.time(), settings)
    # A test started under an older list ends within its slot.
    wait_for(lambda: slot_number(time.time(), settings) >= first + 2, 30, 0.2, "two slots")
    counts = busy_counts(lab)
    print(f"\nbusy tests while the lab started (before the agents agreed): {counts}")
    return counts


def call(
    lab: Lab, method: str, path: str, body: Any = None, *, token: bool = True, raw: bytes = b""
) -> tuple[int, Any]:
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = "Bearer " + lab.token_path.read_text().strip()
    data = raw or (None if body is None else json.dumps(body).encode())
    req = urllib.request.Request(
        lab.collector_url + path, data=data, headers=headers, method=method
    )
    try:
        with urllib.request.urlopen(req, timeout=5) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        text = exc.read().decode()
        try:
            return exc.code, json.loads(text)
        except ValueError:
            return exc.code, text


def busy_counts(lab: Lab) -> dict[str, int]:
    """Tests that failed with "busy", per agent, from the agents' own counters."""
    out = {}
    for node in lab.topo.nodes:
        report = agent_report(lab, node.name)
        out[node.name] = sum(t["count"] for t in report["tests"] if t["result"] == "busy")
    return out


def test_bad_requests_change_nothing(lab: Lab) -> None:
    before = call(lab, "GET", "/api/v1/sweeps")[1]["sweeps"]
    cases = [
        ({"node": "no-such-node"}, 422, "unknown node"),
        ({"source": lab.topo.nodes[0].name, "destination": lab.topo.nodes[0].name}, 422, "same"),
        ({"node": lab.topo.nodes[0].name, "mesh": True}, 400, "exactly one"),
        ({"node": lab.topo.nodes[0].name, "protocols": ["sctp"]}, 400, "protocols"),
        ({"nodes": "x"}, 400, "unknown field"),
        ([1, 2], 400, "JSON object"),
    ]
    for body, status, words in cases:
        code, answer = call(lab, "POST", "/api/v1/sweeps", body)
        assert code == status and words in answer["error"], (body, code, answer)
    code, answer = call(lab, "POST", "/api/v1/sweeps", raw=b"{not json")
    assert code == 400 and "not JSON" in answer["error"]
    code, _ = call(lab, "POST", "/api/v1/sweeps", {"node": lab.topo.nodes[0].name}, token=False)
    assert code == 401
    assert call(lab, "GET", "/api/v1/sweeps")[1]["sweeps"] == before
    assert call(lab, "GET", "/api/v1/sweeps/nope")[0] == 404


def plan_settings(lab: Lab) -> PlanSettings:
    s = lab.settings
    return PlanSettings(
        duration=s.test_duration,
        omit=s.omit_seconds,
        guard=s.guard_seconds,
        protocols=("tcp", "udp"),
        budget=s.bandwidth_budget,
    )


def planned_round_ahead(lab: Lab, low: int, high: int) -> bool:
    """A round of the budgeted plan starts between ``low`` and ``high`` slots from now."""
    settings = plan_settings(lab)
    members = [Member(name=n.name, address=n.address) for n in lab.topo.nodes]
    now = slot_number(time.time(), settings)
    return any(slot_tests(members, now + k, settings) for k in range(low, high + 1))


def test_node_sweep_runs_without_busy_collisions(lab: Lab, baseline: dict[str, int]) -> None:
    victim = lab.topo.nodes[2].name
    others = [n.name for n in lab.topo.nodes if n.name != victim]
    # The budgeted plan runs too (sparse): wait until it has produced a result somewhere.
    wait_for(
        lambda: _any_plan_result(lab),
        120,
        1.0,
        "a result of the budgeted plan",
    )
    # Ask when the sweep's window (it starts ~3 slots ahead, 6 slots long) will cover
    # slots where the budgeted plan has tests: without the pause they would collide.
    slot = plan_settings(lab).slot_seconds
    wait_for(lambda: planned_round_ahead(lab, 5, 7), 60, slot / 4, "a planned round ahead")
    asked = time.time()
    code, sweep = call(lab, "POST", "/api/v1/sweeps", {"node": victim})
    assert code == 202, sweep
    assert sweep["state"] == "pending" and sweep["tests"] == 2 * 2 * (NODES - 1)
    # The same request again while it is pending: the same sweep (200), not a second one.
    again = call(lab, "POST", "/api/v1/sweeps", {"node": victim})
    assert again[0] == 200 and again[1]["id"] == sweep["id"]
    patience = sweep["planned_end"] - sweep["now"] + 60

    def finished() -> dict[str, Any] | None:
        view = call(lab, "GET", f"/api/v1/sweeps/{sweep['id']}")[1]
        return view if view["state"] in ("done", "expired") else None

    view = wait_for(finished, patience, 0.5, f"sweep {sweep['id']} finished")
    took = time.time() - asked
    window_start, window_end = view["planned_start"], view["planned_end"]
    lead = sweep["start_at"] - sweep["requested_at"]
    window = view["planned_end"] - view["planned_start"]
    print(
        f"\nnode sweep of {victim} in a {NODES}-node lab: {view['tests']} tests, "
        f"request to last result {took:.1f}s (lead {lead:.1f}s, planned window {window:.1f}s)"
    )
    assert busy_counts(lab) == baseline
    # The budgeted plan paused on every node during the window (a round was planned in it).
    during = [
        r
        for r in agent_results(lab)
        if not r.get("sweep") and window_start <= r["started_at"] < window_end
    ]
    assert during == [], during
    assert view["state"] == "done", view
    pairs = {(r["source"], r["destination"], r["protocol"]) for r in view["results"]}
    want = {(victim, o, p) for o in others for p in ("tcp", "udp")}
    want |= {(o, victim, p) for o in others for p in ("tcp", "udp")}
    assert pairs == want
    for r in view["results"]:
        assert r["result"] == "ok", r
        assert r["started_at"] >= sweep["start_at"] - 0.01, r
        assert r["received_bits_per_second"] > 1e6, r
    assert busy_counts(lab) == baseline
    BENCH_DIR.mkdir(exist_ok=True)
    (BENCH_DIR / "ondemand_lab.json").write_text(
        json.dumps(
            {
                "nodes": NODES,
                "tests": view["tests"],
                "request_to_all_results_seconds": round(took, 2),
                "lead_seconds": round(sweep["start_at"] - sweep["requested_at"], 2),
                "window_seconds": round(view["planned_end"] - view["planned_start"], 2),
            },
            indent=2,
        )
    )


def agent_results(lab: Lab) -> list[dict[str, Any]]:
    return [r for node in lab.topo.nodes for r in agent_report(lab, node.name)["results"]]


def _any_plan_result(lab: Lab) -> bool:
    """The budgeted plan has produced a result somewhere (it runs, sparsely)."""
    return any(not r.get("sweep") for r in agent_results(lab))


def test_run_now_buttons_in_chromium(
    lab: Lab, baseline: dict[str, int], tmp_path: pathlib.Path
) -> None:
    if not (os.path.exists(CHROMEDRIVER) and os.path.exists(CHROMIUM)):
        pytest.skip("needs Debian's chromium and chromium-driver (scripts/install-deps.sh)")
    names = [n.name for n in lab.topo.nodes]
    with chromium(tmp_path / "profile") as page:
        page.get(lab.collector_url + "/")
        page.click(f'button.run-node[data-node="{names[0]}"]')
        # Without the token the collector refuses, and the page says so.
        wait_for(lambda: "401" in page.text("#sweep-status"), 20, 0.2, "the 401 shown")
        page.type("#token", lab.token_path.read_text().strip())
        page.click(f'button.run-node[data-node="{names[0]}"]')
        wait_for(lambda: "requested" in page.text("#sweep-status"), 20, 0.2, "node sweep asked")
        assert f"node {names[0]}" in page.text("#sweep-status")
        assert page.attribute("#run-pair", "disabled") is not None
        page.click(f'td[data-source="{names[1]}"][data-destination="{names[3]}"]')
        page.click("#run-pair")
        wait_for(
            lambda: f"{names[1]} → {names[3]}" in page.text("#sweep-status"), 20, 0.2, "pair asked"
        )
        sweeps = call(lab, "GET", "/api/v1/sweeps")[1]["sweeps"]
        targets = [s["target"] for s in sweeps if s["state"] in ("pending", "running")]
        assert {"node": names[0]} in targets
        assert {"source": names[1], "destination": names[3]} in targets
        # The page follows them to the end (it refreshes by itself).
        wait_for(
            lambda: page.text("#sweeps").count(" done") >= 3,
            120,
            1.0,
            "both sweeps done on the page",
        )
    assert busy_counts(lab) == baseline


def test_check_bandwidth_exits_0_on_the_clean_lab(lab: Lab, baseline: dict[str, int]) -> None:
    # No waiting for the RCA first: the check's own sweep renews every pair's result,
    # and the check waits for fresh light-tier data and an RCA over it by itself.
    proc = netmesh_check(*lab_args(lab), "--bandwidth", "--timeout", "60", timeout=300)
    rca = call(lab, "GET", "/api/v1/rca")[1]
    assert proc.returncode == 0, json.dumps(
        {k: rca.get(k) for k in ("verdict", "summary", "suspects", "failing_paths")}, indent=1
    )
    assert "bandwidth: all 24 tests ok" in proc.stdout
    assert "bandwidth sweep" in proc.stderr  # progress lines
    assert busy_counts(lab) == baseline
