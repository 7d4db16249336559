"""Judging the light tier: significance against the mesh, direction, RTT and MTU blackholes."""

from __future__ import annotations

import math

from hypothesis import given
from hypothesis import strategies as st

from collector.judging import Criteria
from collector.lightjudge import (
    SETTLE_SECONDS,
    binomial_sf,
    judge_light,
    judge_light_steps,
    settled,
)
from collector.live import LIGHT_DUTY, LiveRca
from netmesh.wire import LightPath
from tests.collector.reports import light_path

NODES = ("a", "b", "c", "d", "e", "f")


def window(src: str, dst: str, *, fwd_lost: int = 0, ret_lost: int = 0, **kw: object) -> LightPath:
    """100 probes src -> dst: ``fwd_lost`` never reached dst, ``ret_lost`` echoes never returned."""
    lost = fwd_lost + ret_lost
    values: dict[str, object] = {
        "sent": 100,
        "received": 100 - lost,
        "loss_ratio": lost / 100,
        "forward_sent": 100,
        "forward_received": 100 - fwd_lost,
        "forward_loss_ratio": fwd_lost / 100,
        "return_sent": 100 - fwd_lost,
        "return_received": 100 - lost,
        "return_loss_ratio": ret_lost / max(1, 100 - fwd_lost),
    }
    values.update(kw)
    return light_path(dst, **values)  # type: ignore[arg-type]


def mesh(
    loss_into: dict[str, int] | None = None, **extra: dict[tuple[str, str], dict[str, object]]
) -> dict[str, list[LightPath]]:
    """Every ordered pair; ``loss_into[x]`` packets of 100 lost on their way into x."""
    into = loss_into or {}
    overrides = extra.get("paths", {})
    return {
        s: [
            window(
                s, d, fwd_lost=into.get(d, 0), ret_lost=into.get(s, 0), **overrides.get((s, d), {})
            )
            for d in NODES
            if d != s
        ]
        for s in NODES
    }


def failing(outcomes: list) -> set[tuple[str, str]]:  # type: ignore[type-arg]
    return {(o.source, o.destination) for o in outcomes if o.failed}


def test_binomial_sf_matches_the_definition() -> None:
    for n, p in ((10, 0.3), (50, 0.01), (200, 0.001)):
        for k in range(0, min(n, 12) + 1):
            exact = sum(math.comb(n, i) * p**i * (1 - p) ** (n - i) for i in range(k, n + 1))
            assert math.isclose(binomial_sf(k, n, p), exact, rel_tol=1e-9, abs_tol=1e-15)
    assert binomial_sf(0, 5, 0.5) == 1.0 and binomial_sf(6, 5, 0.5) == 0.0


def test_clean_mesh_has_no_failing_pair() -> None:
    out = judge_light(mesh(), Criteria())
    assert len(out) == 30 and not failing(out)


def test_loss_into_a_node_fails_exactly_the_directions_into_it() -> None:
    out = judge_light(mesh({"c": 5}), Criteria())
    assert failing(out) == {(s, "c") for s in NODES if s != "c"}
    reasons = {o.source: o.reasons for o in out if o.failed}
    assert all("from" in r[0] and "to c" in r[0] for r in reasons.values())


def test_one_lost_packet_is_not_significant() -> None:
    paths = {("a", "c"): {"forward_received": 99, "forward_loss_ratio": 0.01}}
    assert not failing(judge_light(mesh(paths=paths), Criteria()))


def test_one_percent_into_a_node_is_found_by_pooling_its_peers() -> None:
    """1 % into c: 2 of 200 per pair is not significant alone, 10 of 1,000 into c is."""
    out = judge_light(mesh({"c": 1}), Criteria())
    assert failing(out) == {(s, "c") for s in NODES if s != "c"}
    reason = next(o.reasons[0] for o in out if o.failed)
    assert "into c in all 10/1000" in reason
    live = LiveRca(Criteria())
    for _ in live.steps({}, {}, lambda _ip: None, now=1.0, light=mesh({"c": 1})):
        pass
    assert live.latest is not None and [s.node for s in live.latest.suspects] == ["c"]


def test_pooling_fails_only_the_pairs_that_lost() -> None:
    """Into c: 3 of 5 peers lose 2 of 200 (6/1,000, significant); the clean two stay OK."""
    lossy = {"forward_received": 98, "forward_loss_ratio": 0.02}
    paths = {(s, "c"): lossy for s in ("a", "b", "d")}
    assert failing(judge_light(mesh(paths=paths), Criteria())) == {
        ("a", "c"),
        ("b", "c"),
        ("d", "c"),
    }


def test_a_mesh_that_loses_everywhere_sets_the_typical_loss() -> None:
    """Everyone loses 3 %: nobody stands out (the capacity/cluster-wide judge is elsewhere)."""
    out = judge_light(mesh(dict.fromkeys(NODES, 3)), Criteria())
    assert not failing(out)


