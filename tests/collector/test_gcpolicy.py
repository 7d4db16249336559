"""collector/gcpolicy.py: full collections on a timer, young ones automatic, settings restored."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from collector.gcpolicy import THRESHOLDS, FullCollections, GcPolicy
from tests.collector.conftest import MakeClient


@pytest.fixture
def policy() -> Iterator[GcPolicy]:
    before = gc.get_threshold()
    p = GcPolicy(FullCollections())
    yield p
    p.restore()
    assert gc.get_threshold() == before


class Cycle:
    def __init__(self) -> None:
        self.me = self


def test_full_collection_frees_cycles_and_is_counted(policy: GcPolicy) -> None:
    saved = gc.get_threshold()
    policy.apply()
    assert gc.get_threshold() == THRESHOLDS
    assert gc.get_freeze_count() > 0  # start-up objects left out of every pass
    gc.disable()  # keep the young-generation passes out of it
    try:
        for _ in range(1000):
            Cycle()
        policy.full()
        policy.full()
    finally:
        gc.enable()
    assert policy.stats.runs == 2
    assert policy.stats.collected >= 1000
    assert policy.stats.total_seconds >= policy.stats.last_seconds > 0
    policy.restore()
    assert gc.get_threshold() == saved
    assert gc.get_freeze_count() == 0


def test_young_cycles_are_still_collected_automatically(policy: GcPolicy) -> None:
    policy.apply()
    collected: list[int] = []

    def seen(phase: str, info: dict[str, int]) -> None:
        if phase == "stop" and info["collected"]:
            collected.append(info["generation"])

    gc.callbacks.append(seen)
    try:
        for _ in range(20_000):
            Cycle()
    finally:
        gc.callbacks.remove(seen)
    assert collected and max(collected) < 2, "young generations collect; no automatic full pass"


async def test_the_app_exports_its_full_collections(make_client: MakeClient) -> None:
    client = await make_client(gc_full_interval=1)
    text = await (await client.get("/metrics")).text()
    assert "netmesh_collector_gc_full_collections_total 0" in text
    assert gc.get_threshold() == THRESHOLDS
