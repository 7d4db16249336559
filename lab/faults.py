"""Inject and clear faults on one lab node: loss, rate, delay, MTU.

- dns down: the DNS answers into the node are dropped (iptables on its
  INPUT, source port 53): its lookups time out, every other node's work.
- mtu: the node's link (eth0 in its namespace) gets a lower MTU while the
  others keep 1500: frames larger than it die on the veth without an ICMP
  error, as on a real L2 segment with an MTU mismatch (an MTU blackhole).

- rate: tbf on the node's egress (eth0 in its namespace), replacing the baseline.
- loss and delay into the node: netem on the bridge side of its veth (its
  egress is the node's ingress) when the kernel has netem; otherwise loss by
  iptables ``statistic`` on the node's INPUT — drops on the sender's own
  output would return an error to the socket and cause no retransmissions.
  Delay has no fallback and fails with a clear message.
"""

from __future__ import annotations

import uuid
from dataclasses import asdict, dataclass

from lab.netns import shape, unshape
from lab.shell import CommandError, in_ns, ok, run
from lab.topology import LabNode
from netmesh.units import parse_bitrate

CHAIN = "NETMESH-LAB"


class FaultError(ValueError):
    """A fault that cannot be injected (bad value, or unsupported here)."""


@dataclass(frozen=True, kw_only=True)
class Fault:
    loss: float = 0.0  # ratio 0-1, into the node
    rate_bps: int = 0  # node egress; 0 = baseline
    delay_ms: float = 0.0  # into the node
    mtu: int = 0  # the node's link MTU; 0 = the lab's 1500
    dns_down: bool = False  # DNS answers into the node dropped

    def empty(self) -> bool:
        return not (self.loss or self.rate_bps or self.delay_ms or self.mtu or self.dns_down)

    def describe(self) -> str:
        parts = []
        if self.loss:
            parts.append(f"{self.loss * 100:g}% loss in")
        if self.rate_bps:
            parts.append(f"rate {self.rate_bps / 1e6:g} Mbit/s out")
        if self.delay_ms:
            parts.append(f"{self.delay_ms:g} ms delay in")
        if self.mtu:
            parts.append(f"link MTU {self.mtu}")
        if self.dns_down:
            parts.append("DNS down")
        return ", ".join(parts) or "none"

    def to_json(self) -> dict[str, float | bool]:
        return asdict(self)


# The slowest rate a node can be shaped to, in bits per second.
MIN_RATE = 8000


def parse_rate(text: str) -> int:
    """``200mbit``, ``200M``, ``1gbit``, ``500k`` → bits per second (at least 8 kbit/s)."""
    try:
        return parse_bitrate(text, minimum=MIN_RATE)
    except ValueError as exc:
        raise FaultError(f"rate: {exc}") from None


def parse_loss(text: str) -> float:
    """``5%`` or ``0.05`` → 0.05."""
    raw = text.strip()
    try:
        value = float(raw[:-1]) / 100 if raw.endswith("%") else float(raw)
    except ValueError:
        raise FaultError(f"loss {text!r}: use a ratio like 0.05 or a percentage like 5%") from None
    if not 0 < value < 1:
        raise FaultError(f"loss {text!r}: must be between 0 and 100% (exclusive)")
    return value


def parse_delay(text: str) -> float:
    """``50ms``, ``0.05s`` or ``50`` (ms) → milliseconds."""
    raw = text.strip().lower()
    try:
        if raw.endswith("ms"):
            value = float(raw[:-2])
        elif raw.endswith("s"):
            value = float(raw[:-1]) * 1000
        else:
            value = float(raw)
    except ValueError:
        raise FaultError(f"delay {text!r}: use a value like 50ms") from None
    if not 0 < value <= 60_000:
        raise FaultError(f"delay {text!r}: must be between 0 and 60 s")
    return value


LAB_MTU = 1500
MIN_MTU = 576


