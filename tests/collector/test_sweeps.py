"""On-demand sweeps through the collector's API (collector/sweepapi.py, collector/sweeps.py)."""

from __future__ import annotations

import dataclasses
import pathlib
from collections.abc import Sequence
from typing import Any

import pytest

from collector.sweeps import SweepBook, SweepError, parse_request
from netmesh.ondemand import parse_sweeps, place
from netmesh.wire import Member, MemberList, TestResult, parse_member_list
from tests.collector.conftest import FakeClock, MakeClient
from tests.collector.reports import report, result

NODES = (("a", "10.0.0.1"), ("b", "10.0.0.2"), ("c", "10.0.0.3"))


def timed(node: str, ip: str, results: Sequence[TestResult] = ()) -> dict[str, Any]:
    body = dataclasses.replace(report(node, ip), results=tuple(results)).to_json()
    body["agent"].update(slot_seconds=3.0, report_interval=2.0)
    return body


async def _mesh(client: Any) -> None:
    for node, ip in NODES:
        resp = await client.post("/api/v1/reports", json=timed(node, ip))
        assert resp.status == 200, await resp.text()


@pytest.mark.parametrize(
    ("body", "status", "words"),
    [
        ({"node": "zz"}, 422, "unknown node 'zz'"),
        ({"source": "a", "destination": "zz"}, 422, "unknown node"),
        ({"source": "a", "destination": "a"}, 422, "same node"),
        ({"source": "a"}, 400, "exactly one"),
        ({"node": "a", "mesh": True}, 400, "exactly one"),
        ({"mesh": 1}, 400, "must be true"),
        ({"node": 3}, 400, "non-empty string"),
        ({"node": "a", "protocols": "tcp"}, 400, "protocols"),
        ({"node": "a", "protocols": ["tcp", "tcp"]}, 400, "protocols"),
        ({"node": "a", "colour": "red"}, 400, "unknown field(s) 'colour'"),
        ([], 400, "JSON object"),
        ("node", 400, "JSON object"),
    ],
)
async def test_bad_requests_are_4xx_and_change_nothing(
    make_client: MakeClient, body: Any, status: int, words: str
) -> None:
    client = await make_client()
    await _mesh(client)
    resp = await client.post("/api/v1/sweeps", json=body)
    assert resp.status == status
    assert words in (await resp.json())["error"]
    assert (await (await client.get("/api/v1/sweeps")).json())["sweeps"] == []
    text = await (await client.get("/metrics")).text()
    assert 'netmesh_collector_sweeps_total{result="refused"} 1' in text
    answer = await (await client.post("/api/v1/reports", json=timed("a", "10.0.0.1"))).json()
    assert "sweeps" not in answer


async def test_not_json_and_too_large(make_client: MakeClient) -> None:
    client = await make_client()
    await _mesh(client)
    resp = await client.post("/api/v1/sweeps", data=b"{nope")
    assert resp.status == 400 and "not JSON" in (await resp.json())["error"]
    resp = await client.post("/api/v1/sweeps", data=b" " * 5000)
    assert resp.status == 413
    text = await (await client.get("/metrics")).text()
    assert 'netmesh_collector_sweeps_total{result="refused"} 2' in text
    assert (await client.get("/api/v1/sweeps/none")).status == 404


