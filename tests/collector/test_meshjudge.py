"""Judging against the mesh: peers (median/MAD, per path, per source, per destination),
capacity (the slower end's link speed) and iperf3 RTT against the peers'."""

from __future__ import annotations

from collector.judging import Criteria
from collector.meshjudge import Spread, mesh_reasons
from collector.podmap import NodeInfo
from collector.topology import NodeTopology, topology_of
from netmesh.wire import TestResult
from tests.collector.reports import report

C = Criteria()
NODES = ("a", "b", "c", "d", "e")


def tcp(src: str, dst: str, bps: float = 9e8, rtt: float = 0.0004) -> TestResult:
    return TestResult(
        source=src,
        destination=dst,
        protocol="tcp",
        result="ok",
        duration_seconds=5.0,
        sent_bits_per_second=bps,
        received_bits_per_second=bps,
        retransmits=0,
        rtt_mean_seconds=rtt,
    )


def mesh(bps=lambda s, d: 9e8, rtt=lambda s, d: 0.0004) -> list[TestResult]:  # type: ignore[no-untyped-def]
    return [tcp(s, d, bps(s, d), rtt(s, d)) for s in NODES for d in NODES if s != d]


def test_spread_is_robust() -> None:
    s = Spread.of([10.0, 10.0, 11.0, 9.0, 1000.0])
    assert s.median == 10.0 and s.sigma < 2
    assert s.far_below(3.0, 0.6, 4.0)  # below 60 % and more than 4 sigma (5.9) below
    assert not s.far_below(5.0, 0.6, 4.0) and not s.far_below(7.0, 0.6, 0.0)
    assert s.far_above(100.0, 3, 1, 4) and not s.far_above(25.0, 3, 20, 4)


def test_clean_mesh_has_no_reasons() -> None:
    assert mesh_reasons(mesh(), {}, C) == {}


def test_a_slow_source_fails_every_path_out_of_it_and_nothing_else() -> None:
    out = mesh_reasons(mesh(lambda s, _d: 3e8 if s == "c" else 9e8), {}, C)
    assert set(out) == {("c", d, "tcp") for d in NODES if d != "c"}
    assert all("peers' median 900 Mbit/s" in r[0] for r in out.values())


def test_a_source_half_as_fast_in_a_noisy_mesh_is_found_by_its_median() -> None:
    """Per path the noise hides some of c's paths; c's median against the other sources'
    medians does not (each of its paths below the mesh median fails)."""
    noise = {"a": 1.0, "b": 1.3, "d": 0.75, "e": 1.1}

    def bps(s: str, d: str) -> float:
        if s == "c":
            return 4.5e8 * (1.1 if d == "b" else 1.0)
        return 9e8 * noise.get(d, 1.0)

    out = mesh_reasons(mesh(bps), {}, Criteria(peer_mad_factor=2))
    assert {k[0] for k in out} == {"c"} and len(out) == 4
    assert any("out of c the median is" in r for rs in out.values() for r in rs)


def test_too_few_paths_to_compare() -> None:
    few = [tcp("a", "b", 9e8), tcp("b", "a", 1e8), tcp("a", "c", 9e8)]
    assert mesh_reasons(few, {}, C) == {}


def test_peers_are_paths_of_the_same_link_speed() -> None:
    """Heterogeneous: paths between 10 Gbit/s nodes are not compared with 1 Gbit/s ones."""
    fast = {"d", "e"}
    topo = {n: NodeTopology(link_speed=10**10 if n in fast else 10**9) for n in NODES}
    out = mesh_reasons(mesh(lambda s, d: 9e9 if {s, d} <= fast else 9e8), topo, C)
    assert out == {}
    # without link speeds the two fast paths stand out above, not below: still nothing
    assert mesh_reasons(mesh(lambda s, d: 9e9 if {s, d} <= fast else 9e8), {}, C) == {}


def test_capacity_fails_even_when_every_path_is_as_slow() -> None:
    topo = {n: NodeTopology(link_speed=10**10) for n in NODES}
    out = mesh_reasons(mesh(lambda _s, _d: 9e8), topo, C)
    assert len(out) == 20
    assert all(
        r == ["bandwidth 900 Mbit/s < 25% of the link speed 10000 Mbit/s (the slower end)"]
        for r in out.values()
    )
    assert mesh_reasons(mesh(lambda _s, _d: 9e8), topo, Criteria(capacity_fraction=0)) == {}
    half = {**topo, "a": NodeTopology(link_speed=None)}  # unknown on one end: not judged
    assert {k[0] for k in mesh_reasons(mesh(lambda _s, _d: 9e8), half, C)} == {"b", "c", "d", "e"}


def test_rtt_against_the_peers() -> None:
    out = mesh_reasons(mesh(rtt=lambda _s, d: 0.05 if d == "b" else 0.0004), {}, C)
    assert set(out) == {(s, "b", "tcp") for s in NODES if s != "b"}
    assert all(r[0].startswith("iperf3 RTT 50.00 ms (under load) > 3x") for r in out.values())
    # less than rtt_min_increase above: not a fault, however many times the median
    small = mesh_reasons(mesh(rtt=lambda _s, d: 0.005 if d == "b" else 0.0004), {}, C)
    assert small == {}
    assert (
        mesh_reasons(
            mesh(rtt=lambda _s, d: 0.05 if d == "b" else 0.0004), {}, Criteria(rtt_factor=0)
        )
        == {}
    )


def test_topology_from_reports_and_kubernetes_nodes() -> None:
    a = report("a", "10.0.0.1")
    a = type(a)(
        **{
            **a.__dict__,
            "labels": (("rack", "r1"), ("zone", "z1")),
            "link_speed_bits_per_second": 10**9,
        }
    )
    b = report("b", "10.0.0.2")
    assert topology_of([a, b]) == {
        "a": NodeTopology(zone="z1", rack="r1", link_speed=10**9),
        "b": NodeTopology(),
    }
    kube = {
        "a": NodeInfo("a", True, False, False, (), zone="", rack="tor-7"),
        "x": NodeInfo("x", True, False, False, (), zone="z2"),
    }
    assert topology_of([a, b], kube) == {
        "a": NodeTopology(zone="z1", rack="tor-7", link_speed=10**9),
        "b": NodeTopology(),
        "x": NodeTopology(zone="z2"),
    }
