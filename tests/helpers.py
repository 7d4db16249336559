"""Shared test helpers: poll for a condition with a deadline (never sleep blindly), time a
condition (benchmarks), free ports."""

from __future__ import annotations

import asyncio
import pathlib
import socket
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")

FIXTURES = pathlib.Path(__file__).parent / "fixtures"


def fixture_text(name: str) -> str:
    return (FIXTURES / name).read_text()


def free_port(host: str = "127.0.0.1", kind: int = socket.SOCK_STREAM) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def wait_for(
    predicate: Callable[[], T | None],
    timeout: float,
    interval: float = 0.05,
    what: str = "condition",
) -> T:
    """Poll ``predicate`` until it returns a truthy value; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    last: T | None = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what} (last: {last!r})")


async def async_wait_for(
    predicate: Callable[[], Awaitable[T | None]],
    within: float,
    interval: float = 0.05,
    what: str = "condition",
) -> T:
    """Async ``wait_for``: poll until truthy, fail after ``within`` seconds."""
    deadline = time.monotonic() + within
    last: T | None = None
    while time.monotonic() < deadline:
        last = await predicate()
        if last:
            return last
        await asyncio.sleep(interval)
    raise AssertionError(f"timed out after {within}s waiting for {what} (last: {last!r})")


def watch(
    read: Callable[[], T], done: Callable[[T], object], timeout: float, interval: float = 0.25
) -> tuple[float | None, list[T]]:
    """Poll ``read()`` until ``done`` holds for what it read (benchmarks: time it, never fail).

    The seconds that took (None: not within ``timeout``) and everything read meanwhile, the
    last read last."""
    started = time.monotonic()
    seen: list[T] = []
    while time.monotonic() - started < timeout:
        seen.append(read())
        if done(seen[-1]):
            return time.monotonic() - started, seen
        time.sleep(interval)
    return None, seen
