"""The retransmission probe's pure parts: configuration, C source, checks, key decoding, draining.

Nothing here touches the kernel or BCC: ``agent/probe.py`` does the loading
and the map reads and hands the results to these functions, so that all of
the probe's decisions are unit-tested without root (tests/agent/test_probe.py).

Drain method (why the kernel counters are never deleted)
--------------------------------------------------------
The kernel map holds one monotonically increasing counter per flow plus the
time the entry was inserted (``born_ns``). Every interval user space reads
every entry and turns it into per-flow counters:

* same ``born_ns`` as at the previous drain → add ``count - previous count``;
* new ``born_ns`` (a new flow, or one that was evicted and came back) → add
  ``count``.

No double counting (a value is only ever added once, as a difference), and
no increment that lands while we read is lost: it is simply in the counter
that the next drain reads. The alternatives lose or misattribute counts:
read-then-delete loses the increments between the read and the delete;
lookup-and-delete on an LRU map is worse, because the kernel recycles the
freed element at once and a program that still holds a pointer to it adds
its increment to whatever flow gets the element next; two maps swapped by a
flag need to know when every program that read the old flag has finished,
which user space cannot observe. The price of never deleting is that idle
flows stay in the map until the LRU evicts them; that is what the LRU is
for, and it only loses counts that arrived after the last drain on an entry
that is then evicted before the next one (the map is sized for the flows of
one interval; fill and evictions are exported so that this is visible).

Series cap
----------
The agent exports at most ``series_cap`` flows; increments of flows beyond
the cap go to one ``other`` series. A flow that has not retransmitted for
``series_ttl`` seconds is dropped from the export (its series disappears,
like a departed pod's), which frees its place for new flows.
"""

from __future__ import annotations

import ipaddress
import os
import pathlib
import re
import socket
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

from netmesh.wire import RetransmitFlow

MODES = ("auto", "kprobe", "tracepoint", "off")
VARIANTS = ("tracepoint", "kprobe")
MAX_LOCAL_CIDRS = 16
OTHER = "other"

# Indexes of the per-CPU `probe_stats` array in ebpf/retransmit.c.
STAT_EVENTS, STAT_INSERTS, STAT_FILTERED, STAT_LOST = 0, 1, 2, 3
STAT_COUNT = 4

SOURCE_PATH = pathlib.Path(__file__).resolve().parent.parent / "ebpf" / "retransmit.c"
TRACEPOINT = ("tcp", "tcp_retransmit_skb")
KPROBE_FUNCTION = "tcp_retransmit_skb"
KPROBE_FN_NAME = "netmesh_kprobe_retransmit"
TRACEFS_ROOTS = ("/sys/kernel/tracing", "/sys/kernel/debug/tracing")

# CAP_SYS_ADMIN alone, or CAP_BPF with CAP_PERFMON (Linux >= 5.8), may load and attach.
CAP_SYS_ADMIN, CAP_PERFMON, CAP_BPF = 21, 38, 39

FlowId = tuple[str, str, int]  # (local address, remote address, folded port)


class ProbeUnavailable(Exception):
    """The probe cannot run here; ``str(exc)`` says why and what to do about it."""


@dataclass(frozen=True, kw_only=True)
class ProbeConfig:
    mode: str = "auto"
    map_size: int = 8192
    local_cidrs: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = ()
    series_cap: int = 1000
    series_ttl: float = 3600.0
    interval: float = 5.0
    print_source: bool = False
    ephemeral_ports: tuple[int, int] = (32768, 60999)

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"probe mode {self.mode!r}: one of {', '.join(MODES)}")
        if self.map_size < 1:
            raise ValueError("probe map size must be >= 1")
        if self.series_cap < 1:
            raise ValueError("probe series cap must be >= 1")
        if len(self.local_cidrs) > MAX_LOCAL_CIDRS:
            raise ValueError(f"at most {MAX_LOCAL_CIDRS} local CIDRs")
        low, high = self.ephemeral_ports
        if not 0 < low <= high <= 65535:
            raise ValueError(f"ephemeral port range {low}-{high} is not valid")


def parse_cidrs(items: Iterable[str]) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    """``10.0.0.0/8`` or a bare address (a /32 or /128); host bits are ignored."""
    return tuple(ipaddress.ip_network(item.strip(), strict=False) for item in items)


def parse_port_range(text: str) -> tuple[int, int]:
    """The contents of /proc/sys/net/ipv4/ip_local_port_range: ``"32768\\t60999"``."""
    parts = text.split()
    if len(parts) != 2:
        raise ValueError(f"not a port range: {text!r}")
    low, high = int(parts[0]), int(parts[1])
    if not 0 < low <= high <= 65535:
        raise ValueError(f"not a port range: {text!r}")
    return low, high


