"""Guarded background tasks: a crash is logged, counted and restarted; exit cancels and awaits."""

from __future__ import annotations

import asyncio
import collections

import pytest

from netmesh.tasks import background, guard


async def test_a_crash_is_counted_and_restarted(caplog: pytest.LogCaptureFixture) -> None:
    failures: collections.Counter[str] = collections.Counter()
    starts = 0
    running = asyncio.Event()

    async def work() -> None:
        nonlocal starts
        starts += 1
        if starts <= 2:
            raise RuntimeError(f"crash {starts}")
        running.set()
        await asyncio.Event().wait()

    def failed(name: str) -> None:
        failures[name] += 1

    async with background("work", work, on_failure=failed, backoff=0.001) as task:
        await asyncio.wait_for(running.wait(), 5)
        assert not task.done()
    assert failures == {"work": 2} and starts == 3
    assert "background task work crashed" in caplog.text


async def test_exit_cancels_and_awaits_the_task() -> None:
    cancelled = asyncio.Event()
    started = asyncio.Event()

    async def work() -> None:
        started.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.set()
            raise

    async with background("work", work, on_failure=lambda name: None) as task:
        await asyncio.wait_for(started.wait(), 5)
    assert task.cancelled() and cancelled.is_set()


async def test_the_block_failing_still_stops_the_task() -> None:
    started = asyncio.Event()

    async def work() -> None:
        started.set()
        await asyncio.Event().wait()

    with pytest.raises(ValueError, match="the block failed"):
        async with background("work", work, on_failure=lambda name: None) as task:
            await asyncio.wait_for(started.wait(), 5)
            raise ValueError("the block failed")
    assert task.cancelled()


async def test_a_task_that_returns_ends_and_exit_is_quiet() -> None:
    failures: list[str] = []

    async def work() -> None:
        return None

    async with background("once", work, on_failure=failures.append) as task:
        await task
    assert task.done() and not task.cancelled() and failures == []


async def test_guard_backs_off_doubling_up_to_the_cap(monkeypatch: pytest.MonkeyPatch) -> None:
    delays: list[float] = []
    real_sleep = asyncio.sleep

    async def sleep(seconds: float) -> None:
        delays.append(seconds)
        await real_sleep(0)

    crashes = 0

    async def work() -> None:
        nonlocal crashes
        crashes += 1
        if crashes <= 5:
            raise RuntimeError("crash")

    monkeypatch.setattr(asyncio, "sleep", sleep)
    await guard("work", work, on_failure=lambda name: None, backoff=1.0, max_backoff=4.0)
    assert delays == [1.0, 2.0, 4.0, 4.0, 4.0]
