"""The merged /metrics: cached agent fragments + per-scrape agent families + self-metrics.

Reads the state, never mutates it except to re-render retransmission
fragments whose pod identities changed (``refresh_identities``).
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, generate_latest

from collector import exposition as ex
from collector.live import LiveRca
from collector.state import CollectorState
from collector.verdict import VERDICT_CLUSTER_WIDE
from netmesh.wire import MemberList


@dataclass(frozen=True)
class WatchStatus:
    resource: str
    up: bool
    synced: bool


def _f(name: str, kind: str, help_text: str) -> ex.Family:
    return ex.Family(name, kind, help_text)


REPORTS = _f(
    "netmesh_collector_reports_total",
    "counter",
    "Reports received, by result (accepted or the reason for rejecting it).",
)
AGENTS = _f("netmesh_collector_agents", "gauge", "Agents whose latest report is kept.")
MEMBERS = _f("netmesh_collector_members", "gauge", "Nodes in the member list handed to agents.")
EPOCH = _f("netmesh_collector_member_epoch", "gauge", "Epoch of the current member list.")
EXPIRED = _f(
    "netmesh_collector_expired_agents_total",
    "counter",
    "Agents dropped because their latest report was older than the TTL.",
)
WATCH_UP = _f(
    "netmesh_collector_watch_up",
    "gauge",
    "1 while the list-then-watch of a resource is streaming, 0 while it backs off.",
)
WATCH_RESTARTS = _f(
    "netmesh_collector_watch_restarts_total",
    "counter",
    "Watches started again, by resource and reason (closed, gone = 410 re-list, error).",
)
POD_MAP_PODS = _f("netmesh_collector_pod_map_pods", "gauge", "Pods in the pod map.")
POD_MAP_NODES = _f("netmesh_collector_pod_map_nodes", "gauge", "Nodes in the pod map.")
POD_MAP_IPS = _f("netmesh_collector_pod_map_ips", "gauge", "IP addresses the pod map resolves.")
BLOCK_RENDERS = _f(
    "netmesh_collector_block_renders_total",
    "counter",
    "Agent exposition fragments rendered, by part (path on each report, retransmit also "
    "when a named pod changes).",
)
RENDER_SECONDS = _f(
    "netmesh_collector_render_seconds",
    "gauge",
    "Time the previous /metrics render took on the event loop.",
)
TASK_FAILURES = _f(
    "netmesh_collector_task_failures_total",
    "counter",
    "Background task crashes (each restarted), by task.",
)
GC_FULL = _f(
    "netmesh_collector_gc_full_collections_total",
    "counter",
    "Full garbage collections the collector ran on its timer (gc_full_interval).",
)
GC_FULL_SECONDS = _f(
    "netmesh_collector_gc_full_seconds_total",
    "counter",
    "Time spent in timed full garbage collections (the event loop waits meanwhile).",
)
GC_FULL_LAST = _f(
    "netmesh_collector_gc_full_last_seconds",
    "gauge",
    "Duration of the latest timed full garbage collection.",
)
START_TIME = _f("netmesh_collector_start_time_seconds", "gauge", "Unix time the collector started.")
RCA_SUSPECT_SCORE = _f(
    "netmesh_rca_suspect_score",
    "gauge",
    "Root-cause analysis: how strongly the node is associated with the failing paths (0-1; "
    "confidence of {FAIL} -> {node} times its best {node} -> {FAIL} rule, 0 unless lift > 1).",
)
RCA_SUSPECT = _f(
    "netmesh_rca_suspect",
    "gauge",
    "1 if the latest root-cause analysis names the node as a suspect, else 0.",
)
RCA_FAILING_PATHS = _f(
    "netmesh_rca_failing_paths",
    "gauge",
    "Path tests (latest per path and protocol) the root-cause analysis judged FAIL.",
)
RCA_PATHS = _f(
    "netmesh_rca_paths",
    "gauge",
    "Path tests (latest per path and protocol) the root-cause analysis judged.",
)
RCA_CLUSTER_WIDE = _f(
    "netmesh_rca_cluster_wide",
    "gauge",
    "1 if the latest root-cause analysis says cluster-wide (most paths fail, no node explains it).",
)
RCA_SECONDS = _f(
    "netmesh_rca_duration_seconds", "gauge", "Time the latest root-cause analysis took."
)


def render_metrics(
    state: CollectorState,
    members: MemberList,
    watches: Sequence[WatchStatus] = (),
    *,
    process: CollectorRegistry | None = None,
    rca: LiveRca | None = None,
) -> bytes:
    """The whole /metrics body (tests and benchmarks; the handler streams the parts)."""
    return b"".join(metric_parts(state, members, watches, process=process, rca=rca))


def metric_parts(
    state: CollectorState,
    members: MemberList,
    watches: Sequence[WatchStatus] = (),
    *,
    process: CollectorRegistry | None = None,
    rca: LiveRca | None = None,
) -> list[bytes]:
    """/metrics as a list of byte strings, mostly cached fragments (nothing is copied)."""
    return [
        part
        for group in metric_groups(state, members, watches, process=process, rca=rca)
        for part in group
    ]


def metric_groups(
    state: CollectorState,
    members: MemberList,
    watches: Sequence[WatchStatus] = (),
    *,
    process: CollectorRegistry | None = None,
    rca: LiveRca | None = None,
) -> Iterator[list[bytes]]:
    """/metrics in groups of parts, about a family each, so a server can yield in between.

    The agents are taken once, at the start: a report that arrives meanwhile
    shows in the next scrape. At 5,000 agents each group takes a few ms.
    """
    spent = 0.0
    started = time.perf_counter()
    state.refresh_identities()
    now = state.clock()
    names = state.sorted_names()
    entries = [state.agents[n] for n in names]

    out: list[bytes] = []
    # Per-scrape agent families: up (also 0 for members that never reported) and age,
    # with each agent's label text built once (5,000 agents: ~10 ms a scrape).
    up: list[str] = []
    for name in sorted({m.name for m in members.members}.union(names)):
        entry = state.agents.get(name)
        if entry is None:
            up.append(f"{ex.AGENT_UP.name}{ex.labels(('node',), (name,))} 0\n")
        else:
            up.append(f"{ex.AGENT_UP.name}{entry.label} {int(state.is_fresh(entry, now))}\n")
    age = ex.REPORT_AGE.name
    ages = [f"{age}{e.label} {ex.number(state.age(e, now))}\n" for e in entries]
    for family, lines in ((ex.AGENT_UP, up), (ex.REPORT_AGE, ages)):
        if lines:
            out.append(family.header() + "".join(lines).encode())
    dropped: list[tuple[tuple[str, ...], float]] = []
    for n, e in zip(names, entries, strict=True):
        if e.block.dropped:
            dropped.append(((n, "path"), float(e.block.dropped)))
        if e.retransmits.folded:
            dropped.append(((n, "retransmit"), float(e.retransmits.folded)))
    out.append(ex.render_family(ex.SERIES_DROPPED, ("node", "kind"), dropped))
    spent += time.perf_counter() - started
    yield out

    # Cached fragments, a family at a time.
    for i, family in enumerate(ex.AGENT_FAMILIES):
        started = time.perf_counter()
        group = ex.merge((family,), [[e.block.fragments[i] for e in entries]])
        spent += time.perf_counter() - started
        yield group
    started = time.perf_counter()
    out = ex.merge((ex.RETRANSMITS,), [[e.retransmits.fragment for e in entries]])

    # Self-metrics.
    s = state.stats
    out.append(
        ex.render_family(REPORTS, ("result",), (((r,), n) for r, n in sorted(s.reports.items())))
    )
    out.append(
        ex.render_simple(
            {
                AGENTS: len(entries),
                MEMBERS: len(members.members),
                EPOCH: members.epoch,
                EXPIRED: s.expired,
                POD_MAP_PODS: len(state.pod_map.pods),
                POD_MAP_NODES: len(state.pod_map.nodes),
                POD_MAP_IPS: state.pod_map.ip_count,
                RENDER_SECONDS: s.render_seconds,
                GC_FULL: s.gc.runs,
                GC_FULL_SECONDS: s.gc.total_seconds,
                GC_FULL_LAST: s.gc.last_seconds,
                START_TIME: state.started_at,
            }
        )
    )
    out.append(ex.render_family(WATCH_UP, ("resource",), (((w.resource,), w.up) for w in watches)))
    out.append(
        ex.render_family(
            WATCH_RESTARTS,
            ("resource", "reason"),
            (((res, why), n) for (res, why), n in sorted(s.watch_restarts.items())),
        )
    )
    out.append(
        ex.render_family(
            BLOCK_RENDERS, ("part",), (((p,), n) for p, n in sorted(s.block_renders.items()))
        )
    )
    out.append(
        ex.render_family(
            TASK_FAILURES, ("task",), (((t,), n) for t, n in sorted(s.task_failures.items()))
        )
    )
    analysis = rca.latest if rca is not None else None
    if rca is not None and analysis is not None:
        named = {x.node for x in analysis.suspects}
        out.append(
            ex.render_family(
                RCA_SUSPECT_SCORE,
                ("node",),
                (((n,), v) for n, v in sorted(analysis.scores.items())),
            )
        )
        out.append(
            ex.render_family(
                RCA_SUSPECT,
                ("node",),
                (((n,), float(n in named)) for n in sorted(analysis.scores)),
            )
        )
        out.append(
            ex.render_simple(
                {
                    RCA_PATHS: analysis.transactions,
                    RCA_FAILING_PATHS: len(analysis.failing),
                    RCA_CLUSTER_WIDE: float(analysis.verdict == VERDICT_CLUSTER_WIDE),
                    RCA_SECONDS: rca.seconds,
                }
            )
        )
    if process is not None:
        out.append(generate_latest(process))
    s.render_seconds = spent + time.perf_counter() - started
    yield out
