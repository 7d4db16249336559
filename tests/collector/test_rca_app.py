"""RCA in the collector: /api/v1/rca, suspect-score gauges, the timer, the web page's files."""

from __future__ import annotations

from typing import Any

from aiohttp.test_utils import TestClient

from collector.app import run_rca
from collector.appkeys import RCA
from lab.experiment import describe_rca
from tests.collector.conftest import FakeClock, MakeClient, promtool_check
from tests.collector.reports import flow, report
from tests.helpers import async_wait_for

NODES = {"a": "10.0.0.1", "b": "10.0.0.2", "c": "10.0.0.3", "d": "10.0.0.4"}


async def feed(client: TestClient[Any, Any], bad: tuple[str, ...] = (), **kw: Any) -> None:
    for name, ip in NODES.items():
        peers = tuple(n for n in NODES if n != name)
        rep = report(name, ip, peers, failing=tuple(p for p in peers if p in bad), **kw)
        resp = await client.post("/api/v1/reports", json=rep.to_json())
        assert resp.status == 200, await resp.text()


async def test_rca_names_the_node_all_failing_paths_share(make_client: MakeClient) -> None:
    client = await make_client(rca_interval=0.05)
    await feed(client, bad=("c",))
    await run_rca(client.app)
    body = await (await client.get("/api/v1/rca")).json()
    assert body["verdict"] == "suspects", body["summary"]
    assert [s["node"] for s in body["suspects"]] == ["c"]
    assert body["ranking"][0] == {"node": "c", "score": 1.0}
    assert body["failing"] == 6 and body["transactions"] == 24
    assert {(p["source"], p["destination"]) for p in body["failing_paths"]} == {
        ("a", "c"),
        ("b", "c"),
        ("d", "c"),
    }
    assert body["failing_paths"][0]["reasons"] == ["test refused: connection refused"]
    assert body["rules"][0]["consequent"] == ["FAIL"] and body["rules"][0]["confidence"] == 1.0
    assert body["runs"] >= 1 and body["age_seconds"] >= 0
    # Every finding says its layer: the path RCA judges host paths, the underlay.
    assert [(f["subject"], f["layer"]) for f in body["findings"]] == [("c", "underlay")]

    text = await (await client.get("/metrics")).text()
    promtool_check(text)
    assert 'netmesh_rca_suspect_score{node="c"} 1' in text
    assert 'netmesh_rca_suspect_score{node="a"} 0' in text  # every node, 0 when innocent
    assert 'netmesh_rca_suspect{node="c"} 1' in text
    assert "netmesh_rca_failing_paths 6" in text
    assert "netmesh_rca_cluster_wide 0" in text


async def test_timer_reruns_on_new_reports_and_clears(make_client: MakeClient) -> None:
    client = await make_client(rca_interval=0.05)
    await feed(client, bad=("b",))

    async def verdict() -> str | None:
        body = await (await client.get("/api/v1/rca")).json()
        return str(body["verdict"]) if body["suspects"] or body["verdict"] == "ok" else None

    assert await async_wait_for(verdict, 5, what="a verdict") == "suspects"
    await feed(client)  # the fault is gone: every path passes again
    assert await async_wait_for(lambda: _verdict_is(client, "ok"), 5, what="the ok verdict"), (
        "RCA did not clear"
    )
    body = await (await client.get("/api/v1/rca")).json()
    assert body["summary"] == "" and body["suspects"] == [] and body["rules"] == []
    text = await (await client.get("/metrics")).text()
    assert 'netmesh_rca_suspect_score{node="b"} 0' in text


async def _verdict_is(client: TestClient[Any, Any], want: str) -> bool:
    body = await (await client.get("/api/v1/rca")).json()
    return bool(body["verdict"] == want)


async def test_everything_failing_is_cluster_wide(make_client: MakeClient) -> None:
    client = await make_client(rca_interval=0.05)
    await feed(client, bad=tuple(NODES))
    await run_rca(client.app)
    body = await (await client.get("/api/v1/rca")).json()
    assert body["verdict"] == "cluster-wide" and body["suspects"] == []
    assert "cluster-wide" in body["summary"]
    assert "netmesh_rca_cluster_wide 1" in await (await client.get("/metrics")).text()


async def test_ebpf_retransmissions_make_paths_fail(
    make_client: MakeClient, clock: FakeClock
) -> None:
    """Retransmissions counted in the senders' kernels toward d, at 50/s: d is the suspect."""
    client = await make_client(rca_interval=60, rca_ebpf_retransmits_per_second=10)
    app = client.app
    for count in (0, 500):
        for name, ip in NODES.items():
            peers = tuple(n for n in NODES if n != name)
            flows = () if name == "d" else (flow(ip, NODES["d"], count=count),)
            await client.post(
                "/api/v1/reports", json=report(name, ip, peers, retransmits=flows).to_json()
            )
        await run_rca(app)
        clock.advance(10)
    body = await (await client.get("/api/v1/rca")).json()
    assert [s["node"] for s in body["suspects"]] == ["d"], body["summary"]
    reasons = {r for p in body["failing_paths"] for r in p["reasons"]}
    assert reasons == {"eBPF retransmissions 50/s > 10/s"}


async def test_before_first_run_and_when_off(make_client: MakeClient) -> None:
    client = await make_client(rca_interval=60)
    app = client.app
    app[RCA].latest = None
    body = await (await client.get("/api/v1/rca")).json()
    assert body["verdict"] == "no-data" and body["suspects"] == []
    off = await make_client(rca_interval=0)
    await feed(off, bad=("c",))
    assert (await (await off.get("/api/v1/rca")).json())["verdict"] == "off"
    assert "netmesh_rca_" not in await (await off.get("/metrics")).text()


async def test_page_and_assets_are_served_without_external_urls(make_client: MakeClient) -> None:
    client = await make_client()
    page = await client.get("/")
    assert page.status == 200 and page.content_type == "text/html"
    html = await page.text()
    assert 'id="matrix"' in html and 'id="verdict"' in html
    for asset, kind in (("/static/app.js", "javascript"), ("/static/style.css", "text/css")):
        resp = await client.get(asset)
        assert resp.status == 200 and kind in resp.content_type, asset
        text = await resp.text()
        assert "http://" not in text and "https://" not in text, f"{asset} loads from elsewhere"
    assert "http://" not in html and "https://" not in html
    assert (await client.get("/static/../app.py")).status in (403, 404)


def test_experiment_prints_the_verdict_of_the_fault_phase() -> None:
    body = {"verdict": "suspects", "summary": "suspect: c (...)", "suspects": [{"node": "c"}]}
    assert describe_rca(body, "c") == (
        "RCA verdict at the end of the fault phase: suspects — suspect: c (...) "
        "(names the faulty node first)"
    )
    assert describe_rca({"verdict": "ok", "summary": ""}, "c").endswith(
        "ok — no failing paths (expected c)"
    )
    assert "did not answer" in describe_rca(None, "c")
    service = {"node": "c", "kind": "failing", "summary": "Service on c: 6 of 6 connects ..."}
    body = {"verdict": "ok", "summary": "", "service_findings": [service]}
    assert describe_rca(body, "c") == (
        "RCA verdict at the end of the fault phase: ok — no failing paths; "
        "Service on c: 6 of 6 connects ... (names the faulty node first)"
    )
