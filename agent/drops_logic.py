"""The drop-reason probe's pure parts: reason names, C source, skb offsets, key decoding, totals.

Nothing here touches the kernel or BCC: ``agent/drops.py`` loads ebpf/drops.c
and reads its maps, these functions decide. Unit-tested without root
(tests/agent/test_drops.py).

Reason names come from the running kernel, never from a table in this code:
the tracepoint's format file (``events/skb/kfree_skb/format``) prints the
``enum skb_drop_reason`` as a ``__print_symbolic(REC->reason, { 2,
"NOT_SPECIFIED" }, { 3, "NO_SOCKET" }, ...)`` table, which grows with every
kernel release. A reason number the table does not name is exported as
``REASON_<n>``; numbers past the per-reason array go to ``other``.

What counts as a loss: every reason except the end-of-life frees, i.e. 0
(SKB_NOT_DROPPED_YET), 1 (SKB_CONSUMED: normal consumption, which newer
kernels report on skb:consume_skb anyway) and NOT_SPECIFIED (plain
``kfree_skb()`` calls, mostly normal frees). Those are counted apart
(``unspecified``) and never enter the flow map, so the loss counters mean
loss.

Flow keys are (reason, remote address, IP protocol); the flow map is drained
with the retransmission probe's ``Drainer`` (agent/probe_logic.py explains why
entries are never deleted), capped with the same ``other`` bucket.
"""

from __future__ import annotations

import ipaddress
import pathlib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from agent.probe_logic import (
    OTHER,
    Drainer,
    ProbeUnavailable,
    _btf_types,
    _member_bits,
    filter_macros,
)
from netmesh.dropreport import DropFlow, DropReason

SOURCE_PATH = pathlib.Path(__file__).resolve().parent.parent / "ebpf" / "drops.c"
TRACEPOINT = ("skb", "kfree_skb")
MODES = ("auto", "tracepoint", "off")

# Indexes of the per-CPU `drop_stats` array in ebpf/drops.c.
DSTAT_INSERTS, DSTAT_LOST, DSTAT_NOT_IP, DSTAT_NO_HDR, DSTAT_FILTERED = 0, 1, 2, 3, 4
DSTAT_COUNT = 5

NOT_SPECIFIED = "NOT_SPECIFIED"
SKB_FIELDS = ("skb_iif", "network_header", "head")
MAX_SPAN = 128  # bytes of struct sk_buff read in one go; wider = per-reason counts only

# IP protocol numbers → the protocol label (anything else: "other"; a bounded label).
PROTOCOLS: Mapping[int, str] = {1: "icmp", 6: "tcp", 17: "udp", 58: "icmpv6", 132: "sctp"}

DropFlowId = tuple[str, str, int]  # (reason name, remote address, IP protocol number)


@dataclass(frozen=True, kw_only=True)
class DropsConfig:
    mode: str = "auto"
    map_size: int = 4096
    series_cap: int = 500
    series_ttl: float = 3600.0
    interval: float = 5.0
    print_source: bool = False
    # probe_local_cidrs: count only packets whose local address is in these (lab: one kernel)
    local_cidrs: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = ()

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"drops mode {self.mode!r}: one of {', '.join(MODES)}")
        if self.map_size < 1:
            raise ValueError("drops map size must be >= 1")
        if self.series_cap < 1:
            raise ValueError("drops series cap must be >= 1")


# --------------------------------------------------------------------------- tracepoint format

_SYMBOL = re.compile(r'\{\s*(\d+)\s*,\s*"([A-Za-z0-9_]+)"\s*\}')
_FIELD = re.compile(r"field:([^;]*?)\b(\w+);\s*offset:(\d+);\s*size:(\d+);")
# Fields read (name → size the program reads them with).
RECORD_FIELDS = {"skbaddr": 8, "protocol": 2, "reason": 4}


@dataclass(frozen=True, kw_only=True)
class TracepointFormat:
    """What the kfree_skb format file says: does it carry a reason, and the reasons' names."""

    has_reason: bool
    names: Mapping[int, str] = field(default_factory=dict)
    # byte offsets of the fields the program reads from the tracepoint's record
    offsets: Mapping[str, int] = field(default_factory=dict)


