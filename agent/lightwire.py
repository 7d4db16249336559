"""The light tier's packets: small UDP probes and their echoes (pure encode/decode, no I/O).

Every packet starts with a 48-byte header (network byte order)::

    magic "NMLT" | version u8 | kind u8 | flags u16 | session u64 | seq u64
    | sent_ns u64 | received u64 | replied u64

- ``PROBE`` (prober → responder): ``session`` is random per prober start,
  ``seq`` counts this session's probes to that responder from 0, ``sent_ns``
  is the prober's monotonic clock (echoed back, so RTT needs no clock sync).
  Padding follows up to the probe size.
- ``ECHO`` (responder → prober): the probe's session, seq and sent_ns, plus
  how many probes of this session the responder has **received** and how
  many echoes it has **replied** so far (both counted before this echo is
  sent, this one included in ``replied``). From two echoes the prober knows
  forward loss (probes sent vs received between them) and return loss
  (echoes replied vs echoes that came back), separately.
- ``MTU_PROBE`` / ``MTU_ECHO``: the same for the don't-fragment probe padded to
  the path MTU; counted apart from the small probes, echoed small (the
  reverse direction is the peer's own MTU probe).

``sent_ns`` is opaque to the responder (echoed as is); this prober writes the
wall clock (``CLOCK_REALTIME``, the clock of the kernel's receive timestamps).

Flags (an extension that keeps version 1: decoders before it ignore the flags
and any bytes after the header):

- ``FLAG_TURNAROUND`` (echoes only): an unsigned 64-bit ``turnaround_ns``
  follows the header — the responder's time from the kernel receiving the
  probe to the echo's ``sendto``, which the prober takes off the RTT (as
  irtt does). An echo with the flag but without the 8 bytes, with the flag
  on a probe, or a turnaround above ``MAX_TURNAROUND_NS`` is ``Malformed``.
- Other bits are ignored (room for later extensions).

Anything else (wrong magic, version, kind, length) is ``Malformed``.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

MAGIC = b"NMLT"
VERSION = 1
PROBE = 1
ECHO = 2
MTU_PROBE = 3
MTU_ECHO = 4
KINDS = frozenset({PROBE, ECHO, MTU_PROBE, MTU_ECHO})
REPLY_KIND = {PROBE: ECHO, MTU_PROBE: MTU_ECHO}
FLAG_TURNAROUND = 0x0001
MAX_TURNAROUND_NS = 10_000_000_000  # 10 s: far beyond any echo the prober still waits for

_HEADER = struct.Struct("!4sBBHQQQQQ")
_TURNAROUND = struct.Struct("!Q")
HEADER_SIZE = _HEADER.size  # 48
MAX_PACKET = 65_507  # largest UDP payload over IPv4
IPV4_OVERHEAD = 28  # IPv4 + UDP headers
IPV6_OVERHEAD = 48


class Malformed(ValueError):
    """Not a light-tier packet of this version."""


@dataclass(frozen=True, slots=True)
class Packet:
    kind: int
    session: int
    seq: int
    sent_ns: int
    received: int = 0
    replied: int = 0
    turnaround_ns: int | None = None  # echoes: the responder's receive-to-send time


def encode(packet: Packet, size: int = HEADER_SIZE) -> bytes:
    """The packet's bytes, zero-padded to ``size`` (at least the header and extensions)."""
    turnaround = packet.turnaround_ns
    if turnaround is not None and packet.kind in REPLY_KIND:
        raise ValueError("a probe carries no turnaround")
    head = _HEADER.pack(
        MAGIC,
        VERSION,
        packet.kind,
        0 if turnaround is None else FLAG_TURNAROUND,
        packet.session,
        packet.seq,
        packet.sent_ns,
        packet.received,
        packet.replied,
    )
    if turnaround is not None:
        head += _TURNAROUND.pack(min(max(0, turnaround), MAX_TURNAROUND_NS))
    return head + bytes(max(0, min(size, MAX_PACKET) - len(head)))


def decode(data: bytes) -> Packet:
    if len(data) < HEADER_SIZE:
        raise Malformed(f"{len(data)} bytes, shorter than the {HEADER_SIZE}-byte header")
    magic, version, kind, flags, session, seq, sent_ns, received, replied = _HEADER.unpack_from(
        data
    )
    if magic != MAGIC:
        raise Malformed("not a netmesh light-tier packet (magic)")
    if version != VERSION:
        raise Malformed(f"version {version} (this side speaks {VERSION})")
    if kind not in KINDS:
        raise Malformed(f"unknown kind {kind}")
    turnaround: int | None = None
    if flags & FLAG_TURNAROUND:
        if kind in REPLY_KIND:
            raise Malformed("a probe with a turnaround")
        if len(data) < HEADER_SIZE + _TURNAROUND.size:
            raise Malformed(f"{len(data)} bytes: the turnaround flag without the turnaround")
        (turnaround,) = _TURNAROUND.unpack_from(data, HEADER_SIZE)
        if turnaround > MAX_TURNAROUND_NS:
            raise Malformed(f"turnaround {turnaround} ns, above {MAX_TURNAROUND_NS}")
    return Packet(kind, session, seq, sent_ns, received, replied, turnaround)


def echo_of(probe: Packet, received: int, replied: int, turnaround_ns: int | None = None) -> Packet:
    return Packet(
        REPLY_KIND[probe.kind],
        probe.session,
        probe.seq,
        probe.sent_ns,
        received,
        replied,
        turnaround_ns,
    )


def payload_size(mtu: int, ipv6: bool = False) -> int:
    """UDP payload that fills an IP packet of ``mtu`` bytes."""
    return max(HEADER_SIZE, mtu - (IPV6_OVERHEAD if ipv6 else IPV4_OVERHEAD))
