"""The plan's properties: no collisions, full coverage in N-1 rounds, k-peer coverage, stability."""

from __future__ import annotations

import collections

from hypothesis import given, settings
from hypothesis import strategies as st

from agent.schedule import (
    PlanSettings,
    active_slots,
    cycle_slots,
    peers_of,
    plan,
    ring,
    round_slots,
    rounds,
    slot_tests,
)
from netmesh.wire import Member

names = st.lists(
    st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-", min_size=1, max_size=12),
    min_size=0,
    max_size=40,
    unique=True,
)
plan_settings = st.builds(
    PlanSettings,
    duration=st.integers(1, 10),
    omit=st.integers(0, 2),
    guard=st.sampled_from([0.5, 1.0, 2.0]),
    protocols=st.sampled_from([("tcp",), ("udp",), ("tcp", "udp")]),
    concurrency=st.integers(0, 6),
    peers_k=st.integers(0, 6),
    budget=st.sampled_from([1.0, 0.5, 0.1, 0.01]),
)


def members_of(ns: list[str]) -> list[Member]:
    return [Member(name=n, address=f"10.0.{i // 250}.{i % 250 + 1}") for i, n in enumerate(ns)]


@given(names, plan_settings, st.integers(0, 10**9))
def test_no_collisions_in_any_slot(ns: list[str], ps: PlanSettings, number: int) -> None:
    tests = slot_tests(members_of(ns), number, ps)
    clients = [t.client.name for t in tests]
    servers = [t.server.name for t in tests]
    assert len(set(clients)) == len(clients), "a node is client of two tests"
    assert len(set(servers)) == len(servers), "a node is server of two tests"
    assert all(t.client != t.server for t in tests)
    if ps.concurrency:
        assert len(tests) <= ps.concurrency
    assert len({t.protocol for t in tests}) <= 1


@settings(deadline=None)  # a small budget makes long cycles (idle slots included)
@given(names, plan_settings, st.integers(0, 10**6))
def test_one_cycle_covers_every_pair_once(ns: list[str], ps: PlanSettings, start: int) -> None:
    members = members_of(ns)
    n = len(members)
    cycle = cycle_slots(n, ps)
    seen = collections.Counter(
        (t.client.name, t.server.name, t.protocol)
        for number in range(start, start + cycle)
        for t in slot_tests(members, number, ps)
    )
    expected = {
        (m.name, p.name, proto)
        for m in members
        for p in peers_of(members, m.name, ps)
        for proto in ps.protocols
    }
    assert set(seen) == expected
    assert all(count == 1 for count in seen.values())
    if ps.peers_k == 0 or ps.peers_k >= n - 1:
        # Full mesh: all N(N-1) ordered pairs, in N-1 rounds.
        assert len(expected) == n * (n - 1) * len(ps.protocols)
        if n >= 2:
            assert {
                t.round for s in range(start, start + cycle) for t in slot_tests(members, s, ps)
            } == set(range(1, n))


@given(names, st.integers(1, 6))
def test_k_peer_mode_tests_k_distinct_neighbours(ns: list[str], k: int) -> None:
    ps = PlanSettings(duration=1, omit=0, guard=1.0, protocols=("tcp",), peers_k=k)
    members = members_of(ns)
    for m in members:
        peers = peers_of(members, m.name, ps)
        assert len(peers) == min(k, len(members) - 1)
        assert len({p.name for p in peers}) == len(peers) and m not in peers
    assert rounds(len(members), k) == (min(k, len(members) - 1) if len(members) > 1 else 0)


@settings(max_examples=200)
@given(
    names.filter(lambda ns: len(ns) >= 3),
    st.integers(1, 5),
    st.text(alphabet="xyz", min_size=13, max_size=14),
)
def test_k_peer_join_disturbs_at_most_k_nodes(ns: list[str], k: int, newcomer: str) -> None:
    ps = PlanSettings(duration=1, omit=0, guard=1.0, protocols=("tcp",), peers_k=k)
    before = members_of(ns)
    after = [*before, Member(name=newcomer, address="10.9.9.9")]
    changed = [
        m.name
        for m in before
        if {p.name for p in peers_of(before, m.name, ps)}
        != {p.name for p in peers_of(after, m.name, ps)}
    ]
    if k < len(before) - 1:
        assert len(changed) <= k, changed


def test_plan_is_the_same_on_every_node_and_follows_the_clock() -> None:
    members = members_of(["a", "b", "c", "d"])
    ps = PlanSettings(duration=2, omit=1, guard=1.0, protocols=("tcp", "udp"))
    assert ps.slot_seconds == 4.0
    now = 1_000_000.3
    slots = [plan(members, m.name, now, ps) for m in members]
    assert {(s.number, s.start, s.end) for s in slots} == {(250_000, 1_000_000.0, 1_000_004.0)}
    assert sorted(s.test.client.name for s in slots if s.test) == ["a", "b", "c", "d"]
    # Order of the input does not matter: the ring is derived from names.
    assert plan(list(reversed(members)), "a", now, ps) == slots[0]
    assert ring(members) == ring(list(reversed(members)))


def test_single_node_or_stranger_has_nothing_to_do() -> None:
    ps = PlanSettings(duration=1, omit=0, guard=1.0, protocols=("tcp",))
    assert plan(members_of(["solo"]), "solo", 10.0, ps).test is None
    assert plan(members_of(["a", "b"]), "zz", 10.0, ps).test is None


@settings(deadline=None)
@given(names, plan_settings)
def test_budget_bounds_each_nodes_share_of_time_in_tests(ns: list[str], ps: PlanSettings) -> None:
    members = members_of(ns)
    cycle = cycle_slots(len(members), ps)
    if cycle == 0:
        return
    as_client: collections.Counter[str] = collections.Counter()
    for number in range(cycle):
        for t in slot_tests(members, number, ps):
            as_client[t.client.name] += 1
    for name in ns:
        share = as_client[name] * ps.test_seconds / (cycle * ps.slot_seconds)
        assert share <= ps.budget + 1e-9, (name, share, ps.budget)


@given(names, plan_settings)
def test_full_budget_packs_rounds_and_a_small_one_spaces_them(
    ns: list[str], ps: PlanSettings
) -> None:
    n = len(ns)
    if n < 2:
        return
    active = active_slots(n, ps)
    per_round = round_slots(n, ps)
    assert per_round >= active
    if ps.budget >= 1:
        assert per_round == active
    elif per_round > active:
        # no more idle slots than the budget needs: one slot fewer would break it
        assert (per_round - 1) * ps.budget * ps.slot_seconds < active * ps.test_seconds
    # the active slots come first in each round, then only idle ones
    members = members_of(ns)
    for inner in range(per_round):
        assert bool(slot_tests(members, inner, ps)) == (inner < active)


def test_default_budget_period() -> None:
    """The agent's defaults: 1 % budget, 5 s tests + 1 s omit + 2 s guard, tcp and udp."""
    ps = PlanSettings(duration=5, omit=1, guard=2.0, protocols=("tcp", "udp"), budget=0.01)
    assert round_slots(10, ps) == 150  # 2 tests x 6 s every 1,200 s
    assert cycle_slots(10, ps) * ps.slot_seconds == 9 * 1200
