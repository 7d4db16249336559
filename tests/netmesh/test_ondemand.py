"""The on-demand plan's properties and the sweep wire format (netmesh/ondemand.py)."""

from __future__ import annotations

import collections
import itertools
import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from netmesh.jsonreader import WireError
from netmesh.ondemand import (
    Sweep,
    ended,
    pairs,
    parse_sweep,
    parse_sweeps,
    place,
    rounds,
    slot_tests,
)
from netmesh.wire import (
    AgentHealth,
    MemberList,
    Report,
    TestResult,
    parse_report,
    parse_report_answer,
)

names = st.lists(
    st.text(alphabet="abcdefghij0123456789-", min_size=1, max_size=8),
    min_size=2,
    max_size=25,
    unique=True,
)
protocols = st.sampled_from([("tcp",), ("udp",), ("tcp", "udp")])


@st.composite
def sweeps(draw: st.DrawFn, start: float | None = None) -> Sweep:
    nodes = tuple(sorted(draw(names)))
    kind = draw(st.sampled_from(["node", "pair", "mesh"]))
    node = source = destination = ""
    if kind == "node":
        node = draw(st.sampled_from(nodes))
    elif kind == "pair":
        source, destination = draw(st.permutations(nodes))[:2]
    return Sweep(
        id=draw(st.text(alphabet="0123456789-", min_size=1, max_size=10)),
        start_at=start if start is not None else draw(st.floats(1e9, 1e9 + 600)),
        protocols=draw(protocols),
        kind=kind,  # type: ignore[arg-type]
        nodes=nodes,
        node=node,
        source=source,
        destination=destination,
    )


@given(sweeps())
@settings(max_examples=300)
def test_rounds_are_collision_free_and_cover_every_pair(sweep: Sweep) -> None:
    rnds = rounds(sweep)
    for rnd in rnds:
        clients = collections.Counter(c for c, _ in rnd)
        servers = collections.Counter(s for _, s in rnd)
        assert max(clients.values()) == 1 and max(servers.values()) == 1
        assert all(c != s for c, s in rnd)
    planned = [p for rnd in rnds for p in rnd]
    assert sorted(planned) == sorted(pairs(sweep)) and len(set(planned)) == len(planned)
    n = len(sweep.nodes)
    if sweep.kind == "pair":
        assert planned == [(sweep.source, sweep.destination)]
    elif sweep.kind == "node":
        assert len(planned) == 2 * (n - 1) and len(rnds) == n - 1  # the optimum
        assert all(sweep.node in (c, s) for c, s in planned)
    else:
        assert len(planned) == n * (n - 1) and len(rnds) == n - 1


@given(st.lists(sweeps(), min_size=1, max_size=5, unique_by=lambda s: s.id), st.randoms())
@settings(max_examples=200)
def test_every_agent_computes_the_same_plan_and_windows_never_overlap(
    batch: list[Sweep], rnd: Any
) -> None:
    slot = 3.0
    first = place(batch, slot)
    shuffled = list(batch)
    rnd.shuffle(shuffled)
    assert place(shuffled, slot) == first  # order of arrival does not matter
    # A copy that went through JSON (what each agent parses) plans the same.
    copies = parse_sweeps(json.loads(json.dumps({"sweeps": [s.to_json() for s in shuffled]})))
    assert place(copies, slot) == first
    for a, b in itertools.pairwise(first):
        assert a.end <= b.first
    for p in first:
        assert p.first * slot >= p.sweep.start_at - 1e-6
        assert p.end - p.first == len(p.rounds) * len(p.sweep.protocols)
        # Slot by slot: each node is client of at most one and server of at most one test,
        # and over the window every (pair, protocol) runs exactly once.
        seen = []
        for number in range(p.first, p.end):
            holder, tests = slot_tests(first, number)
            assert holder is p
            assert len({t.client for t in tests}) == len(tests)
            assert len({t.server for t in tests}) == len(tests)
            assert len({t.protocol for t in tests}) <= 1
            seen += [(t.client, t.server, t.protocol) for t in tests]
        want = [(c, s, proto) for c, s in pairs(p.sweep) for proto in p.sweep.protocols]
        assert sorted(seen) == sorted(want)
    assert slot_tests(first, first[0].first - 1) == (None, [])


