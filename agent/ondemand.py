"""This node's part of the on-demand sweeps: which test it runs in a slot, if a sweep holds it.

The plan itself is shared with the collector (netmesh/ondemand.py); this
module maps it onto the agent's slot grid and members. While a sweep's window
holds a slot, the budgeted ring plan (agent/schedule.py) does not run in it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from agent.schedule import PlanSettings, Slot, Test, slot_number
from netmesh.ondemand import Sweep, ended, place, slot_tests
from netmesh.wire import PROTOCOLS, Member, Transport


@dataclass(frozen=True, kw_only=True)
class SweepSlot:
    slot: Slot
    sweep: str  # the sweep's id
    missing: str = ""  # a server this node should test that is not a member (test fails)
    protocol: Transport = "tcp"  # the missing test's protocol


def sweep_slot(
    sweeps: Mapping[str, Sweep],
    members: Sequence[Member],
    me: str,
    now: float,
    settings: PlanSettings,
) -> SweepSlot | None:
    """The slot holding ``now`` if a sweep's window holds it (with this node's test), else None."""
    if not sweeps:
        return None
    length = settings.slot_seconds
    number = slot_number(now, settings)
    placement, tests = slot_tests(place(sweeps.values(), length), number)
    if placement is None:
        return None
    start = number * length
    slot = Slot(number=number, start=start, end=start + length, test=None)
    mine = [t for t in tests if t.client == me]
    if not mine:
        return SweepSlot(slot=slot, sweep=placement.sweep.id)
    by_name = {m.name: m for m in members}
    test, client = mine[0], by_name.get(me)
    server = by_name.get(test.server)
    protocol = _transport(test.protocol)
    if client is None or server is None or protocol is None:
        return SweepSlot(
            slot=slot, sweep=placement.sweep.id, missing=test.server, protocol=protocol or "tcp"
        )
    planned = Test(client=client, server=server, protocol=protocol, round=test.round)
    return SweepSlot(
        slot=Slot(number=number, start=start, end=slot.end, test=planned),
        sweep=placement.sweep.id,
    )


def _transport(name: str) -> Transport | None:
    for p in PROTOCOLS:
        if p == name:
            return p
    return None


def prune(sweeps: dict[str, Sweep], now: float, settings: PlanSettings) -> list[str]:
    """Forget sweeps whose window ended (and that no later sweep depends on); their ids."""
    length = settings.slot_seconds
    number = slot_number(now, settings)
    gone = ended(place(sweeps.values(), length), number)
    for sweep_id in gone:
        del sweeps[sweep_id]
    return gone
