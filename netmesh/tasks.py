"""Long-running background tasks that never die silently (kopf's ``guard()`` idea)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

log = logging.getLogger(__name__)


async def guard(
    name: str,
    factory: Callable[[], Awaitable[None]],
    *,
    on_failure: Callable[[str], None],
    backoff: float = 1.0,
    max_backoff: float = 30.0,
) -> None:
    """Run ``factory()`` forever: a crash is logged at once, counted, and restarted.

    ``on_failure(name)`` is the hook that makes the crash visible in a metric.
    Cancellation stops the task; returning normally ends it too.
    """
    delay = backoff
    while True:
        try:
            await factory()
            return
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("background task %s crashed; restarting in %.1fs", name, delay)
            on_failure(name)
            await asyncio.sleep(delay)
            delay = min(max_backoff, delay * 2)