# --------------------------------------------------------------------------- C source


def filter_macros(
    cidrs: Iterable[ipaddress.IPv4Network | ipaddress.IPv6Network],
) -> list[str]:
    """``#define``s that restrict counting to local addresses inside ``cidrs``.

    The filter is compiled into the program as constants (no map, no helper
    beyond what every kernel with BPF has), so it works on any kernel that
    runs the probe. IPv4 addresses are compared as host-order u32, IPv6 as
    two host-order u64 halves (see retransmit.c). No CIDRs → no macros →
    the program counts everything.
    """
    cidrs = list(cidrs)
    if not cidrs:
        return []
    v4 = [c for c in cidrs if c.version == 4]
    v6 = [c for c in cidrs if c.version == 6]
    v4_terms = [f"(((a) & 0x{int(c.netmask):08x}u) == 0x{int(c.network_address):08x}u)" for c in v4]
    v6_terms = []
    for c in v6:
        mask, net = int(c.netmask), int(c.network_address)
        mh, ml = mask >> 64, mask & (2**64 - 1)
        nh, nl = net >> 64, net & (2**64 - 1)
        v6_terms.append(
            f"((((hi) & 0x{mh:016x}ull) == 0x{nh:016x}ull) && "
            f"(((lo) & 0x{ml:016x}ull) == 0x{nl:016x}ull))"
        )
    return [
        f"#define NETMESH_LOCAL_V4(a) ({' || '.join(v4_terms) or '0'})",
        f"#define NETMESH_LOCAL_V6(hi, lo) ({' || '.join(v6_terms) or '0'})",
    ]


def render_source(
    template: str,
    config: ProbeConfig,
    *,
    variant: str,
    tracepoint_has_err: bool,
    skb_segs_offset: int | None = None,
) -> str:
    """The final C that BCC compiles: a prelude of ``#define``s, then ebpf/retransmit.c.

    ``skb_segs_offset`` (from the running kernel's BTF, see ``skb_segs_offset``)
    lets the program count segments; without it, it counts skbs.
    """
    if variant not in VARIANTS:
        raise ValueError(f"unknown probe variant {variant!r}")
    low, high = config.ephemeral_ports
    prelude = [
        "/* prelude generated by agent/probe_logic.py: render_source */",
        f"#define NETMESH_{variant.upper()} 1",
        f"#define NETMESH_MAP_SIZE {int(config.map_size)}",
        f"#define NETMESH_EPH_LOW {int(low)}",
        f"#define NETMESH_EPH_HIGH {int(high)}",
    ]
    if variant == "tracepoint" and tracepoint_has_err:
        prelude.append("#define NETMESH_TP_HAS_ERR 1")
    if skb_segs_offset is not None:
        prelude.append(f"#define NETMESH_SKB_SEGS_OFFSET {int(skb_segs_offset)}")
    prelude += filter_macros(config.local_cidrs)
    return "\n".join(prelude) + "\n" + template


# --------------------------------------------------------------------------- BTF

_BTF_TYPE = re.compile(r"^\[(\d+)\] (\w+) '([^']*)'")
_BTF_MEMBER = re.compile(r"^\s+'([^']*)' type_id=(\d+) bits_offset=(\d+)")


def _btf_types(
    raw: Iterable[str],
) -> tuple[dict[int, list[tuple[str, int, int]]], dict[str, int]]:
    """``bpftool btf dump ... format raw`` → members per struct/union id, struct ids by name."""
    members: dict[int, list[tuple[str, int, int]]] = {}
    by_name: dict[str, int] = {}
    current: list[tuple[str, int, int]] | None = None
    for line in raw:
        t = _BTF_TYPE.match(line)
        if t:
            if t.group(2) in ("STRUCT", "UNION"):
                tid = int(t.group(1))
                current = members.setdefault(tid, [])
                if t.group(2) == "STRUCT" and t.group(3) != "(anon)":
                    by_name.setdefault(t.group(3), tid)
            else:
                current = None
            continue
        m = _BTF_MEMBER.match(line)
        if m and current is not None:
            current.append((m.group(1), int(m.group(2)), int(m.group(3))))
    return members, by_name


def _member_bits(members: dict[int, list[tuple[str, int, int]]], tid: int, name: str) -> int | None:
    """Bit offset of ``name`` in type ``tid``, looking through anonymous structs and unions."""
    for member, member_tid, bits in members.get(tid, []):
        if member == name:
            return bits
        if member == "(anon)":
            inner = _member_bits(members, member_tid, name)
            if inner is not None:
                return bits + inner
    return None