def test_no_echo_rtt_and_mtu_blackhole() -> None:
    paths = {
        ("a", "b"): {
            "received": 0,
            "loss_ratio": 1.0,
            "forward_loss_ratio": None,
            "return_loss_ratio": None,
        },
        ("b", "c"): {"rtt_median_seconds": 0.02},
        ("d", "e"): {"mtu_sent": 3, "mtu_received": 0},
    }
    out = judge_light(mesh(paths=paths), Criteria())
    by_pair = {(o.source, o.destination): o.reasons for o in out if o.failed}
    assert set(by_pair) == {("a", "b"), ("b", "c"), ("d", "e")}
    assert "none of 100 probes" in by_pair[("a", "b")][0]
    assert "RTT median 20.00 ms" in by_pair[("b", "c")][0]
    assert "MTU blackhole" in by_pair[("d", "e")][0]


@given(st.sampled_from(NODES), st.integers(4, 40), st.permutations(NODES))
def test_renaming_nodes_renames_the_finding(victim: str, lost: int, perm: list[str]) -> None:
    rename = dict(zip(NODES, perm, strict=True))
    base = failing(judge_light(mesh({victim: lost}), Criteria()))
    renamed_mesh = {
        rename[s]: [
            LightPath(**{**p.__dict__, "destination": rename[p.destination]})
            if hasattr(p, "__dict__")
            else p
            for p in paths
        ]
        for s, paths in mesh({victim: lost}).items()
    }
    got = failing(judge_light(renamed_mesh, Criteria()))
    assert got == {(rename[a], rename[b]) for a, b in base}


def test_live_rca_names_the_node_from_light_evidence_alone() -> None:
    live = LiveRca(Criteria())
    for _ in live.steps({}, {}, lambda _ip: None, now=1.0, light=mesh({"d": 6})):
        pass
    assert live.latest is not None
    assert [s.node for s in live.latest.suspects] == ["d"]
    assert live.latest.suspects[0].direction == "inbound"


def test_judging_in_steps_gives_the_same_outcomes_and_yields_between() -> None:
    light = mesh({"c": 5}, paths={("a", "b"): {"mtu_sent": 3, "mtu_received": 0}})
    whole = judge_light(light, Criteria(), at=7.0)
    steps = list(judge_light_steps(light, Criteria(), at=7.0, chunk=4))
    assert steps[-1] == whole and len(whole) == 30
    assert len(steps) > 10 and all(s is None for s in steps[:-1])  # 30 paths, 4 at a time
    assert [(o.source, o.destination) for o in whole] == sorted(
        (o.source, o.destination) for o in whole
    )


def test_live_rca_judges_the_light_tier_again_only_after_ten_times_its_cost() -> None:
    """Its CPU (a fake perf clock: 1 s per read) bounds how often it runs; meanwhile the
    previous outcomes stand in, so a change shows at the next due run."""
    ticks = iter(range(10**6))
    live = LiveRca(Criteria(), perf=lambda: float(next(ticks)))

    def run(now: float, light: dict[str, list[LightPath]]) -> set[str]:
        for _ in live.steps({}, {}, lambda _ip: None, now=now, light=light):
            pass
        assert live.latest is not None
        return {s.node for s in live.latest.suspects}

    assert run(0.0, mesh()) == set()
    cost = live.light_seconds
    assert cost > 0 and live.light_judged_at == 0.0
    assert run(1.0, mesh({"c": 5})) == set()  # not due: the clean outcomes stand in
    assert live.light_judged_at == 0.0
    assert run(LIGHT_DUTY * cost, mesh({"c": 5})) == {"c"}
    assert live.light_judged_at == LIGHT_DUTY * cost


def test_windows_from_before_an_agent_started_are_not_judged() -> None:
    """f's agent started 5 s ago: its peers' 10 s windows to f hold probes nobody answered,
    and f's own windows hold its first few probes (one slow RTT) -- neither is evidence."""
    no_echo = {"received": 0, "loss_ratio": 1.0, "forward_received": 0, "return_sent": 0}
    paths = {(s, "f"): no_echo for s in NODES if s != "f"}
    paths[("f", "a")] = {"rtt_median_seconds": 0.05}
    light = mesh(paths=paths)
    assert failing(judge_light(light, Criteria()))  # judged as they are: f is named
    now = 1_000.0
    generated = dict.fromkeys(NODES, now)
    started = {**dict.fromkeys(NODES, now - 600), "f": now - 5}
    assert failing(judge_light(settled(light, started, generated), Criteria())) == set()
    # older than one window (and the settling margin): everything is judged again
    started["f"] = now - 10 - SETTLE_SECONDS
    assert settled(light, started, generated) == light
    # a destination that never reported is kept (its silence is evidence)
    assert settled(light, {}, generated) == light