async def test_a_node_sweep_from_request_to_done(make_client: MakeClient, clock: FakeClock) -> None:
    client = await make_client()
    await _mesh(client)
    resp = await client.post("/api/v1/sweeps", json={"node": "b"})
    assert resp.status == 202
    sweep = await resp.json()
    assert resp.headers["Location"] == f"/api/v1/sweeps/{sweep['id']}"
    assert sweep["state"] == "pending" and sweep["tests"] == 8 and sweep["completed"] == 0
    assert sweep["target"] == {"node": "b"}
    # Lead: twice the agents' report interval + 2 s; the window on their 3 s slot grid.
    assert sweep["start_at"] == pytest.approx(clock.now + 6, abs=0.01)
    assert sweep["planned_end"] - sweep["planned_start"] == 2 * 2 * 3.0
    # Asking again: the same sweep.
    again = await client.post("/api/v1/sweeps", json={"node": "b"})
    assert again.status == 200 and (await again.json())["id"] == sweep["id"]
    # Every report answer lists it (short "unchanged" answers too), as agents parse it.
    resp = await client.post("/api/v1/reports", json=timed("a", "10.0.0.1"))
    body = await resp.json()
    (listed,) = parse_sweeps(body)
    assert listed.id == sweep["id"] and listed.nodes == ("a", "b", "c") and listed.node == "b"
    agent_epoch = parse_member_list(body).epoch
    short = timed("a", "10.0.0.1")
    short["agent"]["epoch"] = agent_epoch
    body = await (await client.post("/api/v1/reports", json=short)).json()
    assert body["unchanged"] is True and parse_sweeps(body) == (listed,)
    # Results arrive (tagged); an untagged or foreign result does not count.
    clock.advance(7)
    tagged = {
        "a": [result("a", "b", p, sweep=sweep["id"]) for p in ("tcp", "udp")]
        + [result("a", "c", "tcp")],
        "c": [result("c", "b", p, sweep=sweep["id"]) for p in ("tcp", "udp")],
        "b": [result("b", "a", p, sweep=sweep["id"]) for p in ("tcp", "udp")]
        + [result("b", "c", "tcp", sweep=sweep["id"]), result("b", "c", "udp", ok=False)],
    }
    ips = dict(NODES)
    for node, results in tagged.items():
        resp = await client.post("/api/v1/reports", json=timed(node, ips[node], results=results))
        assert resp.status == 200
    view = await (await client.get(f"/api/v1/sweeps/{sweep['id']}")).json()
    assert view["state"] == "running" and view["completed"] == 7
    late = [*tagged["b"][:3], result("b", "c", "udp", ok=False, sweep=sweep["id"])]
    await client.post("/api/v1/reports", json=timed("b", "10.0.0.2", results=late))
    view = await (await client.get(f"/api/v1/sweeps/{sweep['id']}")).json()
    assert view["state"] == "done" and view["completed"] == 8 and view["failed"] == 1
    listing = await (await client.get("/api/v1/sweeps")).json()
    assert [s["id"] for s in listing["sweeps"]] == [sweep["id"]]
    assert "results" not in listing["sweeps"][0]
    listing = await (await client.get("/api/v1/sweeps?results=1")).json()
    assert len(listing["sweeps"][0]["results"]) == 8
    short = await (await client.get(f"/api/v1/sweeps/{sweep['id']}?results=0")).json()
    assert "results" not in short and short["completed"] == 8
    text = await (await client.get("/metrics")).text()
    assert 'netmesh_collector_sweeps_total{result="done"} 1' in text
    assert 'netmesh_collector_sweeps_total{result="requested"} 1' in text
    assert "netmesh_collector_sweeps_active 0" in text
    # Listed to agents until its window has ended, then no more.
    clock.advance(60)
    body = await (await client.post("/api/v1/reports", json=timed("a", "10.0.0.1"))).json()
    assert "sweeps" not in body


async def test_an_unanswered_sweep_expires_with_the_missing_tests(
    make_client: MakeClient, clock: FakeClock
) -> None:
    client = await make_client(sweep_grace=10)
    await _mesh(client)
    sweep = await (
        await client.post(
            "/api/v1/sweeps", json={"source": "a", "destination": "c", "protocols": ["tcp"]}
        )
    ).json()
    assert sweep["tests"] == 1
    clock.advance(sweep["planned_end"] - clock.now + 11)
    view = await (await client.get(f"/api/v1/sweeps/{sweep['id']}")).json()
    assert view["state"] == "expired" and "a->c tcp" in view["reason"]


async def test_too_many_pending_is_429(make_client: MakeClient) -> None:
    client = await make_client(sweep_max_pending=2)
    await _mesh(client)
    for body in ({"node": "a"}, {"node": "b"}):
        assert (await client.post("/api/v1/sweeps", json=body)).status == 202
    resp = await client.post("/api/v1/sweeps", json={"mesh": True})
    assert resp.status == 429 and "sweep_max_pending" in (await resp.json())["error"]
    assert len((await (await client.get("/api/v1/sweeps")).json())["sweeps"]) == 2


async def test_sweeps_need_the_token_when_auth_is_on(
    make_client: MakeClient, tmp_path: pathlib.Path
) -> None:
    token = "s3cret-token-of-enough-length-0123456789"
    path = tmp_path / "token"
    path.write_text(token)
    client = await make_client(auth_token_file=str(path), rca_interval=0)
    auth = {"Authorization": f"Bearer {token}"}
    for node, ip in NODES:
        await client.post("/api/v1/reports", json=timed(node, ip), headers=auth)
    resp = await client.post("/api/v1/sweeps", json={"node": "a"})
    assert resp.status == 401 and "sweep rejected (unauthenticated)" in await resp.text()
    bad = {"Authorization": "Bearer wrong-token"}
    assert (await client.post("/api/v1/sweeps", json={"node": "a"}, headers=bad)).status == 401
    assert (await (await client.get("/api/v1/sweeps")).json())["sweeps"] == []
    text = await (await client.get("/metrics")).text()
    assert 'netmesh_collector_sweeps_total{result="refused"} 2' in text
    assert 'netmesh_collector_reports_total{result="unauthenticated"}' not in text
    assert (await client.post("/api/v1/sweeps", json={"node": "a"}, headers=auth)).status == 202


def test_sweeps_requested_together_are_placed_one_after_another() -> None:
    clock = FakeClock(1000.0)
    book = SweepBook(max_pending=8, lead=5, grace=30, history=10, clock=clock)
    members = MemberList(epoch=1, members=tuple(Member(name=n, address=ip) for n, ip in NODES))
    first, _ = book.request({"mesh": True}, members)
    second, _ = book.request({"node": "a"}, members)
    assert second.sweep.start_at > first.sweep.start_at
    a, b = place([first.sweep, second.sweep], book.agents.slot_seconds)
    assert a.end <= b.first
    with pytest.raises(SweepError, match="fewer than two"):
        parse_request({"mesh": True}, MemberList(epoch=1, members=members.members[:1]))
