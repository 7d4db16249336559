"""Membership: node rules, one agent per node, epochs that only move forward."""

from __future__ import annotations

from collector.membership import Epochs, NodeRules, select_members
from collector.podmap import NodeInfo, PodInfo
from netmesh.wire import Member
from tests.collector.conftest import FakeClock


def _pod(node: str, ip: str = "10.0.0.1", name: str = "", **kw: object) -> PodInfo:
    values: dict[str, object] = {
        "namespace": "netmesh",
        "name": name or f"agent-{node}",
        "node": node,
        "ips": (ip,),
        "host_network": True,
        "phase": "Running",
        "ready": True,
        "deleting": False,
    }
    values.update(kw)
    return PodInfo(**values)  # type: ignore[arg-type]


def _node(name: str, **kw: bool) -> NodeInfo:
    values = {"ready": True, "unschedulable": False, "deleting": False}
    values.update(kw)
    return NodeInfo(name=name, addresses=(), **values)


def test_rules_and_settings() -> None:
    pods = [_pod("n1", "10.0.0.1"), _pod("n2", "10.0.0.2"), _pod("n3", "10.0.0.3")]
    nodes = {
        "n1": _node("n1"),
        "n2": _node("n2", ready=False),
        "n3": _node("n3", unschedulable=True),
    }
    on = select_members(pods, nodes, NodeRules(), lambda p: 5201)
    assert [m.name for m in on] == ["n1"]
    off = NodeRules(exclude_not_ready=False, exclude_unschedulable=False)
    assert [m.name for m in select_members(pods, nodes, off, lambda p: 5201)] == ["n1", "n2", "n3"]


def test_pod_conditions_and_duplicates() -> None:
    pods = [
        _pod("n1", name="agent-x"),
        _pod("n1", name="agent-a", ip="10.0.0.9"),
        _pod("n2", ready=False),
        _pod("n3", deleting=True),
        _pod("n4", phase="Pending"),
        _pod("n5", ips=()),
    ]
    members = select_members(pods, {}, NodeRules(), lambda p: 7000)
    assert [(m.name, m.address, m.iperf3_port) for m in members] == [("n1", "10.0.0.9", 7000)]


def test_epoch_moves_forward_across_restarts() -> None:
    clock = FakeClock(1000.0)
    first = Epochs(clock)
    a = first.update(())
    b = first.update(())
    assert a.epoch == b.epoch == 1_000_000
    c = first.update((Member(name="x", address="10.0.0.1"),))
    assert c.epoch == 1_000_001
    clock.advance(5)
    restarted = Epochs(clock)  # a new collector process
    assert restarted.update(()).epoch > c.epoch