def parse_format(text: str) -> TracepointFormat:
    """Parse ``events/skb/kfree_skb/format`` (its fields and print fmt's symbolic table)."""
    offsets: dict[str, int] = {}
    for m in _FIELD.finditer(text):
        name, offset, size = m.group(2), int(m.group(3)), int(m.group(4))
        if RECORD_FIELDS.get(name) == size:
            offsets[name] = offset
    has_reason = "reason" in offsets
    names: dict[int, str] = {}
    fmt = text.partition("print fmt:")[2]
    start = fmt.find("__print_symbolic(REC->reason")
    if start >= 0:
        for m in _SYMBOL.finditer(fmt, start):
            names[int(m.group(1))] = m.group(2)
    if names and names[max(names)] == "MAX":  # the enum's end marker, not a reason
        del names[max(names)]
    return TracepointFormat(has_reason=has_reason, names=names, offsets=offsets)


def noise_max(fmt: TracepointFormat) -> int:
    """Highest reason number that is not a loss (NOT_SPECIFIED's number; 2 if unnamed)."""
    for number, name in fmt.names.items():
        if name == NOT_SPECIFIED:
            return number
    return 2


def reason_slots(fmt: TracepointFormat) -> int:
    """A power of two above every named reason (room for a few newer ones), at least 256."""
    top = max(fmt.names, default=0) + 2
    slots = 256
    while slots < top:
        slots *= 2
    return slots


def reason_name(number: int, fmt: TracepointFormat, slots: int) -> str:
    if number >= slots - 1:
        return OTHER
    return fmt.names.get(number) or f"REASON_{number}"


def check_format(fmt: TracepointFormat | None, mode: str) -> None:
    """ProbeUnavailable (with what to do) when the kernel cannot give drop reasons."""
    if mode == "off":
        raise ProbeUnavailable("disabled (drops_mode=off)")
    if fmt is None:
        raise ProbeUnavailable(
            "no tracepoint skb:kfree_skb (tracefs not mounted? mount -t tracefs tracefs "
            "/sys/kernel/tracing; in a container mount the host's /sys/kernel/tracing)"
        )
    missing = [f for f in RECORD_FIELDS if f not in fmt.offsets and f != "reason"]
    if missing:
        raise ProbeUnavailable(f"skb:kfree_skb's format lacks {', '.join(missing)}")
    if not fmt.has_reason:
        raise ProbeUnavailable(
            "skb:kfree_skb has no reason field (Linux < 5.17): drop reasons need 5.17 or "
            "newer; counting every kfree_skb without one would count normal frees as loss"
        )


# --------------------------------------------------------------------------- skb offsets


@dataclass(frozen=True, kw_only=True)
class SkbSpan:
    """One window of struct sk_buff holding skb_iif, network_header and head."""

    start: int
    length: int
    iif: int
    network_header: int
    head: int


def skb_span(offsets: Mapping[str, int]) -> SkbSpan | None:
    """The window over ``SKB_FIELDS`` (byte offsets in sk_buff); None if a field is missing."""
    if any(name not in offsets for name in SKB_FIELDS):
        return None
    sizes = {"skb_iif": 4, "network_header": 2, "head": 8}
    start = min(offsets[n] for n in SKB_FIELDS)
    end = max(offsets[n] + sizes[n] for n in SKB_FIELDS)
    length = (end - start + 7) // 8 * 8
    if length > MAX_SPAN:
        return None
    return SkbSpan(
        start=start,
        length=length,
        iif=offsets["skb_iif"] - start,
        network_header=offsets["network_header"] - start,
        head=offsets["head"] - start,
    )


def skb_offsets(btf_raw: Iterable[str]) -> dict[str, int]:
    """Byte offsets of ``SKB_FIELDS`` in struct sk_buff from ``bpftool btf dump ... raw`` text."""
    members, by_name = _btf_types(btf_raw)
    skb = by_name.get("sk_buff")
    if skb is None:
        return {}
    out: dict[str, int] = {}
    for name in SKB_FIELDS:
        bits = _member_bits(members, skb, name)
        if bits is not None and bits % 8 == 0:
            out[name] = bits // 8
    return out


# --------------------------------------------------------------------------- C source


