"""The collector's root-cause analysis over time, run on its event loop in short steps.

Each run takes the agents' latest reports: their eBPF retransmission counters
become rates per (source node, destination node) over a window; their path
tests are judged, each test once (``PathJudge``, ``collector/judging.py``);
the rules are mined and the verdict decided (``analyse``,
``collector/verdict.py``). ``LiveRca.steps`` yields whenever ~5 ms of work
went by, so the loop keeps serving reports and scrapes during a run.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence

from collector.checkjudge import CheckFinding
from collector.dnsjudge import DnsCriteria, judge_dns_networks
from collector.dropevidence import drop_totals, significant
from collector.findings import criterion
from collector.judging import Baselines, Criteria, PathJudge, PathKey, PathOutcome
from collector.lightjudge import judge_light_steps
from collector.meshjudge import mesh_reasons
from collector.podblame import PodCriteria
from collector.podrca import PodRca
from collector.rates import RetransmitRates as RetransmitRates  # noqa: PLC0414 (re-exported)
from collector.servicejudge import ServiceCriteria, judge_service_networks
from collector.topology import NodeTopology
from collector.verdict import Analysis, analyse, with_findings
from netmesh.wire import DnsStatus, DropStatus, LightPath, RetransmitFlow, ServiceStatus, TestResult


def add_retransmits(
    totals: dict[tuple[str, str], float],
    node: str,
    flows: Iterable[RetransmitFlow],
    resolve_node: Callable[[str], str | None],
) -> None:
    """Add one node's cumulative eBPF retransmissions to ``totals`` by (sender, receiver node).

    A node's flows are counted in its own kernel: it is the sender. The
    remote IP is resolved to a node (a node IP, or a pod on that node);
    unknown IPs and the overflow bucket are left out.
    """
    for flow in flows:
        if flow.local == "other" or flow.remote == "other":
            continue
        remote = resolve_node(flow.remote)
        if remote is None or remote == node:
            continue
        key = (node, remote)
        totals[key] = totals.get(key, 0.0) + flow.count


def _with_reasons(
    outcomes: Sequence[PathOutcome], extra: Mapping[PathKey, Sequence[str]]
) -> tuple[list[PathOutcome], list[PathOutcome]]:
    """``outcomes`` with the mesh's reasons added (collector/meshjudge.py), and the failing ones."""
    out: list[PathOutcome] = []
    failing: list[PathOutcome] = []
    for o in outcomes:
        more = extra.get(o.key)
        o2 = o._replace(reasons=(*o.reasons, *more)) if more and o.result == "ok" else o
        out.append(o2)
        if o2.reasons:
            failing.append(o2)
    return out, failing


_Mark = tuple[tuple[str, ...], tuple[Sequence[TestResult], ...], Mapping[str, NodeTopology]]


def _same(a: _Mark, b: _Mark | None) -> bool:
    """The same nodes, each with the very results tuple (reports replace it whole), and an
    equal topology."""
    return (
        b is not None
        and a[0] == b[0]
        and all(x is y for x, y in zip(a[1], b[1], strict=True))
        and a[2] == b[2]
    )


# The light tier is judged again only when this many times its latest judging's CPU
# has passed (at most ~1/LIGHT_DUTY of a core): at 6 nodes (~1 ms) that is every run;
# at 5,000 agents x 20 peers (~0.3 s, 100,000 paths) every few seconds, not every
# 2 s run, with the previous outcomes meanwhile. The windows are 10 s anyway.
LIGHT_DUTY = 10.0
LIGHT_CHUNK = 2000  # paths (or pairs) between two yields to the loop


