"""Fault and rate parsing, tbf sizing, topology: pure functions, no root."""

from __future__ import annotations

import pytest

from lab import service
from lab.faults import Fault, FaultError, parse_delay, parse_fault, parse_loss, parse_rate
from lab.netns import MIN_BURST_BYTES, tbf_args
from lab.settings import LabSettings
from lab.topology import build
from netmesh.config import SettingsError, load


@pytest.mark.parametrize(
    ("text", "bps"),
    [
        ("200mbit", 200_000_000),
        ("1gbit", 10**9),
        ("500k", 500_000),
        ("1.5G", 1_500_000_000),
        ("200Mbps", 200_000_000),
    ],
)
def test_parse_rate(text: str, bps: int) -> None:
    assert parse_rate(text) == bps


@pytest.mark.parametrize("text", ["fast", "-1mbit", "10", "1tbit"])
def test_parse_rate_rejects(text: str) -> None:
    with pytest.raises(FaultError, match="rate"):
        parse_rate(text)


def test_parse_rate_says_why() -> None:
    with pytest.raises(FaultError, match=r"rate: 'fast' is not a rate like 100M"):
        parse_rate("fast")
    with pytest.raises(FaultError, match=r"rate: '10' is below the minimum of 8000 bit/s"):
        parse_rate("10")


def test_parse_loss_and_delay() -> None:
    assert parse_loss("5%") == pytest.approx(0.05)
    assert parse_loss("0.2") == pytest.approx(0.2)
    for bad in ("0", "100%", "1.5", "x"):
        with pytest.raises(FaultError, match="loss"):
            parse_loss(bad)
    assert parse_delay("50ms") == 50 and parse_delay("0.1s") == 100 and parse_delay("7") == 7
    with pytest.raises(FaultError, match="delay"):
        parse_delay("soon")


def test_fault_description() -> None:
    assert Fault(loss=0.05, rate_bps=200_000_000).describe() == "5% loss in, rate 200 Mbit/s out"
    assert Fault().empty() and Fault().describe() == "none"


def test_parse_fault_dns_and_service_scopes() -> None:
    assert parse_fault({"dns": "down"}) == Fault(dns_down=True)
    assert parse_fault({"dns": "pod-down", "service": "down", "loss": None}) == Fault(
        pod_dns_down=True, service_down=True
    )
    assert parse_fault({"service": "POD-DOWN"}).describe() == "Service down for its pods"
    assert parse_fault({"loss": "5%", "mtu": ""}) == Fault(loss=0.05)
    with pytest.raises(FaultError, match="service 'up': one of down, pod-down"):
        parse_fault({"service": "up"})
    with pytest.raises(FaultError, match="dns 'slow'"):
        parse_fault({"dns": "slow"})


def test_lab_service_rules_translate_the_vip_to_the_collector() -> None:
    topo = build("nmx", "10.77.0.0/24", 3)
    assert service.vip(topo) == "10.77.0.254"
    assert service.target(topo, 9100) == "10.77.0.254:9100"
    assert all(n.address != service.vip(topo) for n in topo.nodes)
    cmds = service.nat_commands(topo, topo.nodes[0], port=9100, backend="10.77.0.1:9100")
    assert all(c[:4] == ["ip", "netns", "exec", "nmx-node-1"] for c in cmds)
    dnat = " ".join(cmds[1])
    assert "-d 10.77.0.254 -p tcp --dport 9100 -j DNAT --to-destination 10.77.0.1:9100" in dnat
    hooks = {c[-3] for c in cmds[2:]}
    assert hooks == {"OUTPUT", "PREROUTING"}  # the node's own connects and its pods'
    with pytest.raises(ValueError, match="too small"):
        build("nmx", "10.77.0.0/28", 4)  # 10 + 4 nodes + network, broadcast and the VIP


def test_tbf_burst_holds_a_gso_segment() -> None:
    args = tbf_args(10_000_000)
    assert int(args[args.index("burst") + 1]) == MIN_BURST_BYTES
    args = tbf_args(10_000_000_000)
    assert int(args[args.index("burst") + 1]) == 10_000_000_000 // 8 // 100


def test_topology_addresses_and_names() -> None:
    topo = build("nmlab", "10.211.0.0/24", 4)
    assert topo.bridge == "nmlab-br" and topo.bridge_address == "10.211.0.1"
    assert [n.address for n in topo.nodes] == [f"10.211.0.{10 + i}" for i in range(1, 5)]
    assert topo.node("3").name == topo.node("node-3").name == topo.node("10.211.0.13").name
    with pytest.raises(KeyError, match="node-9"):
        topo.node("node-9")
    with pytest.raises(ValueError, match="private"):
        build("nmlab", "8.8.8.0/24", 4)
    with pytest.raises(ValueError, match="15 characters"):
        build("averyverylongprefix", "10.0.0.0/24", 4)


def test_lab_settings_validation() -> None:
    s = load(LabSettings, ["--nodes", "6", "--baseline-rate", "500mbit"], {})
    assert s.nodes == 6 and s.baseline_rate == 500_000_000
    assert s.slot_seconds == 3.0
    assert s.sweep_seconds() == 5 * 2 * 3.0
    capped = load(LabSettings, ["--nodes", "6", "--concurrency", "4", "--omit-seconds", "1"], {})
    assert capped.slot_seconds == 4.0
    assert capped.sweep_seconds() == 5 * 2 * 2 * 4.0  # rounds x protocols x sub-slots
    with pytest.raises(SettingsError, match="private"):
        load(LabSettings, ["--subnet", "1.2.3.0/24"], {})
    with pytest.raises(SettingsError, match="nodes 1"):
        load(LabSettings, ["--nodes", "1"], {})
