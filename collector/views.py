"""The JSON API's bodies, shaped from the collector's state: state in, dict out, no HTTP.

- ``nodes``: /api/v1/nodes — members and reporting agents, last report, probe, health;
- ``matrix``: /api/v1/matrix — the latest result per path and protocol;
- ``light``: /api/v1/light — the latest light-tier window per ordered pair;
- ``rca``: /api/v1/rca — the latest root-cause analysis, or why there is none.
"""

from __future__ import annotations

from typing import Any

from collector.layers import LayerJudge
from collector.live import LiveRca
from collector.podrca import PodRca
from collector.state import AgentEntry, CollectorState
from netmesh.catalogue import LIGHT_GAUGES, mtu_loss
from netmesh.checkwindow import WindowedStatus
from netmesh.wire import Member, MemberList

RCA_JSON_LIMIT = 200  # rules and paths listed by /api/v1/rca (the totals are given)


def nodes(state: CollectorState, members: MemberList, now: float) -> dict[str, Any]:
    """Every member and every reporting agent, by name (an agent can be either or both)."""
    by_name = {m.name: m for m in members.members}
    out = [
        _node(state, name, by_name.get(name), state.agents.get(name), now)
        for name in sorted(by_name.keys() | state.agents.keys())
    ]
    return {"network": state.network, "epoch": members.epoch, "nodes": out}


def _node(
    state: CollectorState,
    name: str,
    member: Member | None,
    entry: AgentEntry | None,
    now: float,
) -> dict[str, Any]:
    report = entry.report if entry is not None else None
    item: dict[str, Any] = {
        "name": name,
        "member": member is not None,
        "address": member.address if member else report.address if report else None,
        "iperf3_port": member.iperf3_port if member else report.iperf3_port if report else None,
        "up": bool(entry is not None and state.is_fresh(entry, now)),
    }
    if entry is None or report is None:  # (report is None exactly when entry is)
        item.update(
            last_report_at=None,
            report_age_seconds=None,
            probe=None,
            health=None,
            drops=None,
            dns=None,
            service=None,
        )
        return item
    health = report.agent
    probe = report.probe
    item.update(
        last_report_at=entry.received_at,
        report_age_seconds=state.age(entry, now),
        generated_at=report.generated_at,
        agent_started_at=report.started_at,
        http_port=report.http_port,
        probe=None
        if probe is None
        else {"mode": probe.mode, "up": probe.up, "reason": probe.reason},
        health={
            "iperf3_server_up": health.iperf3_server_up,
            "iperf3_server_restarts": health.iperf3_server_restarts,
            "scheduler_lag_seconds": health.scheduler_lag_seconds,
            "skipped_tests": health.skipped_tests,
            "members": health.members,
            "epoch": health.epoch,
        },
        paths=len(report.results),
        failing_paths=sum(1 for res in report.results if not res.ok),
        series_dropped=entry.block.dropped,
        retransmit_flows_folded=entry.retransmits.folded,
        drops=None
        if report.drops is None
        else {
            "mode": report.drops.mode,
            "up": report.drops.up,
            "reason": report.drops.reason,
            "reasons": {r.reason: r.count for r in report.drops.reasons},
            "unspecified": report.drops.unspecified,
        },
        dns=None if report.dns is None else _check(report.dns, report.dns.name),
        service=None if report.service is None else _check(report.service, report.service.target),
    )
    return item


def _check(status: WindowedStatus, subject: str) -> dict[str, Any]:
    """A DNS or Service check's window, as the page's agents table shows it."""
    return {
        "subject": subject,
        "up": status.up,
        "attempts": status.window_total,
        "failures": status.window_failures,
        "failure_ratio": status.failure_ratio,
        "dominant_failure": status.dominant_failure(),
        "median_seconds": status.latency_median_seconds,
    }


