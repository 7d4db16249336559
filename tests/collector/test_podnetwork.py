"""Pod-network endpoints in the collector: kept apart from the host agents, their own
member list, exposed with network="pod", the JSON API by network, authorisation."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import pytest

from collector.app import run_rca
from collector.appkeys import STATE
from collector.auth import Caller, Rejected, TokenReviewAuth
from collector.podmap import PodInfo
from collector.state import CollectorState, Limits
from collector.tokenreview import Review
from netmesh.wire import Report, WireError, parse_member_list, parse_report
from tests.collector.conftest import FakeClock, MakeClient, promtool_check
from tests.collector.reports import light_path, light_status, report


def pod_report(node: str, address: str, peers: tuple[str, ...] = (), **kw: object) -> Report:
    return dataclasses.replace(report(node, address, peers, **kw), network="pod")  # type: ignore[arg-type]


def _json(r: Report) -> dict[str, Any]:
    out: dict[str, Any] = json.loads(json.dumps(r.to_json()))
    return out


def test_the_wire_carries_the_network_host_by_default() -> None:
    host = _json(report("a", "10.0.0.1"))
    assert host["network"] == "host"
    del host["network"]  # an older agent
    assert parse_report(host).network == "host"
    pod = _json(pod_report("a", "10.244.0.5"))
    assert parse_report(pod).network == "pod"
    for bad in ("overlay", 1, None, ""):
        with pytest.raises(WireError, match="network: unknown network"):
            parse_report({**pod, "network": bad})


def test_state_keeps_the_networks_apart(clock: FakeClock) -> None:
    state = CollectorState(Limits(report_ttl=10), clock=clock)
    assert state.networks() == (state,)
    state.accept(report("a", "10.0.0.1", ("b",)))
    state.accept(pod_report("a", "10.244.0.5", ("b",)))
    assert state.agents["a"].report.address == "10.0.0.1"
    assert state.pod_network.agents["a"].report.address == "10.244.0.5"
    assert state.networks() == (state, state.pod_network)
    assert [r.destination for r in state.latest_results()] == ["b", "b"]  # host only
    with pytest.raises(ValueError, match="host-network report"):
        state.pod_network.accept(report("b", "10.0.0.2"))
    clock.advance(5)
    state.accept(report("a", "10.0.0.1", ("b",)))
    clock.advance(6)
    assert state.expire() == ["a (pod)"]  # the host sweep expires pod endpoints too
    assert "a" in state.agents and not state.pod_network.agents
    assert state.stats.expired == 1


async def test_pod_endpoints_get_their_own_member_list(make_client: MakeClient) -> None:
    client = await make_client()
    for node, ip in (("a", "10.0.0.1"), ("b", "10.0.0.2"), ("c", "10.0.0.3")):
        resp = await client.post("/api/v1/reports", json=report(node, ip).to_json())
        assert resp.status == 200
    host = parse_member_list(await resp.json())
    for node, ip in (("b", "10.244.1.5"), ("a", "10.244.0.5")):
        resp = await client.post("/api/v1/reports", json=pod_report(node, ip).to_json())
        assert resp.status == 200, await resp.text()
    pods = parse_member_list(await resp.json())
    assert [(m.name, m.address) for m in pods.members] == [("a", "10.244.0.5"), ("b", "10.244.1.5")]
    # The host list did not change (pod endpoints are not host members).
    resp = await client.post("/api/v1/reports", json=report("a", "10.0.0.1").to_json())
    assert parse_member_list(await resp.json()) == host
    assert len(client.app[STATE].agents) == 3


async def test_metrics_and_json_api_carry_the_network(make_client: MakeClient) -> None:
    client = await make_client()
    light = light_status(light_path("b", lost=0))
    await client.post("/api/v1/reports", json=report("a", "10.0.0.1", ("b",)).to_json())
    await client.post("/api/v1/reports", json=report("b", "10.0.0.2", ("a",)).to_json())
    await client.post(
        "/api/v1/reports",
        json=pod_report("a", "10.244.0.5", ("b",), failing=("b",), light=light).to_json(),
    )
    text = await (await client.get("/metrics")).text()
    promtool_check(text)
    assert (
        'netmesh_path_success{source_node="a",destination_node="b",protocol="tcp",'
        'network="host"} 1' in text
    )
    assert (
        'netmesh_path_success{source_node="a",destination_node="b",protocol="tcp",'
        'network="pod"} 0' in text
    )
    assert 'netmesh_light_loss_ratio{source_node="a",destination_node="b",network="pod"} 0' in text
    assert 'netmesh_pod_endpoint_up{node="a"} 1' in text
    assert 'netmesh_pod_endpoint_report_age_seconds{node="a"} 0' in text
    assert 'netmesh_pod_endpoint_up{node="b"}' not in text  # never a pod member
    # The pod endpoint's health families would collide with its node's agent: left out.
    assert text.count('netmesh_agent_iperf3_server_up{node="a"}') == 1

    host = await (await client.get("/api/v1/matrix")).json()
    pod = await (await client.get("/api/v1/matrix?network=pod")).json()
    assert host["network"] == "host" and pod["network"] == "pod"
    assert {p["success"] for p in host["paths"] if p["protocol"] == "tcp"} == {True}
    assert [p["success"] for p in pod["paths"] if p["protocol"] == "tcp"] == [False]
    light_body = await (await client.get("/api/v1/light?network=pod")).json()
    assert light_body["network"] == "pod" and light_body["paths"][0]["destination"] == "b"
    nodes = await (await client.get("/api/v1/nodes?network=pod")).json()
    assert [n["address"] for n in nodes["nodes"]] == ["10.244.0.5"]
    resp = await client.get("/api/v1/matrix?network=overlay")
    assert resp.status == 400 and "one of host, pod" in await resp.text()


def _pod(name: str, node: str, *, host_network: bool = False, uid: str = "u1") -> PodInfo:
    return PodInfo(
        namespace="netmesh",
        name=name,
        node=node,
        ips=("10.244.0.5",),
        host_network=host_network,
        phase="Running",
        ready=True,
        deleting=False,
        uid=uid,
    )


async def _no_review(_token: str) -> Review:
    raise AssertionError("not reviewed in this test")


def test_tokenreview_authorises_pod_endpoints_by_their_pod() -> None:
    pods = {
        ("netmesh", "pod-ep-a"): _pod("pod-ep-a", "node-a"),
        ("netmesh", "agent-a"): _pod("agent-a", "node-a", host_network=True),
    }
    auth = TokenReviewAuth(
        _no_review,
        lambda key: pods.get(key) if key[1].startswith("agent") else None,
        any_pod=pods.get,
        audience="netmesh-collector",
        namespace="netmesh",
        cache_ttl=60,
        cache_size=10,
    )
    auth.authorize(Caller("pod", "netmesh", "pod-ep-a", "u1", "node-a"), "node-a", "pod")
    for caller, node, why in (
        (Caller("pod", "netmesh", "pod-ep-a", "u1", ""), "node-b", "runs on node node-a"),
        (Caller("pod", "netmesh", "pod-ep-a", "u2", ""), "node-a", "uid differs"),
        (Caller("pod", "netmesh", "agent-a", "u1", ""), "node-a", "not a pod-network pod"),
        (Caller("pod", "netmesh", "ghost", "u1", ""), "node-a", "not a pod-network pod"),
        (Caller("pod", "other", "pod-ep-a", "u1", ""), "node-a", "namespace other"),
    ):
        with pytest.raises(Rejected, match=why) as info:
            auth.authorize(caller, node, "pod")
        assert info.value.status == 403
    # A pod endpoint cannot report for the host network (it is not an agent pod).
    with pytest.raises(Rejected, match="not an agent pod"):
        auth.authorize(Caller("pod", "netmesh", "pod-ep-a", "u1", ""), "node-a", "host")


async def test_rca_names_the_overlay_mtu_of_a_node_whose_host_paths_are_fine(
    make_client: MakeClient,
) -> None:
    client = await make_client(rca_interval=0.05)
    nodes = {"a": "1", "b": "2", "c": "3"}

    def light_of(node: str, *, pod: bool) -> Any:
        paths = []
        for peer in nodes:
            if peer == node:
                continue
            bad = pod and node == "a"  # a's pods send 1500-byte packets into a 1450 overlay
            paths.append(
                light_path(
                    peer, mtu_size=1500 if bad else 1450, mtu_sent=3, mtu_received=1 if bad else 3
                )
            )
        return light_status(*paths)

    for node, n in nodes.items():
        peers = tuple(p for p in nodes if p != node)
        host = report(node, f"10.0.0.{n}", peers, light=light_of(node, pod=False))
        pod = pod_report(node, f"10.244.{n}.5", (), light=light_of(node, pod=True))
        for r in (host, pod):
            resp = await client.post("/api/v1/reports", json=r.to_json())
            assert resp.status == 200, await resp.text()
    await run_rca(client.app)
    body = await (await client.get("/api/v1/rca")).json()
    assert body["verdict"] == "ok", body["summary"]  # the host network is fine
    (finding,) = body["layer_findings"]
    assert finding["node"] == "a" and finding["kind"] == "overlay-mtu"
    assert finding["layer"] == "overlay" and finding["summary"].startswith("overlay MTU on node a")
    text = await (await client.get("/metrics")).text()
    assert 'netmesh_rca_layer_finding{node="a",layer="overlay",kind="overlay-mtu"} 1' in text
