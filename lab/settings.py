"""The lab's settings (flags and NETMESH_ environment variables, like the services)."""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field

from agent.schedule import SETTINGS_NAMES, PlanSettings, cycle_slots
from lab import pods as lab_pods
from lab.faults import parse_rate
from lab.topology import MAX_RACKS
from netmesh.config import Problems, doc, project
from netmesh.wire import PROTOCOLS

_PREFIX = re.compile(r"^[a-z][a-z0-9]{1,7}$")


def _rate(text: str) -> int:
    return 0 if text.strip() in ("0", "", "off") else parse_rate(text)


@dataclass(frozen=True, kw_only=True)
class LabSettings:
    nodes: int = field(default=4, metadata=doc("Number of nodes (network namespaces)."))
    prefix: str = field(
        default="nmlab", metadata=doc("Name prefix of the lab's namespaces and links.")
    )
    subnet: str = field(
        default="10.211.0.0/24",
        metadata=doc("Private IPv4 subnet of the lab bridge; .1 is the collector."),
    )
    racks: int = field(
        default=0,
        metadata=doc(
            "Rack bridges joined through a core bridge by uplink veths (0 = one flat bridge); "
            "nodes go to racks in blocks and carry the label rack=rack-N."
        ),
    )
    pods: int = field(
        default=0,
        metadata=doc(
            "Pod namespaces per node (0 = none): a pod bridge per node, a VXLAN overlay "
            "between the nodes, pods named node-N/pod-K running the HTTP workload."
        ),
    )
    pod_cidr: str = field(
        default="10.244.0.0/16",
        metadata=doc(
            "Private IPv4 range the pods' addresses come from: one block per node (a /24 "
            "when it has room; node-N gets block N). Must not overlap the lab subnet."
        ),
    )
    baseline_rate: int = field(
        default=1_000_000_000,
        metadata=doc(
            "Egress rate every node is shaped to (tbf), e.g. 1gbit; 0 = off.", parse=_rate
        ),
    )
    state_dir: str = field(
        default="/run/netmesh-lab", metadata=doc("Where the lab keeps its state and logs.")
    )
    test_duration: int = field(default=2, metadata=doc("Agents' iperf3 test duration (s)."))
    omit_seconds: int = field(default=0, metadata=doc("Agents' iperf3 omit seconds."))
    guard_seconds: float = field(default=1.0, metadata=doc("Agents' slot guard time (s)."))
    udp_bitrate: int = field(
        default=20_000_000,
        metadata=doc(
            "Agents' UDP test rate, e.g. 20M (receivers keep up on 2 cores).", parse=_rate
        ),
    )
    concurrency: int = field(
        default=0, metadata=doc("Agents' cluster-wide test cap (0 = one round at once).")
    )
    bandwidth_budget: float = field(
        default=1.0,
        metadata=doc(
            "Agents' iperf3 budget (share of time in tests). The agent's default is 0.01; the "
            "lab packs rounds back to back so a demo shows bandwidth within its minutes."
        ),
    )
    report_interval: float = field(default=2.0, metadata=doc("Agents' report interval (s)."))
    collector_port: int = field(default=9100, metadata=doc("Collector port on the bridge."))
    probe_mode: str = field(
        default="auto", metadata=doc("Agents' eBPF probe mode: auto, tracepoint, kprobe, off.")
    )
    traffic: bool = field(
        default=True, metadata=doc("Run all-to-all HTTP traffic between the nodes.")
    )
    pod_endpoints: bool = field(
        default=True,
        metadata=doc(
            "With pods: run a pod-network endpoint (the agent with network=pod) per node in a "
            "pod namespace of its own, so every pair is measured on the host and the pod network."
        ),
    )
    dns_server: bool = field(
        default=True,
        metadata=doc(
            "Run a DNS server (dnsmasq) on the bridge that every node's resolver uses; the "
            "agents resolve the lab's name through it every dns_interval."
        ),
    )
    dns_interval: float = field(
        default=1.0,
        metadata=doc(
            "Agents' DNS check interval (s); their window is 6 of them (the agent's defaults: "
            "5 s and 30 s)."
        ),
    )

    service_check: bool = field(
        default=True,
        metadata=doc(
            "Give the lab a Service (a virtual IP every node translates to the collector, as "
            "kube-proxy does; lab/service.py) that the agents and pod endpoints connect to "
            "every service_interval."
        ),
    )
    service_interval: float = field(
        default=1.0,
        metadata=doc(
            "Agents' Service check interval (s); their window is 6 of them (the agent's "
            "defaults: 5 s and 30 s)."
        ),
    )

    def __post_init__(self) -> None:
        p = Problems()
        p.check(2 <= self.nodes <= 64, f"nodes {self.nodes}: must be 2..64")
        p.check(
            0 <= self.racks <= min(self.nodes, MAX_RACKS),
            f"racks {self.racks}: 0 (flat) or 1..{min(self.nodes, MAX_RACKS)} (<= nodes)",
        )
        p.check(
            bool(_PREFIX.match(self.prefix)),
            f"prefix {self.prefix!r}: 2-8 lowercase letters/digits, starting with a letter",
        )
        try:
            net = ipaddress.IPv4Network(self.subnet)
            p.check(net.is_private, f"subnet {self.subnet}: must be a private range")
            p.check(net.num_addresses >= 16 + self.nodes, f"subnet {self.subnet}: too small")
        except ValueError as exc:
            p.check(False, f"subnet {self.subnet!r}: {exc}")
        for problem in lab_pods.validate(self.pod_cidr, self.subnet, self.nodes, self.pods):
            p.check(False, problem)
        p.check(self.baseline_rate >= 0, "baseline_rate: must be >= 0")
        p.check(1 <= self.test_duration <= 60, "test_duration: 1..60 s")
        p.check(self.omit_seconds >= 0, "omit_seconds: >= 0")
        p.check(self.guard_seconds >= 0.5, "guard_seconds: >= 0.5")
        p.check(self.report_interval >= 0.5, "report_interval: >= 0.5")
        p.check(0.1 <= self.dns_interval <= 60, "dns_interval: 0.1..60 s")
        p.check(0.1 <= self.service_interval <= 60, "service_interval: 0.1..60 s")
        p.check(0 < self.bandwidth_budget <= 1, "bandwidth_budget: > 0 and <= 1")
        p.check(1 <= self.collector_port <= 65535, "collector_port: 1..65535")
        p.check(
            self.probe_mode in ("auto", "tracepoint", "kprobe", "off"),
            "probe_mode: auto, tracepoint, kprobe or off",
        )
        p.raise_if_any("lab")

    @property
    def plan(self) -> PlanSettings:
        """The agents' test plan settings (they test every protocol, full mesh)."""
        return project(
            self, PlanSettings, rename=SETTINGS_NAMES, protocols=PROTOCOLS, defaults=("peers_k",)
        )

    @property
    def slot_seconds(self) -> float:
        return self.plan.slot_seconds

    def sweep_seconds(self) -> float:
        """One full sweep of the agents' plan: every pair and protocol once."""
        plan = self.plan
        return cycle_slots(self.nodes, plan) * plan.slot_seconds
