"""One definition of a bad path: the alert rules and the RCA agree on the same input.

A mesh with paths on both sides of every criterion (UDP loss, iperf3 TCP
retransmissions, a failed test, a "busy" collision) goes through the real
collector: its state, the live RCA and the /metrics renderer. Every sample of
the rendered text becomes a promtool input series, and promtool evaluates
the shipped alert rules over it. The path alerts firing after their ``for:``
must be exactly the paths the RCA judged FAIL (NetmeshPathFailing), or those
of them whose test failed (NetmeshPathDown) — no more, no fewer.
"""

from __future__ import annotations

import pathlib

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from collector.judging import Criteria
from collector.live import LiveRca
from collector.membership import StaticMembership
from collector.metrics import render_metrics
from collector.state import CollectorState, Limits
from collector.topology import topology_of
from netmesh.wire import TestResult
from tests.collector.conftest import FakeClock
from tests.collector.reports import report, result
from tests.dashboards.files import RULE_FILES, promtool, run_promtool

PATH_ALERTS = ("NetmeshPathDown", "NetmeshPathFailing")
MSS = 1448


def tcp(src: str, dst: str, retransmit_share: float) -> TestResult:
    """A 2 s TCP test at 100 Mbit/s with ``retransmit_share`` of its segments retransmitted."""
    segments = 100e6 * 2 / 8 / MSS
    return result(
        src,
        dst,
        "tcp",
        sent_bits_per_second=100e6,
        received_bits_per_second=100e6,
        duration_seconds=2.0,
        retransmits=round(segments * retransmit_share),
    )


def mesh(criteria: Criteria) -> dict[str, tuple[TestResult, ...]]:
    loss = criteria.loss_ratio
    retx = criteria.retransmit_ratio
    return {
        "a": (
            result("a", "b", "udp", loss_ratio=loss * 1.5),  # FAIL: loss
            result("a", "c", "udp", loss_ratio=loss * 0.5),  # OK: below the threshold
            tcp("a", "b", retx * 0.5),  # OK
        ),
        "b": (
            tcp("b", "a", retx * 2),  # FAIL: retransmissions
            tcp("b", "c", 0.0),  # OK
            result("b", "c", "udp", loss_ratio=0.0),  # OK
        ),
        "c": (
            result("c", "a", "tcp", ok=False),  # FAIL: the test failed (refused)
            result("c", "b", "tcp", ok=False, result="busy"),  # no evidence: not judged
            result("c", "b", "udp", loss_ratio=loss),  # OK: thresholds are exclusive
        ),
    }


def collector_metrics(criteria: Criteria) -> tuple[str, set[tuple[str, str, str, str]]]:
    """The rendered /metrics and the RCA's failing paths as (source, dest, protocol, result)."""
    clock = FakeClock()
    state = CollectorState(Limits(), clock=clock)
    addresses = {"a": "10.0.0.1", "b": "10.0.0.2", "c": "10.0.0.3"}
    for node, results in mesh(criteria).items():
        base = report(node, addresses[node])
        state.accept(type(base)(**{**base.__dict__, "results": results}))
    live = LiveRca(criteria)
    results = {n: state.agents[n].report.results for n in state.sorted_names()}
    for _ in live.steps(results, {}, lambda _ip: None, now=clock()):
        pass
    assert live.latest is not None
    failing = {(o.source, o.destination, o.protocol, o.result) for o in live.latest.failing}
    members = StaticMembership(state, clock=clock).current()
    return render_metrics(state, members, rca=live).decode(), failing


def input_series(text: str) -> list[dict[str, str]]:
    out = []
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            if not s.name.startswith("netmesh_"):
                continue
            labels = ",".join(f'{k}="{v}"' for k, v in sorted(s.labels.items()))
            out.append({"series": f"{s.name}{{{labels}}}", "values": f"{s.value}x20"})
    return out


def expected(alert: str, paths: set[tuple[str, str, str, str]]) -> list[dict[str, object]]:
    chosen = sorted(p for p in paths if alert == "NetmeshPathFailing" or p[3] != "ok")
    return [
        {
            "labels": (
                f'{{alertname="{alert}",source_node="{s}",destination_node="{d}",protocol="{p}"}}'
            ),
            "value": 1,
        }
        for s, d, p, _ in chosen
    ]


