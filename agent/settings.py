"""The agent's settings: one frozen dataclass, validated at start-up.

Every field is a flag (``--test-duration``) and an environment variable
(``NETMESH_TEST_DURATION``); see ``netmesh.config``.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field

from agent.drops_logic import MODES as DROPS_MODES
from agent.probe_logic import MAX_LOCAL_CIDRS
from agent.probe_logic import MODES as PROBE_MODES
from agent.service import split_target
from netmesh.addresses import is_ip, is_network
from netmesh.config import Problems, doc, parse_str_tuple, valid_port
from netmesh.dropreport import MAX_DROP_FLOWS
from netmesh.labels import Labels, parse_labels
from netmesh.units import parse_bitrate
from netmesh.wire import MAX_RETRANSMIT_FLOWS, NETWORKS, PROTOCOLS, Member, Network, Transport

_NAME = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9._-]{0,251}[A-Za-z0-9])?$")
_LOG_LEVELS = ("debug", "info", "warning", "error")
_DNS_LABEL = re.compile(r"^(?!-)[A-Za-z0-9_-]{1,63}(?<!-)$")
RECORD_TYPES = ("A", "AAAA")


def is_dns_name(text: str) -> bool:
    """A DNS name: dot-separated labels of 1-63 letters, digits, '-' or '_'; 253 at most."""
    name = text.removesuffix(".")
    return 0 < len(name) <= 253 and all(_DNS_LABEL.match(label) for label in name.split("."))


def parse_peers(text: str) -> tuple[Member, ...]:
    """``name=ip[:port],…`` → members (IPv6 as ``name=[::1]:5201``)."""
    peers = []
    for item in parse_str_tuple(text):
        name, sep, rest = item.partition("=")
        if not sep or not name or not rest:
            raise ValueError(f"{item!r} is not name=ip[:port]")
        port = 5201
        if rest.startswith("["):
            host, _, tail = rest[1:].partition("]")
            if tail:
                port = int(tail.removeprefix(":"))
        elif rest.count(":") == 1:
            host, _, port_text = rest.partition(":")
            port = int(port_text)
        else:
            host = rest
        ipaddress.ip_address(host)
        peers.append(Member(name=name.strip(), address=host, iperf3_port=port))
    return tuple(peers)


def _protocols(text: str) -> tuple[str, ...]:
    return tuple(p.lower() for p in parse_str_tuple(text))


@dataclass(frozen=True, kw_only=True)
class AgentSettings:
    node_name: str = field(metadata=doc("This node's name (in Kubernetes: spec.nodeName)."))
    network: str = field(
        default="host",
        metadata=doc(
            "Which network this endpoint measures on: host (the node's address; the "
            "hostNetwork agent with the eBPF probe) or pod (a pod-network endpoint: the pod's "
            "address, no eBPF probe, no privileges; it plans and probes among pod endpoints)."
        ),
    )
    advertise_address: str = field(
        default="",
        metadata=doc("IP address peers use to reach this node; default: bind_address."),
    )
    bind_address: str = field(
        default="0.0.0.0",
        metadata=doc("IP address the iperf3 server and the HTTP server listen on."),
    )
    http_port: int = field(
        default=9101, metadata=doc("Port of /metrics, /api/v1/report, /healthz.")
    )
    iperf3_port: int = field(default=5201, metadata=doc("Port of this node's iperf3 server."))
    test_duration: int = field(default=5, metadata=doc("Seconds each iperf3 test measures (-t)."))
    omit_seconds: int = field(
        default=1, metadata=doc("Seconds of TCP slow start left out of each test (-O).")
    )
    protocols: tuple[str, ...] = field(
        default=("tcp", "udp"),
        metadata=doc("Protocols to test, comma-separated: tcp, udp.", parse=_protocols),
    )
    udp_bitrate: int = field(
        default=100_000_000,
        metadata=doc(
            "Offered UDP rate in bits/s (suffixes k, M, G accepted).", parse=parse_bitrate
        ),
    )
    guard_seconds: float = field(
        default=2.0,
        metadata=doc("Guard time added to every test slot (start-up, clock skew, teardown)."),
    )
    bandwidth_budget: float = field(
        default=0.01,
        metadata=doc(
            "Share of time this node spends as an iperf3 client (as much again as a server); "
            "rounds are spaced to keep it. 1 = back to back."
        ),
    )
    concurrency: int = field(
        default=0,
        metadata=doc("Cluster-wide cap on tests running at once; 0 = no cap (N per round)."),
    )
    peers_k: int = field(
        default=0,
        metadata=doc("Test only k neighbours on a hash ring of node names; 0 = full mesh."),
    )
    collector_url: str = field(
        default="",
        metadata=doc("Base URL of the collector (http://netmesh-collector:9100); empty = none."),
    )
    static_peers: tuple[Member, ...] = field(
        default=(),
        metadata=doc("Peers without a collector: name=ip[:port],…", parse=parse_peers),
    )
    auth_token_file: str = field(
        default="",
        metadata=doc(
            "File with the bearer token presented to the collector, re-read before every "
            "report (Kubernetes: the projected ServiceAccount token); empty = none."
        ),
    )
    report_interval: float = field(
        default=10.0, metadata=doc("Seconds between reports pushed to the collector.")
    )
    report_timeout: float = field(
        default=5.0, metadata=doc("Timeout in seconds of one report POST.")
    )
    connect_timeout: float = field(
        default=3.0,
        metadata=doc("iperf3 control connection timeout in seconds (capped by the slot)."),
    )
    server_check_interval: float = field(
        default=1.0, metadata=doc("Seconds between liveness checks of the local iperf3 server.")
    )
    server_check_timeout: float = field(
        default=1.0, metadata=doc("Seconds a liveness check waits for the iperf3 server.")
    )
    iperf3_binary: str = field(default="iperf3", metadata=doc("Path of the iperf3 program."))
    log_level: str = field(default="info", metadata=doc("debug, info, warning or error."))
    probe_mode: str = field(
        default="auto",
        metadata=doc(
            "eBPF retransmission probe: auto (tracepoint if present, else kprobe), "
            "kprobe, tracepoint or off."
        ),
    )
    probe_map_size: int = field(
        default=8192, metadata=doc("Entries of the probe's in-kernel LRU flow map.")
    )
    probe_local_cidrs: tuple[str, ...] = field(
        default=(),
        metadata=doc(
            "Count only flows whose local address is in these CIDRs (filtered in the "
            "kernel), comma-separated; empty = all flows."
        ),
    )
    probe_series_cap: int = field(
        default=1000,
        metadata=doc("Most retransmission flows exported; the rest are summed as 'other'."),
    )
    probe_interval: float = field(
        default=5.0, metadata=doc("Seconds between drains of the probe's kernel map.")
    )
    probe_print_source: bool = field(
        default=False, metadata=doc("Print the probe's final BPF C source when loading it.")
    )
    drops_mode: str = field(
        default="auto",
        metadata=doc(
            "eBPF drop-reason probe on skb:kfree_skb: auto or tracepoint (the same: there is "
            "no kprobe variant) or off."
        ),
    )
    drops_map_size: int = field(
        default=4096,
        metadata=doc("Entries of the drop probe's in-kernel LRU map (reason, remote, protocol)."),
    )
    drops_series_cap: int = field(
        default=500,
        metadata=doc("Most drop flows exported; the rest are summed as 'other'."),
    )
    drops_interval: float = field(
        default=5.0, metadata=doc("Seconds between drains of the drop probe's kernel maps.")
    )
    drops_print_source: bool = field(
        default=False, metadata=doc("Print the drop probe's final BPF C source when loading it.")
    )
    light_port: int = field(
        default=5202,
        metadata=doc(
            "UDP port of the light tier (probes and echoes), the same on every node; 0 = off."
        ),
    )
    light_rate: float = field(
        default=100.0,
        metadata=doc("Light-tier probes per second this node sends in all, spread over its peers."),
    )
    light_max_pair_rate: float = field(
        default=10.0, metadata=doc("Light-tier probes per second to one peer at most.")
    )
    light_full_mesh_max: int = field(
        default=100,
        metadata=doc("Probe every member up to this many members; beyond, the ring successors."),
    )
    light_ring_peers: int = field(
        default=20, metadata=doc("Peers each node probes in a mesh above light_full_mesh_max.")
    )
    light_window: float = field(
        default=10.0, metadata=doc("Seconds of light-tier probes each report summarises.")
    )
    light_mtu: int = field(
        default=0,
        metadata=doc(
            "IP packet size of the don't-fragment MTU probe; 0 = the MTU of the interface that "
            "has the advertise address (1500 if unknown)."
        ),
    )
    light_mtu_interval: float = field(
        default=10.0, metadata=doc("Seconds between MTU probes to one peer; 0 = no MTU probe.")
    )
    labels: Labels = field(
        default=(),
        metadata=doc(
            "This node's topology labels, key=value,… (zone=a,rack=r1), sent in every report; "
            "the root-cause analysis reads zone and rack (in Kubernetes the Node's labels win).",
            parse=parse_labels,
        ),
    )
    link_speed: int = field(
        default=0,
        metadata=doc(
            "This node's link speed in bits/s (suffixes k, M, G: 10G), sent in every report as "
            "the capacity paths are judged against; 0 = the speed sysfs gives for the interface "
            "of the advertise address (a NIC, bond or VLAN; virtual interfaces such as veth "
            "and unknown speeds: not reported).",
            parse=parse_bitrate,
        ),
    )

    dns_name: str = field(
        default="",
        metadata=doc(
            "Name the DNS check resolves at a steady rate through the node's resolver "
            "configuration, as an absolute name; empty = no DNS check (the manifests set "
            "kubernetes.default.svc.cluster.local)."
        ),
    )
    dns_record_type: str = field(
        default="A", metadata=doc("Record type the DNS check asks: A or AAAA.")
    )
    dns_interval: float = field(default=5.0, metadata=doc("Seconds between DNS lookups."))
    dns_timeout: float = field(default=2.0, metadata=doc("Seconds one DNS lookup may take."))
    dns_window: float = field(
        default=30.0, metadata=doc("Seconds of DNS lookups each report summarises.")
    )
    dns_resolv_conf: str = field(
        default="/etc/resolv.conf",
        metadata=doc("Resolver configuration the DNS check reads its nameservers from."),
    )

    service_target: str = field(
        default="",
        metadata=doc(
            "host:port of a Service the Service check connects to (TCP) at a steady rate, "
            "e.g. the collector's own Service; a name is resolved by the system resolver "
            "(the address it resolved last is kept while it does not). Empty = no Service "
            "check (the manifests set the collector's Service)."
        ),
    )
    service_interval: float = field(
        default=5.0, metadata=doc("Seconds between the Service check's connects.")
    )
    service_timeout: float = field(
        default=2.0, metadata=doc("Seconds one Service connect (and its name lookup) may take.")
    )
    service_window: float = field(
        default=30.0, metadata=doc("Seconds of Service connects each report summarises.")
    )

    def __post_init__(self) -> None:
        p = Problems()
        p.check(
            bool(_NAME.match(self.node_name)),
            f"node_name {self.node_name!r}: not a valid node name",
        )
        p.check(self.network in NETWORKS, f"network {self.network!r}: one of {', '.join(NETWORKS)}")
        p.check(is_ip(self.bind_address), f"bind_address {self.bind_address!r}: not an IP address")
        if self.advertise_address:
            p.check(
                is_ip(self.advertise_address) and not _is_wildcard(self.advertise_address),
                f"advertise_address {self.advertise_address!r}: not a usable IP address",
            )
        else:
            p.check(
                not is_ip(self.bind_address) or not _is_wildcard(self.bind_address),
                "advertise_address: required when bind_address is a wildcard address",
            )
        for name in ("http_port", "iperf3_port"):
            port = getattr(self, name)
            p.check(valid_port(port), f"{name} {port}: must be between 1 and 65535")
        p.check(self.http_port != self.iperf3_port, "http_port and iperf3_port must differ")
        p.check(
            1 <= self.test_duration <= 3600,
            f"test_duration {self.test_duration}: must be 1..3600 s",
        )
        p.check(0 <= self.omit_seconds <= 60, f"omit_seconds {self.omit_seconds}: must be 0..60 s")
        p.check(bool(self.protocols), "protocols: at least one of tcp, udp")
        for proto in self.protocols:
            p.check(proto in PROTOCOLS, f"protocols: unknown protocol {proto!r} (tcp, udp)")
        p.check(len(set(self.protocols)) == len(self.protocols), "protocols: listed twice")
        p.check(self.udp_bitrate > 0, "udp_bitrate: must be positive")
        p.check(
            0.5 <= self.guard_seconds <= 600,
            f"guard_seconds {self.guard_seconds}: must be 0.5..600",
        )
        p.check(
            0 < self.bandwidth_budget <= 1,
            f"bandwidth_budget {self.bandwidth_budget}: must be > 0 and <= 1",
        )
        p.check(self.concurrency >= 0, "concurrency: must be >= 0 (0 = no cap)")
        p.check(self.peers_k >= 0, "peers_k: must be >= 0 (0 = full mesh)")
        if self.collector_url:
            p.check(
                self.collector_url.startswith(("http://", "https://")),
                f"collector_url {self.collector_url!r}: must start with http:// or https://",
            )
        names = [m.name for m in self.static_peers]
        p.check(len(set(names)) == len(names), "static_peers: duplicate names")
        p.check(self.report_interval >= 0.5, "report_interval: must be >= 0.5 s")
        p.check(
            0 < self.report_timeout <= self.report_interval,
            f"report_timeout {self.report_timeout}: must be > 0 and <= report_interval "
            f"({self.report_interval}) so that reports never pile up",
        )
        p.check(self.connect_timeout > 0, "connect_timeout: must be > 0")
        p.check(
            0 < self.server_check_timeout <= self.server_check_interval <= 2.0,
            "server_check_timeout <= server_check_interval <= 2 s (restart within 5 s)",
        )
        p.check(self.log_level in _LOG_LEVELS, f"log_level: one of {', '.join(_LOG_LEVELS)}")
        p.check(self.probe_mode in PROBE_MODES, f"probe_mode: one of {', '.join(PROBE_MODES)}")
        p.check(
            1 <= self.probe_map_size <= 1 << 20,
            f"probe_map_size {self.probe_map_size}: must be 1..1048576",
        )
        p.check(
            1 <= self.probe_series_cap < MAX_RETRANSMIT_FLOWS,
            f"probe_series_cap {self.probe_series_cap}: must be 1..{MAX_RETRANSMIT_FLOWS - 1}",
        )
        p.check(self.probe_interval >= 0.5, "probe_interval: must be >= 0.5 s")
        p.check(self.drops_mode in DROPS_MODES, f"drops_mode: one of {', '.join(DROPS_MODES)}")
        p.check(
            1 <= self.drops_map_size <= 1 << 20,
            f"drops_map_size {self.drops_map_size}: must be 1..1048576",
        )
        p.check(
            1 <= self.drops_series_cap < MAX_DROP_FLOWS,
            f"drops_series_cap {self.drops_series_cap}: must be 1..{MAX_DROP_FLOWS - 1}",
        )
        p.check(self.drops_interval >= 0.5, "drops_interval: must be >= 0.5 s")
        p.check(
            len(self.probe_local_cidrs) <= MAX_LOCAL_CIDRS,
            f"probe_local_cidrs: at most {MAX_LOCAL_CIDRS}",
        )
        for cidr in self.probe_local_cidrs:
            p.check(is_network(cidr), f"probe_local_cidrs: {cidr!r} is not an IP network")
        p.check(
            self.light_port == 0 or valid_port(self.light_port),
            f"light_port {self.light_port}: must be 0 (off) or 1..65535",
        )
        p.check(
            self.light_port == 0 or self.light_port != self.iperf3_port,
            "light_port: must differ from iperf3_port",
        )
        p.check(0 < self.light_rate <= 100_000, "light_rate: must be > 0 and <= 100000 probes/s")
        p.check(
            0 < self.light_max_pair_rate <= 1000, "light_max_pair_rate: must be > 0 and <= 1000"
        )
        p.check(self.light_full_mesh_max >= 1, "light_full_mesh_max: must be >= 1")
        p.check(self.light_ring_peers >= 1, "light_ring_peers: must be >= 1")
        p.check(1 <= self.light_window <= 3600, "light_window: must be 1..3600 s")
        p.check(
            self.light_mtu == 0 or 576 <= self.light_mtu <= 65535,
            f"light_mtu {self.light_mtu}: must be 0 (auto) or 576..65535",
        )
        p.check(self.light_mtu_interval >= 0, "light_mtu_interval: must be >= 0 (0 = off)")
        p.check(
            not self.dns_name or is_dns_name(self.dns_name),
            f"dns_name {self.dns_name!r}: not a DNS name",
        )
        p.check(
            self.dns_record_type in RECORD_TYPES,
            f"dns_record_type: one of {', '.join(RECORD_TYPES)}",
        )
        p.check(0.1 <= self.dns_interval <= 3600, "dns_interval: must be 0.1..3600 s")
        p.check(0 < self.dns_timeout <= 30, "dns_timeout: must be > 0 and <= 30 s")
        p.check(
            self.dns_interval <= self.dns_window <= 3600,
            "dns_window: must be >= dns_interval and <= 3600 s",
        )
        if self.service_target:
            try:
                host, _ = split_target(self.service_target)
                p.check(
                    is_ip(host) or is_dns_name(host),
                    f"service_target {self.service_target!r}: {host!r} is no address or name",
                )
            except ValueError as exc:
                p.check(False, f"service_target {exc}")
        p.check(0.1 <= self.service_interval <= 3600, "service_interval: must be 0.1..3600 s")
        p.check(0 < self.service_timeout <= 30, "service_timeout: must be > 0 and <= 30 s")
        p.check(
            self.service_interval <= self.service_window <= 3600,
            "service_window: must be >= service_interval and <= 3600 s",
        )
        p.raise_if_any("agent")

    @property
    def address(self) -> str:
        """The address peers use to reach this node."""
        return self.advertise_address or self.bind_address

    @property
    def network_name(self) -> Network:
        return "pod" if self.network == "pod" else "host"

    @property
    def runs_probe(self) -> bool:
        """The eBPF probe runs on the host network only (a pod endpoint has no privileges)."""
        return self.network_name == "host"

    @property
    def protocol_list(self) -> tuple[Transport, ...]:
        return tuple(p for p in PROTOCOLS if p in self.protocols)

    @property
    def me(self) -> Member:
        return Member(name=self.node_name, address=self.address, iperf3_port=self.iperf3_port)


def _is_wildcard(text: str) -> bool:
    return ipaddress.ip_address(text).is_unspecified