def skb_segs_offset(btf_raw: Iterable[str]) -> int | None:
    """Byte offset of ``TCP_SKB_CB(skb)->tcp_gso_segs`` from an ``sk_buff`` pointer.

    Read from the running kernel's BTF, not from the compile headers (which
    may be another kernel version's): offsetof(sk_buff, cb) +
    offsetof(tcp_skb_cb, tcp_gso_segs). ``btf_raw`` is the text's lines.
    None when BTF lacks either.
    """
    members, by_name = _btf_types(btf_raw)
    skb, cb = by_name.get("sk_buff"), by_name.get("tcp_skb_cb")
    if skb is None or cb is None:
        return None
    cb_bits = _member_bits(members, skb, "cb")
    segs_bits = _member_bits(members, cb, "tcp_gso_segs")
    if cb_bits is None or segs_bits is None or (cb_bits + segs_bits) % 8:
        return None
    return (cb_bits + segs_bits) // 8


# --------------------------------------------------------------------------- checks


def capabilities(status_text: str) -> int:
    """The effective capability mask from /proc/self/status."""
    for line in status_text.splitlines():
        if line.startswith("CapEff:"):
            return int(line.split()[1], 16)
    return 0


def privilege_problem(cap_eff: int) -> str | None:
    """None if these capabilities may load and attach BPF tracing programs."""
    if cap_eff >> CAP_SYS_ADMIN & 1:
        return None
    if cap_eff >> CAP_BPF & 1 and cap_eff >> CAP_PERFMON & 1:
        return None
    return (
        "not privileged: loading the BPF probe needs root, CAP_SYS_ADMIN or "
        f"CAP_BPF+CAP_PERFMON (effective capabilities 0x{cap_eff:x})"
    )


def find_kernel_headers(
    release: str,
    environ: Mapping[str, str],
    exists: Callable[[str], bool] = os.path.exists,
) -> str:
    """Where BCC will find kernel headers, the way BCC looks; ProbeUnavailable if nowhere.

    BCC uses ``$BCC_KERNEL_SOURCE`` if set, else ``/lib/modules/<release>/build``
    (with ``source`` next to it), else the kernel's own headers in
    ``/sys/kernel/kheaders.tar.xz`` (CONFIG_IKHEADERS).
    """
    custom = environ.get("BCC_KERNEL_SOURCE", "")
    if custom:
        if exists(os.path.join(custom, "include")):
            return custom
        raise ProbeUnavailable(
            f"kernel headers: BCC_KERNEL_SOURCE={custom} has no include/ directory; "
            "point it at a kernel headers tree"
        )
    build = f"/lib/modules/{release}/build"
    if exists(os.path.join(build, "include")):
        return build
    if exists("/sys/kernel/kheaders.tar.xz"):
        return "/sys/kernel/kheaders.tar.xz"
    return _raise_no_headers(release, build)


def _raise_no_headers(release: str, build: str) -> str:
    raise ProbeUnavailable(
        f"no kernel headers for {release}: {build} is missing or has no include/. "
        f"Install linux-headers-{release} (Debian/Ubuntu; kernel-devel on RHEL/Fedora) "
        "and, in a container, mount the host's /lib/modules and /usr/src read-only; "
        "or load the kheaders module (modprobe kheaders, CONFIG_IKHEADERS); "
        "or set BCC_KERNEL_SOURCE to a headers tree"
    )


@dataclass(frozen=True, kw_only=True)
class KernelFeatures:
    """What the running kernel offers for the two attach variants (from procfs/tracefs)."""

    tracefs: bool
    tracepoint: bool
    tracepoint_has_err: bool
    kprobes: bool


def choose_variant(mode: str, features: KernelFeatures) -> str:
    """The attach variant for ``mode``; ProbeUnavailable with the reason if there is none."""
    tp_problem = None
    if not features.tracefs:
        tp_problem = (
            "tracefs is not mounted (mount -t tracefs tracefs /sys/kernel/tracing; "
            "in a container mount the host's /sys/kernel/tracing or /sys/kernel/debug)"
        )
    elif not features.tracepoint:
        tp_problem = "the kernel has no tracepoint tcp:tcp_retransmit_skb (Linux < 4.15)"
    kp_problem = None
    if not features.kprobes:
        kp_problem = (
            "the kernel has no kprobes (CONFIG_KPROBES off: neither "
            "/sys/bus/event_source/devices/kprobe nor kprobe_events in tracefs)"
        )
    if mode == "tracepoint":
        if tp_problem:
            raise ProbeUnavailable(f"mode tracepoint: {tp_problem}")
        return "tracepoint"
    if mode == "kprobe":
        if kp_problem:
            raise ProbeUnavailable(f"mode kprobe: {kp_problem}")
        return "kprobe"
    if mode == "auto":
        if not tp_problem:
            return "tracepoint"
        if not kp_problem:
            return "kprobe"
        raise ProbeUnavailable(f"mode auto: {tp_problem}; and {kp_problem}")
    raise ProbeUnavailable(f"mode {mode!r}: not a probe mode ({', '.join(MODES)})")


