"""The report's kernel drop section: why packets died on the node (eBPF, skb:kfree_skb).

Part of the wire format (netmesh/wire.py holds ``Report.drops``)::

    "drops": {"mode": str, "up": 0|1, "reason": str,
              "map_entries": int, "map_capacity": int, "evictions": int,
              "unspecified": int,                 # frees that are no loss (NOT_SPECIFIED, consumed)
              "reasons": [{"reason", "count"}, ...],            # every lost packet, by reason
              "flows": [{"reason", "remote", "protocol", "count"}, ...]}  # IP packets
            | null                                # absent from older agents

Counts are cumulative (counters). ``reasons`` names come from the agent's
kernel (``NETFILTER_DROP``, ``NO_SOCKET``, ``REASON_<n>`` for an unnamed
number, ``other`` past the array). ``flows`` are capped by the agent; beyond
the cap one flow with reason, remote and protocol ``other`` holds the rest.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from typing import Any

from netmesh.jsonreader import JsonReader, WireError

MAX_MESSAGE = 512
MAX_DROP_REASONS = 512
MAX_DROP_FLOWS = 4096
OTHER = "other"
PROTOCOLS = ("tcp", "udp", "icmp", "icmpv6", "sctp", OTHER)
_REASON = re.compile(r"[A-Z][A-Z0-9_]{0,63}")


@dataclass(frozen=True, kw_only=True)
class DropReason:
    reason: str
    count: int


@dataclass(frozen=True, kw_only=True)
class DropFlow:
    """Packets with one drop reason to or from one remote address (IP packets only)."""

    reason: str
    remote: str
    protocol: str
    count: int


@dataclass(frozen=True, kw_only=True)
class DropStatus:
    mode: str = "none"
    up: int = 0
    reason: str = ""  # why the probe is not up
    map_entries: int = 0
    map_capacity: int = 0
    evictions: int = 0
    unspecified: int = 0
    reasons: tuple[DropReason, ...] = ()
    flows: tuple[DropFlow, ...] = ()


def _reason(r: JsonReader, key: str = "reason") -> str:
    value = r.string(key, max_len=64)
    if value != OTHER and not _REASON.fullmatch(value):
        raise WireError(f"{r.child(key)}: {value!r} is not a drop reason name")
    return value


def parse_drops(obj: Any) -> DropStatus | None:
    if obj is None:
        return None
    r = JsonReader(obj, "drops")
    reasons = []
    seen: set[str] = set()
    for i, item in enumerate(r.items("reasons", limit=MAX_DROP_REASONS, default=[])):
        d = JsonReader(item, r.child("reasons", i))
        name = _reason(d)
        if name in seen:
            raise WireError(f"drops.reasons[{i}]: a second count for {name}")
        seen.add(name)
        reasons.append(DropReason(reason=name, count=d.integer("count")))
    flows = []
    keys: set[tuple[str, str, str]] = set()
    for i, item in enumerate(r.items("flows", limit=MAX_DROP_FLOWS, default=[])):
        f = JsonReader(item, r.child("flows", i))
        reason = _reason(f)
        remote = f.string("remote", max_len=64)
        protocol = f.string("protocol", max_len=8)
        if protocol not in PROTOCOLS:
            raise WireError(f"{f.child('protocol')}: {protocol!r} is not one of {PROTOCOLS}")
        if reason != OTHER or remote != OTHER:
            try:
                ipaddress.ip_address(remote)
            except ValueError:
                raise WireError(f"{f.child('remote')}: {remote!r} is not an IP address") from None
        if (reason, remote, protocol) in keys:
            raise WireError(f"drops.flows[{i}]: a second flow {reason} {remote} {protocol}")
        keys.add((reason, remote, protocol))
        flows.append(
            DropFlow(reason=reason, remote=remote, protocol=protocol, count=f.integer("count"))
        )
    return DropStatus(
        mode=r.string("mode", max_len=16),
        up=r.integer("up", high=1),
        reason=r.string("reason", max_len=MAX_MESSAGE, allow_empty=True),
        map_entries=r.integer("map_entries", default=0),
        map_capacity=r.integer("map_capacity", default=0),
        evictions=r.integer("evictions", default=0),
        unspecified=r.integer("unspecified", default=0),
        reasons=tuple(reasons),
        flows=tuple(flows),
    )
