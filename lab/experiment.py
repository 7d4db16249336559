"""The three-phase experiment: baseline, fault on one node (or a rack's uplink), recovery.

While it runs, a live terminal view shows the node x node matrix (TCP
bandwidth and UDP loss), the phase and its progress; at the end a summary
table compares the phases: paths into the faulty node, out of it, and all
others (for an uplink fault: paths into the rack from other racks, out of it,
and all others). Results come from the collector's JSON API and /metrics, exactly as
a user would see them.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import random
import statistics
import sys
import time
import urllib.error
import urllib.request
from collections import defaultdict
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass, field
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from lab import podexp
from lab.dropsview import describe_drops, fetch_drops
from lab.expview import Screen, progress_bar, render_matrix, render_retransmits, summary_table
from lab.fabric import UplinkFault
from lab.faults import NODE_FAULT_OPTIONS, Fault, parse_fault
from lab.lab import Lab, LabError, get_json
from lab.pods import LabPod
from netmesh import catalogue

PHASES = ("baseline", "fault", "recovery")
POD_RECOVERY = 45.0  # default recovery of a pod fault: the eBPF window (30 s) and a margin


@dataclass(frozen=True, kw_only=True)
class Plan:
    node: str  # the faulty node, or the rack whose uplink is faulty (rack-2)
    fault: Fault
    durations: dict[str, float]
    uplink: bool = False
    members: frozenset[str] = frozenset()  # the rack's nodes (uplink faults)
    pod: LabPod | None = None  # a pod fault: loss into this pod (``node`` is its node)

    @property
    def marked(self) -> frozenset[str]:
        """The nodes on the faulty side: "to" is into them from the others, "from" out."""
        return self.members if self.uplink else frozenset({self.node})

    @property
    def ebpf_marked(self) -> frozenset[str]:
        """Who the eBPF retransmission summary groups on: the pod (its name) or ``marked``."""
        return frozenset({self.pod.pod_name}) if self.pod else self.marked

    @property
    def target(self) -> str:
        if self.pod:
            return f"pod {self.pod.name}"
        return f"the uplink of {self.node}" if self.uplink else self.node

    def inject(self, lab: Lab) -> None:
        if self.pod:
            lab.inject_pod(self.pod.name, self.fault.loss)
        elif self.uplink:
            lab.inject_uplink(
                self.node, UplinkFault(loss=self.fault.loss, rate_bps=self.fault.rate_bps)
            )
        else:
            lab.inject(self.node, self.fault)

    def clear(self, lab: Lab) -> None:
        if self.pod:
            lab.clear_pod(self.pod.name)
        elif self.uplink:
            lab.clear_uplink(self.node)
        else:
            lab.clear(self.node)


@dataclass
class PhaseData:
    name: str
    start: float = 0.0
    end: float = 0.0
    results: dict[tuple[str, str, str, float], dict[str, Any]] = field(default_factory=dict)
    retransmits_start: dict[tuple[str, str], float] = field(default_factory=dict)
    retransmits_end: dict[tuple[str, str], float] = field(default_factory=dict)
    rca: dict[str, Any] | None = None  # the collector's verdict as the phase ended
    named_after: float | None = None  # pod faults: seconds until the verdict named the pod
    findings_seen: int = 0  # RCA polls during the phase that showed any finding
    # kernel drops (eBPF, skb:kfree_skb) by (node, reason) at the phase's start and end
    drops_start: dict[tuple[str, str], float] = field(default_factory=dict)
    drops_end: dict[tuple[str, str], float] = field(default_factory=dict)

    def retransmits(self) -> dict[tuple[str, str], float]:
        keys = self.retransmits_start.keys() | self.retransmits_end.keys()
        return {
            k: max(0.0, self.retransmits_end.get(k, 0.0) - self.retransmits_start.get(k, 0.0))
            for k in keys
        }


# ---------------------------------------------------------------------- plan


def make_plan(lab: Lab, args: argparse.Namespace, fault: Fault | None) -> Plan:
    options: dict[str, Any] = {}
    if getattr(args, "config", None):
        try:
            with open(args.config) as fh:
                options = dict(json.load(fh))
        except (OSError, ValueError) as exc:
            raise LabError(f"experiment config {args.config}: {exc}") from None
        unknown = set(options) - {
            "fault_node",
            "fault_uplink",
            "pod_fault",
            *NODE_FAULT_OPTIONS,
            "baseline",
            "fault",
            "recovery",
        }
        if unknown:
            raise LabError(f"experiment config: unknown keys {sorted(unknown)}")
    if fault is None:
        fault = parse_fault(options)
    pod_name = getattr(args, "pod_fault", "") or str(options.get("pod_fault", ""))
    if fault.empty():
        fault = Fault(loss=0.20 if pod_name else 0.10)
    if pod_name:
        return _pod_plan(lab, args, options, pod_name, fault)
    names = [n.name for n in lab.topo.nodes]
    uplink = getattr(args, "fault_uplink", "") or str(options.get("fault_uplink", ""))
    members: frozenset[str] = frozenset()
    try:
        if uplink:
            if fault.delay_ms or fault.mtu:
                raise LabError("an uplink fault takes loss and/or rate (delay and MTU: nodes)")
            rack = lab.topo.rack(uplink)
            node = f"rack-{rack}"
            members = frozenset(n.name for n in lab.topo.rack_nodes(rack))
        else:
            node = args.fault_node or str(options.get("fault_node", "")) or random.choice(names)
            node = lab.topo.node(node).name
    except KeyError as exc:
        raise LabError(str(exc.args[0])) from None
    return Plan(
        node=node,
        fault=fault,
        durations=_durations(lab, args, options),
        uplink=bool(uplink),
        members=members,
    )


def _durations(lab: Lab, args: argparse.Namespace, options: dict[str, Any]) -> dict[str, float]:
    sweep = lab.settings.sweep_seconds()
    slot = lab.settings.slot_seconds
    defaults = {"baseline": sweep + slot, "fault": 2 * sweep + slot, "recovery": sweep + 2 * slot}
    durations = {}
    for phase in PHASES:
        value = float(getattr(args, phase, 0.0) or options.get(phase, 0.0) or defaults[phase])
        if value <= 0:
            raise LabError(f"{phase} duration must be positive")
        durations[phase] = value
    return durations


def _pod_plan(
    lab: Lab, args: argparse.Namespace, options: dict[str, Any], name: str, fault: Fault
) -> Plan:
    """The seed's experiment: loss into one pod."""
    if getattr(args, "fault_node", "") or getattr(args, "fault_uplink", ""):
        raise LabError("give one of --fault-node, --fault-uplink and --pod-fault")
    if not fault.loss or dataclasses.replace(fault, loss=0.0) != Fault():
        raise LabError("a pod fault takes --loss only (loss into the pod)")
    try:
        pod = lab.pods.pod(name)
    except KeyError as exc:
        raise LabError(str(exc.args[0])) from None
    durations = _durations(lab, args, options)
    if not (getattr(args, "recovery", 0.0) or options.get("recovery")):
        # The collector's eBPF rates span a 30 s window: a pod is cleared after about that.
        durations["recovery"] = max(durations["recovery"], POD_RECOVERY)
    return Plan(node=pod.node, fault=fault, durations=durations, pod=pod)


