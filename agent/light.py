"""The light tier: a continuous UDP prober and responder on one socket (always on, cheap).

Every agent answers probes on its light port and probes its peers (every
member up to ``full_mesh_max`` members, else its ``ring_peers`` successors on
the plan's ring). The node's probe rate is a budget spread over its peers
(``rate`` probes/s in all, at most ``max_pair_rate`` per peer), so the cost
per node stays flat as the mesh grows. Every ``mtu_interval`` seconds a peer
also gets one don't-fragment probe at the path MTU; when a peer that answers
small probes leaves one unanswered past the grace time, one more follows at
once (``CONFIRM``), so an MTU blackhole shows two lost probes within seconds.
Packets: agent/lightwire.py; windows and directions: agent/lightstats.py.

Only members may probe (others are dropped and counted as strangers);
malformed packets are dropped and counted; a send error (EMSGSIZE for an
MTU probe larger than this node's interface) is counted and the probe is
left unanswered, so the window shows it.

RTTs come from kernel timestamps (agent/lightsock.py): the probe carries the
wall clock read just before ``sendto``, the echo's arrival is the kernel's
receive time, and the responder's turnaround (its kernel receive time to its
``sendto``, carried in the echo) is taken off — so neither end's event-loop
latency is in the RTT. Without a kernel timestamp (or with an implausible one:
the wall clock stepped) the RTT falls back to the prober's monotonic clock.
"""

from __future__ import annotations

import asyncio
import collections
import heapq
import ipaddress
import logging
import math
import random
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass

from agent import lightsock
from agent import lightwire as lw
from agent.lightstats import PeerTrack
from agent.schedule import ring
from netmesh.wire import LightStatus, Member, MemberList

log = logging.getLogger(__name__)

# linux/in.h, linux/in6.h (the socket module lacks some of them)
IP_MTU_DISCOVER = 10
IPV6_MTU_DISCOVER = 23
IP_PMTUDISC_PROBE = 3  # DF set, the path-MTU cache ignored
IPV6_PMTUDISC_PROBE = 3
Due = tuple[float, int, str]  # (when, lightwire kind, peer address): the send queue's entries
# Queue kind (no wire kind): look whether the latest MTU probe to the peer was answered, and if
# not, send one more at once — a blackhole is confirmed in seconds, not one MTU interval later.
CONFIRM = -1
CONFIRM_AFTER = 1.0  # s after the grace time
MAX_SESSIONS = 8192  # responder: (prober, session) counters kept, least recent dropped
MTU_PROBES_PER_WINDOW = 3  # MTU probes are counted over this many of their intervals
MAX_IDLE = 0.1  # seconds the prober sleeps at most between looks at its queue
CLOCK_SLACK = 0.001  # s: a kernel-timestamp RTT above the monotonic one by more is distrusted


@dataclass(frozen=True, kw_only=True)
class LightOptions:
    port: int
    rate: float = 100.0  # probes per second, this node in all
    max_pair_rate: float = 10.0  # probes per second to one peer at most
    full_mesh_max: int = 100
    ring_peers: int = 20
    window: float = 10.0
    grace: float = 1.0  # an echo later than this counts as lost
    size: int = 64  # UDP payload of a small probe
    mtu: int = 1500  # IP packet size of the MTU probe; 0 = no MTU probe
    mtu_interval: float = 10.0
    tick: float = 0.01


def peers(members: MemberList, me: str, opts: LightOptions) -> list[Member]:
    """Whom this node probes: everyone else, or its ring successors in a big mesh."""
    order = ring(members.members)
    names = [m.name for m in order]
    if me not in names:
        return [m for m in order if m.name != me]
    i, n = names.index(me), len(order)
    if n <= opts.full_mesh_max:
        return [order[(i + r) % n] for r in range(1, n)]
    return [order[(i + r) % n] for r in range(1, min(opts.ring_peers, n - 1) + 1)]


