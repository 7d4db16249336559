"""The collector's HTTP API in static mode: reports in, member list out, /metrics, JSON API."""

from __future__ import annotations

import json
from typing import Any

from collector.appkeys import STATE
from netmesh.wire import ProbeStatus, parse_member_list
from tests.collector.conftest import FakeClock, MakeClient, promtool_check
from tests.collector.reports import flow, report


def _metric_lines(text: str, name: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith(name + "{")]


async def test_report_answers_sorted_member_list(make_client: MakeClient) -> None:
    client = await make_client()
    for node, ip in (("b", "10.0.0.2"), ("a", "10.0.0.1")):
        resp = await client.post("/api/v1/reports", json=report(node, ip, ("a", "b")).to_json())
        assert resp.status == 200, await resp.text()
    members = parse_member_list(await resp.json())
    assert [m.name for m in members.members] == ["a", "b"]
    assert members.members[0].address == "10.0.0.1"
    assert members.epoch > 0
    # Same members again: same epoch.
    resp = await client.post("/api/v1/reports", json=report("a", "10.0.0.1").to_json())
    assert parse_member_list(await resp.json()).epoch == members.epoch


async def test_metrics_both_directions_and_promtool_clean(make_client: MakeClient) -> None:
    client = await make_client()
    probe = ProbeStatus(mode="tracepoint", up=1, map_entries=3, map_capacity=4096)
    await client.post(
        "/api/v1/reports",
        json=report(
            "a", "10.0.0.1", ("b",), probe=probe, retransmits=(flow("10.0.0.1", "10.0.0.2"),)
        ).to_json(),
    )
    await client.post("/api/v1/reports", json=report("b", "10.0.0.2", ("a",)).to_json())
    resp = await client.get("/metrics")
    assert resp.status == 200
    assert resp.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    text = await resp.text()
    promtool_check(text)
    bw = _metric_lines(text, "netmesh_path_success")
    for src, dst in (("a", "b"), ("b", "a")):
        for proto in ("tcp", "udp"):
            assert any(
                f'source_node="{src}",destination_node="{dst}",protocol="{proto}"' in line
                for line in bw
            ), bw
    assert 'netmesh_agent_up{node="a"} 1' in text
    assert 'netmesh_agent_probe_up{node="a",mode="tracepoint",reason=""} 1' in text
    # Static mode: agent addresses name the nodes.
    assert (
        'netmesh_tcp_retransmits_total{node="a",src_namespace="",src_pod="a",'
        'dst_namespace="",dst_pod="b",port="5201"} 5' in text
    )
    assert 'netmesh_collector_reports_total{result="accepted"} 2' in text


async def test_ttl_expiry_removes_series_and_member(
    make_client: MakeClient, clock: FakeClock
) -> None:
    client = await make_client(report_ttl=10, stale_after=5, expiry_interval=0.05)
    state = client.app[STATE]
    await client.post("/api/v1/reports", json=report("a", "10.0.0.1", ("b",)).to_json())
    await client.post("/api/v1/reports", json=report("b", "10.0.0.2", ("a",)).to_json())
    clock.advance(6)
    await client.post("/api/v1/reports", json=report("b", "10.0.0.2", ("a",)).to_json())
    text = await (await client.get("/metrics")).text()
    assert 'netmesh_agent_up{node="a"} 0' in text  # stale, not yet gone
    assert 'netmesh_agent_report_age_seconds{node="a"} 6' in text
    clock.advance(5)
    assert state.expire() == ["a"]
    text = await (await client.get("/metrics")).text()
    assert '{node="a"' not in text and 'source_node="a"' not in text
    assert "netmesh_collector_expired_agents_total 1" in text
    resp = await client.post("/api/v1/reports", json=report("b", "10.0.0.2").to_json())
    assert [m.name for m in parse_member_list(await resp.json()).members] == ["b"]


async def test_bad_reports_are_4xx_with_reason_and_change_nothing(
    make_client: MakeClient,
) -> None:
    client = await make_client(max_report_bytes=64 * 1024)
    good = report("a", "10.0.0.1", ("b",)).to_json()
    await client.post("/api/v1/reports", json=good)
    before = (await (await client.get("/api/v1/matrix")).json())["paths"]
    cases: list[tuple[Any, int, str]] = [
        (b"{not json", 400, "not_json"),
        ({**good, "schema": 2}, 422, "unsupported_schema"),
        ({**good, "address": "not-an-ip"}, 422, "address"),
        ({**good, "results": [{**good["results"][0], "source": "x"}]}, 422, "results[0].source"),
        ({**good, "node": ""}, 422, "node"),
        ({**good, "results": good["results"] * 2}, 422, "a second result for 'b' tcp"),
        ({**good, "tests": good["tests"] * 2}, 422, "a second counter"),
        ({**good, "node": "\ud800"}, 422, "valid Unicode"),
        ([1, 2], 422, "expected an object"),
        (b"[" * 100_000 + b"]" * 0, 413, "too_large"),
    ]
    for body, status, needle in cases:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        resp = await client.post("/api/v1/reports", data=data)
        text = await resp.text()
        assert resp.status == status, (needle, text)
        assert needle in text, text
    after = (await (await client.get("/api/v1/matrix")).json())["paths"]
    assert after == before
    metrics = await (await client.get("/metrics")).text()
    assert 'netmesh_collector_reports_total{result="invalid"} 7' in metrics
    assert 'netmesh_collector_reports_total{result="too_large"} 1' in metrics


async def test_max_agents(make_client: MakeClient) -> None:
    client = await make_client(max_agents=1)
    assert (await client.post("/api/v1/reports", json=report("a").to_json())).status == 200
    resp = await client.post("/api/v1/reports", json=report("b", "10.0.0.2").to_json())
    assert resp.status == 429
    assert "max_agents" in await resp.text()
    assert (await client.post("/api/v1/reports", json=report("a").to_json())).status == 200


async def test_nodes_matrix_health(make_client: MakeClient) -> None:
    client = await make_client()
    await client.post(
        "/api/v1/reports",
        json=report(
            "a", "10.0.0.1", ("b",), failing=("b",), probe=ProbeStatus(mode="none", reason="x")
        ).to_json(),
    )
    nodes = await (await client.get("/api/v1/nodes")).json()
    (a,) = nodes["nodes"]
    assert a["name"] == "a" and a["member"] and a["up"]
    assert a["probe"] == {"mode": "none", "up": 0, "reason": "x"}
    assert a["health"]["iperf3_server_up"] == 1
    assert a["failing_paths"] == 2
    matrix = await (await client.get("/api/v1/matrix")).json()
    assert matrix["nodes"] == ["a"]
    cells = {(p["source"], p["destination"], p["protocol"]): p for p in matrix["paths"]}
    assert cells[("a", "b", "tcp")]["success"] is False
    assert cells[("a", "b", "tcp")]["result"] == "refused"
    assert (await client.get("/healthz")).status == 200
    assert (await client.get("/readyz")).status == 200
