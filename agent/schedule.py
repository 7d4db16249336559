"""The test plan: a pure function of (members, this node, wall clock, settings).

An iperf3 server runs one test at a time, so tests run in *rounds* in which
every node is the client of at most one test and the server of at most one.
Members are put on a ring ordered by a stable hash of their names; in round
``r`` (1 <= r <= R) the node at ring position ``i`` tests position
``(i + r) mod N``. With R = N - 1 that covers all N(N - 1) ordered pairs, the
optimum; in k-peer mode R = k and each node tests its k successors on the
ring, so a joining node changes the peers of only k other nodes.

Time is cut into equal *slots* of ``omit + duration + guard`` seconds counted
from the Unix epoch, so every agent with a synchronised clock and the same
member list computes the same plan without talking to anyone. One *cycle*
(a full sweep) is ``R x protocols x sub-slots`` slots; the protocol loop is
inside the round loop so both protocols of a pair run back to back. With a
cluster-wide concurrency cap C, each (round, protocol) is split into
ceil(N / C) sub-slots and only ring positions ``s*C ... s*C + C - 1`` run in
sub-slot ``s``.

The *budget* B (0 < B <= 1) spaces the rounds: a round's A active slots
(protocols x sub-slots) are followed by idle slots so that a round takes
P = ceil(A x (omit + duration) / (B x slot)) slots. Each node is a client in
one test per active slot, so it spends at most B of its time in tests as a
client (and as much as a server). B = 1 packs rounds back to back.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from dataclasses import dataclass

from netmesh.wire import Member, Transport


@dataclass(frozen=True, kw_only=True)
class PlanSettings:
    """The settings the plan depends on (a subset of AgentSettings)."""

    duration: int
    omit: int
    guard: float
    protocols: tuple[Transport, ...]
    concurrency: int = 0
    peers_k: int = 0
    budget: float = 1.0  # share of time a node spends as a client in tests (0 < B <= 1)

    @property
    def slot_seconds(self) -> float:
        return self.omit + self.duration + self.guard

    @property
    def test_seconds(self) -> float:
        return self.omit + self.duration


# PlanSettings' fields under their names in the agent's (and the lab's) settings,
# for ``netmesh.config.project``.
SETTINGS_NAMES = {
    "duration": "test_duration",
    "omit": "omit_seconds",
    "guard": "guard_seconds",
    "budget": "bandwidth_budget",
}


@dataclass(frozen=True, kw_only=True)
class Test:
    __test__ = False  # not a pytest test class
    client: Member
    server: Member
    protocol: Transport
    round: int


@dataclass(frozen=True, kw_only=True)
class Slot:
    number: int  # slots since the Unix epoch
    start: float
    end: float
    test: Test | None  # what this node runs in the slot, if anything


def ring_key(name: str) -> tuple[int, str]:
    digest = hashlib.sha256(name.encode()).digest()
    return int.from_bytes(digest[:8], "big"), name


def ring(members: Sequence[Member]) -> list[Member]:
    """Members in ring order (stable hash of the name; ties by name)."""
    unique = {m.name: m for m in members}
    return sorted(unique.values(), key=lambda m: ring_key(m.name))


def rounds(n: int, peers_k: int) -> int:
    if n < 2:
        return 0
    if peers_k <= 0 or peers_k >= n - 1:
        return n - 1
    return peers_k


def subslots(n: int, concurrency: int) -> int:
    if concurrency <= 0 or n == 0:
        return 1
    return math.ceil(n / concurrency)


def active_slots(n: int, settings: PlanSettings) -> int:
    """Slots of one round in which tests run (protocols x sub-slots)."""
    return len(settings.protocols) * subslots(n, settings.concurrency)


def round_slots(n: int, settings: PlanSettings) -> int:
    """Slots of one round, its idle slots included (the budget spaces the rounds)."""
    active = active_slots(n, settings)
    if settings.budget >= 1:
        return active
    busy = active * settings.test_seconds
    return max(active, math.ceil(busy / (settings.budget * settings.slot_seconds) - 1e-9))


def cycle_slots(n: int, settings: PlanSettings) -> int:
    """Slots in one full sweep (0 when there is nothing to test)."""
    return rounds(n, settings.peers_k) * round_slots(n, settings)


def cycle_seconds(n: int, settings: PlanSettings) -> float:
    """Time one full sweep (every planned pair, every protocol) takes."""
    return cycle_slots(n, settings) * settings.slot_seconds


def slot_number(now: float, settings: PlanSettings) -> int:
    return math.floor(now / settings.slot_seconds)


def slot_tests(members: Sequence[Member], number: int, settings: PlanSettings) -> list[Test]:
    """Every test the whole mesh runs in slot ``number``."""
    order = ring(members)
    n = len(order)
    cycle = cycle_slots(n, settings)
    if cycle == 0:
        return []
    subs = subslots(n, settings.concurrency)
    position = number % cycle
    per_round = round_slots(n, settings)
    rnd = position // per_round + 1
    inner = position % per_round
    if inner >= active_slots(n, settings):
        return []  # an idle slot of the budget
    protocol = settings.protocols[inner // subs]
    sub = inner % subs
    if settings.concurrency > 0:
        clients = range(sub * settings.concurrency, min(n, (sub + 1) * settings.concurrency))
    else:
        clients = range(n)
    return [
        Test(client=order[i], server=order[(i + rnd) % n], protocol=protocol, round=rnd)
        for i in clients
    ]


def plan(members: Sequence[Member], me: str, now: float, settings: PlanSettings) -> Slot:
    """The slot that contains ``now`` and the test ``me`` runs in it (or None)."""
    number = slot_number(now, settings)
    start = number * settings.slot_seconds
    mine = [t for t in slot_tests(members, number, settings) if t.client.name == me]
    return Slot(
        number=number,
        start=start,
        end=start + settings.slot_seconds,
        test=mine[0] if mine else None,
    )


def peers_of(members: Sequence[Member], me: str, settings: PlanSettings) -> list[Member]:
    """The nodes ``me`` tests over one cycle (all others, or its k ring successors)."""
    order = ring(members)
    names = [m.name for m in order]
    if me not in names:
        return []
    i = names.index(me)
    n = len(order)
    return [order[(i + r) % n] for r in range(1, rounds(n, settings.peers_k) + 1)]
