"""Kubernetes mode through the real ``kubernetes`` client against the fake API server.

List-then-watch of agent pods, all pods and nodes: pod IP → name, deletion,
hostNetwork → node, 410 Gone and dropped connections recover without losing
entries, membership leaves out NotReady / cordoned / deleting nodes.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
from kubernetes import client as k8s

from collector.app import run_rca
from collector.appkeys import INFORMERS, MEMBERSHIP, STATE
from collector.kube import make_api
from collector.podmap import Identity
from tests.collector.conftest import MakeClient, promtool_check
from tests.collector.fakekube import FakeKube, node, pod
from tests.collector.reports import flow, report
from tests.helpers import async_wait_for

AGENT_LABELS = {"app.kubernetes.io/name": "netmesh-agent"}
KUBE = {
    "mode": "kubernetes",
    "auth": "none",  # the watches here; authentication: tests/collector/test_auth_kube.py
    "watch_timeout": 30,
    "api_timeout": 5.0,
    "watch_backoff": 0.1,
    "watch_max_backoff": 0.5,
}


@pytest.fixture
async def fake() -> AsyncIterator[FakeKube]:
    server = FakeKube()
    await server.start()
    yield server
    await server.stop()


def api_for(fake: FakeKube) -> Any:
    cfg = k8s.Configuration()
    cfg.host = fake.url
    return k8s.CoreV1Api(k8s.ApiClient(cfg))


def agent(node_name: str, ip: str, **kw: Any) -> dict[str, Any]:
    return pod(
        f"agent-{node_name}",
        ip,
        namespace="netmesh",
        node=node_name,
        host_network=True,
        labels=AGENT_LABELS,
        **kw,
    )


async def until(predicate: Any, what: str, within: float = 10.0) -> Any:
    async def check() -> Any:
        return predicate()

    return await async_wait_for(check, within=within, what=what)


async def test_pod_map_list_watch_delete_and_host_network(
    fake: FakeKube, make_client: MakeClient
) -> None:
    fake.put("nodes", node("node-a", "192.168.0.1"))
    fake.put("pods", pod("web-1", "10.1.0.5", namespace="shop"))
    fake.put("pods", pod("proxy", "192.168.0.1", namespace="kube-system", host_network=True))
    client = await make_client(kube_api=api_for(fake), **KUBE)
    state = client.app[STATE]
    await until(lambda: all(i.synced for i in client.app[INFORMERS]), "first lists")
    assert (await client.get("/readyz")).status == 200
    assert state.resolve("10.1.0.5") == Identity("shop", "web-1", "pod")
    # A hostNetwork pod's IP is the node's, never that pod's.
    assert state.resolve("192.168.0.1") == Identity("", "node-a", "node")
    assert state.resolve("10.9.9.9") == Identity("", "10.9.9.9", "ip")

    fake.put("pods", pod("web-2", "10.1.0.6", namespace="shop"))
    await until(lambda: state.resolve("10.1.0.6").kind == "pod", "watched pod")
    fake.delete("pods", "web-1", "shop")
    await until(lambda: state.resolve("10.1.0.5").kind == "ip", "deleted pod to leave")

    # Retransmissions name pods; a deleted pod's series turn into the raw IP.
    await client.post(
        "/api/v1/reports",
        json=report(
            "node-a",
            "192.168.0.1",
            retransmits=(flow("10.1.0.6", "192.168.0.1", 8080), flow("10.1.0.7", "10.1.0.6")),
        ).to_json(),
    )
    text = await (await client.get("/metrics")).text()
    promtool_check(text)
    assert (
        'netmesh_tcp_retransmits_total{node="node-a",src_namespace="shop",src_pod="web-2",'
        'dst_namespace="",dst_pod="node-a",port="8080"} 5' in text
    )
    assert 'src_pod="10.1.0.7",dst_namespace="shop",dst_pod="web-2"' in text
    fake.delete("pods", "web-2", "shop")
    await until(lambda: state.resolve("10.1.0.6").kind == "ip", "web-2 gone")
    text = await (await client.get("/metrics")).text()
    assert 'src_pod="web-2"' not in text and 'dst_pod="web-2"' not in text
    assert 'src_pod="10.1.0.6"' in text
    assert 'netmesh_collector_watch_up{resource="pods"} 1' in text
    assert fake.requests[("/api/v1/pods", "list")] == 1  # never re-listed without a reason


async def test_410_gone_relists_and_disconnect_resumes(
    fake: FakeKube, make_client: MakeClient
) -> None:
    for i in range(3):
        fake.put("pods", pod(f"p{i}", f"10.1.0.{i + 1}"))
    client = await make_client(kube_api=api_for(fake), **KUBE)
    state = client.app[STATE]
    await until(lambda: all(i.synced for i in client.app[INFORMERS]), "first lists")
    await until(lambda: fake.open_watches == 3, "three open watches")

    # Dropped connection: resume the watch from the last version, no re-list.
    lists = fake.requests[("/api/v1/pods", "list")]
    assert fake.drop_watches() == 3
    fake.put("pods", pod("p3", "10.1.0.4"))
    await until(lambda: state.resolve("10.1.0.4").kind == "pod", "event after the drop")
    assert fake.requests[("/api/v1/pods", "list")] == lists
    assert all(state.resolve(f"10.1.0.{i + 1}").kind == "pod" for i in range(3))

    # 410 Gone: the version was compacted away while disconnected → list again.
    await until(lambda: fake.open_watches == 3, "watches back")
    fake.drop_watches()
    fake.put("pods", pod("p4", "10.1.0.5"))
    fake.delete("pods", "p0", "default")
    fake.compact()
    await until(lambda: fake.requests[("/api/v1/pods", "list")] > lists, "a re-list after 410")
    await until(lambda: state.resolve("10.1.0.5").kind == "pod", "pod added while gone")
    await until(lambda: state.resolve("10.1.0.1").kind == "ip", "pod deleted while gone")
    assert all(state.resolve(f"10.1.0.{i}").kind == "pod" for i in (2, 3, 4, 5))
    assert fake.gone_sent >= 1
    restarts = state.stats.watch_restarts
    assert restarts[("pods", "gone")] >= 1 and restarts[("pods", "error")] >= 1
    text = await (await client.get("/metrics")).text()
    assert 'netmesh_collector_watch_restarts_total{resource="pods",reason="gone"}' in text


async def test_membership_excludes_bad_nodes_and_follows_watch(
    fake: FakeKube, make_client: MakeClient
) -> None:
    fake.put("nodes", node("n1", "192.168.0.1"))
    fake.put("nodes", node("n2", "192.168.0.2", ready=False))
    fake.put("nodes", node("n3", "192.168.0.3", unschedulable=True))
    fake.put("nodes", node("n4", "192.168.0.4", deleting=True))
    fake.put("nodes", node("n5", "192.168.0.5"))
    fake.put("nodes", node("n6", "192.168.0.6"))
    fake.put("pods", agent("n1", "192.168.0.1", iperf3_port=5301))
    fake.put("pods", agent("n2", "192.168.0.2"))
    fake.put("pods", agent("n3", "192.168.0.3"))
    fake.put("pods", agent("n4", "192.168.0.4"))
    fake.put("pods", agent("n5", "192.168.0.5", ready=False))
    fake.put("pods", agent("n6", None, phase="Pending", ready=False))
    fake.put("pods", pod("other", "10.1.0.9", namespace="netmesh", node="n1"))  # not an agent
    fake.fail_lists(2)  # the first lists fail: back off, not ready, then recover
    client = await make_client(kube_api=api_for(fake), **KUBE)
    membership = client.app[MEMBERSHIP]
    assert (await client.get("/readyz")).status == 503
    await until(lambda: all(i.synced for i in client.app[INFORMERS]), "lists after failures")
    assert (await client.get("/readyz")).status == 200
    members = membership.current()
    assert [(m.name, m.address, m.iperf3_port) for m in members.members] == [
        ("n1", "192.168.0.1", 5301)
    ]

    # n2 becomes Ready, n5's agent becomes Ready: both join; n1 is cordoned: it leaves.
    fake.put("nodes", node("n2", "192.168.0.2"))
    fake.put("pods", agent("n5", "192.168.0.5"))
    fake.put("nodes", node("n1", "192.168.0.1", unschedulable=True))
    await until(lambda: [m.name for m in membership.current().members] == ["n2", "n5"], "n2, n5 in")
    assert membership.current().epoch > members.epoch
    # An agent's reported iperf3 port is used when its pod names none.
    resp = await client.post(
        "/api/v1/reports", json=report("n2", "192.168.0.2", iperf3_port=6201).to_json()
    )
    listed = {m["name"]: m["iperf3_port"] for m in (await resp.json())["members"]}
    assert listed == {"n2": 6201, "n5": 5201}
    text = await (await client.get("/metrics")).text()
    assert 'netmesh_agent_up{node="n5"} 0' in text  # a member that has not reported


async def test_watch_threads_stop_promptly(fake: FakeKube, make_client: MakeClient) -> None:
    client = await make_client(kube_api=api_for(fake), **KUBE)
    informers = client.app[INFORMERS]
    await until(lambda: fake.open_watches == 3, "open watches")
    assert (await client.get("/healthz")).status == 200
    started = time.monotonic()
    await client.close()
    assert time.monotonic() - started < 5
    assert not any(i.alive for i in informers)


async def test_server_side_watch_timeout_rewatches_without_relisting(
    fake: FakeKube, make_client: MakeClient
) -> None:
    client = await make_client(kube_api=api_for(fake), **{**KUBE, "watch_timeout": 2})
    state = client.app[STATE]
    await until(lambda: all(i.synced for i in client.app[INFORMERS]), "first lists")
    await until(lambda: state.stats.watch_restarts[("pods", "closed")] >= 1, "a watch to expire")
    fake.put("pods", pod("late", "10.1.0.8"))
    await until(lambda: state.resolve("10.1.0.8").kind == "pod", "event on the new watch")
    assert fake.requests[("/api/v1/pods", "list")] == 1
    assert fake.requests[("/api/v1/pods", "watch")] >= 2


async def test_make_api_from_a_kubeconfig(fake: FakeKube, tmp_path: Any) -> None:
    path = tmp_path / "kubeconfig"
    path.write_text(
        "apiVersion: v1\nkind: Config\ncurrent-context: fake\n"
        f"clusters: [{{name: fake, cluster: {{server: '{fake.url}'}}}}]\n"
        "contexts: [{name: fake, context: {cluster: fake, user: me}}]\n"
        "users: [{name: me, user: {token: t}}]\n"
    )
    fake.put("nodes", node("n1", "192.168.0.1"))
    api = make_api(str(path))
    nodes = await asyncio.to_thread(api.list_node)
    assert [n.metadata.name for n in nodes.items] == ["n1"]


async def test_node_topology_labels_reach_the_rca(fake: FakeKube, make_client: MakeClient) -> None:
    """Zone and rack come from the watched Node objects (the collector's zone_label and
    rack_label) and win over the agents' own labels; a relabelled node follows the watch."""
    rack = {"node-a": "r1", "node-b": "r1", "node-c": "r2", "node-d": "r2"}
    for i, (name, r) in enumerate(rack.items(), 1):
        labels = {"topology.kubernetes.io/zone": "z1", "example.com/tor": r}
        fake.put("nodes", node(name, f"192.168.0.{i}", labels=labels))
    client = await make_client(kube_api=api_for(fake), rack_label="example.com/tor", **KUBE)
    await until(lambda: all(i.synced for i in client.app[INFORMERS]), "first lists")
    for i, name in enumerate(rack, 1):
        peers = tuple(n for n in rack if n != name)
        failing = tuple(p for p in peers if rack[p] != rack[name])  # every cross-rack path
        base = report(name, f"192.168.0.{i}", peers, failing=failing)
        body = base.to_json()
        body["labels"] = {"rack": "ignored", "zone": "ignored"}  # the Node's labels win
        assert (await client.post("/api/v1/reports", json=body)).status == 200
    await run_rca(client.app)
    rca = await (await client.get("/api/v1/rca")).json()
    assert [(f["kind"], f["subject"]) for f in rca["findings"]] == [("rack-path", "r1|r2")]
    assert rca["suspects"] == []
    text = await (await client.get("/metrics")).text()
    promtool_check(text)
    assert 'netmesh_node_info{node="node-c",zone="z1",rack="r2"} 1' in text
    assert (
        'netmesh_rca_finding{kind="rack-path",subject="r1|r2",direction="both",layer="underlay"} 1'
        in text
    )

    fake.put("nodes", node("node-c", "192.168.0.3", labels={"example.com/tor": "r9"}))
    await until(lambda: client.app[STATE].pod_map.nodes["node-c"].rack == "r9", "relabelled")
    await run_rca(client.app)
    text = await (await client.get("/metrics")).text()
    assert 'netmesh_node_info{node="node-c",zone="ignored",rack="r9"} 1' in text