# ---------------------------------------------------------------------- data


def fetch_matrix(lab: Lab) -> list[dict[str, Any]]:
    data = get_json(lab.collector_url + "/api/v1/matrix")
    return list(data.get("paths", []))


def fetch_retransmits(lab: Lab) -> dict[tuple[str, str], float]:
    """eBPF retransmissions by (source node, destination node), summed over ports."""
    with urllib.request.urlopen(lab.collector_url + "/metrics", timeout=5) as resp:
        text = resp.read().decode()
    out: dict[tuple[str, str], float] = defaultdict(float)
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            if s.name == catalogue.RETRANSMITS.name:
                out[(s.labels.get("src_pod", ""), s.labels.get("dst_pod", ""))] += s.value
    return dict(out)


def _median(values: Iterable[float]) -> float | None:
    vals = list(values)
    return statistics.median(vals) if vals else None


def _mean(values: Iterable[float]) -> float | None:
    vals = list(values)
    return statistics.fmean(vals) if vals else None


def _group(src: str, dst: str, marked: Collection[str]) -> str:
    if dst in marked and src not in marked:
        return "to"
    if src in marked and dst not in marked:
        return "from"
    return "others"


def summarise(
    phase: PhaseData, marked: frozenset[str], ebpf_marked: frozenset[str] | None = None
) -> dict[str, Any]:
    groups: dict[str, dict[str, list[float]]] = {
        g: {"tcp": [], "loss": [], "iperf_retx": []} for g in ("to", "from", "others")
    }
    reasons: dict[str, int] = defaultdict(int)
    for (src, dst, proto, _t), r in phase.results.items():
        g = groups[_group(src, dst, marked)]
        if not r.get("success"):
            reasons[str(r.get("result"))] += 1
            continue
        if proto == "tcp" and r.get("bandwidth_bits_per_second") is not None:
            g["tcp"].append(r["bandwidth_bits_per_second"] / 1e6)
            g["iperf_retx"].append(float(r.get("retransmits") or 0))
        if proto == "udp" and r.get("loss_ratio") is not None:
            g["loss"].append(r["loss_ratio"])
    ebpf: dict[str, float] = defaultdict(float)
    for (src, dst), n in phase.retransmits().items():
        ebpf[_group(src, dst, marked if ebpf_marked is None else ebpf_marked)] += n
    return {
        "phase": phase.name,
        "seconds": round(phase.end - phase.start, 1),
        "tests": len(phase.results),
        "failed": sum(reasons.values()),
        "failures": dict(reasons),
        **{
            f"{g}_{k}": v
            for g in ("to", "from", "others")
            for k, v in (
                ("tcp_mbps", _median(groups[g]["tcp"])),
                ("udp_loss", _mean(groups[g]["loss"])),
                ("iperf_retransmits", sum(groups[g]["iperf_retx"])),
                ("ebpf_retransmits", ebpf.get(g, 0.0)),
            )
        },
    }


