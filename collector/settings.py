"""The collector's settings: one frozen dataclass, validated at start-up.

Every field is a flag (``--report-ttl``) and an environment variable
(``NETMESH_REPORT_TTL``); see ``netmesh.config``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from collector.dnsjudge import DnsCriteria
from collector.judging import Criteria
from collector.podblame import PodCriteria
from collector.servicejudge import ServiceCriteria
from netmesh.addresses import is_ip
from netmesh.config import Problems, doc, project, valid_port

MODES = ("static", "kubernetes")
AUTH_MODES = ("auto", "tokenreview", "token", "none")
_LOG_LEVELS = ("debug", "info", "warning", "error")


@dataclass(frozen=True, kw_only=True)
class CollectorSettings:
    mode: str = field(
        default="static",
        metadata=doc(
            "static: members are the agents that reported within report_ttl; "
            "kubernetes: members and pod names come from the API server."
        ),
    )
    bind_address: str = field(default="0.0.0.0", metadata=doc("IP address the HTTP server binds."))
    port: int = field(default=9100, metadata=doc("Port of /metrics, /api/v1/*, /healthz, /readyz."))
    report_ttl: float = field(
        default=60.0,
        metadata=doc(
            "Seconds after its latest report that an agent's series disappear "
            "(static mode: it also leaves the member list)."
        ),
    )
    stale_after: float = field(
        default=30.0,
        metadata=doc("Seconds without a report after which netmesh_agent_up turns 0."),
    )
    expiry_interval: float = field(
        default=1.0, metadata=doc("Seconds between sweeps that drop expired agents.")
    )
    max_report_bytes: int = field(
        default=8 * 1024 * 1024, metadata=doc("Largest report body accepted, in bytes.")
    )
    max_agents: int = field(
        default=5000, metadata=doc("Most agents kept at once; reports of further ones get 429.")
    )
    max_series_per_agent: int = field(
        default=30_000,
        metadata=doc("Cap on path series rendered per agent; the rest are dropped and counted."),
    )
    light_histogram: bool = field(
        default=True,
        metadata=doc(
            "Expose the light tier's RTT histogram per path (13 series per path, 2.2 million "
            "at 5,000 agents x 20 peers); off: its 9 gauges per path only."
        ),
    )
    max_retransmit_series_per_agent: int = field(
        default=500,
        metadata=doc(
            "Cap on retransmission series per agent; smaller flows fold into an 'other' bucket."
        ),
    )
    max_drop_series_per_agent: int = field(
        default=100,
        metadata=doc(
            "Cap on drop series (reason, remote end, protocol) per agent; smaller ones fold "
            "into an 'other' bucket."
        ),
    )
    # ---- who may report (collector/auth.py, collector/ratelimit.py)
    auth: str = field(
        default="auto",
        metadata=doc(
            "How reports are authenticated: auto (kubernetes mode: tokenreview; static mode: "
            "token if auth_token_file is set, else none), tokenreview, token or none "
            "(anyone who reaches the collector can report as any node)."
        ),
    )
    auth_token_file: str = field(
        default="",
        metadata=doc(
            "Token mode: file with the shared bearer token every agent presents "
            "(the agents' auth_token_file)."
        ),
    )
    auth_audience: str = field(
        default="netmesh-collector",
        metadata=doc(
            "Tokenreview mode: the audience agents' ServiceAccount tokens must be issued for "
            "(the projected volume's audience)."
        ),
    )
    auth_cache_ttl: float = field(
        default=300.0,
        metadata=doc(
            "Tokenreview mode: seconds a positive TokenReview answer is reused (never past the "
            "token's own expiry); 0 = review every report."
        ),
    )
    auth_cache_size: int = field(
        default=20_000,
        metadata=doc("Tokenreview mode: most reviewed tokens remembered (oldest forgotten first)."),
    )
    auth_review_timeout: float = field(
        default=5.0,
        metadata=doc(
            "Tokenreview mode: seconds one TokenReview call may take; then the report gets 503 "
            "and the agent retries."
        ),
    )
    auth_reject_rate: float = field(
        default=1.0,
        metadata=doc(
            "Rejected reports (401/403) per second one source IP may send on average; beyond "
            "that (and the burst) its unverified reports get 429."
        ),
    )
    auth_reject_burst: int = field(
        default=20, metadata=doc("Rejected reports one source IP may send at once before 429.")
    )
    auth_reject_sources: int = field(
        default=10_000,
        metadata=doc(
            "Source IPs the rejection rate limit remembers (least recently rejected forgotten "
            "first)."
        ),
    )
    pods_file: str = field(
        default="",
        metadata=doc(
            'static mode: a JSON file listing pods ({"pods": [{"namespace", "name", '
            '"node", "ips"}]}) so eBPF flows resolve to pods without Kubernetes; '
            "re-read when it changes (a broken version is logged and counted, the last good "
            "one stays). Empty = none."
        ),
    )
    rca_pod_retransmits_per_second: float = field(
        default=1.0,
        metadata=doc(
            "Pod blame (collector/podblame.py): a pod pair whose eBPF retransmission rate "
            "exceeds this FAILs; a pod whose pairs fail while its node's host paths and other "
            "pods are fine is named. 0 = off (pod flows then count for their nodes)."
        ),
    )
    # ---- kubernetes mode
    kubeconfig: str = field(
        default="",
        metadata=doc("Path of a kubeconfig; empty = in-cluster service account."),
    )
    agent_namespace: str = field(default="netmesh", metadata=doc("Namespace of the agent pods."))
    agent_selector: str = field(
        default="app.kubernetes.io/name=netmesh-agent",
        metadata=doc("Label selector of the agent pods."),
    )
    agent_iperf3_port: int = field(
        default=5201,
        metadata=doc(
            "iperf3 port of agents whose pod has no container port named 'iperf3' "
            "and that have not reported yet."
        ),
    )
    zone_label: str = field(
        default="topology.kubernetes.io/zone",
        metadata=doc("Node label whose value is the node's zone (RCA topology); empty = none."),
    )
    rack_label: str = field(
        default="topology.kubernetes.io/rack",
        metadata=doc(
            "Node label whose value is the node's rack or ToR switch (RCA topology; no "
            "well-known label exists: set your own, e.g. topology.example.com/rack); empty = none."
        ),
    )
    exclude_not_ready_nodes: bool = field(
        default=True, metadata=doc("Leave agents on NotReady nodes out of the member list.")
    )
    exclude_unschedulable_nodes: bool = field(
        default=True, metadata=doc("Leave agents on cordoned (unschedulable) nodes out.")
    )
    exclude_deleting_nodes: bool = field(
        default=True, metadata=doc("Leave agents on nodes being deleted out.")
    )
    watch_timeout: int = field(
        default=300,
        metadata=doc("Server-side timeout of one watch request in seconds (then re-watch)."),
    )
    api_timeout: float = field(
        default=30.0, metadata=doc("Timeout in seconds of list requests and watch connects.")
    )
    watch_backoff: float = field(
        default=1.0, metadata=doc("First back-off in seconds after a list/watch error.")
    )
    watch_max_backoff: float = field(
        default=30.0, metadata=doc("Longest back-off in seconds after repeated errors.")
    )
    log_level: str = field(default="info", metadata=doc("debug, info, warning or error."))
    gc_full_interval: float = field(
        default=300.0,
        metadata=doc(
            "Seconds between full garbage collections, run on this timer instead of whenever "
            "Python's heap grew (a full pass over a 5,000-agent state holds the event loop "
            "~0.2 s); 0 = Python's automatic collection."
        ),
    )
    # ---- on-demand bandwidth sweeps (collector/sweeps.py, netmesh/ondemand.py)
    sweep_max_pending: int = field(
        default=8,
        metadata=doc("On-demand sweeps pending or running at once; further requests get 429."),
    )
    sweep_lead: float = field(
        default=0.0,
        metadata=doc(
            "Seconds between a sweep's request and its start (every agent must hear of it "
            "first); 0 = twice the agents' longest report interval + 2 s."
        ),
    )
    sweep_grace: float = field(
        default=30.0,
        metadata=doc("Seconds after a sweep's planned end before it expires without results."),
    )
    sweep_history: int = field(
        default=50, metadata=doc("Finished on-demand sweeps kept for GET /api/v1/sweeps.")
    )
    # ---- root-cause analysis (collector/judging.py, mining.py, verdict.py, live.py)
    rca_interval: float = field(
        default=2.0,
        metadata=doc("Seconds between RCA runs (a run only when reports arrived); 0 = RCA off."),
    )
    rca_loss_ratio: float = field(
        default=0.05, metadata=doc("RCA: a UDP test with loss above this ratio FAILs.")
    )
    rca_retransmit_ratio: float = field(
        default=0.02,
        metadata=doc(
            "RCA: a TCP test whose iperf3 retransmissions exceed this share of its segments "
            "(bytes sent / MSS) FAILs."
        ),
    )
    rca_mss_bytes: int = field(
        default=1448, metadata=doc("RCA: segment size for the retransmission share.")
    )
    rca_bandwidth_fraction: float = field(
        default=0.5,
        metadata=doc(
            "RCA: a test below this fraction of its path's baseline bandwidth FAILs; 0 = off."
        ),
    )
    rca_baseline_samples: int = field(
        default=30,
        metadata=doc(
            "RCA: a path's baseline is a high percentile (rca_baseline_percentile) of the "
            "bandwidths of its latest this many successful tests; a test is not recorded while "
            "its path or one of its nodes is named or the test fails another criterion."
        ),
    )
    rca_baseline_percentile: float = field(
        default=0.9,
        metadata=doc("RCA: the percentile of a path's recorded bandwidths that is its baseline."),
    )
    rca_baseline_min_samples: int = field(
        default=3, metadata=doc("RCA: tests a path needs before its baseline counts.")
    )
    rca_peer_fraction: float = field(
        default=0.6,
        metadata=doc(
            "RCA: a test whose bandwidth is below this fraction of its peers' median (the paths "
            "of the same protocol and link speed), or whose source's or destination's median is "
            "below this fraction of the other nodes' medians, FAILs; 0 = off."
        ),
    )
    rca_peer_mad_factor: float = field(
        default=4.0,
        metadata=doc(
            "RCA: ... and only when that shortfall is also more than this many robust standard "
            "deviations (1.4826 x the median absolute deviation) of the peers' bandwidths."
        ),
    )
    rca_peer_min_paths: int = field(
        default=4, metadata=doc("RCA: comparable paths (or nodes) needed for a peer comparison.")
    )
    rca_capacity_fraction: float = field(
        default=0.25,
        metadata=doc(
            "RCA: a TCP test below this fraction of the link speed of the slower of its two "
            "nodes (agent setting link_speed) FAILs, even when every path is as slow; 0 = off."
        ),
    )
    rca_rtt_factor: float = field(
        default=3.0,
        metadata=doc(
            "RCA: a TCP test whose iperf3 RTT (mean, under load) is above this x the median of "
            "its peers' FAILs; 0 = off."
        ),
    )
    rca_rtt_min_increase: float = field(
        default=0.01,
        metadata=doc("RCA: ... and at least this many seconds above that median."),
    )
    rca_ebpf_retransmits_per_second: float = field(
        default=10.0,
        metadata=doc(
            "RCA: a TCP path FAILs while eBPF counts more retransmissions per second from its "
            "source to its destination; 0 = off."
        ),
    )
    rca_drops_per_second: float = field(
        default=1.0,
        metadata=doc(
            "RCA: a kernel drop reason counted at this rate per second or more on a node is "
            "evidence for that node (attached to it in the verdict); 0 = off."
        ),
    )
    rca_ebpf_window: float = field(
        default=30.0, metadata=doc("RCA: seconds over which the eBPF retransmission rate is taken.")
    )
    rca_min_failing_paths: int = field(
        default=2, metadata=doc("RCA: failing path tests a node needs to be named.")
    )
    rca_min_peers: int = field(
        default=2,
        metadata=doc("RCA: distinct peers a node's failing paths need (one = just that path)."),
    )
    rca_min_confidence: float = field(
        default=0.5,
        metadata=doc("RCA: confidence a node's {node} -> {FAIL} rule needs to name it."),
    )
    rca_min_lift: float = field(
        default=1.0, metadata=doc("RCA: that rule's lift must be above this to name the node.")
    )
    rca_max_suspects: int = field(
        default=3,
        metadata=doc("RCA: most findings (node, link, rack, rack path, zone, ...) named at once."),
    )
    rca_link_elsewhere_ratio: float = field(
        default=0.1,
        metadata=doc(
            "RCA: a link between two nodes is named only when at most this share of each "
            "end's other paths fail (both ends healthy elsewhere)."
        ),
    )
    rca_cluster_wide_ratio: float = field(
        default=0.5,
        metadata=doc(
            "RCA: above this share of failing paths that no suspect explains, the verdict is "
            "cluster-wide instead of naming nodes."
        ),
    )

    rca_light_alpha: float = field(
        default=0.001,
        metadata=doc(
            "RCA: significance of the binomial test that fails a direction whose light-tier "
            "loss is above the mesh's typical loss."
        ),
    )
    rca_light_loss_floor: float = field(
        default=0.001,
        metadata=doc("RCA: the typical light-tier loss is taken as at least this ratio."),
    )
    rca_light_min_lost: int = field(
        default=3, metadata=doc("RCA: light-tier packets a direction must lose to fail.")
    )
    rca_light_rtt_factor: float = field(
        default=3.0,
        metadata=doc("RCA: a light-tier RTT median above this x the mesh's typical one fails."),
    )
    rca_light_rtt_min_increase: float = field(
        default=0.001,
        metadata=doc("RCA: ... and at least this many seconds above it."),
    )
    rca_light_mtu_min_probes: int = field(
        default=2,
        metadata=doc("RCA: lost don't-fragment probes (none answered) that make an MTU blackhole."),
    )
    rca_dns_min_lookups: int = field(
        default=3, metadata=doc("RCA: DNS lookups a node's window needs before it is judged.")
    )
    rca_dns_failure_ratio: float = field(
        default=0.5,
        metadata=doc(
            "RCA: a node's DNS fails when at least this share of its window's lookups did."
        ),
    )
    rca_dns_slow_factor: float = field(
        default=5.0,
        metadata=doc("RCA: a node's DNS median above this x the other nodes' median is slow ..."),
    )
    rca_dns_slow_min_seconds: float = field(
        default=0.1, metadata=doc("RCA: ... and above this many seconds.")
    )
    rca_service_min_connects: int = field(
        default=3,
        metadata=doc("RCA: Service connects a node's window needs before it is judged."),
    )
    rca_service_failure_ratio: float = field(
        default=0.5,
        metadata=doc(
            "RCA: a node's Service check fails when at least this share of its window's "
            "connects did."
        ),
    )
    rca_service_slow_factor: float = field(
        default=5.0,
        metadata=doc(
            "RCA: a node's Service connect median above this x the other nodes' median is slow ..."
        ),
    )
    rca_service_slow_min_seconds: float = field(
        default=0.1, metadata=doc("RCA: ... and above this many seconds.")
    )

    def __post_init__(self) -> None:
        p = Problems()
        p.check(self.mode in MODES, f"mode {self.mode!r}: one of {', '.join(MODES)}")
        p.check(is_ip(self.bind_address), f"bind_address {self.bind_address!r}: not an IP address")
        p.check(valid_port(self.port), f"port {self.port}: must be between 1 and 65535")
        p.check(self.report_ttl >= 1, f"report_ttl {self.report_ttl}: must be >= 1 s")
        p.check(
            0 < self.stale_after <= self.report_ttl,
            f"stale_after {self.stale_after}: must be > 0 and <= report_ttl ({self.report_ttl})",
        )
        p.check(
            0 < self.expiry_interval <= self.report_ttl,
            f"expiry_interval {self.expiry_interval}: must be > 0 and <= report_ttl",
        )
        p.check(
            1024 <= self.max_report_bytes <= 256 * 1024 * 1024,
            f"max_report_bytes {self.max_report_bytes}: must be 1 KiB..256 MiB",
        )
        p.check(self.max_agents >= 1, "max_agents: must be >= 1")
        p.check(
            self.gc_full_interval == 0 or self.gc_full_interval >= 1,
            f"gc_full_interval {self.gc_full_interval}: 0 (off) or >= 1 s",
        )
        p.check(self.max_series_per_agent >= 1, "max_series_per_agent: must be >= 1")
        p.check(
            self.max_retransmit_series_per_agent >= 1,
            "max_retransmit_series_per_agent: must be >= 1 (the 'other' bucket)",
        )
        p.check(
            self.max_drop_series_per_agent >= 1,
            "max_drop_series_per_agent: must be >= 1 (the 'other' bucket)",
        )
        if self.mode == "kubernetes":
            p.check(bool(self.agent_namespace), "agent_namespace: required in kubernetes mode")
            p.check(bool(self.agent_selector), "agent_selector: required in kubernetes mode")
        p.check(
            valid_port(self.agent_iperf3_port),
            f"agent_iperf3_port {self.agent_iperf3_port}: must be between 1 and 65535",
        )
        self._check_auth(p)
        p.check(self.watch_timeout >= 1, "watch_timeout: must be >= 1 s")
        p.check(self.api_timeout > 0, "api_timeout: must be > 0")
        p.check(
            0 < self.watch_backoff <= self.watch_max_backoff,
            "watch_backoff: must be > 0 and <= watch_max_backoff",
        )
        p.check(self.log_level in _LOG_LEVELS, f"log_level: one of {', '.join(_LOG_LEVELS)}")
        p.check(
            not self.pods_file or self.mode == "static",
            "pods_file: static mode only (kubernetes mode lists pods from the API server)",
        )
        p.check(
            self.rca_pod_retransmits_per_second >= 0, "rca_pod_retransmits_per_second: must be >= 0"
        )
        p.check(self.rca_interval >= 0, "rca_interval: must be >= 0 (0 = RCA off)")
        p.check(1 <= self.sweep_max_pending <= 64, "sweep_max_pending: must be 1..64")
        p.check(0 <= self.sweep_lead <= 3600, "sweep_lead: must be 0..3600 s")
        p.check(0 < self.sweep_grace <= 86400, "sweep_grace: must be > 0 and <= 86400 s")
        p.check(0 <= self.sweep_history <= 10_000, "sweep_history: must be 0..10000")
        for name in ("rca_loss_ratio", "rca_retransmit_ratio", "rca_bandwidth_fraction"):
            value = getattr(self, name)
            p.check(0 <= value <= 1, f"{name} {value}: must be between 0 and 1")
        p.check(
            0 < self.rca_min_confidence <= 1,
            f"rca_min_confidence {self.rca_min_confidence}: must be > 0 and <= 1",
        )
        p.check(
            0 < self.rca_cluster_wide_ratio < 1,
            f"rca_cluster_wide_ratio {self.rca_cluster_wide_ratio}: must be between 0 and 1",
        )
        p.check(self.rca_mss_bytes >= 64, "rca_mss_bytes: must be >= 64")
        p.check(
            1 <= self.rca_baseline_min_samples <= self.rca_baseline_samples,
            "rca_baseline_min_samples: must be >= 1 and <= rca_baseline_samples",
        )
        p.check(self.rca_ebpf_retransmits_per_second >= 0, "rca_ebpf_retransmits_per_second: >= 0")
        p.check(self.rca_drops_per_second >= 0, "rca_drops_per_second: >= 0")
        p.check(self.rca_ebpf_window > 0, "rca_ebpf_window: must be > 0")
        p.check(self.rca_min_failing_paths >= 1, "rca_min_failing_paths: must be >= 1")
        p.check(self.rca_min_peers >= 1, "rca_min_peers: must be >= 1")
        p.check(self.rca_min_lift >= 0, "rca_min_lift: must be >= 0")
        p.check(self.rca_max_suspects >= 1, "rca_max_suspects: must be >= 1")
        p.check(0 < self.rca_light_alpha < 1, "rca_light_alpha: must be between 0 and 1")
        p.check(0 < self.rca_light_loss_floor < 1, "rca_light_loss_floor: must be in (0, 1)")
        p.check(self.rca_light_min_lost >= 1, "rca_light_min_lost: must be >= 1")
        p.check(self.rca_light_rtt_factor > 1, "rca_light_rtt_factor: must be > 1")
        p.check(self.rca_light_rtt_min_increase >= 0, "rca_light_rtt_min_increase: must be >= 0")
        p.check(0 < self.rca_baseline_percentile <= 1, "rca_baseline_percentile: in (0, 1]")
        p.check(0 <= self.rca_peer_fraction < 1, "rca_peer_fraction: must be in [0, 1)")
        p.check(self.rca_peer_mad_factor >= 0, "rca_peer_mad_factor: must be >= 0")
        p.check(self.rca_peer_min_paths >= 2, "rca_peer_min_paths: must be >= 2")
        p.check(0 <= self.rca_link_elsewhere_ratio < 1, "rca_link_elsewhere_ratio: in [0, 1)")
        p.check(0 <= self.rca_capacity_fraction < 1, "rca_capacity_fraction: must be in [0, 1)")
        p.check(
            self.rca_rtt_factor == 0 or self.rca_rtt_factor > 1,
            "rca_rtt_factor: must be 0 (off) or > 1",
        )
        p.check(self.rca_rtt_min_increase >= 0, "rca_rtt_min_increase: must be >= 0")
        p.check(self.rca_light_mtu_min_probes >= 1, "rca_light_mtu_min_probes: must be >= 1")
        p.check(self.rca_dns_min_lookups >= 1, "rca_dns_min_lookups: must be >= 1")
        p.check(0 < self.rca_dns_failure_ratio <= 1, "rca_dns_failure_ratio: must be > 0 and <= 1")
        p.check(self.rca_dns_slow_factor > 1, "rca_dns_slow_factor: must be > 1")
        p.check(self.rca_dns_slow_min_seconds >= 0, "rca_dns_slow_min_seconds: must be >= 0")
        p.check(self.rca_service_min_connects >= 1, "rca_service_min_connects: must be >= 1")
        p.check(
            0 < self.rca_service_failure_ratio <= 1,
            "rca_service_failure_ratio: must be > 0 and <= 1",
        )
        p.check(self.rca_service_slow_factor > 1, "rca_service_slow_factor: must be > 1")
        p.check(
            self.rca_service_slow_min_seconds >= 0, "rca_service_slow_min_seconds: must be >= 0"
        )
        p.raise_if_any("collector")

    def _check_auth(self, p: Problems) -> None:
        p.check(self.auth in AUTH_MODES, f"auth {self.auth!r}: one of {', '.join(AUTH_MODES)}")
        mode = self.auth_mode
        if mode == "tokenreview":
            p.check(self.mode == "kubernetes", "auth tokenreview: needs mode kubernetes")
            p.check(bool(self.auth_audience), "auth_audience: required in tokenreview mode")
        if mode == "token":
            p.check(bool(self.auth_token_file), "auth token: needs auth_token_file")
        elif self.auth_token_file:
            p.check(False, f"auth_token_file: set, but auth is {mode} (token mode reads it)")
        p.check(self.auth_cache_ttl >= 0, "auth_cache_ttl: must be >= 0 (0 = no cache)")
        p.check(self.auth_cache_size >= 1, "auth_cache_size: must be >= 1")
        p.check(self.auth_review_timeout > 0, "auth_review_timeout: must be > 0")
        p.check(self.auth_reject_rate > 0, "auth_reject_rate: must be > 0")
        p.check(self.auth_reject_burst >= 1, "auth_reject_burst: must be >= 1")
        p.check(self.auth_reject_sources >= 1, "auth_reject_sources: must be >= 1")

    @property
    def auth_mode(self) -> str:
        """The authentication in force: ``auth`` with ``auto`` resolved."""
        if self.auth != "auto":
            return self.auth
        if self.mode == "kubernetes":
            return "tokenreview"
        return "token" if self.auth_token_file else "none"


def rca_criteria(settings: CollectorSettings) -> Criteria:
    """The RCA criteria from the settings (the RCA modules know nothing of flags)."""
    return project(settings, Criteria, prefix="rca_", defaults=("max_len",))


def pod_criteria(settings: CollectorSettings) -> PodCriteria:
    """Pod blame's criteria: its own rate threshold, the node RCA's rule thresholds."""
    return PodCriteria(
        retransmits_per_second=settings.rca_pod_retransmits_per_second,
        min_failing=settings.rca_min_failing_paths,
        min_confidence=settings.rca_min_confidence,
        min_lift=settings.rca_min_lift,
    )


def dns_criteria(settings: CollectorSettings) -> DnsCriteria:
    """The DNS judge's criteria from the settings."""
    return project(
        settings, DnsCriteria, prefix="rca_dns_", rename={"min_attempts": "rca_dns_min_lookups"}
    )


def service_criteria(settings: CollectorSettings) -> ServiceCriteria:
    """The Service judge's criteria from the settings."""
    return project(
        settings,
        ServiceCriteria,
        prefix="rca_service_",
        rename={"min_attempts": "rca_service_min_connects"},
    )
