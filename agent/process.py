"""The agent's child processes (iperf3 client and server): start, stop, reap.

Every child runs in a session of its own (a signal to the agent's process
group does not reach it; the agent decides when it stops) and gets SIGKILL
when the agent dies, so none lingers. Stopping never raises: a child that is
already gone is fine, and the wait for it to be reaped is bounded.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import signal
from collections.abc import Sequence

PR_SET_PDEATHSIG = 1
# How long to wait for a SIGKILLed child to be reaped.
REAP_TIMEOUT = 2.0


def die_with_parent() -> None:
    """In the child before exec: get SIGKILL when the agent dies, so no child lingers."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


async def spawn(cmd: Sequence[str]) -> asyncio.subprocess.Process:
    """Start ``cmd`` in a new session, stdin closed, stdout and stderr piped.

    Raises OSError when the program cannot be started.
    """
    return await asyncio.create_subprocess_exec(
        *cmd,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        start_new_session=True,
        preexec_fn=die_with_parent,
    )


async def interrupt(proc: asyncio.subprocess.Process, grace: float) -> tuple[bytes, bytes]:
    """SIGINT, then the output if it exits within ``grace`` s; else SIGKILL and no output."""
    with contextlib.suppress(ProcessLookupError):
        proc.send_signal(signal.SIGINT)
    try:
        return await asyncio.wait_for(proc.communicate(), timeout=grace)
    except TimeoutError:
        await kill(proc)
        return b"", b""


async def kill(proc: asyncio.subprocess.Process) -> None:
    """SIGKILL and reap (waiting at most REAP_TIMEOUT s); nothing to do if it has exited."""
    if proc.returncode is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        proc.kill()
    with contextlib.suppress(Exception):
        await asyncio.wait_for(proc.wait(), timeout=REAP_TIMEOUT)