# ---------------------------------------------------------------------- run


def run_phases(
    lab: Lab,
    plan: Plan,
    screen: Screen,
    *,
    clock: Callable[[], float] = time.time,
    refresh: float = 1.0,
) -> list[PhaseData]:
    nodes = [n.name for n in lab.topo.nodes]
    phases = [PhaseData(name=p) for p in PHASES]
    total = sum(plan.durations.values())
    t0 = clock()
    for phase in phases:
        if phase.name == "fault":
            plan.inject(lab)
        elif phase.name == "recovery":
            plan.clear(lab)
        phase.start = clock()
        phase.retransmits_start = _safe(lambda: fetch_retransmits(lab), {})
        phase.drops_start = _safe(lambda: fetch_drops(lab), {})
        end = phase.start + plan.durations[phase.name]
        while True:
            now = clock()
            paths = _safe(lambda: fetch_matrix(lab), [])
            for p in paths:
                if phase.start <= p["started_at"] < min(now, end):
                    phase.results[
                        (p["source"], p["destination"], p["protocol"], p["started_at"])
                    ] = p
            retx_now = _safe(lambda: fetch_retransmits(lab), phase.retransmits_end)
            phase.retransmits_end = retx_now
            if plan.pod:
                _watch_rca(lab, plan.pod, phase, now)
            done = (now - t0) / total
            status = (
                f"phase {phase.name} ({plan.fault.describe()} on {plan.target} "
                f"during 'fault')  {progress_bar(done)} {now - t0:5.0f}/{total:.0f}s"
            )
            view = "\n\n".join(
                [
                    "netmesh lab experiment — " + status,
                    render_matrix(paths, nodes, plan.marked),
                    render_retransmits(phase.retransmits()),
                    f"tests recorded in this phase: {len(phase.results)}",
                ]
            )
            screen.show(view, status + f"  tests {len(phase.results)}")
            if now >= end:
                break
            time.sleep(max(0.0, min(refresh, end - clock())))
        phase.drops_end = _safe(lambda: fetch_drops(lab), phase.drops_start)
        phase.end = clock()
        if phase.name == "fault" or plan.pod:
            phase.rca = _safe(lambda: get_json(lab.collector_url + "/api/v1/rca"), None)
    return phases


def _watch_rca(lab: Lab, pod: LabPod, phase: PhaseData, now: float) -> None:
    """Pod faults: poll the verdict; note the first time it names the pod, and any finding."""
    body = _safe(lambda: get_json(lab.collector_url + "/api/v1/rca"), None)
    if podexp.any_finding(body):
        phase.findings_seen += 1
    if phase.name == "fault" and phase.named_after is None and podexp.names_pod(body, pod):
        phase.named_after = now - phase.start


def describe_rca(body: dict[str, Any] | None, node: str) -> str:
    """One paragraph: the collector's verdict and whether it names the faulty node first."""
    if body is None:
        return "RCA verdict at the end of the fault phase: the collector did not answer"
    named = [str(s["node"]) for s in body.get("suspects", [])]
    checks = [
        f
        for key in ("dns_findings", "service_findings")
        for f in body.get(key, [])
        if isinstance(f, dict)
    ]
    named += [str(f.get("node")) for f in checks]
    text = body.get("summary") or "no failing paths"
    if checks:
        text += "; " + "; ".join(str(f.get("summary", "")) for f in checks)
    right = "names the faulty node first" if named[:1] == [node] else f"expected {node}"
    return f"RCA verdict at the end of the fault phase: {body.get('verdict')} — {text} ({right})"


