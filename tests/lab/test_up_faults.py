"""``netmesh-lab up --node X --rate R``: the fault given to ``up`` (applied before the agents)."""

from __future__ import annotations

from lab.__main__ import _parser, fault_from


def test_up_takes_a_node_fault() -> None:
    args = _parser().parse_args(["up", "--nodes", "6", "--node", "node-3", "--rate", "300mbit"])
    assert args.node == "node-3"
    assert fault_from(args).rate_bps == 300_000_000


def test_up_without_a_fault_has_none() -> None:
    args = _parser().parse_args(["up"])
    assert args.node is None and not fault_from(args).rate_bps