def matrix(state: CollectorState, members: MemberList) -> dict[str, Any]:
    """The latest result of every path and protocol (``light``: the light tier's latest
    window), and every node's name."""
    names = sorted({m.name for m in members.members} | state.agents.keys())
    paths = [
        {
            "source": r.source,
            "destination": r.destination,
            "protocol": r.protocol,
            "result": r.result,
            "success": r.ok,
            "message": r.message,
            "started_at": r.started_at,
            "bandwidth_bits_per_second": r.received_bits_per_second,
            "rtt_seconds": r.rtt_mean_seconds,
            "retransmits": r.retransmits,
            "jitter_seconds": r.jitter_seconds,
            "loss_ratio": r.loss_ratio,
        }
        for r in state.latest_results()
    ]
    for name in state.sorted_names():
        report = state.agents[name].report
        for lp in () if report.light is None else report.light.paths:
            paths.append(
                {
                    "source": name,
                    "destination": lp.destination,
                    "protocol": "light",
                    "result": "ok" if lp.received else "no-echo",
                    "success": lp.received > 0,
                    "message": "" if lp.received else f"none of {lp.sent} probes answered",
                    "started_at": report.generated_at,
                    "bandwidth_bits_per_second": None,
                    "rtt_seconds": lp.rtt_median_seconds,
                    "rtt_p99_seconds": lp.rtt_p99_seconds,
                    "retransmits": None,
                    "jitter_seconds": lp.jitter_seconds,
                    "loss_ratio": lp.loss_ratio,
                    "forward_loss_ratio": lp.forward_loss_ratio,
                    "return_loss_ratio": lp.return_loss_ratio,
                    "mtu_loss_ratio": mtu_loss(lp),
                    "probes": lp.sent,
                }
            )
    return {"network": state.network, "nodes": names, "paths": paths}


def light(state: CollectorState, members: MemberList, now: float) -> dict[str, Any]:
    """Every agent's latest light-tier window per peer, with the collector's clock (``now``).

    ``values`` are keyed by the /metrics family names (netmesh/catalogue.py)
    and computed by the same functions, so the two never disagree; None = no
    sample. ``reported_at`` is when the collector received the report (its
    clock, like ``now``), so a client can tell which windows came after a time.
    """
    names = sorted({m.name for m in members.members} | state.agents.keys())
    agents = []
    paths = []
    for name in state.sorted_names():
        entry = state.agents[name]
        status = entry.report.light
        agents.append(
            {
                "node": name,
                "up": state.is_fresh(entry, now),
                "reported_at": entry.received_at,
                "light_up": None if status is None else bool(status.up),
                "light_reason": None if status is None else status.reason,
            }
        )
        for p in () if status is None else status.paths:
            paths.append(
                {
                    "source": name,
                    "destination": p.destination,
                    "reported_at": entry.received_at,
                    "window_seconds": p.window_seconds,
                    "values": {fam.name: value_of(p) for fam, value_of in LIGHT_GAUGES},
                }
            )
    return {"network": state.network, "now": now, "nodes": names, "agents": agents, "paths": paths}


def rca(
    live: LiveRca, *, enabled: bool, now: float, layers: LayerJudge | None = None
) -> dict[str, Any]:
    """The latest analysis (verdict, ranked suspects, findings, rules, failing paths) and its
    age; with pod blame on, the pod rules too (the pod findings are among the findings);
    ``layer_findings``: pod networks failing while their host paths are fine."""
    if not enabled:
        return {"verdict": "off", "summary": "RCA is off (rca_interval 0)"}
    if live.latest is None or live.computed_at is None:
        return {"verdict": "no-data", "summary": "", "suspects": [], "ranking": [], "rules": []}
    body = live.latest.to_json(limit=RCA_JSON_LIMIT)
    body.update(
        computed_at=live.computed_at,
        age_seconds=max(0.0, now - live.computed_at),
        duration_seconds=live.seconds,
        runs=live.runs,
        dns_findings=[f.to_json() for f in live.dns_findings],
        service_findings=[f.to_json() for f in live.service_findings],
        layer_findings=[f.to_json() for f in layers.findings] if layers is not None else [],
    )
    if live.pods.enabled:
        body.update(pod_rules(live.pods))
    return body


def pod_rules(pods: PodRca) -> dict[str, Any]:
    """Pod blame's rules (``{pod=P} -> {FAIL}`` ..., strongest first) and its counts."""
    return {
        "pod_rules": [{**r.to_json(), "rule": r.text()} for r in pods.rules[:RCA_JSON_LIMIT]],
        "pod_transactions": pods.transactions,
        "pod_failing": pods.failing,
        "pod_criteria": pods.criteria.to_json(),
    }
