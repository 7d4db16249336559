"""Pod map: pod and node JSON → records, IP → identity, hostNetwork → node, dirty IPs."""

from __future__ import annotations

from collector.podmap import Identity, PodMap, parse_node, parse_pod
from tests.collector.fakekube import node, pod


def test_parse_pod_and_node() -> None:
    p = parse_pod(pod("web", "10.1.0.5", namespace="shop", node="n1", iperf3_port=5301))
    assert p is not None
    assert (p.namespace, p.name, p.node, p.ips, p.ready, p.iperf3_port) == (
        "shop",
        "web",
        "n1",
        ("10.1.0.5",),
        True,
        5301,
    )
    n = parse_node(node("n1", "192.168.0.1", unschedulable=True))
    assert n is not None and n.addresses == ("192.168.0.1",) and n.unschedulable and n.ready
    assert parse_pod({"metadata": {}}) is None
    assert parse_pod("garbage") is None
    broken = parse_pod({"metadata": {"name": "x"}, "status": {"podIP": "nope", "podIPs": 3}})
    assert broken is not None and broken.ips == ()


def test_resolution_rules() -> None:
    m = PodMap()
    m.replace_nodes([parse_node(node("n1", "192.168.0.1"))])  # type: ignore[list-item]
    m.replace_pods(
        [
            parse_pod(pod("a", "10.1.0.1", namespace="x")),  # type: ignore[list-item]
            parse_pod(pod("hn1", "192.168.0.2", host_network=True, node="n2")),  # type: ignore[list-item]
            parse_pod(pod("hn2", "192.168.0.2", host_network=True, node="n2")),  # type: ignore[list-item]
            parse_pod(pod("done", "10.1.0.9", phase="Succeeded")),  # type: ignore[list-item]
        ]
    )
    assert m.resolve("10.1.0.1") == Identity("x", "a", "pod")
    assert m.resolve("192.168.0.1") == Identity("", "n1", "node")
    assert m.resolve("192.168.0.2") == Identity("", "n2", "node")
    assert m.resolve("10.1.0.9") is None  # terminal pods release their IP
    assert m.take_dirty() is None  # a re-list: everything may have changed
    # A successor pod takes the IP of one being deleted: the live one wins.
    old = parse_pod(pod("old", "10.1.0.7", deleting=True))
    new = parse_pod(pod("new", "10.1.0.7"))
    assert old is not None and new is not None
    m.upsert_pod(old)
    m.upsert_pod(new)
    assert m.resolve("10.1.0.7") == Identity("default", "new", "pod")
    m.delete_pod(new.key)
    assert m.resolve("10.1.0.7") == Identity("default", "old", "pod")
    m.delete_pod(old.key)
    assert m.resolve("10.1.0.7") is None
    assert m.take_dirty() == {"10.1.0.7"}
    # One hostNetwork pod leaving keeps the node mapping.
    m.delete_pod(("default", "hn1"))
    assert m.resolve("192.168.0.2") == Identity("", "n2", "node")
    assert m.ip_count == 3


def test_unchanged_events_do_not_dirty() -> None:
    m = PodMap()
    p = parse_pod(pod("a", "10.1.0.1"))
    assert p is not None
    m.upsert_pod(p)
    m.take_dirty()
    generation = m.generation
    m.upsert_pod(p)
    assert m.take_dirty() == set() and m.generation == generation