class LiveRca:
    """The collector's RCA over time: path baselines, eBPF rates, the latest analysis.

    ``steps`` does one run in short steps (the collector yields to its event
    loop between them: a thread would hold the GIL against the loop's I/O).
    ``latest`` is replaced whole (readers never see a half-made analysis).
    """

    def __init__(
        self,
        criteria: Criteria,
        *,
        baseline_samples: int = 10,
        ebpf_window: float = 30.0,
        dns_criteria: DnsCriteria | None = None,
        service_criteria: ServiceCriteria | None = None,
        pod_criteria: PodCriteria | None = None,
        perf: Callable[[], float] = time.perf_counter,
    ) -> None:
        self.criteria = criteria
        # Pod blame (collector/podrca.py): None or a zero threshold = off.
        self.pods = PodRca(
            pod_criteria or PodCriteria(retransmits_per_second=0), window=ebpf_window
        )
        self.dns_criteria = dns_criteria or DnsCriteria()
        self.dns_findings: tuple[CheckFinding, ...] = ()
        self.service_criteria = service_criteria or ServiceCriteria()
        self.service_findings: tuple[CheckFinding, ...] = ()
        self.baselines = Baselines(baseline_samples, criteria.baseline_percentile)
        self.baselines.frozen = self._frozen
        self._suspected: set[str] = set()  # nodes of the latest findings
        self._failing: set[PathKey] = set()  # paths failing other criteria than their history
        self.topology: Mapping[str, NodeTopology] = {}  # of the latest run
        self._mesh_mark: _Mark | None = None  # the results and topology last judged
        self._mesh_extra: dict[PathKey, list[str]] = {}
        self.judge = PathJudge(criteria, self.baselines)
        self.rates = RetransmitRates(ebpf_window)
        self.drop_rates = RetransmitRates(ebpf_window)  # by (node, drop reason)
        self.perf = perf
        self.latest: Analysis | None = None
        self.computed_at: float | None = None
        self.seconds = 0.0
        self.runs = 0
        # The light tier's outcomes, judged at most every LIGHT_DUTY x their cost
        self.light_outcomes: list[PathOutcome] = []
        self.light_judged_at: float | None = None
        self.light_seconds = 0.0  # CPU of the latest light judging

    def _frozen(self, key: PathKey) -> bool:
        """A path's baseline is frozen while it fails another criterion or a finding holds it."""
        return key in self._failing or key[0] in self._suspected or key[1] in self._suspected

    def steps(
        self,
        results: Mapping[str, Sequence[TestResult]],
        flows: Mapping[str, Sequence[RetransmitFlow]],
        resolve_node: Callable[[str], str | None],
        *,
        now: float,
        nodes: Iterable[str] = (),
        light: Mapping[str, Sequence[LightPath]] | None = None,
        topology: Mapping[str, NodeTopology] | None = None,
        drops: Mapping[str, DropStatus | None] | None = None,
        dns: Mapping[str, DnsStatus] | None = None,
        pod_dns: Mapping[str, DnsStatus] | None = None,
        service: Mapping[str, ServiceStatus] | None = None,
        pod_service: Mapping[str, ServiceStatus] | None = None,
        resolve_pod: Callable[[str], tuple[str, str] | None] | None = None,
        budget: float = 0.005,
    ) -> Iterator[None]:
        """One run; yields whenever ``budget`` seconds went by.

        ``results``: node → its latest results; ``flows``: node → its eBPF
        flows (``resolve_node`` maps a remote IP to a node); ``light``: node →
        its light-tier windows (judged together, collector/lightjudge.py);
        ``topology``: each node's zone, rack and link speed (collector/topology.py),
        for the capacity criterion and the rack and zone findings; ``dns``:
        node → its DNS check (findings of their own, collector/dnsjudge.py),
        ``service`` its Service check (collector/servicejudge.py), the
        ``pod_`` ones the pod-network endpoints';
        ``drops``: node → its kernel drop counters (rates → evidence,
        collector/dropevidence.py). The mining
        (``analyse``) is one step; with nothing failing it is short.
        """
        spent = 0.0
        started = self.perf()
        totals: dict[tuple[str, str], float] = {}
        for node, node_flows in flows.items():
            add_retransmits(totals, node, node_flows, resolve_node)
            if self.perf() - started > budget:
                spent += self.perf() - started
                yield
                started = self.perf()
        self.rates.observe(now, totals)
        self.drop_rates.observe(now, drop_totals(drops or {}))
        evidence = significant(self.drop_rates.rates(now), self.criteria.drops_per_second)
        rates = self.rates.rates(now) if self.criteria.ebpf_retransmits_per_second > 0 else {}
        for node, latest in results.items():
            self.judge.update(node, latest)
            if self.perf() - started > budget:
                spent += self.perf() - started
                yield
                started = self.perf()
        self.judge.keep_only(results.keys())
        outcomes, failing, names = self.judge.assemble(results.keys(), rates)
        names.update(nodes)
        topo = topology or {}
        mark = (tuple(results), tuple(results.values()), topo)
        if not _same(mark, self._mesh_mark):  # it changes only with new results or topology
            self._mesh_mark = mark
            self._mesh_extra = mesh_reasons(
                (r for rs in results.values() for r in rs), topo, self.criteria
            )
        extra = self._mesh_extra
        if extra:
            outcomes, failing = _with_reasons(outcomes, extra)
        if self.perf() - started > budget:
            spent += self.perf() - started
            yield
            started = self.perf()
        if light:
            due = self.light_judged_at is None or (
                now - self.light_judged_at >= LIGHT_DUTY * self.light_seconds
            )
            if due:
                light_spent = 0.0
                for judged_so_far in judge_light_steps(
                    light, self.criteria, at=now, chunk=LIGHT_CHUNK
                ):
                    now_perf = self.perf()
                    light_spent += now_perf - started
                    spent += now_perf - started
                    if judged_so_far is not None:
                        self.light_outcomes = judged_so_far
                    yield
                    started = self.perf()
                self.light_judged_at, self.light_seconds = now, light_spent
            judged = self.light_outcomes
            outcomes = [*outcomes, *judged]
            failing = [*failing, *(o for o in judged if o.failed)]
            names.update(light.keys())
        spent += self.perf() - started
        yield
        started = self.perf()
        analysis = analyse(
            outcomes,
            self.criteria,
            names,
            failing=failing,
            complete=True,
            topology=topo,
            drops=evidence,
        )
        if self.pods.enabled and resolve_pod is not None:
            # Pod blame on the same flows; the nodes named above keep their pods' failures.
            spent += self.perf() - started
            yield
            started = self.perf()
            host = {n for f in analysis.findings for n in f.nodes if f.kind != "node"}
            host |= {f.subject for f in analysis.findings if f.kind == "node"}
            self.pods.run(flows, resolve_pod, now=now, host_nodes=host)
            analysis = with_findings(analysis, self.pods.as_findings())
        self.dns_findings = tuple(judge_dns_networks(dns or {}, pod_dns or {}, self.dns_criteria))
        self.service_findings = tuple(
            judge_service_networks(service or {}, pod_service or {}, self.service_criteria)
        )
        self._suspected = {n for f in analysis.findings for n in f.nodes if f.kind != "node"}
        self._suspected |= {f.subject for f in analysis.findings if f.kind == "node"}
        # Only its own history says a path is bad: no suspicion (a lasting change of one
        # path becomes its normal); any other criterion, or a finding, freezes the baseline.
        self._failing = {
            o.key
            for o in analysis.failing
            if any(criterion(r) != "bandwidth-history" for r in o.reasons)
        }
        self.latest = analysis
        self.topology = topo
        self.computed_at = now
        self.runs += 1
        self.seconds = spent + self.perf() - started
