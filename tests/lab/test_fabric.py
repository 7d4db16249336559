"""Racks, uplink and link faults: topology and the commands they become; no root."""

from __future__ import annotations

import pytest

from lab.fabric import (
    UplinkFault,
    link_chain_commands,
    link_key,
    link_losses,
    nft_rules,
    nft_script,
    parse_link,
    uplink_qdiscs,
)
from lab.faults import FaultError
from lab.topology import build, rack_of


def test_nodes_go_to_racks_in_balanced_blocks() -> None:
    assert [rack_of(i, 8, 2) for i in range(1, 9)] == [1, 1, 1, 1, 2, 2, 2, 2]
    assert [rack_of(i, 6, 4) for i in range(1, 7)] == [1, 1, 2, 3, 3, 4]
    assert [rack_of(i, 4, 0) for i in range(1, 5)] == [0, 0, 0, 0]
    topo = build("nmr", "10.104.0.0/24", 8, racks=2)
    assert [n.name for n in topo.rack_nodes(2)] == ["node-5", "node-6", "node-7", "node-8"]
    assert topo.node_bridge(topo.node("node-5")) == "nmr-r2"
    flat = build("nmr", "10.104.0.0/24", 3)
    assert flat.node_bridge(flat.node("node-1")) == "nmr-br"


def test_rack_names_and_interface_names() -> None:
    topo = build("abcdefgh", "10.104.0.0/24", 64, racks=16)
    assert topo.rack("rack-16") == 16 and topo.rack("3") == 3
    names = [topo.rack_bridge(16), topo.uplink_rack_end(16), topo.uplink_core_end(16)]
    assert all(len(n) <= 15 for n in names)
    with pytest.raises(KeyError, match="no lab rack 'rack-17'"):
        topo.rack("rack-17")
    with pytest.raises(KeyError, match="has no racks"):
        build("nmr", "10.104.0.0/24", 4).rack("rack-1")
    with pytest.raises(ValueError, match="racks 5"):
        build("nmr", "10.104.0.0/24", 4, racks=5)


def test_uplink_loss_rules_by_direction() -> None:
    topo = build("nmr", "10.104.0.0/24", 4, racks=2)
    both = nft_rules(topo, {2: UplinkFault(loss=0.03)})
    assert both == [
        'iifname "nmru2r" numgen random mod 1000000 < 30000 drop',
        'oifname "nmru2r" numgen random mod 1000000 < 30000 drop',
    ]
    assert nft_rules(topo, {1: UplinkFault(loss=0.005, direction="in")}) == [
        'iifname "nmru1r" numgen random mod 1000000 < 5000 drop'
    ]
    assert nft_rules(topo, {1: UplinkFault(rate_bps=10**8)}) == []
    script = nft_script(topo, {2: UplinkFault(loss=0.03, direction="out")})
    # Replaces the whole table atomically: create-if-missing, delete, define.
    assert script.startswith(
        "table bridge netmesh_lab_nmr {}\ndelete table bridge netmesh_lab_nmr\n"
    )
    assert "type filter hook forward priority 0; policy accept;" in script
    assert 'oifname "nmru2r"' in script and "iifname" not in script


def test_uplink_rate_shapes_the_end_whose_egress_carries_the_direction() -> None:
    topo = build("nmr", "10.104.0.0/24", 4, racks=2)
    cmds = uplink_qdiscs(topo, 2, UplinkFault(rate_bps=100_000_000, direction="in"))
    assert cmds[0][:7] == ["tc", "qdisc", "replace", "dev", "nmru2c", "root", "tbf"]
    assert cmds[1] == ["tc", "qdisc", "del", "dev", "nmru2r", "root"]
    cmds = uplink_qdiscs(topo, 2, UplinkFault(rate_bps=100_000_000))
    assert [c[2] for c in cmds] == ["replace", "replace"]
    assert [c[2] for c in uplink_qdiscs(topo, 1, None)] == ["del", "del"]


def test_uplink_fault_values() -> None:
    fault = UplinkFault(loss=0.03, rate_bps=10**8, direction="out")
    assert UplinkFault.from_json(fault.to_json()) == fault
    assert fault.describe() == "3% loss, rate 100 Mbit/s (out of the rack)"
    assert UplinkFault().empty()
    with pytest.raises(FaultError, match="direction 'up'"):
        UplinkFault(loss=0.1, direction="up")


def test_link_names_and_parsing() -> None:
    topo = build("nmr", "10.104.0.0/24", 6)
    a, b = parse_link(topo, "node-5, 2")
    assert link_key(a, b) == "node-2|node-5" == link_key(b, a)
    assert parse_link(topo, "10.104.0.12,node-5") == (topo.node("node-2"), topo.node("node-5"))
    for bad, why in (
        ("node-1", "two nodes"),
        ("node-1,node-1", "two different"),
        ("1,9", "node '9'"),
    ):
        with pytest.raises(FaultError, match=why):
            parse_link(topo, bad)


def test_link_chain_drops_only_the_peer_in_each_end() -> None:
    topo = build("nmr", "10.104.0.0/24", 4)
    links = {"node-1|node-2": 0.05, "node-2|node-4": 0.1}
    assert link_losses(topo, links, topo.node("node-2")) == {
        "10.104.0.11": 0.05,
        "10.104.0.14": 0.1,
    }
    assert link_losses(topo, links, topo.node("node-3")) == {}
    cmds = link_chain_commands(topo.node("node-4"), link_losses(topo, links, topo.node("node-4")))
    assert all(c[:4] == ["ip", "netns", "exec", "nmr-node-4"] for c in cmds)
    assert cmds[2][-2:] == ["-F", "NETMESH-LINK"]
    (rule,) = cmds[3:]
    assert rule[rule.index("-s") + 1] == "10.104.0.12/32"
    assert rule[rule.index("--probability") + 1] == "0.100000" and rule[-2:] == ["-j", "DROP"]
    # No link left: the chain is only flushed.
    assert len(link_chain_commands(topo.node("node-3"), {})) == 3
