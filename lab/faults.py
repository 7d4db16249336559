"""Inject and clear faults on one lab node: loss, rate, delay, MTU.

- dns down: the DNS answers into the node are dropped (iptables, source port
  53, on its INPUT and, for its pods, FORWARD): its lookups time out, every
  other node's work; dns pod-down: its pods' only (FORWARD).
- service down: the node's connects to the lab's Service are dropped before
  translation (raw table, OUTPUT and PREROUTING; lab/service.py); service
  pod-down: its pods' only (PREROUTING from cni0).
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
from collections.abc import Mapping
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
    dns_down: bool = False  # DNS answers into the node (and its pods) dropped
    pod_dns_down: bool = False  # DNS answers into the node's pods dropped
    service_down: bool = False  # the node's (and its pods') connects to the Service dropped
    pod_service_down: bool = False  # its pods' connects to the Service dropped

    def empty(self) -> bool:
        return not (
            self.loss
            or self.rate_bps
            or self.delay_ms
            or self.mtu
            or self.dns_down
            or self.pod_dns_down
            or self.service_down
            or self.pod_service_down
        )

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
        if self.pod_dns_down:
            parts.append("DNS down for its pods")
        if self.service_down:
            parts.append("Service down")
        if self.pod_service_down:
            parts.append("Service down for its pods")
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


DOWN_STATES = ("down", "pod-down")


def parse_down(what: str, text: str) -> tuple[bool, bool]:
    """``down`` → (True, False): the node and its pods; ``pod-down`` → (False, True): its
    pods only."""
    state = text.strip().lower()
    if state not in DOWN_STATES:
        raise FaultError(f"{what} {text!r}: one of {', '.join(DOWN_STATES)}")
    return state == "down", state == "pod-down"


NODE_FAULT_OPTIONS = ("loss", "rate", "delay", "mtu", "dns", "service")


def parse_fault(options: Mapping[str, object]) -> Fault:
    """A node fault from its options as given (loss, rate, delay, mtu, dns, service: text;
    absent or empty: not part of the fault)."""

    def given(key: str) -> str:
        value = options.get(key)
        return "" if value is None or value == "" else str(value)

    dns = parse_down("dns", given("dns")) if given("dns") else (False, False)
    service = parse_down("service", given("service")) if given("service") else (False, False)
    return Fault(
        loss=parse_loss(given("loss")) if given("loss") else 0.0,
        rate_bps=parse_rate(given("rate")) if given("rate") else 0,
        delay_ms=parse_delay(given("delay")) if given("delay") else 0.0,
        mtu=parse_mtu(given("mtu")) if given("mtu") else 0,
        dns_down=dns[0],
        pod_dns_down=dns[1],
        service_down=service[0],
        pod_service_down=service[1],
    )


def netem_available() -> bool:
    """Whether this kernel has the netem qdisc (tested in a scratch namespace)."""
    ns = f"nmlab-probe-{uuid.uuid4().hex[:8]}"
    run(["ip", "netns", "add", ns])
    try:
        return ok(in_ns(ns, ["tc", "qdisc", "add", "dev", "lo", "root", "netem", "delay", "1ms"]))
    finally:
        ok(["ip", "netns", "del", ns])


def inject(
    node: LabNode,
    fault: Fault,
    *,
    netem: bool,
    baseline_bps: int,
    service_match: list[str] | None = None,
) -> None:
    """Apply ``fault`` to ``node`` (replacing any earlier fault on it); ``service_match``:
    the iptables match of the lab's Service (lab/service.py), None when it has none."""
    if fault.empty():
        raise FaultError(
            "nothing to inject: give --loss, --rate, --delay, --mtu, --dns and/or --service"
        )
    if (fault.service_down or fault.pod_service_down) and service_match is None:
        raise FaultError("this lab has no Service (it was started with --service-check false)")
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
        for proto in ("udp", "tcp"):
            if fault.dns_down:
                _iptables_drop(node, ["-p", proto, "--sport", "53"])
            if fault.dns_down or fault.pod_dns_down:
                _iptables_drop(node, ["-p", proto, "--sport", "53"], hook="FORWARD")
        if service_match is not None and fault.service_down:
            _iptables_drop(node, service_match, table="raw", hook="OUTPUT")
        if service_match is not None and (fault.service_down or fault.pod_service_down):
            match = service_match if fault.service_down else ["-i", "cni0", *service_match]
            _iptables_drop(node, match, table="raw", hook="PREROUTING")
    except CommandError:
        clear(node, baseline_bps=baseline_bps)
        raise


def _random(loss: float) -> list[str]:
    return ["-m", "statistic", "--mode", "random", "--probability", f"{loss:.6f}"]


# The lab's drop chains: (table, hook) → chain, each jumped to from its hook.
CHAINS = {
    ("filter", "INPUT"): CHAIN,
    ("filter", "FORWARD"): f"{CHAIN}-FWD",
    ("raw", "OUTPUT"): f"{CHAIN}-OUT",
    ("raw", "PREROUTING"): f"{CHAIN}-PRE",
}


def _iptables_drop(
    node: LabNode, match: list[str], *, table: str = "filter", hook: str = "INPUT"
) -> None:
    """Append a DROP rule with ``match`` to the node's lab chain of ``table`` jumped to from
    ``hook``; ``clear`` (called first by ``inject``) flushed the chain."""
    ipt = ["iptables", "-w", "5", "-t", table]
    chain = CHAINS[(table, hook)]
    ok(in_ns(node.netns, [*ipt, "-N", chain]))
    if not ok(in_ns(node.netns, [*ipt, "-C", hook, "-j", chain])):
        run(in_ns(node.netns, [*ipt, "-I", hook, "-j", chain]))
    run(in_ns(node.netns, [*ipt, "-A", chain, *match, "-j", "DROP"]))


def clear(node: LabNode, *, baseline_bps: int) -> None:
    """Remove every fault from ``node``: baseline shaping, no netem, no drop rules."""
    if baseline_bps > 0:
        shape(node.netns, baseline_bps)
    else:
        unshape(node.netns)
    ok(["tc", "qdisc", "del", "dev", node.host_veth, "root"])
    for (table, _), chain in CHAINS.items():
        ok(in_ns(node.netns, ["iptables", "-w", "5", "-t", table, "-F", chain]))
    ok(in_ns(node.netns, ["ip", "link", "set", "eth0", "mtu", str(LAB_MTU)]))


def drop_rules(node: LabNode) -> str:
    """The node's drop rules as iptables prints them (for status and tests)."""
    return "".join(
        run(in_ns(node.netns, ["iptables", "-w", "5", "-t", table, "-S", chain]), check=False)
        for (table, _), chain in CHAINS.items()
    )