@given(st.lists(sweeps(), min_size=1, max_size=5, unique_by=lambda s: s.id), st.integers(0, 400))
@settings(max_examples=200)
def test_forgetting_ended_sweeps_never_moves_another(batch: list[Sweep], later: int) -> None:
    slot = 3.0
    placed = place(batch, slot)
    number = placed[0].first + later
    gone = set(ended(placed, number))
    kept = [p for p in placed if p.sweep.id not in gone]
    assert all(p.end <= number for p in placed if p.sweep.id in gone)
    assert place([p.sweep for p in kept], slot) == kept


def test_a_node_sweep_of_four_nodes() -> None:
    sweep = Sweep(
        id="1",
        start_at=100.5,
        protocols=("tcp", "udp"),
        kind="node",
        nodes=("a", "b", "c", "d"),
        node="c",
    )
    (p,) = place([sweep], 3.0)
    assert (p.first, p.end) == (34, 40)  # 3 rounds x 2 protocols from the slot at 102 s
    assert [sorted(r) for r in p.rounds] == [
        [("b", "c"), ("c", "d")],
        [("a", "c"), ("c", "a")],
        [("c", "b"), ("d", "c")],
    ]
    _, tests = slot_tests([p], 35)
    assert {(t.client, t.server, t.protocol) for t in tests} == {
        ("b", "c", "udp"),
        ("c", "d", "udp"),
    }


GOOD: dict[str, Any] = {
    "id": "17-1",
    "start_at": 1.5,
    "protocols": ["tcp"],
    "kind": "pair",
    "nodes": ["a", "b"],
    "source": "a",
    "destination": "b",
}


@pytest.mark.parametrize(
    ("change", "words"),
    [
        ({"kind": "ring"}, "unknown kind"),
        ({"protocols": ["sctp"]}, "not tcp or udp"),
        ({"protocols": ["tcp", "tcp"]}, "not tcp or udp"),
        ({"protocols": []}, "empty"),
        ({"nodes": ["b", "a"]}, "sorted and unique"),
        ({"nodes": ["a", "a", "b"]}, "sorted and unique"),
        ({"source": "x"}, "not one of the sweep's nodes"),
        ({"destination": "a"}, "same node"),
        ({"start_at": -1}, "non-negative"),
        ({"id": ""}, "must not be empty"),
        ({"nodes": [1, "b"]}, "not a node name"),
    ],
)
def test_malformed_sweeps_are_refused_with_a_reason(change: dict[str, Any], words: str) -> None:
    with pytest.raises(WireError, match=words):
        parse_sweep({**GOOD, **change})


def test_report_answer_carries_sweeps_next_to_the_member_list() -> None:
    current = MemberList(epoch=7, members=())
    members, found = parse_report_answer({"epoch": 7, "unchanged": True}, current)
    assert members is current and found == ()
    members, found = parse_report_answer({"epoch": 7, "unchanged": True, "sweeps": [GOOD]}, current)
    assert found == (parse_sweep(GOOD),) and found[0].to_json() == GOOD
    with pytest.raises(WireError, match="duplicate ids"):
        parse_report_answer({"epoch": 7, "unchanged": True, "sweeps": [GOOD, GOOD]}, current)
    with pytest.raises(WireError, match="sweeps"):
        parse_report_answer({"epoch": 7, "unchanged": True, "sweeps": [GOOD] * 65}, current)


def test_reports_carry_the_sweep_tag_and_the_agents_timing() -> None:
    tagged = TestResult(source="a", destination="b", protocol="tcp", result="ok", sweep="17-1")
    report = Report(
        node="a",
        address="10.0.0.1",
        iperf3_port=5201,
        http_port=9101,
        generated_at=2.0,
        started_at=1.0,
        results=(tagged,),
        agent=AgentHealth(slot_seconds=3.0, report_interval=2.0),
    )
    old = json.loads(json.dumps(report.to_json()))
    back = parse_report(old)
    assert back.results[0].sweep == "17-1"
    assert (back.agent.slot_seconds, back.agent.report_interval) == (3.0, 2.0)
    del old["results"][0]["sweep"], old["agent"]["slot_seconds"]
    assert parse_report(old).results[0].sweep == "" and parse_report(old).agent.slot_seconds == 0
    old["results"][0]["sweep"] = "x" * 65
    with pytest.raises(WireError, match="sweep"):
        parse_report(old)
