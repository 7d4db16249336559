"""collector/verdict.py: verdicts (ok, one suspect, two, cluster-wide, isolated), scores, JSON."""

from __future__ import annotations

from typing import Any

import pytest

from collector.judging import Criteria
from collector.verdict import analyse
from tests.collector.rca_cases import down, inbound, mesh, names, random_fails

C = Criteria()


def test_clean_matrix_says_nothing() -> None:
    a = analyse(mesh(4), C)
    assert a.verdict == "ok" and a.summary == "" and not a.suspects and not a.rules
    assert set(a.scores.values()) == {0.0}
    assert analyse([], C, nodes=["x"]).verdict == "no-data"


@pytest.mark.parametrize("n", [4, 8, 20])
def test_one_faulty_node_is_named_first(n: int) -> None:
    victim = names(n)[n // 2]
    a = analyse(mesh(n, inbound(victim)), C)
    assert a.verdict == "suspects"
    assert [s.node for s in a.suspects] == [victim]
    assert a.ranking()[0] == (victim, 1.0)
    assert victim in a.summary and "inbound" in a.summary
    assert not a.unexplained


def test_node_down_both_directions() -> None:
    a = analyse(mesh(5, down("node-2")), C)
    assert [s.node for s in a.suspects] == ["node-2"] and a.suspects[0].direction == "both"


@pytest.mark.parametrize("fault", [inbound, down])
def test_two_faulty_nodes(fault: Any) -> None:
    a = analyse(mesh(6, fault("node-2", "node-5")), C)
    assert a.verdict == "suspects", a.summary
    assert {s.node for s in a.suspects} == {"node-2", "node-5"}
    assert not a.unexplained
    assert "2 suspects" in a.summary


def test_two_faulty_nodes_of_four_are_not_cluster_wide() -> None:
    """Half the paths fail, but the paths between the two others are clean."""
    a = analyse(mesh(4, inbound("node-1", "node-3")), C)
    assert a.verdict == "suspects" and {s.node for s in a.suspects} == {"node-1", "node-3"}


def test_everything_failing_is_cluster_wide() -> None:
    a = analyse(mesh(5, lambda *_: True), C)
    assert a.verdict == "cluster-wide" and not a.suspects
    assert a.summary.startswith("cluster-wide: 40 of 40")
    assert set(a.scores.values()) == {0.0}  # lift 1: no node is associated with failing


@pytest.mark.parametrize("seed", range(5))
def test_most_paths_failing_at_random_is_cluster_wide(seed: int) -> None:
    a = analyse(mesh(6, random_fails(0.75, seed)), C)
    assert a.verdict == "cluster-wide", a.summary
    assert not a.suspects


def test_one_failing_path_blames_no_node() -> None:
    a = analyse(mesh(4, lambda s, d, _p: (s, d) == ("node-1", "node-2")), C)
    assert a.verdict == "isolated" and not a.suspects
    assert "node-1->node-2" in a.summary
    assert len(a.unexplained) == 2


def test_faulty_node_plus_noise_names_the_node_and_lists_the_rest() -> None:
    def fails(s: str, d: str, p: str) -> bool:
        return d == "node-4" or (s, d, p) == ("node-1", "node-2", "udp")

    a = analyse(mesh(6, fails), C)
    assert [s.node for s in a.suspects] == ["node-4"]
    assert [(o.source, o.destination) for o in a.unexplained] == [("node-1", "node-2")]


def test_thresholds_are_settings() -> None:
    outcomes = mesh(4, inbound("node-4"))
    assert analyse(outcomes, Criteria(min_failing_paths=7)).verdict == "isolated"
    assert analyse(outcomes, Criteria(min_peers=4)).verdict == "isolated"
    # With max one suspect, a two-node fault on 4 nodes leaves the other half unexplained.
    two = mesh(4, inbound("node-1", "node-3"))
    a = analyse(two, Criteria(max_suspects=1))
    assert len(a.suspects) == 1 and a.unexplained


def test_json_shape() -> None:
    a = analyse(mesh(4, inbound("node-2")), C).to_json()
    assert a["verdict"] == "suspects"
    assert a["suspects"][0]["node"] == "node-2"
    assert a["ranking"][0] == {"node": "node-2", "score": 1.0}
    assert {"antecedent", "consequent", "support", "confidence", "lift", "count"} <= set(
        a["rules"][0]
    )
    assert a["rules"][0]["confidence"] == 1.0  # ranked by confidence, then lift
    assert len(a["failing_paths"]) == 6 and a["failing_paths"][0]["reasons"]