# --------------------------------------------------------------------------- keys


def decode_key(family: int, port: int, local: bytes, remote: bytes) -> FlowId | None:
    """A kernel map key → (local, remote, port); None for a family we do not count."""
    if family == socket.AF_INET:
        return (
            str(ipaddress.IPv4Address(bytes(local[:4]))),
            str(ipaddress.IPv4Address(bytes(remote[:4]))),
            port,
        )
    if family == socket.AF_INET6:
        return (
            str(ipaddress.IPv6Address(bytes(local[:16]))),
            str(ipaddress.IPv6Address(bytes(remote[:16]))),
            port,
        )
    return None


@dataclass(frozen=True)
class Entry:
    """One map entry as read: the flow, when the kernel inserted it, its counter."""

    flow: FlowId
    born_ns: int
    count: int


# --------------------------------------------------------------------------- draining


@dataclass(frozen=True)
class Pending:
    """One CPU's pre-aggregation slot as read: its key (None if empty), generation, count."""

    flow: FlowId | None
    gen: int
    count: int


def merge_pending(entries: list[Entry], before: list[Pending], after: list[Pending]) -> list[Entry]:
    """The map's entries plus every CPU's pending packets not yet flushed into the map.

    User space reads the per-CPU slots (``before``), then the map, then the
    slots again (``after``). A slot whose key or generation changed in between
    was flushed meanwhile: its packets may already be in the map read, so its
    pending count is left out of this drain (the next one finds them in the
    map; a late count, never a double one). A key only in a slot gets an entry
    with ``born_ns`` 0, which the Drainer continues when the map's entry appears.
    """
    counts: dict[FlowId, list[int]] = {}
    for e in entries:
        counts[e.flow] = [e.born_ns, e.count]
    for a, b in zip(before, after, strict=True):
        if a.flow is None or a.count <= 0 or (a.flow, a.gen) != (b.flow, b.gen):
            continue
        slot = counts.setdefault(a.flow, [0, 0])
        slot[1] += a.count
    return [Entry(flow, born, count) for flow, (born, count) in counts.items()]


@dataclass
class Drainer:
    """Turns successive reads of the kernel map into monotonic per-flow counters."""

    series_cap: int
    series_ttl: float = 3600.0
    # per flow in the map at the last drain: (born_ns, count)
    seen: dict[FlowId, tuple[int, int]] = field(default_factory=dict)
    totals: dict[FlowId, int] = field(default_factory=dict)
    changed_at: dict[FlowId, float] = field(default_factory=dict)
    other: int = 0
    evictions: int = 0

    def drain(self, entries: Iterable[Entry], now: float) -> None:
        current: dict[FlowId, tuple[int, int]] = {}
        for entry in entries:
            previous = self.seen.get(entry.flow)
            # born_ns 0: counts the kernel still held per CPU, not yet in a map entry
            # (merge_pending); the entry that appears continues it.
            if previous is not None and previous[0] in (entry.born_ns, 0):
                # The kernel only adds; max() keeps exported counters monotonic regardless.
                delta = max(entry.count - previous[1], 0)
            else:
                delta = entry.count
            current[entry.flow] = (entry.born_ns, max(entry.count, 0))
            if delta > 0:
                self._add(entry.flow, delta, now)
        self.seen = current
        self._expire(now)

    def _add(self, flow: FlowId, delta: int, now: float) -> None:
        if flow in self.totals or len(self.totals) < self.series_cap:
            self.totals[flow] = self.totals.get(flow, 0) + delta
            self.changed_at[flow] = now
        else:
            self.other += delta

    def _expire(self, now: float) -> None:
        for flow in [f for f, t in self.changed_at.items() if now - t > self.series_ttl]:
            del self.changed_at[flow]
            del self.totals[flow]

    def note_map(self, *, inserts: int, entries: int) -> None:
        """Evictions = entries ever inserted - entries still there (user space never deletes)."""
        self.evictions = max(self.evictions, inserts - entries)

    def flows(self) -> tuple[RetransmitFlow, ...]:
        out = [
            RetransmitFlow(local=local, remote=remote, port=port, count=count)
            for (local, remote, port), count in sorted(self.totals.items())
        ]
        if self.other:
            out.append(RetransmitFlow(local=OTHER, remote=OTHER, port=0, count=self.other))
        return tuple(out)
