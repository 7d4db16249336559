"""Pod blame in the collector (static mode, pods file): flows resolve to pods, the verdict
names the pod, its node's host paths stay clean and the node is not named."""

from __future__ import annotations

import json
import pathlib
from typing import Any

from aiohttp.test_utils import TestClient

from collector.app import run_rca
from tests.collector.conftest import FakeClock, MakeClient, promtool_check
from tests.collector.reports import flow, report

NODES = {"a": "10.0.0.1", "b": "10.0.0.2", "c": "10.0.0.3", "d": "10.0.0.4"}
PODS = {n: f"10.244.{i}.2" for i, n in enumerate(NODES, start=1)}


def pods_file(tmp_path: pathlib.Path) -> str:
    path = tmp_path / "pods.json"
    body = [
        {"namespace": "lab", "name": f"{n}-pod", "node": n, "ips": [ip]} for n, ip in PODS.items()
    ]
    path.write_text(json.dumps({"pods": body}))
    return str(path)


async def feed(client: TestClient[Any, Any], into_b: int) -> None:
    """Every node's host paths pass; its pod retransmits ``into_b`` (cumulative) into b's pod,
    and a little between a and c so every pod is active."""
    for name, ip in NODES.items():
        peers = tuple(n for n in NODES if n != name)
        flows = [flow(PODS[name], PODS["b"], 8080, into_b)] if name != "b" else []
        if name == "a":
            flows.append(flow(PODS["a"], PODS["c"], 8080, 1))
        rep = report(name, ip, peers, retransmits=tuple(flows))
        resp = await client.post("/api/v1/reports", json=rep.to_json())
        assert resp.status == 200, await resp.text()


# RCA on (the API answers) but its timer idle after its first run: the tests run it themselves,
# at the fake clock's times, so no timer run interleaves with theirs (rates have history).
IDLE = 3600


async def test_the_pod_is_named_not_its_node(
    make_client: MakeClient, clock: FakeClock, tmp_path: pathlib.Path
) -> None:
    client = await make_client(rca_interval=IDLE, pods_file=pods_file(tmp_path))
    await feed(client, 0)
    await run_rca(client.app)
    clock.advance(5)
    await feed(client, 100)  # 20/s into b's pod from each of the others
    await run_rca(client.app)
    body = await (await client.get("/api/v1/rca")).json()
    pods = [f for f in body["findings"] if f["kind"] == "pod"]
    assert [(f["subject"], f["nodes"], f["direction"]) for f in pods] == [
        ("lab/b-pod", ["b"], "inbound")
    ]
    assert body["verdict"] == "suspects" and body["suspects"] == []
    assert body["summary"].startswith("finding: pod lab/b-pod (inbound)")
    assert pods[0]["rule"] == "{dst=lab/b-pod} -> {FAIL}" and pods[0]["lift"] == 4.0
    assert body["pod_transactions"] == 12 and body["pod_failing"] == 3
    text = await (await client.get("/metrics")).text()
    promtool_check(text)
    assert 'src_namespace="lab",src_pod="a-pod",dst_namespace="lab",dst_pod="b-pod"' in text
    # The pod flows do not count at node level: b's host paths pass, b is no suspect.
    assert 'netmesh_rca_suspect_score{node="b"} 0' in text
    assert (
        'netmesh_rca_finding{kind="pod",subject="lab/b-pod",direction="inbound",layer="pod"} 1'
        in text
    )


async def test_off_leaves_pod_flows_to_their_nodes(
    make_client: MakeClient, clock: FakeClock, tmp_path: pathlib.Path
) -> None:
    client = await make_client(
        rca_interval=IDLE, pods_file=pods_file(tmp_path), rca_pod_retransmits_per_second=0
    )
    await feed(client, 0)
    await run_rca(client.app)
    clock.advance(5)
    await feed(client, 100)
    await run_rca(client.app)
    body = await (await client.get("/api/v1/rca")).json()
    assert "pod_rules" not in body
    # Without pod blame the same evidence counts for the node (20/s > 10/s per node pair).
    assert [s["node"] for s in body["suspects"]] == ["b"]
    assert not [f for f in body.get("findings", []) if f.get("kind") == "pod"]