def kernel_rtt(echo: lw.Packet, rx_ns: int, monotonic_rtt: float) -> float | None:
    """The RTT from kernel timestamps: the echo's kernel receive time minus the probe's
    send time (both wall clock), less the responder's turnaround when it sent one.

    None (use the monotonic RTT) when the wall clock moved meanwhile: a result
    not above zero, or above the monotonic RTT (which includes the loop's delay,
    so it is never shorter) by more than ``CLOCK_SLACK``. A turnaround not
    shorter than the round trip is ignored (a responder's clock gone wrong)."""
    raw = (rx_ns - echo.sent_ns) / 1e9
    if raw <= 0 or raw > monotonic_rtt + CLOCK_SLACK:
        return None
    turnaround = (echo.turnaround_ns or 0) / 1e9
    return raw - turnaround if turnaround < raw else raw


def pair_interval(n_peers: int, opts: LightOptions) -> float:
    """Seconds between two probes to one peer."""
    if n_peers == 0:
        return math.inf
    return max(1.0 / opts.max_pair_rate, n_peers / opts.rate)


class LightTier:
    """Prober and responder; ``run`` sends, ``datagram_received`` answers and records."""

    def __init__(
        self,
        opts: LightOptions,
        me: Member,
        members: Callable[[], MemberList],
        *,
        clock: Callable[[], float] = time.monotonic,
        mtu_source: Callable[[], int | None] | None = None,
    ) -> None:
        self.opts = opts
        # The MTU probe's size: opts.mtu, or (auto) the interface's MTU read again before
        # every MTU probe, so a changed link MTU (an overlay MTU fault) is probed at once.
        self.mtu = opts.mtu
        self.mtu_source = mtu_source
        self.me = me
        self.members = members
        self.clock = clock
        self.session = random.getrandbits(63)
        self.sock: socket.socket | None = None
        self.kernel_timestamps = False
        self.up = False
        self.reason = "not started"
        self.tracks: dict[str, PeerTrack] = {}  # by peer address
        self.names: dict[str, str] = {}  # address -> node name
        self.allowed: frozenset[str] = frozenset()
        self._planned: tuple[MemberList, list[Member]] | None = None  # list seen, peers chosen
        self.sessions: collections.OrderedDict[tuple[str, int, int, int], list[int]] = (
            collections.OrderedDict()
        )
        self.ipv6 = ipaddress.ip_address(me.address).version == 6
        self.probes_sent = 0
        self.echoes_received = 0
        self.dropped_strangers = 0
        self.dropped_malformed = 0
        self.send_errors = 0

    # ------------------------------------------------------------------ socket

    def open_socket(self) -> socket.socket:
        family = socket.AF_INET6 if self.ipv6 else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_DGRAM)
        try:
            if self.ipv6:
                sock.setsockopt(socket.IPPROTO_IPV6, IPV6_MTU_DISCOVER, IPV6_PMTUDISC_PROBE)
            else:
                sock.setsockopt(socket.IPPROTO_IP, IP_MTU_DISCOVER, IP_PMTUDISC_PROBE)
            sock.bind((self.me.address, self.opts.port))
            sock.setblocking(False)
        except OSError:
            sock.close()
            raise
        self.kernel_timestamps = lightsock.enable_timestamps(sock)
        return sock

    def listen(self, loop: asyncio.AbstractEventLoop) -> socket.socket:
        """Open the socket and read it from ``loop`` (OSError if it cannot bind)."""
        sock = self.open_socket()
        self.sock = sock
        loop.add_reader(sock.fileno(), self._readable)
        return sock

    def close(self, loop: asyncio.AbstractEventLoop) -> None:
        if self.sock is not None:
            loop.remove_reader(self.sock.fileno())
            self.sock.close()
            self.sock = None

    def error_received(self, exc: Exception) -> None:
        self.send_errors += 1
        log.debug("light tier: send error %s", exc)

    def _sendto(self, data: bytes, address: tuple[str, int]) -> None:
        if self.sock is None:
            return
        try:
            self.sock.sendto(data, address)
        except OSError as exc:  # EMSGSIZE, a full socket buffer (EAGAIN), unreachable
            self.error_received(exc)

    # ------------------------------------------------------------------ receiving

    def _readable(self) -> None:
        if self.sock is None:
            return
        for data, addr, rx_ns in lightsock.read_batch(self.sock, self.error_received):
            self.datagram_received(data, addr, rx_ns)

    def datagram_received(
        self, data: bytes, addr: tuple[str | int, ...], rx_ns: int | None = None
    ) -> None:
        """One datagram; ``rx_ns`` is the kernel's receive time (wall clock), if known."""
        try:
            packet = lw.decode(data)
        except lw.Malformed:
            self.dropped_malformed += 1
            return
        host, port = str(addr[0]), int(addr[1])
        if packet.kind in lw.REPLY_KIND:
            self._answer(packet, host, port, rx_ns)
        else:
            self._record_echo(packet, host, rx_ns)

    def _answer(self, probe: lw.Packet, host: str, port: int, rx_ns: int | None = None) -> None:
        if host not in self.allowed:
            self.dropped_strangers += 1
            return
        key = (host, port, probe.session, probe.kind)
        counts = self.sessions.get(key)
        if counts is None:
            counts = self.sessions[key] = [0, 0]
            while len(self.sessions) > MAX_SESSIONS:
                self.sessions.popitem(last=False)
        else:
            self.sessions.move_to_end(key)
        counts[0] += 1
        counts[1] += 1
        turnaround = None if rx_ns is None else max(0, lightsock.wall_ns() - rx_ns)
        echo = lw.echo_of(probe, counts[0], counts[1], turnaround)
        self._sendto(lw.encode(echo), (host, port))

    def _record_echo(self, echo: lw.Packet, host: str, rx_ns: int | None = None) -> None:
        track = self.tracks.get(host)
        if track is None:
            self.dropped_strangers += 1
            return
        if echo.session != self.session:
            return  # an echo for an earlier run of this agent
        self.echoes_received += 1
        series = track.mtu if echo.kind == lw.MTU_ECHO else track.small
        now = self.clock()
        probe = series.by_seq.get(echo.seq)
        rtt = None
        if probe is not None and rx_ns is not None:
            rtt = kernel_rtt(echo, rx_ns, now - probe.sent_at)
        series.echoed(echo.seq, now, echo.received, echo.replied, rtt)

    # ------------------------------------------------------------------ sending

    def _update_peers(self) -> list[Member]:
        """The peers to probe; recomputed only when the member list changes (a new object).

        Choosing them sorts the ring (a SHA-256 per member): every tick at 500
        members that alone cost ~0.1 of a core (bench_light.py, scale).
        """
        members = self.members()
        if self._planned is not None and self._planned[0] is members:
            return self._planned[1]
        chosen = peers(members, self.me.name, self.opts)
        self._planned = (members, chosen)
        self.allowed = frozenset(m.address for m in members.members if m.name != self.me.name)
        wanted = {m.address: m.name for m in chosen}
        for address in list(self.tracks):
            if wanted.get(address) != self.names.get(address):
                del self.tracks[address]
        for address, name in wanted.items():
            if address not in self.tracks:
                self.tracks[address] = PeerTrack(
                    name,
                    self.opts.window,
                    self.opts.grace,
                    mtu_window=MTU_PROBES_PER_WINDOW * self.opts.mtu_interval,
                )
        self.names = wanted
        return chosen

    def _send(self, address: str, kind: int, size: int) -> None:
        track = self.tracks[address]
        series = track.mtu if kind == lw.MTU_PROBE else track.small
        now = self.clock()
        seq = series.sent(now)
        packet = lw.Packet(kind, self.session, seq, lightsock.wall_ns())
        self._sendto(lw.encode(packet, size), (address, self.opts.port))
        self.probes_sent += 1

    def _plan(
        self, chosen: list[Member], queue: list[Due], now: float, interval: float, *, with_mtu: bool
    ) -> list[Due]:
        """The send queue for these peers: known peers keep their due times, new ones are
        spread over one interval (MTU probes at random over one MTU interval)."""
        kept = {(kind, address): due for due, kind, address in queue}
        out: list[Due] = []
        for i, m in enumerate(chosen):
            spread = now + interval * i / max(1, len(chosen))
            out.append((kept.get((lw.PROBE, m.address), spread), lw.PROBE, m.address))
            if with_mtu:
                later = now + self.opts.mtu_interval * random.random()
                out.append((kept.get((lw.MTU_PROBE, m.address), later), lw.MTU_PROBE, m.address))
        heapq.heapify(out)
        return out

    async def run(self) -> None:
        """Open the socket and probe until cancelled (a bind failure says why and returns)."""
        loop = asyncio.get_running_loop()
        try:
            self.listen(loop)
        except OSError as exc:
            self.reason = f"cannot bind UDP {self.me.address}:{self.opts.port}: {exc.strerror}"
            log.error("light tier off: %s", self.reason)
            return
        self.up, self.reason = True, ""
        with_mtu = bool(self.opts.mtu)
        queue: list[Due] = []
        planned: list[Member] | None = None
        interval = math.inf
        try:
            while True:
                chosen = self._update_peers()
                now = self.clock()
                if chosen is not planned:  # a new member list: re-plan, keeping due times
                    planned, interval = chosen, pair_interval(len(chosen), self.opts)
                    queue = self._plan(chosen, queue, now, interval, with_mtu=with_mtu)
                # Only what is due is touched: a scan of every peer per tick cost ~0.02
                # of a core at 500 peers (tests/benchmarks/bench_light.py, scale).
                while queue and queue[0][0] <= now:
                    due, kind, address = heapq.heappop(queue)
                    if kind == lw.PROBE:
                        self._send(address, lw.PROBE, self.opts.size)
                        heapq.heappush(queue, (max(due + interval, now), kind, address))
                    elif kind == CONFIRM:
                        if self._mtu_unanswered(address):
                            self._send_mtu(address)
                    else:
                        self._send_mtu(address)
                        heapq.heappush(queue, (now + self.opts.mtu_interval, kind, address))
                        confirm_at = now + self.opts.grace + CONFIRM_AFTER
                        heapq.heappush(queue, (confirm_at, CONFIRM, address))
                # Sleep until the next probe is due (at least a tick, at most 0.1 s so a
                # new member list is picked up at once): a small mesh wakes ~30 times a
                # second, not 100 (a pod endpoint's CPU, BENCHMARKS.md).
                due_in = queue[0][0] - self.clock() if queue else MAX_IDLE
                await asyncio.sleep(min(MAX_IDLE, max(self.opts.tick, due_in)))
        finally:
            self.up = False
            self.close(loop)

    def _send_mtu(self, address: str) -> None:
        self._send(address, lw.MTU_PROBE, lw.payload_size(self.current_mtu(), self.ipv6))

    def _mtu_unanswered(self, address: str) -> bool:
        """The latest MTU probe to a peer that answers small probes got no echo."""
        track = self.tracks.get(address)
        if track is None or track.small.answered_since is None or not track.mtu.probes:
            return False
        return track.mtu.probes[-1].echo_at is None

    def current_mtu(self) -> int:
        """The MTU probe's IP packet size now (the interface's, when it is followed)."""
        if self.mtu_source is not None:
            value = self.mtu_source()
            if value is not None and 576 <= value <= 65535:
                self.mtu = value
        return self.mtu

    # ------------------------------------------------------------------ status

    def status(self) -> LightStatus:
        now = self.clock()
        paths = [t.summary(now, self.mtu) for t in self.tracks.values()]
        return LightStatus(
            up=int(self.up),
            reason=self.reason,
            port=self.opts.port,
            peers=len(self.tracks),
            probes_sent=self.probes_sent,
            echoes_received=self.echoes_received,
            dropped_strangers=self.dropped_strangers,
            dropped_malformed=self.dropped_malformed,
            send_errors=self.send_errors,
            paths=tuple(sorted((p for p in paths if p is not None), key=lambda p: p.destination)),
        )
