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

_HEADER = struct.Struct("!4sBBHQQQQQ")
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


def encode(packet: Packet, size: int = HEADER_SIZE) -> bytes:
    """The packet's bytes, zero-padded to ``size`` (at least the header)."""
    head = _HEADER.pack(
        MAGIC,
        VERSION,
        packet.kind,
        0,
        packet.session,
        packet.seq,
        packet.sent_ns,
        packet.received,
        packet.replied,
    )
    return head + bytes(max(0, min(size, MAX_PACKET) - HEADER_SIZE))


def decode(data: bytes) -> Packet:
    if len(data) < HEADER_SIZE:
        raise Malformed(f"{len(data)} bytes, shorter than the {HEADER_SIZE}-byte header")
    magic, version, kind, _flags, session, seq, sent_ns, received, replied = _HEADER.unpack_from(
        data
    )
    if magic != MAGIC:
        raise Malformed("not a netmesh light-tier packet (magic)")
    if version != VERSION:
        raise Malformed(f"version {version} (this side speaks {VERSION})")
    if kind not in KINDS:
        raise Malformed(f"unknown kind {kind}")
    return Packet(kind, session, seq, sent_ns, received, replied)


def echo_of(probe: Packet, received: int, replied: int) -> Packet:
    return Packet(
        REPLY_KIND[probe.kind], probe.session, probe.seq, probe.sent_ns, received, replied
    )


def payload_size(mtu: int, ipv6: bool = False) -> int:
    """UDP payload that fills an IP packet of ``mtu`` bytes."""
    return max(HEADER_SIZE, mtu - (IPV6_OVERHEAD if ipv6 else IPV4_OVERHEAD))
