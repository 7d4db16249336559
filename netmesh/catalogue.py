"""The catalogue of every metric family netmesh exposes: one owner per name.

Each family has its name (as samples carry it: counters end in ``_total``),
type, base unit, help text, label names, and the endpoints that expose it:

- ``agent``: the agent's own ``/metrics`` (this node only, for debugging);
- ``collector``: the collector's merged ``/metrics`` for the whole mesh.

A family exposed by both has the same name, type and labels on both, except
that the collector puts ``node`` in front of an agent's health families
(``collector_labels``) — on the agent the node is the endpoint itself. Path
families already name their source node, so they are identical on both.

Who reads this: the agent's prometheus_client collector (agent/metrics.py),
the collector's fast renderer (collector/exposition.py, collector/metrics.py),
the offline RCA's queries (collector/offline.py), the README's metric tables
(scripts/gen_docs.py) and the dashboard/rule name checks (tests/dashboards).
Where a family's value comes from a report, its extractor lives here too
(``PATH_GAUGES``, ``HEALTH``), so both endpoints compute it the same way.
Pure data: nothing here does I/O. One concept, so one module even past
~450 lines: it is a list of families, a few lines of name and help each.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from netmesh.lightreport import RTT_BUCKETS
from netmesh.wire import DnsStatus, LightPath, Report, ServiceStatus, TestResult

Endpoint = Literal["agent", "collector"]
AGENT: Endpoint = "agent"
COLLECTOR: Endpoint = "collector"
MetricType = Literal["gauge", "counter", "histogram"]

BOTH: frozenset[Endpoint] = frozenset({"agent", "collector"})
AGENT_ONLY: frozenset[Endpoint] = frozenset({"agent"})
COLLECTOR_ONLY: frozenset[Endpoint] = frozenset({"collector"})

PATH_LABELS = ("source_node", "destination_node", "protocol")
LIGHT_LABELS = ("source_node", "destination_node")
# The measured families carry the network the endpoints measure on: host (the
# hostNetwork agents) or pod (the pod-network endpoints); the same pair of nodes
# is measured on both, so every path and light-tier family has the label.
NETWORK = "network"
NETWORK_PATH_LABELS = (*PATH_LABELS, NETWORK)
NETWORK_LIGHT_LABELS = (*LIGHT_LABELS, NETWORK)
NODE = ("node",)


@dataclass(frozen=True, slots=True)
class MetricFamily:
    """One metric family: what Prometheus sees, and who exposes it."""

    name: str  # as samples carry it (counters end in _total)
    type: MetricType
    unit: str  # base unit the name ends with ("" when the value is a count or a state)
    help: str
    labels: tuple[str, ...] = ()  # on every endpoint that exposes the family
    exposed_by: frozenset[Endpoint] = COLLECTOR_ONLY
    collector_labels: tuple[str, ...] = ()  # put in front of ``labels`` by the collector

    @property
    def base_name(self) -> str:
        """The name without ``_total`` (what prometheus_client's families take)."""
        return self.name.removesuffix("_total") if self.type == "counter" else self.name

    def label_names(self, endpoint: Endpoint) -> tuple[str, ...]:
        if endpoint not in self.exposed_by:
            raise ValueError(f"{self.name} is not exposed by the {endpoint}")
        return (*self.collector_labels, *self.labels) if endpoint == COLLECTOR else self.labels

    @property
    def series_names(self) -> tuple[str, ...]:
        """The names its samples carry (a histogram's ``_bucket``, ``_sum``, ``_count``)."""
        if self.type == "histogram":
            return (f"{self.name}_bucket", f"{self.name}_sum", f"{self.name}_count")
        return (self.name,)

    def header(self) -> bytes:
        """``# HELP`` and ``# TYPE`` lines of the text exposition format."""
        help_text = self.help.replace("\\", "\\\\").replace("\n", "\\n")
        return f"# HELP {self.name} {help_text}\n# TYPE {self.name} {self.type}\n".encode()


def _metric(
    kind: MetricType,
    name: str,
    help_text: str,
    *,
    unit: str = "",
    labels: tuple[str, ...] = (),
    exposed_by: frozenset[Endpoint] = COLLECTOR_ONLY,
    collector_labels: tuple[str, ...] = (),
) -> MetricFamily:
    return MetricFamily(name, kind, unit, help_text, labels, exposed_by, collector_labels)


# --------------------------------------------------------------------------- paths


def _opt(value: float | None) -> float | None:
    return None if value is None else float(value)


def _bytes(bits: float | None) -> float | None:
    """Prometheus base unit: bytes (promtool rejects bits)."""
    return None if bits is None else bits / 8.0


ValueOf = Callable[[TestResult], float | None]


def _path(name: str, help_text: str, unit: str = "") -> MetricFamily:
    return _metric("gauge", name, help_text, unit=unit, labels=NETWORK_PATH_LABELS, exposed_by=BOTH)


# Gauges describing the latest test of a path (value None = no sample for this result).
PATH_GAUGES: tuple[tuple[MetricFamily, ValueOf], ...] = (
    (
        _path("netmesh_path_success", "1 if the latest test of the path succeeded, else 0."),
        lambda r: 1.0 if r.ok else 0.0,
    ),
    (
        _path(
            "netmesh_path_bandwidth_bytes_per_second",
            "Throughput measured at the receiver in the latest test (bytes/s; x8 for bits).",
            "bytes_per_second",
        ),
        lambda r: _bytes(r.received_bits_per_second),
    ),
    (
        _path(
            "netmesh_path_sent_bytes_per_second",
            "Rate the sender achieved in the latest test (bytes/s).",
            "bytes_per_second",
        ),
        lambda r: _bytes(r.sent_bits_per_second),
    ),
    (
        _path(
            "netmesh_path_retransmits", "TCP retransmissions iperf3 counted during the latest test."
        ),
        lambda r: _opt(r.retransmits),
    ),
    (
        _path(
            "netmesh_path_rtt_seconds",
            "Mean smoothed RTT (tcp_info) in the latest TCP test.",
            "seconds",
        ),
        lambda r: _opt(r.rtt_mean_seconds),
    ),
    (
        _path("netmesh_path_rtt_min_seconds", "Minimum RTT in the latest TCP test.", "seconds"),
        lambda r: _opt(r.rtt_min_seconds),
    ),
    (
        _path("netmesh_path_rtt_max_seconds", "Maximum RTT in the latest TCP test.", "seconds"),
        lambda r: _opt(r.rtt_max_seconds),
    ),
    (
        _path("netmesh_path_jitter_seconds", "UDP jitter in the latest test.", "seconds"),
        lambda r: _opt(r.jitter_seconds),
    ),
    (
        _path(
            "netmesh_path_loss_ratio", "UDP packets lost / sent in the latest test (0-1).", "ratio"
        ),
        lambda r: _opt(r.loss_ratio),
    ),
    (
        _path(
            "netmesh_path_last_test_timestamp_seconds",
            "Unix time the latest test started.",
            "seconds",
        ),
        lambda r: r.started_at,
    ),
    (
        _path("netmesh_path_test_duration_seconds", "Wall time the latest test took.", "seconds"),
        lambda r: r.duration_seconds,
    ),
)
PATH_FAMILIES = tuple(f for f, _ in PATH_GAUGES)
(
    PATH_SUCCESS,
    PATH_BANDWIDTH,
    PATH_SENT,
    PATH_RETRANSMITS,
    PATH_RTT,
    PATH_RTT_MIN,
    PATH_RTT_MAX,
    PATH_JITTER,
    PATH_LOSS,
    PATH_TIMESTAMP,
    PATH_DURATION,
) = PATH_FAMILIES

PATH_TESTS = _metric(
    "counter",
    "netmesh_path_tests_total",
    "Tests run on the path, by result (ok, busy, refused, unreachable, timeout, ...).",
    labels=(*NETWORK_PATH_LABELS, "result"),
    exposed_by=BOTH,
)

# --------------------------------------------------------------------------- light tier

LightValue = Callable[[LightPath], float | None]


def _light(name: str, help_text: str, unit: str = "") -> MetricFamily:
    return _metric(
        "gauge", name, help_text, unit=unit, labels=NETWORK_LIGHT_LABELS, exposed_by=BOTH
    )


def mtu_loss(p: LightPath) -> float | None:
    if not p.mtu_sent:
        return None
    return 1.0 - min(p.mtu_received, p.mtu_sent) / p.mtu_sent


# The light tier's latest window per path: one gauge each (value None = no sample).
LIGHT_PROBES = _light(
    "netmesh_light_probes", "Light-tier probes sent on the path in the latest window."
)
LIGHT_LOSS = _light(
    "netmesh_light_loss_ratio",
    "Light-tier probes without an echo in the latest window (round trip, 0-1).",
    "ratio",
)
LIGHT_FORWARD_LOSS = _light(
    "netmesh_light_forward_loss_ratio",
    "Light-tier probes the destination did not receive (source to destination, 0-1).",
    "ratio",
)
LIGHT_RETURN_LOSS = _light(
    "netmesh_light_return_loss_ratio",
    "Light-tier echoes the source did not receive (destination to source, 0-1).",
    "ratio",
)
LIGHT_RTT_MIN = _light(
    "netmesh_light_rtt_min_seconds",
    "Minimum light-tier RTT in the latest window.",
    "seconds",
)
LIGHT_RTT_MEDIAN = _light(
    "netmesh_light_rtt_median_seconds",
    "Median light-tier RTT in the latest window.",
    "seconds",
)
LIGHT_RTT_P99 = _light(
    "netmesh_light_rtt_p99_seconds",
    "99th percentile of the light-tier RTT in the latest window.",
    "seconds",
)
LIGHT_JITTER = _light(
    "netmesh_light_jitter_seconds",
    "Mean difference of consecutive light-tier RTTs in the latest window.",
    "seconds",
)
LIGHT_MTU_LOSS = _light(
    "netmesh_light_mtu_loss_ratio",
    "Don't-fragment probes at the path MTU without an echo in the latest window (0-1); "
    "high while small probes pass = an MTU blackhole.",
    "ratio",
)
LIGHT_GAUGES: tuple[tuple[MetricFamily, LightValue], ...] = (
    (LIGHT_PROBES, lambda p: float(p.sent)),
    (LIGHT_LOSS, lambda p: p.loss_ratio),
    (LIGHT_FORWARD_LOSS, lambda p: p.forward_loss_ratio),
    (LIGHT_RETURN_LOSS, lambda p: p.return_loss_ratio),
    (LIGHT_RTT_MIN, lambda p: p.rtt_min_seconds),
    (LIGHT_RTT_MEDIAN, lambda p: p.rtt_median_seconds),
    (LIGHT_RTT_P99, lambda p: p.rtt_p99_seconds),
    (LIGHT_JITTER, lambda p: p.jitter_seconds),
    (LIGHT_MTU_LOSS, mtu_loss),
)
LIGHT_FAMILIES = tuple(f for f, _ in LIGHT_GAUGES)

# The light tier's RTTs per path as a Prometheus histogram (cumulative since the
# source began probing the destination): buckets netmesh/lightreport.RTT_BUCKETS,
# i.e. 11 ``_bucket`` series (10 bounds and +Inf), ``_sum`` and ``_count`` = 13 per path.
LIGHT_RTT = _metric(
    "histogram",
    "netmesh_light_rtt_seconds",
    "Light-tier RTTs of the path since the source began probing it "
    "(histogram_quantile over rate() gives any quantile over any range).",
    unit="seconds",
    labels=NETWORK_LIGHT_LABELS,
    exposed_by=BOTH,
)
LIGHT_RTT_SERIES_PER_PATH = len(RTT_BUCKETS) + 3
# "le" values of the buckets, as both endpoints print them (prometheus_client's style)
RTT_BUCKET_LABELS: tuple[str, ...] = (*(repr(float(b)) for b in RTT_BUCKETS), "+Inf")

# --------------------------------------------------------------------------- agent health

ReportValue = Callable[[Report], float | None]


def _health_gauge(name: str, help_text: str, unit: str = "") -> MetricFamily:
    return _metric("gauge", name, help_text, unit=unit, exposed_by=BOTH, collector_labels=NODE)


def _health_counter(name: str, help_text: str) -> MetricFamily:
    return _metric("counter", name, help_text, exposed_by=BOTH, collector_labels=NODE)


SERVER_UP = _health_gauge(
    "netmesh_agent_iperf3_server_up", "1 if the agent's iperf3 server answers liveness checks."
)
SERVER_RESTARTS = _health_counter(
    "netmesh_agent_iperf3_server_restarts_total", "Times the agent restarted its iperf3 server."
)
SCHEDULER_LAG = _health_gauge(
    "netmesh_agent_scheduler_lag_seconds",
    "How late the agent's latest test started after its slot began.",
    "seconds",
)
SKIPPED_TESTS = _health_counter(
    "netmesh_agent_skipped_tests_total",
    "Tests the agent did not start (too late in their slot to finish in it).",
)
MEMBERS = _health_gauge("netmesh_agent_members", "Nodes in the member list the agent plans with.")
MEMBER_EPOCH = _health_gauge(
    "netmesh_agent_member_epoch", "Epoch of the member list the agent plans with."
)
START_TIME = _health_gauge(
    "netmesh_agent_start_time_seconds", "Unix time the agent started.", "seconds"
)
PROBE_MAP_ENTRIES = _health_gauge(
    "netmesh_agent_probe_map_entries", "Flows in the agent's in-kernel eBPF retransmission map."
)
PROBE_MAP_CAPACITY = _health_gauge(
    "netmesh_agent_probe_map_capacity",
    "Capacity of the agent's in-kernel eBPF retransmission map (probe_map_size).",
)
PROBE_EVICTIONS = _health_counter(
    "netmesh_agent_probe_map_evictions_total",
    "Flows the kernel evicted from the agent's full eBPF retransmission map.",
)
PROBE_UP = _metric(
    "gauge",
    "netmesh_agent_probe_up",
    "1 if the agent's eBPF retransmission probe is attached; mode = tracepoint, kprobe or "
    "none; reason says why not.",
    labels=("mode", "reason"),
    exposed_by=BOTH,
    collector_labels=NODE,
)
DROPS_UP = _metric(
    "gauge",
    "netmesh_agent_drops_up",
    "1 if the agent's eBPF drop-reason probe (skb:kfree_skb) is attached; mode = tracepoint or "
    "none; reason says why not.",
    labels=("mode", "reason"),
    exposed_by=BOTH,
    collector_labels=NODE,
)
DROPS_MAP_ENTRIES = _health_gauge(
    "netmesh_agent_drops_map_entries",
    "Entries (reason, remote address, protocol) in the agent's in-kernel eBPF drop map.",
)
DROPS_EVICTIONS = _health_counter(
    "netmesh_agent_drops_map_evictions_total",
    "Entries the kernel evicted from the agent's full eBPF drop map.",
)
DROPS_UNSPECIFIED = _health_counter(
    "netmesh_agent_drops_unspecified_total",
    "Packets the node's kernel freed with reason NOT_SPECIFIED or as consumed (plain "
    "kfree_skb, mostly normal end of life): counted apart, not in netmesh_drops_total.",
)
DROPS = _metric(
    "counter",
    "netmesh_drops_total",
    "Packets the node's kernel dropped (eBPF, skb:kfree_skb), by drop reason as the kernel "
    "names it (NETFILTER_DROP, NO_SOCKET, QDISC_DROP, ...); normal frees left out.",
    labels=("reason",),
    exposed_by=BOTH,
    collector_labels=NODE,
)

LIGHT_UP = _metric(
    "gauge",
    "netmesh_agent_light_up",
    "1 if the agent's light-tier prober and responder run; reason says why not.",
    labels=("reason",),
    exposed_by=BOTH,
    collector_labels=NODE,
)
LIGHT_PROBES_SENT = _health_counter(
    "netmesh_agent_light_probes_sent_total", "Light-tier probes the agent sent."
)
LIGHT_DROPPED_STRANGERS = _health_counter(
    "netmesh_agent_light_strangers_total",
    "Light-tier packets the agent dropped because they came from no member.",
)
LIGHT_DROPPED_MALFORMED = _health_counter(
    "netmesh_agent_light_malformed_total",
    "Packets on the agent's light-tier port that were no light-tier packet (dropped).",
)
LIGHT_SEND_ERRORS = _health_counter(
    "netmesh_agent_light_send_errors_total",
    "Light-tier sends the kernel refused (EMSGSIZE: an MTU probe larger than the interface).",
)

# One sample per agent, the value read from its report (the same on both endpoints).
HEALTH: tuple[tuple[MetricFamily, ReportValue], ...] = (
    (SERVER_UP, lambda r: float(r.agent.iperf3_server_up)),
    (SERVER_RESTARTS, lambda r: float(r.agent.iperf3_server_restarts)),
    (SCHEDULER_LAG, lambda r: r.agent.scheduler_lag_seconds),
    (SKIPPED_TESTS, lambda r: float(r.agent.skipped_tests)),
    (MEMBERS, lambda r: float(r.agent.members)),
    (MEMBER_EPOCH, lambda r: float(r.agent.epoch)),
    (START_TIME, lambda r: r.started_at),
    (PROBE_MAP_ENTRIES, lambda r: None if r.probe is None else float(r.probe.map_entries)),
    (PROBE_MAP_CAPACITY, lambda r: None if r.probe is None else float(r.probe.map_capacity)),
    (PROBE_EVICTIONS, lambda r: None if r.probe is None else float(r.probe.evictions)),
    (DROPS_MAP_ENTRIES, lambda r: None if r.drops is None else float(r.drops.map_entries)),
    (DROPS_EVICTIONS, lambda r: None if r.drops is None else float(r.drops.evictions)),
    (DROPS_UNSPECIFIED, lambda r: None if r.drops is None else float(r.drops.unspecified)),
    (LIGHT_PROBES_SENT, lambda r: None if r.light is None else float(r.light.probes_sent)),
    (
        LIGHT_DROPPED_STRANGERS,
        lambda r: None if r.light is None else float(r.light.dropped_strangers),
    ),
    (
        LIGHT_DROPPED_MALFORMED,
        lambda r: None if r.light is None else float(r.light.dropped_malformed),
    ),
    (LIGHT_SEND_ERRORS, lambda r: None if r.light is None else float(r.light.send_errors)),
)

# --------------------------------------------------------------------------- DNS check

# Rows of one family from a report: (label values after the collector's ``node``, value).
Rows = Callable[[Report], list[tuple[tuple[str, ...], float]]]


def _check_rows(
    status_of: Callable[[Report], Any], value_of: Callable[[Any], float | None]
) -> Rows:
    """One row (labels: the report's network) with ``value_of`` the report's check status."""

    def rows(report: Report) -> list[tuple[tuple[str, ...], float]]:
        status = status_of(report)
        value = None if status is None else value_of(status)
        return [] if value is None else [((report.network,), value)]

    return rows


def _dns_rows(value_of: Callable[[DnsStatus], float | None]) -> Rows:
    return _check_rows(lambda r: r.dns, value_of)


def _service_rows(value_of: Callable[[ServiceStatus], float | None]) -> Rows:
    return _check_rows(lambda r: r.service, value_of)


def _drops_up(report: Report) -> list[tuple[tuple[str, ...], float]]:
    d = report.drops
    return [] if d is None else [((d.mode, d.reason), float(d.up))]


def _drops(report: Report) -> list[tuple[tuple[str, ...], float]]:
    d = report.drops
    return [] if d is None else [((x.reason,), float(x.count)) for x in d.reasons]


def _dns_up(report: Report) -> list[tuple[tuple[str, ...], float]]:
    d = report.dns
    return [] if d is None else [((report.network, d.name, d.reason), float(d.up))]


def _dns_lookups(report: Report) -> list[tuple[tuple[str, ...], float]]:
    d = report.dns
    return [] if d is None else [((report.network, r), float(n)) for r, n in d.lookups]


def _service_up(report: Report) -> list[tuple[tuple[str, ...], float]]:
    c = report.service
    return [] if c is None else [((report.network, c.target, c.reason), float(c.up))]


def _service_connects(report: Report) -> list[tuple[tuple[str, ...], float]]:
    c = report.service
    return [] if c is None else [((report.network, r), float(n)) for r, n in c.connects]


def _check_gauge(name: str, help_text: str, unit: str = "") -> MetricFamily:
    """A gauge of a node's DNS or Service check, per network (the host agent's, the pod
    endpoint's)."""
    return _metric(
        "gauge",
        name,
        help_text,
        unit=unit,
        labels=(NETWORK,),
        exposed_by=BOTH,
        collector_labels=NODE,
    )


DNS_UP = _metric(
    "gauge",
    "netmesh_agent_dns_up",
    "1 if the endpoint's DNS check runs; name is what it resolves, reason says why not; "
    "network host (the agent) or pod (the pod-network endpoint).",
    labels=(NETWORK, "name", "reason"),
    exposed_by=BOTH,
    collector_labels=NODE,
)
DNS_LOOKUPS = _metric(
    "counter",
    "netmesh_dns_lookups_total",
    "DNS lookups of the node's DNS check by result: ok, nxdomain, servfail, refused, "
    "no_answer, timeout, error.",
    labels=(NETWORK, "result"),
    exposed_by=BOTH,
    collector_labels=NODE,
)
DNS_LATENCY_MEDIAN = _check_gauge(
    "netmesh_dns_lookup_median_seconds",
    "Median time of the node's answered DNS lookups over the window.",
    "seconds",
)
DNS_LATENCY_P99 = _check_gauge(
    "netmesh_dns_lookup_p99_seconds",
    "99th percentile time of the node's answered DNS lookups over the window.",
    "seconds",
)
DNS_WINDOW_FAILURE = _check_gauge(
    "netmesh_dns_failure_ratio",
    "Share of the node's DNS lookups in the window that failed (0-1).",
)
SERVICE_UP = _metric(
    "gauge",
    "netmesh_agent_service_up",
    "1 if the endpoint's Service check runs; target is the host:port it connects to, "
    "reason says why not.",
    labels=(NETWORK, "target", "reason"),
    exposed_by=BOTH,
    collector_labels=NODE,
)
SERVICE_CONNECTS = _metric(
    "counter",
    "netmesh_service_connects_total",
    "TCP connects of the node's Service check by result: ok, refused, timeout, unreachable, "
    "reset, error, unresolved (the name never resolved: no connect tried).",
    labels=(NETWORK, "result"),
    exposed_by=BOTH,
    collector_labels=NODE,
)
SERVICE_LATENCY_MEDIAN = _check_gauge(
    "netmesh_service_connect_median_seconds",
    "Median time of the node's successful Service connects over the window.",
    "seconds",
)
SERVICE_LATENCY_P99 = _check_gauge(
    "netmesh_service_connect_p99_seconds",
    "99th percentile time of the node's successful Service connects over the window.",
    "seconds",
)
SERVICE_WINDOW_FAILURE = _check_gauge(
    "netmesh_service_failure_ratio",
    "Share of the node's Service connects in the window that failed (0-1).",
)

# Families with labels besides the node, from the report (the same rows on both endpoints;
# the collector puts ``node`` in front).
REPORT_ROWS: tuple[tuple[MetricFamily, Rows], ...] = (
    (DNS_UP, _dns_up),
    (DNS_LOOKUPS, _dns_lookups),
    (DNS_LATENCY_MEDIAN, _dns_rows(lambda d: d.latency_median_seconds)),
    (DNS_LATENCY_P99, _dns_rows(lambda d: d.latency_p99_seconds)),
    (DNS_WINDOW_FAILURE, _dns_rows(lambda d: d.failure_ratio)),
    (SERVICE_UP, _service_up),
    (SERVICE_CONNECTS, _service_connects),
    (SERVICE_LATENCY_MEDIAN, _service_rows(lambda c: c.latency_median_seconds)),
    (SERVICE_LATENCY_P99, _service_rows(lambda c: c.latency_p99_seconds)),
    (SERVICE_WINDOW_FAILURE, _service_rows(lambda c: c.failure_ratio)),
    (DROPS_UP, _drops_up),
    (DROPS, _drops),
)

# --------------------------------------------------------------------------- agent only

COLLECTOR_UP = _metric(
    "gauge",
    "netmesh_agent_collector_up",
    "1 if the agent's latest report reached the collector.",
    exposed_by=AGENT_ONLY,
)
REPORTS_SENT = _metric(
    "counter",
    "netmesh_agent_reports_total",
    "Reports the agent pushed to the collector, by result (ok, unreachable, unauthenticated = "
    "401 or no readable token, forbidden = 403, rejected = any other refusal, bad_response).",
    labels=("result",),
    exposed_by=AGENT_ONLY,
)
AGENT_TASK_FAILURES = _metric(
    "counter",
    "netmesh_agent_task_failures_total",
    "Background task crashes in the agent (each restarted), by task.",
    labels=("task",),
    exposed_by=AGENT_ONLY,
)
FLOW_RETRANSMITS = _metric(
    "counter",
    "netmesh_tcp_flow_retransmits_total",
    "TCP retransmissions this node's kernel counted, by endpoint pair with raw addresses; "
    "port is the service port (ephemeral side folded); beyond the series cap: 'other'.",
    labels=("local_address", "remote_address", "port"),
    exposed_by=AGENT_ONLY,
)
DROP_FLOWS = _metric(
    "counter",
    "netmesh_drop_flows_total",
    "IP packets this node's kernel dropped, by drop reason, raw remote address (the source of "
    "a received packet, the destination of a sent one) and IP protocol; beyond the series "
    "cap: 'other'.",
    labels=("reason", "remote_address", "protocol"),
    exposed_by=AGENT_ONLY,
)

# --------------------------------------------------------------------------- collector: agents

AGENT_UP = _metric(
    "gauge",
    "netmesh_agent_up",
    "1 if the agent reported within the stale time, 0 if it is late or a member that never "
    "reported; gone after the report TTL.",
    labels=NODE,
)
REPORT_AGE = _metric(
    "gauge",
    "netmesh_agent_report_age_seconds",
    "Seconds since the agent's latest report.",
    unit="seconds",
    labels=NODE,
)
POD_ENDPOINT_UP = _metric(
    "gauge",
    "netmesh_pod_endpoint_up",
    "1 if the node's pod-network endpoint reported within the stale time, 0 if it is late or "
    "a pod-network member that never reported; gone after the report TTL (its health is on "
    "its own /metrics).",
    labels=NODE,
)
POD_ENDPOINT_AGE = _metric(
    "gauge",
    "netmesh_pod_endpoint_report_age_seconds",
    "Seconds since the node's pod-network endpoint's latest report.",
    unit="seconds",
    labels=NODE,
)
SERIES_DROPPED = _metric(
    "gauge",
    "netmesh_agent_series_dropped",
    "Series of the agent's latest report left out by the per-agent caps "
    "(kind=path: dropped; kind=pod_path: the pod-network endpoint's, dropped; "
    "kind=retransmit or drop: folded into the 'other' bucket).",
    labels=(*NODE, "kind"),
)
RETRANSMITS = _metric(
    "counter",
    "netmesh_tcp_retransmits_total",
    "TCP retransmissions the node's kernel counted, by endpoint pair (ephemeral ports folded); "
    "pods by namespace/name, hostNetwork and node IPs by node name, unknown IPs raw.",
    labels=(*NODE, "src_namespace", "src_pod", "dst_namespace", "dst_pod", "port"),
)
DROPS_BY_REMOTE = _metric(
    "counter",
    "netmesh_drops_by_remote_total",
    "IP packets the node's kernel dropped, by drop reason, remote end (pods by namespace/name, "
    "hostNetwork and node IPs by node name, unknown IPs raw) and IP protocol; capped per node "
    "(max_drop_series_per_agent), the rest in 'other'.",
    labels=(*NODE, "reason", "remote_namespace", "remote_pod", "protocol"),
)

# --------------------------------------------------------------------------- collector itself

COLLECTOR_REPORTS = _metric(
    "counter",
    "netmesh_collector_reports_total",
    "Reports received, by result (accepted or the reason for rejecting it: unauthenticated, "
    "forbidden, rate_limited, auth_unavailable, invalid, ...).",
    labels=("result",),
)
AUTH_MODE = _metric(
    "gauge",
    "netmesh_collector_auth_mode",
    "1 for how reports are authenticated: mode = tokenreview, token or none (none: anyone "
    "who reaches the collector can report as any node).",
    labels=("mode",),
)
TOKEN_REVIEWS = _metric(
    "counter",
    "netmesh_collector_token_reviews_total",
    "TokenReview calls to the API server (one per token not in the cache), by result "
    "(authenticated, unauthenticated, error).",
    labels=("result",),
)
COLLECTOR_SWEEPS = _metric(
    "counter",
    "netmesh_collector_sweeps_total",
    "On-demand bandwidth sweeps (POST /api/v1/sweeps), by result: requested, done (every test "
    "has a result), expired (results missing after the planned end), refused (a 4xx answer).",
    labels=("result",),
)
COLLECTOR_SWEEPS_ACTIVE = _metric(
    "gauge",
    "netmesh_collector_sweeps_active",
    "On-demand bandwidth sweeps pending or running.",
)
COLLECTOR_AGENTS = _metric(
    "gauge", "netmesh_collector_agents", "Agents whose latest report is kept."
)
COLLECTOR_MEMBERS = _metric(
    "gauge", "netmesh_collector_members", "Nodes in the member list handed to agents."
)
COLLECTOR_EPOCH = _metric(
    "gauge", "netmesh_collector_member_epoch", "Epoch of the current member list."
)
COLLECTOR_EXPIRED = _metric(
    "counter",
    "netmesh_collector_expired_agents_total",
    "Agents dropped because their latest report was older than the TTL.",
)
WATCH_UP = _metric(
    "gauge",
    "netmesh_collector_watch_up",
    "1 while the list-then-watch of a resource is streaming, 0 while it backs off.",
    labels=("resource",),
)
WATCH_RESTARTS = _metric(
    "counter",
    "netmesh_collector_watch_restarts_total",
    "Watches started again, by resource and reason (closed, gone = 410 re-list, error).",
    labels=("resource", "reason"),
)
POD_MAP_PODS = _metric("gauge", "netmesh_collector_pod_map_pods", "Pods in the pod map.")
POD_MAP_NODES = _metric("gauge", "netmesh_collector_pod_map_nodes", "Nodes in the pod map.")
POD_MAP_IPS = _metric(
    "gauge", "netmesh_collector_pod_map_ips", "IP addresses the pod map resolves."
)
BLOCK_RENDERS = _metric(
    "counter",
    "netmesh_collector_block_renders_total",
    "Agent exposition fragments rendered, by part (path on each report, retransmit also "
    "when a named pod changes).",
    labels=("part",),
)
RENDER_SECONDS = _metric(
    "gauge",
    "netmesh_collector_render_seconds",
    "Time the previous /metrics render took on the event loop.",
    unit="seconds",
)
COLLECTOR_TASK_FAILURES = _metric(
    "counter",
    "netmesh_collector_task_failures_total",
    "Background task crashes in the collector (each restarted), by task.",
    labels=("task",),
)
GC_FULL = _metric(
    "counter",
    "netmesh_collector_gc_full_collections_total",
    "Full garbage collections the collector ran on its timer (gc_full_interval).",
)
GC_FULL_SECONDS = _metric(
    "counter",
    "netmesh_collector_gc_full_seconds_total",
    "Time spent in timed full garbage collections (the event loop waits meanwhile).",
    unit="seconds",
)
GC_FULL_LAST = _metric(
    "gauge",
    "netmesh_collector_gc_full_last_seconds",
    "Duration of the latest timed full garbage collection.",
    unit="seconds",
)
COLLECTOR_START_TIME = _metric(
    "gauge",
    "netmesh_collector_start_time_seconds",
    "Unix time the collector started.",
    unit="seconds",
)

# --------------------------------------------------------------------------- root cause

RCA_SUSPECT_SCORE = _metric(
    "gauge",
    "netmesh_rca_suspect_score",
    "Root-cause analysis: how strongly the node is associated with the failing paths (0-1; "
    "confidence of {FAIL} -> {node} times its best {node} -> {FAIL} rule, 0 unless lift > 1).",
    labels=NODE,
)
RCA_DNS_FINDING = _metric(
    "gauge",
    "netmesh_rca_dns_finding",
    "1 for each DNS finding of the RCA: kind failing, wrong-answer or slow; node empty when "
    "the finding is cluster-wide.",
    labels=("node", "kind"),
)
RCA_SERVICE_FINDING = _metric(
    "gauge",
    "netmesh_rca_service_finding",
    "1 for each Service finding of the RCA (the node's TCP connects to the checked Service "
    "fail): kind failing, slow or unresolved (its name never resolved: no connect tried); "
    "node empty when the finding is cluster-wide.",
    labels=("node", "kind"),
)
RCA_LAYER_FINDING = _metric(
    "gauge",
    "netmesh_rca_layer_finding",
    "1 for each layer finding: a node's pod network failing while its host paths are fine "
    "(layer overlay; kind overlay-mtu or pod-network); node empty when cluster-wide.",
    labels=("node", "layer", "kind"),
)
RCA_SUSPECT = _metric(
    "gauge",
    "netmesh_rca_suspect",
    "1 if the latest root-cause analysis names the node as a suspect, else 0.",
    labels=NODE,
)
RCA_PATH_FAILING = _metric(
    "gauge",
    "netmesh_rca_path_failing",
    "1 for each path whose latest test the root-cause analysis judged FAIL (the one "
    "definition of a bad path, which the alert rules use); no series while the path passes.",
    labels=PATH_LABELS,
)
RCA_FAILING_PATHS = _metric(
    "gauge",
    "netmesh_rca_failing_paths",
    "Path tests (latest per path and protocol) the root-cause analysis judged FAIL.",
)
RCA_PATHS = _metric(
    "gauge",
    "netmesh_rca_paths",
    "Path tests (latest per path and protocol) the root-cause analysis judged.",
)
RCA_CLUSTER_WIDE = _metric(
    "gauge",
    "netmesh_rca_cluster_wide",
    "1 if the latest root-cause analysis says cluster-wide (most paths fail, no node explains it).",
)
RCA_FINDING = _metric(
    "gauge",
    "netmesh_rca_finding",
    "1 for each thing the latest root-cause analysis names: kind node, link, rack, rack-path, "
    "zone, zone-path, pod or pod-network; subject e.g. node-3, node-2|node-5, rack-1|rack-2, "
    "shop/web-1 (a pod); direction inbound, outbound or both; layer underlay (host paths), "
    "pod (one pod) or overlay (a node's pods); the pod-network endpoints' overlay findings are "
    "netmesh_rca_layer_finding, DNS's netmesh_rca_dns_finding.",
    labels=("kind", "subject", "direction", "layer"),
)
RCA_FINDING_PATHS = _metric(
    "gauge",
    "netmesh_rca_finding_paths",
    "Failing path tests a finding explains, by the criterion they fail (a path failing two "
    "criteria counts under both): test-failed, loss, retransmits, bandwidth-history, "
    "bandwidth-peers, bandwidth-capacity, rtt, ebpf-retransmits, light-loss, light-rtt, ...",
    labels=("kind", "subject", "criterion"),
)
NODE_INFO = _metric(
    "gauge",
    "netmesh_node_info",
    "1 per node the root-cause analysis knows, with its topology: zone and rack (from the "
    "agent's labels setting, or in Kubernetes the Node's zone_label/rack_label; empty = none).",
    labels=("node", "zone", "rack"),
)
NODE_LINK_SPEED = _metric(
    "gauge",
    "netmesh_node_link_speed_bytes",
    "Link speed of the node's advertise interface in bytes per second (agent setting "
    "link_speed, or sysfs), as node_exporter's node_network_speed_bytes; no series if unknown.",
    unit="bytes",
    labels=NODE,
)
RCA_SECONDS = _metric(
    "gauge",
    "netmesh_rca_duration_seconds",
    "Time the latest root-cause analysis took.",
    unit="seconds",
)

# --------------------------------------------------------------------------- the whole catalogue


def _families_in(value: object) -> list[MetricFamily]:
    """A family, or the families in a tuple of families or of (family, extractor) pairs."""
    if isinstance(value, MetricFamily):
        return [value]
    if isinstance(value, tuple):
        return [f for item in value for f in _families_in(item)]
    return []


def collect(namespace: Mapping[str, object]) -> tuple[MetricFamily, ...]:
    """Every family in ``namespace``, once; two different families under one name are refused."""
    seen: dict[str, MetricFamily] = {}
    for value in list(namespace.values()):
        for fam in _families_in(value):
            if seen.setdefault(fam.name, fam) is not fam:
                raise ValueError(f"two metric families are named {fam.name}")
    return tuple(seen.values())


FAMILIES: tuple[MetricFamily, ...] = collect(globals())


def by_name() -> dict[str, MetricFamily]:
    return {f.name: f for f in FAMILIES}


def exposed_by(endpoint: Endpoint) -> tuple[MetricFamily, ...]:
    return tuple(f for f in FAMILIES if endpoint in f.exposed_by)
