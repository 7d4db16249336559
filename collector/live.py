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
from collections import defaultdict, deque
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence

from collector.dnsjudge import DnsCriteria, DnsFinding, judge_dns
from collector.dropevidence import drop_totals, significant
from collector.judging import Baselines, Criteria, PathJudge, PathOutcome
from collector.lightjudge import judge_light_steps
from collector.verdict import Analysis, analyse
from netmesh.wire import DnsStatus, DropStatus, LightPath, RetransmitFlow, TestResult


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


class RetransmitRates:
    """eBPF retransmissions per second by (source node, destination node) over a window.

    Fed the agents' cumulative per-flow counters; a counter that goes down
    (agent restart) starts the pair's history again.
    """

    def __init__(self, window: float = 30.0) -> None:
        self.window = window
        self._hist: dict[tuple[str, str], deque[tuple[float, float]]] = defaultdict(deque)

    def observe(self, at: float, totals: Mapping[tuple[str, str], float]) -> None:
        for pair, count in totals.items():
            hist = self._hist[pair]
            if hist and at <= hist[-1][0]:
                continue
            if hist and count < hist[-1][1]:
                hist.clear()
            hist.append((at, count))

    def rates(self, now: float) -> dict[tuple[str, str], float]:
        out: dict[tuple[str, str], float] = {}
        for pair in list(self._hist):
            hist = self._hist[pair]
            while len(hist) > 1 and hist[1][0] <= now - self.window:
                hist.popleft()
            if hist and hist[-1][0] < now - 2 * self.window:
                del self._hist[pair]  # the pair has gone
                continue
            if len(hist) >= 2 and hist[-1][0] > hist[0][0]:
                out[pair] = (hist[-1][1] - hist[0][1]) / (hist[-1][0] - hist[0][0])
        return out


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
        perf: Callable[[], float] = time.perf_counter,
    ) -> None:
        self.criteria = criteria
        self.dns_criteria = dns_criteria or DnsCriteria()
        self.dns_findings: tuple[DnsFinding, ...] = ()
        self.baselines = Baselines(baseline_samples)
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

    def steps(
        self,
        results: Mapping[str, Sequence[TestResult]],
        flows: Mapping[str, Sequence[RetransmitFlow]],
        resolve_node: Callable[[str], str | None],
        *,
        now: float,
        nodes: Iterable[str] = (),
        light: Mapping[str, Sequence[LightPath]] | None = None,
        drops: Mapping[str, DropStatus | None] | None = None,
        dns: Mapping[str, DnsStatus] | None = None,
        budget: float = 0.005,
    ) -> Iterator[None]:
        """One run; yields whenever ``budget`` seconds went by.

        ``results``: node → its latest results; ``flows``: node → its eBPF
        flows (``resolve_node`` maps a remote IP to a node); ``light``: node →
        its light-tier windows (judged together, collector/lightjudge.py); ``dns``:
        node → its DNS check (findings of their own, collector/dnsjudge.py);
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
            outcomes, self.criteria, names, failing=failing, complete=True, drops=evidence
        )
        self.dns_findings = tuple(judge_dns(dns or {}, self.dns_criteria))
        self.latest = analysis
        self.computed_at = now
        self.runs += 1
        self.seconds = spent + self.perf() - started