def render_source(
    template: str, config: DropsConfig, fmt: TracepointFormat, span: SkbSpan | None
) -> str:
    """The final C: a prelude of ``#define``s, then ebpf/drops.c."""
    prelude = [
        "/* prelude generated by agent/drops_logic.py: render_source */",
        f"#define NETMESH_DROP_MAP_SIZE {int(config.map_size)}",
        f"#define NETMESH_REASON_SLOTS {reason_slots(fmt)}",
        f"#define NETMESH_NOISE_MAX {noise_max(fmt)}",
        *(f"#define NETMESH_TP_{k.upper()} {v}" for k, v in sorted(fmt.offsets.items())),
    ]
    if span is not None:
        prelude += [
            f"#define NETMESH_SKB_SPAN_START {span.start}",
            f"#define NETMESH_SKB_SPAN_LEN {span.length}",
            f"#define NETMESH_SKB_IIF {span.iif}",
            f"#define NETMESH_SKB_NH {span.network_header}",
            f"#define NETMESH_SKB_HEAD {span.head}",
        ]
    elif config.local_cidrs:
        raise ProbeUnavailable(
            "a local-address filter (probe_local_cidrs) needs sk_buff offsets from BTF "
            "(/sys/kernel/btf/vmlinux and bpftool), which are not available here"
        )
    prelude += filter_macros(config.local_cidrs)
    return "\n".join(prelude) + "\n" + template


# --------------------------------------------------------------------------- keys and totals


def decode_flow(
    reason: int, family: int, proto: int, remote: bytes, *, fmt: TracepointFormat, slots: int
) -> DropFlowId | None:
    """A kernel key → (reason name, remote address, IP protocol); None for an unknown family."""
    if family == 4:
        address = str(ipaddress.IPv4Address(bytes(remote[:4])))
    elif family == 6:
        address = str(ipaddress.IPv6Address(bytes(remote[:16])))
    else:
        return None
    return (reason_name(reason, fmt, slots), address, proto)


def protocol_label(proto: int) -> str:
    return PROTOCOLS.get(proto, OTHER)


@dataclass
class ReasonTotals:
    """Monotonic per-reason totals from the per-CPU array, across reloads of the program."""

    base: dict[str, int] = field(default_factory=dict)  # totals of earlier loads
    current: dict[str, int] = field(default_factory=dict)  # the loaded program's counters

    def update(self, counts: Mapping[str, int]) -> None:
        self.current = {k: v for k, v in counts.items() if v > 0}

    def reload(self) -> None:
        for k, v in self.current.items():
            self.base[k] = self.base.get(k, 0) + v
        self.current = {}

    def totals(self) -> dict[str, int]:
        out = dict(self.base)
        for k, v in self.current.items():
            out[k] = out.get(k, 0) + v
        return out


def reason_counts(array: list[int], fmt: TracepointFormat, slots: int) -> dict[str, int]:
    """The per-reason array (summed over CPUs) by name; zero slots left out."""
    out: dict[str, int] = {}
    for number, count in enumerate(array):
        if count:
            name = reason_name(number, fmt, slots) if number > 1 else "CONSUMED"
            out[name] = out.get(name, 0) + count
    return out


def split_reasons(totals: Mapping[str, int]) -> tuple[tuple[DropReason, ...], int]:
    """(loss reasons, sorted; frees that are not losses: CONSUMED + NOT_SPECIFIED)."""
    noise = {"CONSUMED", NOT_SPECIFIED}
    losses = tuple(
        DropReason(reason=r, count=n) for r, n in sorted(totals.items()) if r not in noise
    )
    return losses, sum(n for r, n in totals.items() if r in noise)


def drop_flows(drainer: Drainer) -> tuple[DropFlow, ...]:
    """The drainer's (reason, remote, proto) totals as report flows, plus the 'other' bucket."""
    out = [
        DropFlow(reason=reason, remote=remote, protocol=protocol_label(proto), count=count)
        for (reason, remote, proto), count in sorted(drainer.totals.items())
    ]
    merged: dict[tuple[str, str, str], int] = {}
    for f in out:  # two IP protocols can share the "other" label
        key = (f.reason, f.remote, f.protocol)
        merged[key] = merged.get(key, 0) + f.count
    flows = [DropFlow(reason=r, remote=a, protocol=p, count=n) for (r, a, p), n in merged.items()]
    if drainer.other:
        flows.append(DropFlow(reason=OTHER, remote=OTHER, protocol=OTHER, count=drainer.other))
    return tuple(flows)
