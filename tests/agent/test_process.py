"""The agent's child processes: a new session, interrupt with a grace time, kill and reap."""

from __future__ import annotations

import asyncio
import os
import sys

import pytest

from agent.process import interrupt, kill, spawn

# A child that says when it is ready, then waits; on SIGINT it prints its result and exits.
POLITE = """
import signal, sys, time
def done(*_):
    print("result"); sys.exit(0)
signal.signal(signal.SIGINT, done)
print("ready", flush=True)
time.sleep(60)
"""
# A child that ignores SIGINT (like a hung iperf3).
STUBBORN = """
import signal, time
signal.signal(signal.SIGINT, signal.SIG_IGN)
print("ready", flush=True)
time.sleep(60)
"""


async def _ready(code: str) -> asyncio.subprocess.Process:
    proc = await spawn([sys.executable, "-c", code])
    assert proc.stdout is not None
    assert await asyncio.wait_for(proc.stdout.readline(), timeout=10) == b"ready\n"
    return proc


async def test_spawn_pipes_output_in_a_new_session() -> None:
    proc = await spawn([sys.executable, "-c", "import os; print(os.getsid(0))"])
    stdout, stderr = await proc.communicate()
    assert int(stdout) == proc.pid != os.getsid(0)
    assert stderr == b"" and proc.returncode == 0


async def test_spawn_of_a_missing_program_raises_oserror() -> None:
    with pytest.raises(OSError):
        await spawn(["/nonexistent/iperf3", "-s"])


async def test_interrupt_collects_the_output_of_a_child_that_exits() -> None:
    proc = await _ready(POLITE)
    stdout, _ = await interrupt(proc, grace=10.0)
    assert stdout == b"result\n" and proc.returncode == 0


async def test_interrupt_kills_a_child_that_does_not_exit_in_time() -> None:
    proc = await _ready(STUBBORN)
    assert await interrupt(proc, grace=0.2) == (b"", b"")
    assert proc.returncode == -9


async def test_kill_reaps_and_is_harmless_once_exited() -> None:
    proc = await _ready(STUBBORN)
    await kill(proc)
    assert proc.returncode == -9
    await kill(proc)
    assert proc.returncode == -9
