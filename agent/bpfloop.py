"""Load a BPF program, then drain its maps every interval: the life of both eBPF probes.

``agent/probe.py`` (retransmissions) and ``agent/drops.py`` (drop reasons)
differ in what they load, what a drain reads and what they report; the life
around that is one: load in a thread (BCC compiles for seconds); a probe that
cannot run here is reported down with the reason and the task ends quietly; an
unexpected failure is reported down and raised to the task guard, which
restarts it; drain until cancelled (or ``iterations`` drains, for tests); the
maps are always closed.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Protocol, TypeVar

from agent.probe_logic import ProbeUnavailable

log = logging.getLogger(__name__)


class Closable(Protocol):
    def close(self) -> None: ...


M = TypeVar("M", bound=Closable)


async def load_then_drain(
    name: str,
    load: Callable[[], M],
    *,
    attach: Callable[[M | None], None],
    drain: Callable[[], Awaitable[None]],
    down: Callable[[str], None],
    interval: float,
    sleep: Callable[[float], Awaitable[None]],
    iterations: int | None = None,
) -> None:
    """``name`` names the probe in messages ("probe", "drop probe"); ``attach(maps)`` after
    loading and ``attach(None)`` before the maps are closed."""
    try:
        maps = await asyncio.to_thread(load)
    except ProbeUnavailable as exc:
        down(str(exc))
        log.warning("%s not running: %s", name, exc)
        return
    except Exception as exc:
        down(f"{name} failed to load: {exc!r}")
        raise
    attach(maps)
    try:
        done = 0
        while iterations is None or done < iterations:
            await drain()
            done += 1
            if iterations is None or done < iterations:
                await sleep(interval)
    except asyncio.CancelledError:
        raise
    except Exception as exc:
        down(f"drain failed: {exc!r}")
        raise
    finally:
        attach(None)
        await asyncio.to_thread(maps.close)