def _pod_report(pod: LabPod, phases: list[PhaseData], fault_seconds: float) -> str:
    base, fault, recovery = phases
    lines = ["", podexp.describe(fault.rca, pod, fault.named_after, fault_seconds)]
    lines.append(
        f"baseline: {'no finding' if not base.findings_seen else 'FINDINGS seen'} "
        f"(verdict {(base.rca or {}).get('verdict')}); after recovery: verdict "
        f"{(recovery.rca or {}).get('verdict')}"
        + (", findings remain" if podexp.any_finding(recovery.rca) else ", no finding")
    )
    return "\n".join(lines)


def _safe(fetch: Callable[[], Any], default: Any) -> Any:
    try:
        return fetch()
    except (urllib.error.URLError, OSError, ValueError):
        return default


def run_experiment(lab: Lab, args: argparse.Namespace, fault: Fault | None) -> int:
    plan = make_plan(lab, args, fault)
    out = sys.stdout
    started = time.monotonic()
    owned = not lab.is_up()
    try:
        if owned:
            lab.up(progress=lambda m: print(m, file=out, flush=True))
        budget = lab.settings.bandwidth_budget
        print(
            f"iperf3 budget {budget:.0%} of each node's time (the agent's default is 1 %; "
            f"the lab shortens the period so bandwidth shows within minutes)",
            file=out,
        )
        print(
            f"experiment: {plan.fault.describe()} on {plan.target}; phases "
            + ", ".join(f"{k} {v:.0f}s" for k, v in plan.durations.items()),
            file=out,
        )
        screen = Screen(out, live=out.isatty() and not args.plain)
        phases = run_phases(lab, plan, screen)
        rows = [summarise(p, plan.marked, plan.ebpf_marked) for p in phases]
        print("\n" + summary_table(rows, plan.target), file=out)
        if plan.pod:
            print(_pod_report(plan.pod, phases, plan.durations["fault"]), file=out)
        elif plan.uplink:
            rca = phases[1].rca or {}
            text = rca.get("summary") or "no failing paths"
            print(f"\nRCA at the end of the fault phase: {rca.get('verdict')} — {text}", file=out)
        else:
            print("\n" + describe_rca(phases[1].rca, plan.node), file=out)
            print(
                describe_drops(
                    phases[1].drops_start,
                    phases[1].drops_end,
                    node=plan.node,
                    seconds=phases[1].end - phases[1].start,
                    phase=phases[1].name,
                ),
                file=out,
            )
        injected = plan.fault
        fault_row = rows[1]
        if plan.pod:
            print(
                f"\ninjected loss into {plan.target}: {injected.loss * 100:.1f}%; eBPF "
                f"retransmissions into it {fault_row['to_ebpf_retransmits']:.0f}, out of it "
                f"{fault_row['from_ebpf_retransmits']:.0f}, all other pairs "
                f"{fault_row['others_ebpf_retransmits']:.0f} (host paths: see the table)",
                file=out,
            )
        elif injected.loss and fault_row["to_udp_loss"] is not None:
            print(
                f"\ninjected loss {'on' if plan.uplink else 'into'} {plan.target}: "
                f"{injected.loss * 100:.1f}%; measured UDP loss to {plan.node}: "
                f"{fault_row['to_udp_loss'] * 100:.2f}%",
                file=out,
            )
        if injected.rate_bps and fault_row["from_tcp_mbps"] is not None:
            print(
                f"\ninjected rate {'on' if plan.uplink else 'out of'} {plan.target}: "
                f"{injected.rate_bps / 1e6:.0f} Mbit/s; "
                f"measured TCP from {plan.node}: {fault_row['from_tcp_mbps']:.0f} Mbit/s",
                file=out,
            )
        wall = time.monotonic() - started
        if args.json_out:
            with open(args.json_out, "w") as fh:
                json.dump(
                    {
                        "node": plan.node,
                        "uplink": plan.uplink,
                        "fault": dataclasses.asdict(plan.fault),
                        "durations": plan.durations,
                        "phases": rows,
                        "rca": phases[1].rca,
                        "drops": {
                            f"{n}/{r}": v - phases[1].drops_start.get((n, r), 0.0)
                            for (n, r), v in phases[1].drops_end.items()
                        },
                        "wall_seconds": wall,
                        "pod": plan.pod.name if plan.pod else None,
                        "named_after": phases[1].named_after,
                        "findings_seen": {p.name: p.findings_seen for p in phases},
                        "findings_at_end": {p.name: podexp.any_finding(p.rca) for p in phases},
                        "verdicts": {p.name: (p.rca or {}).get("verdict") for p in phases},
                    },
                    fh,
                    indent=2,
                )
        return 0
    finally:
        if owned and not args.keep:
            lab.down()
            print(f"lab removed; experiment took {time.monotonic() - started:.0f}s", file=out)
