"""The RCA on synthetic meshes of real test results: peers, capacity, history; findings.

Each mesh goes through the collector's live RCA (collector/live.py: judging,
the mesh's judgement, the search for findings), one run per sweep, with
noise on every rate and RTT (tests/collector/synthetic.py).
"""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from collector.judging import Criteria
from collector.live import LiveRca
from tests.collector.synthetic import LINK, Net, found, names, racks, run

SIX = names(6)


def slow_egress(node: str, fraction: float):  # type: ignore[no-untyped-def]
    return lambda s, _d: (fraction if s == node else 1.0) * 0.94 * LINK


@pytest.mark.parametrize("fraction", [0.1, 0.3, 0.5])
def test_rate_fault_named_on_the_first_sweep(fraction: float) -> None:
    """One node's egress at 10/30/50 % of its peers: named at once, with no history."""
    a = run(Net(SIX, rate=slow_egress("node-3", fraction)))
    assert found(a) == {("node", "node-3", "outbound")}, a.summary
    (f,) = a.findings
    assert f.protocol == "tcp" and f.explains == 5
    assert dict(f.criteria)["bandwidth-peers"] == 5
    assert [s.node for s in a.suspects] == ["node-3"]
    if fraction < 0.25:  # below the default rca_capacity_fraction of the 1 Gbit/s links
        assert dict(f.criteria)["bandwidth-capacity"] == 5


def test_rate_fault_without_link_speeds_still_named_by_peers() -> None:
    a = run(Net(SIX, rate=slow_egress("node-2", 0.3), link_speed=None))
    assert found(a) == {("node", "node-2", "outbound")}


def test_two_faults_of_different_kinds_are_both_named() -> None:
    """node-2 sends at 30 % (bandwidth) while node-5 loses 10 % of what it receives."""
    net = Net(
        SIX,
        rate=slow_egress("node-2", 0.3),
        loss=lambda _s, d: 0.1 if d == "node-5" else 0.0,
    )
    a = run(net)
    assert found(a) == {("node", "node-5", "inbound"), ("node", "node-2", "outbound")}
    assert "2 suspects" in a.summary
    crit = {f.subject: dict(f.criteria) for f in a.findings}
    assert "loss" in crit["node-5"] and "bandwidth-peers" in crit["node-2"]


def test_a_link_fault_is_named_as_the_link() -> None:
    net = Net(SIX, loss=lambda s, d: 0.05 if {s, d} == {"node-2", "node-5"} else 0.0)
    a = run(net)
    assert found(a) == {("link", "node-2|node-5", "both")}, a.summary
    assert not a.suspects  # neither node is blamed
    (f,) = a.findings
    assert f.title() == "link node-2 ↔ node-5"
    assert f.explains == 4 and {(p.source, p.destination) for p in f.evidence} == {
        ("node-2", "node-5"),
        ("node-5", "node-2"),
    }


def test_a_link_whose_end_fails_elsewhere_too_is_the_node() -> None:
    net = Net(
        SIX,
        loss=lambda s, d: 0.2 if "node-2" in (s, d) else 0.0,
    )
    assert found(run(net)) == {("node", "node-2", "both")}


def test_rack_to_rack_fault_names_the_rack_path_and_no_node() -> None:
    nodes, rack = racks(3, 3, 2)
    net = Net(
        nodes,
        rack=rack,
        loss=lambda s, d: 0.05 if {rack[s], rack[d]} == {"rack-1", "rack-2"} else 0,
    )
    a = run(net)
    assert found(a) == {("rack-path", "rack-1|rack-2", "both")}, a.summary
    assert not a.suspects
    (f,) = a.findings
    assert f.title() == "path between racks rack-1 and rack-2"
    assert f.explains == f.paths == 36  # 3 x 3 nodes, both ways, TCP and UDP


def test_two_racks_fault_names_the_path_between_them() -> None:
    nodes, rack = racks(4, 4)
    net = Net(nodes, rack=rack, loss=lambda s, d: 0.05 if rack[s] != rack[d] else 0.0)
    a = run(net)
    assert found(a) == {("rack-path", "rack-1|rack-2", "both")}, a.summary


def test_rack_uplink_fault_names_the_rack() -> None:
    nodes, rack = racks(3, 3, 2)

    def crosses(s: str, d: str) -> bool:
        return (rack[s] == "rack-2") != (rack[d] == "rack-2")

    a = run(Net(nodes, rack=rack, loss=lambda s, d: 0.05 if crosses(s, d) else 0.0))
    assert found(a) == {("rack", "rack-2", "both")}, a.summary
    slow = run(
        Net(nodes, rack=rack, rate=lambda s, d: (0.2 if crosses(s, d) else 1.0) * 0.94 * LINK)
    )
    assert found(slow) == {("rack", "rack-2", "both")}, slow.summary
    assert slow.findings[0].protocol == "tcp"


@pytest.mark.parametrize("fraction", [0.1, 0.3, 0.5])
def test_slow_uplink_of_a_small_mesh_is_the_rack(fraction: float) -> None:
    """Three racks of two: a slow rack-2 uplink slows 16 of the 30 TCP paths — more than
    half, so the mesh median is slow too; the nodes' medians still tell."""
    nodes, rack = racks(2, 2, 2)

    def rate(s: str, d: str) -> float:
        crosses = (rack[s] == "rack-2") != (rack[d] == "rack-2")
        return (fraction if crosses else 1.0) * 0.94 * LINK

    a = run(Net(nodes, rack=rack, rate=rate))
    assert found(a) == {("rack", "rack-2", "both")}, a.summary
    assert not a.suspects