def parse_mtu(text: str) -> int:
    """``1400`` → 1400 (576 .. 1499: lower than the lab's 1500)."""
    try:
        value = int(text.strip())
    except ValueError:
        raise FaultError(f"mtu {text!r}: use a whole number of bytes like 1400") from None
    if not MIN_MTU <= value < LAB_MTU:
        raise FaultError(f"mtu {value}: must be {MIN_MTU}..{LAB_MTU - 1} (lab links have 1500)")
    return value


DNS_STATES = ("down",)


def parse_dns(text: str) -> bool:
    """``down`` → True (the one DNS fault the lab has)."""
    if text.strip().lower() not in DNS_STATES:
        raise FaultError(f"dns {text!r}: the lab's DNS fault is 'down'")
    return True


def netem_available() -> bool:
    """Whether this kernel has the netem qdisc (tested in a scratch namespace)."""
    ns = f"nmlab-probe-{uuid.uuid4().hex[:8]}"
    run(["ip", "netns", "add", ns])
    try:
        return ok(in_ns(ns, ["tc", "qdisc", "add", "dev", "lo", "root", "netem", "delay", "1ms"]))
    finally:
        ok(["ip", "netns", "del", ns])


def inject(node: LabNode, fault: Fault, *, netem: bool, baseline_bps: int) -> None:
    """Apply ``fault`` to ``node`` (replacing any earlier fault on it)."""
    if fault.empty():
        raise FaultError("nothing to inject: give --loss, --rate, --delay, --mtu and/or --dns down")
    if fault.delay_ms and not netem:
        raise FaultError(
            "delay needs the netem qdisc (CONFIG_NET_SCH_NETEM), which this kernel lacks; "
            "loss and rate work without it"
        )
    clear(node, baseline_bps=baseline_bps)
    try:
        if fault.rate_bps:
            shape(node.netns, fault.rate_bps)
        if fault.mtu:
            run(in_ns(node.netns, ["ip", "link", "set", "eth0", "mtu", str(fault.mtu)]))
        if netem and (fault.loss or fault.delay_ms):
            args = []
            if fault.delay_ms:
                args += ["delay", f"{fault.delay_ms}ms"]
            if fault.loss:
                args += ["loss", f"{fault.loss * 100}%"]
            run(["tc", "qdisc", "replace", "dev", node.host_veth, "root", "netem", *args])
        elif fault.loss:
            _iptables_drop(node, ["-i", "eth0", *_random(fault.loss)])
        if fault.dns_down:
            for proto in ("udp", "tcp"):
                _iptables_drop(node, ["-p", proto, "--sport", "53"])
    except CommandError:
        clear(node, baseline_bps=baseline_bps)
        raise


def _random(loss: float) -> list[str]:
    return ["-m", "statistic", "--mode", "random", "--probability", f"{loss:.6f}"]


def _iptables_drop(node: LabNode, match: list[str]) -> None:
    """Append a DROP rule with ``match`` to the node's lab chain (jumped to from INPUT);
    ``clear`` (called first by ``inject``) flushed the chain."""
    ipt = ["iptables", "-w", "5"]
    ok(in_ns(node.netns, [*ipt, "-N", CHAIN]))
    if not ok(in_ns(node.netns, [*ipt, "-C", "INPUT", "-j", CHAIN])):
        run(in_ns(node.netns, [*ipt, "-I", "INPUT", "-j", CHAIN]))
    run(in_ns(node.netns, [*ipt, "-A", CHAIN, *match, "-j", "DROP"]))


def clear(node: LabNode, *, baseline_bps: int) -> None:
    """Remove every fault from ``node``: baseline shaping, no netem, no drop rules."""
    if baseline_bps > 0:
        shape(node.netns, baseline_bps)
    else:
        unshape(node.netns)
    ok(["tc", "qdisc", "del", "dev", node.host_veth, "root"])
    ok(in_ns(node.netns, ["iptables", "-w", "5", "-F", CHAIN]))
    ok(in_ns(node.netns, ["ip", "link", "set", "eth0", "mtu", str(LAB_MTU)]))


def drop_rules(node: LabNode) -> str:
    """The node's drop rules as iptables prints them (for status and tests)."""
    return run(in_ns(node.netns, ["iptables", "-w", "5", "-S", CHAIN]), check=False)