@pytest.mark.skipif(promtool() is None, reason="promtool missing (scripts/install-deps.sh)")
@pytest.mark.parametrize(
    "criteria",
    [Criteria(), Criteria(loss_ratio=0.01, retransmit_ratio=0.05, mss_bytes=MSS)],
    ids=["defaults", "other-thresholds"],
)
def test_alerts_fire_for_exactly_the_paths_the_rca_fails(
    tmp_path: pathlib.Path, criteria: Criteria
) -> None:
    text, failing = collector_metrics(criteria)
    assert {(s, d, p) for s, d, p, _ in failing} == {
        ("a", "b", "udp"),
        ("b", "a", "tcp"),
        ("c", "a", "tcp"),
    }, "the mesh no longer covers both sides of each criterion"
    check_alerts(tmp_path, text, failing)


def check_alerts(
    tmp_path: pathlib.Path, text: str, failing: set[tuple[str, str, str, str]]
) -> None:
    """promtool: the path alerts over ``text`` fire for exactly the ``failing`` paths."""
    tests = []
    for alert in PATH_ALERTS:
        query = (
            f"count by (alertname, source_node, destination_node, protocol) "
            f'(ALERTS{{alertname="{alert}",alertstate="firing"}})'
        )
        tests.append(
            {
                "interval": "1m",
                "input_series": input_series(text),
                "promql_expr_test": [
                    {"expr": query, "eval_time": "15m", "exp_samples": expected(alert, failing)}
                ],
            }
        )
    unit = {
        "rule_files": [str(p) for p in RULE_FILES],
        "evaluation_interval": "1m",
        "tests": tests,
    }
    path = tmp_path / "bad-path-test.yaml"
    path.write_text(yaml.safe_dump(unit, sort_keys=False))
    proc = run_promtool("test", "rules", str(path))
    assert proc.returncode == 0, proc.stdout + proc.stderr


MESH_NODES = ("n1", "n2", "n3", "n4", "n5")
FAST = {"n4": 10**10, "n5": 10**10}  # 10 Gbit/s links; the others 1 Gbit/s


def mesh_result(src: str, dst: str, criteria: Criteria) -> TestResult:
    """900 Mbit/s and 0.4 ms everywhere but: n1 sends at a third of that (peers); n2 -> n3
    has 100x the RTT (latency); n4 -> n5, on 10 Gbit/s links, below capacity_fraction of it
    (n5 -> n4 at 9 Gbit/s)."""
    bps = 9e8 / 3 if src == "n1" else 9e8
    rtt = 0.04 if (src, dst) == ("n2", "n3") else 0.0004
    if (src, dst) == ("n4", "n5"):
        bps = criteria.capacity_fraction * 10**10 * 0.9
    if (src, dst) == ("n5", "n4"):
        bps = 9e9
    return result(
        src,
        dst,
        "tcp",
        sent_bits_per_second=bps,
        received_bits_per_second=bps,
        duration_seconds=2.0,
        retransmits=0,
        rtt_mean_seconds=rtt,
    )


def mesh_metrics(criteria: Criteria) -> tuple[str, set[tuple[str, str, str, str]]]:
    clock = FakeClock()
    state = CollectorState(Limits(), clock=clock)
    for i, node in enumerate(MESH_NODES, 1):
        base = report(node, f"10.0.0.{i}")
        results = tuple(mesh_result(node, d, criteria) for d in MESH_NODES if d != node)
        speed = FAST.get(node, 10**9)
        state.accept(
            type(base)(**{**base.__dict__, "results": results, "link_speed_bits_per_second": speed})
        )
    live = LiveRca(criteria)
    names = state.sorted_names()
    results = {n: state.agents[n].report.results for n in names}
    topology = topology_of(state.agents[n].report for n in names)
    for _ in live.steps(results, {}, lambda _ip: None, now=clock(), topology=topology):
        pass
    assert live.latest is not None
    failing = {(o.source, o.destination, o.protocol, o.result) for o in live.latest.failing}
    members = StaticMembership(state, clock=clock).current()
    return render_metrics(state, members, rca=live).decode(), failing


@pytest.mark.skipif(promtool() is None, reason="promtool missing (scripts/install-deps.sh)")
@pytest.mark.parametrize(
    "criteria",
    [Criteria(), Criteria(peer_fraction=0.5, capacity_fraction=0.5, rtt_factor=5)],
    ids=["defaults", "other-thresholds"],
)
def test_alerts_fire_for_the_peer_capacity_and_latency_criteria(
    tmp_path: pathlib.Path, criteria: Criteria
) -> None:
    """The criteria judged against the mesh (collector/meshjudge.py) are the same one
    definition: netmesh_rca_path_failing carries them, the alerts follow."""
    text, failing = mesh_metrics(criteria)
    assert {(s, d) for s, d, _p, _r in failing} == {
        *(("n1", d) for d in MESH_NODES[1:]),
        ("n2", "n3"),
        ("n4", "n5"),
    }, "the mesh no longer covers each criterion"
    check_alerts(tmp_path, text, failing)
