"""Long-running background tasks that never die silently (kopf's ``guard()`` idea).

``guard`` keeps one coroutine running (a crash is logged, counted, restarted);
``background`` owns its lifecycle: started as a task on entry, cancelled and
awaited on exit — the body of an aiohttp ``cleanup_ctx`` or of a daemon's
``AsyncExitStack``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable

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


@contextlib.asynccontextmanager
async def background(
    name: str,
    factory: Callable[[], Awaitable[None]],
    *,
    on_failure: Callable[[str], None],
    backoff: float = 1.0,
    max_backoff: float = 30.0,
) -> AsyncIterator[asyncio.Task[None]]:
    """``guard(name, factory, ...)`` as a task for the ``async with`` block.

    Yields the task (await it to wait for the work to end); on exit the task
    is cancelled and awaited, whatever it raised.
    """
    task = asyncio.create_task(
        guard(name, factory, on_failure=on_failure, backoff=backoff, max_backoff=max_backoff),
        name=name,
    )
    try:
        yield task
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
