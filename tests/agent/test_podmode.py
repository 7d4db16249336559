"""The agent in pod-network mode (``network=pod``): settings, and two real endpoints on
loopback addresses measuring each other with every measured series labelled network="pod"."""

from __future__ import annotations

import pathlib
from collections.abc import Iterator

import pytest
from prometheus_client import generate_latest

from agent.light import LightOptions, LightTier
from agent.metrics import make_registry
from agent.settings import AgentSettings
from agent.state import AgentState
from netmesh.config import SettingsError, load
from netmesh.wire import Member, MemberList
from tests.agents import AgentProcess, promtool_check, sample
from tests.collector.reports import light_path, light_status, result
from tests.helpers import free_port, wait_for

BASE = {"NETMESH_NODE_NAME": "node-1", "NETMESH_BIND_ADDRESS": "10.244.0.5"}


def test_network_setting() -> None:
    host = load(AgentSettings, [], BASE)
    assert host.network_name == "host" and host.runs_probe
    pod = load(AgentSettings, [], {**BASE, "NETMESH_NETWORK": "pod"})
    assert pod.network_name == "pod" and not pod.runs_probe
    assert load(AgentSettings, ["--network", "pod"], BASE).network == "pod"
    with pytest.raises(SettingsError, match="network 'overlay': one of host, pod"):
        load(AgentSettings, ["--network", "overlay"], BASE)


def test_agent_metrics_carry_the_network() -> None:
    state = AgentState(me=Member(name="a", address="10.244.0.5"), http_port=9101, network="pod")
    state.record(result("a", "b", "tcp"))
    light = light_status(light_path("b"))
    state.light = lambda: light
    text = generate_latest(make_registry(state)).decode()
    assert sample(text, "netmesh_path_success", network="pod", destination_node="b") == 1.0
    assert sample(text, "netmesh_light_loss_ratio", network="pod", destination_node="b") == 0.0
    assert sample(text, "netmesh_path_tests_total", network="pod", result="ok") == 1.0
    assert state.report(0).network == "pod"


@pytest.fixture
def pod_pair(tmp_path: pathlib.Path) -> Iterator[tuple[AgentProcess, AgentProcess]]:
    light_port = free_port("127.0.0.6")
    env = {"NETMESH_NETWORK": "pod", "NETMESH_LIGHT_PORT": str(light_port)}
    a = AgentProcess("node-a", "127.0.0.6", tmp_path, env=env)
    b = AgentProcess("node-b", "127.0.0.7", tmp_path, env=env)
    a.env["NETMESH_STATIC_PEERS"] = b.env["NETMESH_STATIC_PEERS"] = ",".join(
        f"{n}={addr}:{port}" for n, addr, port in (a.peer, b.peer)
    )
    try:
        yield a.start(), b.start()
    finally:
        a.stop()
        b.stop()


def test_two_pod_endpoints_measure_each_other(
    pod_pair: tuple[AgentProcess, AgentProcess],
) -> None:
    a, _b = pod_pair

    def measured() -> str | None:
        text = a.metrics()
        labels = {"source_node": "node-a", "destination_node": "node-b", "network": "pod"}
        ok = sample(text, "netmesh_path_success", protocol="tcp", **labels) == 1.0
        light = sample(text, "netmesh_light_probes", **labels)
        return text if ok and light else None

    text = wait_for(measured, 30, interval=0.5, what="node-a to measure node-b on the pod network")
    assert sample(text, "netmesh_path_success", network="host") is None
    # No eBPF probe in pod mode: no probe status at all (not "down").
    assert sample(text, "netmesh_agent_probe_up") is None
    assert promtool_check(text) == ""
    report = a.report()
    assert report["network"] == "pod" and report["probe"] is None
    assert report["address"] == "127.0.0.6"


def test_light_tier_follows_the_interface_mtu() -> None:
    mtus = iter([1450, None, 1500, 70000])
    tier = LightTier(
        LightOptions(port=5202, mtu=1450),
        Member(name="a", address="10.244.0.5"),
        lambda: MemberList(epoch=0, members=()),
        mtu_source=lambda: next(mtus),
    )
    assert tier.current_mtu() == 1450
    assert tier.current_mtu() == 1450  # unknown: the last known
    assert tier.current_mtu() == 1500  # an overlay MTU change is probed at once
    assert tier.current_mtu() == 1500  # out of range: ignored
    fixed = LightTier(
        LightOptions(port=5202, mtu=1400),
        Member(name="a", address="10.244.0.5"),
        lambda: MemberList(epoch=0, members=()),
    )
    assert fixed.current_mtu() == 1400
