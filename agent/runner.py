"""Run one ``iperf3 -c … --json`` test as an asyncio subprocess with a hard deadline.

The parsing is in ``agent/iperf.py``; this module owns the process: start it,
collect its stdout, interrupt it at the deadline (SIGINT lets iperf3 print its
JSON and close the control connection cleanly, which keeps the peer's server
from hanging), SIGKILL it if it does not exit, and never raise into the
caller: every failure becomes a TestResult with a reason.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from agent.iperf import TestId, failed, parse_result
from agent.process import interrupt, kill, spawn
from netmesh.wire import Member, TestResult, Transport

log = logging.getLogger(__name__)

# A test still running this long before its deadline gets SIGINT (iperf3 prints its JSON
# and exits), and SIGKILL if it has not exited by the deadline: the test ends by the
# deadline even when the machine is slow to deliver signals and reap (the next slot's
# test must not find this one's peer busy). At most a tenth of the test's budget, so that a
# short slot's guard still covers iperf3's own start and finish.
STOP_RESERVE = 0.25


@dataclass(frozen=True, kw_only=True)
class ClientOptions:
    binary: str = "iperf3"
    duration: int = 5
    omit: int = 0
    udp_bitrate: int = 100_000_000
    connect_timeout: float = 3.0
    bind_address: str = ""


def client_command(peer: Member, protocol: Transport, opts: ClientOptions) -> list[str]:
    cmd = [
        opts.binary,
        "-c",
        peer.address,
        "-p",
        str(peer.iperf3_port),
        "--json",
        "-t",
        str(opts.duration),
        "--connect-timeout",
        str(max(1, int(opts.connect_timeout * 1000))),
    ]
    if opts.omit and protocol == "tcp":
        # Omit is for TCP slow start. With UDP, iperf3 3.12 counts the omitted
        # seconds' packets as lost and overstates loss by (omit + t) / t.
        cmd += ["-O", str(opts.omit)]
    if opts.bind_address:
        cmd += ["-B", opts.bind_address]
    if protocol == "udp":
        cmd += ["-u", "-b", str(opts.udp_bitrate)]
    return cmd


async def run_test(
    *,
    source: str,
    peer: Member,
    protocol: Transport,
    opts: ClientOptions,
    deadline: float,
    clock: Callable[[], float] = time.time,
) -> TestResult:
    """Run one test; ``deadline`` is a wall-clock time (``clock()``) it must end by."""
    started = clock()
    test = TestId(source=source, destination=peer.name, protocol=protocol, started_at=started)
    budget = deadline - started
    if budget <= 0:
        return failed(test, result="timeout", message="no time left in the slot", duration=0.0)
    cmd = client_command(peer, protocol, opts)
    try:
        proc = await spawn(cmd)
    except OSError as exc:
        return failed(
            test,
            result="error",
            message=f"cannot start {cmd[0]}: {exc}",
            duration=clock() - started,
        )
    timed_out = False
    try:
        try:
            stdout, stderr = await asyncio.wait_for(
                proc.communicate(), timeout=budget - min(STOP_RESERVE, 0.1 * budget)
            )
        except TimeoutError:
            timed_out = True
            stdout, stderr = await interrupt(proc, max(0.01, deadline - clock()))
    except asyncio.CancelledError:
        await kill(proc)
        raise
    elapsed = clock() - started
    text = stdout.decode("utf-8", "replace")
    if timed_out:
        return failed(
            test,
            result="timeout",
            message=f"no result within {budget:.1f}s (peer {peer.address}:{peer.iperf3_port})",
            duration=elapsed,
        )
    if not text.strip():
        err = " ".join(stderr.decode("utf-8", "replace").split())[:200]
        return failed(
            test,
            result="garbage",
            message=f"iperf3 exited {proc.returncode} without output: {err}",
            duration=elapsed,
        )
    return parse_result(text, test, duration=elapsed)