def test_one_direction_of_a_rack_uplink() -> None:
    nodes, rack = racks(3, 3, 2)
    a = run(
        Net(
            nodes,
            rack=rack,
            loss=lambda s, d: 0.05 if rack[d] == "rack-3" and rack[s] != "rack-3" else 0.0,
        )
    )
    assert found(a) == {("rack", "rack-3", "inbound")}, a.summary


def test_every_path_far_below_its_link_speed_is_cluster_wide() -> None:
    """All paths equally slow: peers see nothing, capacity does."""
    a = run(Net(SIX, rate=lambda _s, _d: 0.1 * LINK))
    assert a.verdict == "cluster-wide" and not a.findings, a.summary
    assert "tcp path tests" in a.summary
    assert all("link speed" in r for p in a.failing for r in p.reasons)


def test_rtt_far_above_the_peers_fails() -> None:
    a = run(Net(SIX, rtt=lambda _s, d: 0.05 if d == "node-4" else 0.0004))
    assert found(a) == {("node", "node-4", "inbound")}
    assert dict(a.findings[0].criteria) == {"rtt": 5}


@pytest.mark.parametrize("seed", range(5))
def test_clean_mesh_with_noise_says_nothing(seed: int) -> None:
    nodes, rack = racks(3, 3, 2)
    a = run(Net(nodes, rack=rack, noise=0.12), sweeps=10, seed=seed)
    assert a.verdict == "ok", a.summary
    assert not a.findings and not a.failing


def test_history_does_not_absorb_a_named_fault() -> None:
    """Peers off: only the path's own history sees node-3's egress drop to 30 %. It stays
    named for 40 sweeps (longer than the 30-sample window): a named node's baselines are
    frozen; an unnamed single path's baseline adapts (a lasting change of one path)."""
    crit = Criteria(peer_fraction=0.0, capacity_fraction=0.0)
    live = LiveRca(crit, baseline_samples=30)
    run(Net(SIX), sweeps=5, live=live)
    slow = Net(SIX, rate=slow_egress("node-3", 0.3))
    for i in range(40):
        a = run(slow, live=live, seed=i, start=2e9 + 60 * i)
        assert found(a) == {("node", "node-3", "outbound")}, (i, a.summary)
    assert dict(a.findings[0].criteria) == {"bandwidth-history": 5}

    one = Net(SIX, rate=lambda s, d: (0.3 if (s, d) == ("node-1", "node-2") else 1) * 0.94 * LINK)
    live = LiveRca(crit, baseline_samples=10)
    run(Net(SIX), sweeps=5, live=live)
    verdicts = [run(one, live=live, seed=i, start=2e9 + 60 * i).verdict for i in range(20)]
    assert verdicts[0] == "isolated" and verdicts[-1] == "ok"


# --------------------------------------------------------------------------- properties

FAULTS = ("egress", "inbound-loss", "link", "rack-path", "clean")


def faulty(kind: str, nodes: list[str], rack: dict[str, str], rng: random.Random) -> Net:
    a, b = rng.sample(nodes, 2)
    fraction = rng.uniform(0.1, 0.5)
    if kind == "egress":
        return Net(nodes, rack=rack, rate=slow_egress(a, fraction))
    if kind == "inbound-loss":
        return Net(nodes, rack=rack, loss=lambda _s, d: 0.1 if d == a else 0.0)
    if kind == "link":
        return Net(nodes, rack=rack, loss=lambda s, d: 0.05 if {s, d} == {a, b} else 0.0)
    if kind == "rack-path":
        return Net(
            nodes,
            rack=rack,
            loss=lambda s, d: 0.05 if {rack[s], rack[d]} == {"rack-1", "rack-2"} else 0.0,
        )
    return Net(nodes, rack=rack)


def rename_subject(subject: str, mapping: dict[str, str]) -> str:
    return "|".join(sorted(mapping.get(p, p) for p in subject.split("|")))


@settings(max_examples=25, deadline=None)
@given(
    kind=st.sampled_from(FAULTS),
    sizes=st.sampled_from([(3, 3), (3, 3, 2), (2, 2, 2), (4, 2)]),
    seed=st.integers(0, 10_000),
    perm_seed=st.integers(0, 10_000),
)
def test_permuting_node_names_never_changes_the_finding(
    kind: str, sizes: tuple[int, ...], seed: int, perm_seed: int
) -> None:
    nodes, rack = racks(*sizes)
    net = faulty(kind, nodes, rack, random.Random(seed))
    shuffled = nodes[:]
    random.Random(perm_seed).shuffle(shuffled)
    mapping = {n: f"host-{s[5:]}x" for n, s in zip(nodes, shuffled, strict=True)}
    before = run(net, seed=seed)
    after = run(net.renamed(mapping), seed=seed)
    expected = {
        (k, rename_subject(s, mapping) if k in ("node", "link") else s, d)
        for k, s, d in found(before)
    }
    assert found(after) == expected
    assert after.verdict == before.verdict


@settings(max_examples=25, deadline=None)
@given(
    kind=st.sampled_from(FAULTS),
    n=st.integers(4, 8),
    seed=st.integers(0, 10_000),
)
def test_adding_a_healthy_node_never_creates_a_finding(kind: str, n: int, seed: int) -> None:
    nodes = names(n)
    rack = {x: f"rack-{1 + i % 2}" for i, x in enumerate(nodes)}
    before = faulty(kind, nodes, rack, random.Random(seed))
    new = f"node-{n + 1}"
    after = Net(
        [*nodes, new],
        rack={**rack, new: "rack-3"},
        rate=lambda s, d: 0.94 * LINK if new in (s, d) else before.rate(s, d),
        loss=lambda s, d: 0.0 if new in (s, d) else before.loss(s, d),
    )
    assert found(run(after, seed=seed)) <= found(run(before, seed=seed))
