"""Kernel receive timestamps for the light tier's UDP socket (Linux ``SO_TIMESTAMPNS``).

With ``SO_TIMESTAMPNS`` on, every datagram read with ``recvmsg`` carries the
time the kernel received it (``CLOCK_REALTIME``, ns) as ancillary data, so an
RTT no longer includes how long the event loop took to get to the packet
(asyncio's datagram transports read with ``recvfrom``: no ancillary data; the
light tier reads its socket itself, ``loop.add_reader`` + ``read_batch``).

``wall_ns`` is the clock the timestamps are on: the prober stamps its probes
with it and the responder measures its turnaround with it.
"""

from __future__ import annotations

import socket
import struct
import time
from collections.abc import Callable

# asm-generic/socket.h (x86, arm, arm64, riscv, s390, ppc): the socket module lacks them.
# SO_TIMESTAMPNS_OLD: a struct timespec of two native longs (the 64-bit time_t on 64-bit).
SO_TIMESTAMPNS = 35
SCM_TIMESTAMPNS = SO_TIMESTAMPNS
_TIMESPEC = struct.Struct("@ll")
ANCILLARY_SPACE = socket.CMSG_SPACE(_TIMESPEC.size)
MAX_DATAGRAM = 65_535
BATCH = 64  # datagrams read per readiness callback at most (the loop stays fair)

wall_ns: Callable[[], int] = time.time_ns

# (payload, sender address, kernel receive time in ns or None)
Datagram = tuple[bytes, tuple[str | int, ...], int | None]


def enable_timestamps(sock: socket.socket) -> bool:
    """Ask the kernel to timestamp received datagrams; False where it cannot."""
    try:
        sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
    except OSError:
        return False
    return True


def received_ns(ancillary: list[tuple[int, int, bytes]]) -> int | None:
    """The kernel receive time in a datagram's ancillary data, None without one."""
    for level, kind, data in ancillary:
        if level == socket.SOL_SOCKET and kind == SCM_TIMESTAMPNS and len(data) >= _TIMESPEC.size:
            sec, nsec = _TIMESPEC.unpack_from(data)
            return int(sec) * 1_000_000_000 + int(nsec)
    return None


def read_batch(
    sock: socket.socket, on_error: Callable[[OSError], None], limit: int = BATCH
) -> list[Datagram]:
    """The datagrams waiting on a non-blocking socket (at most ``limit``), with their
    kernel receive times. Errors the socket reports (ICMP, with IP_RECVERR) go to
    ``on_error``; reading goes on while there is something to read."""
    out: list[Datagram] = []
    for _ in range(limit):
        try:
            data, ancillary, _flags, addr = sock.recvmsg(MAX_DATAGRAM, ANCILLARY_SPACE)
        except (BlockingIOError, InterruptedError):
            break
        except OSError as exc:
            on_error(exc)
            continue
        out.append((data, addr, received_ns(ancillary)))
    return out
