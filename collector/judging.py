"""Root-cause analysis, step 1: judge every path test OK or FAIL (no I/O here).

The RCA asks which node is the common denominator of the failing paths:
judge each test (this module), mine association rules over the judged tests
(``collector/mining.py``), pick the suspects (``collector/verdict.py``); the
collector runs it all in short steps on its event loop (``collector/live.py``).

**Judge** every path test OK or FAIL by ``Criteria``: the test failed; UDP
loss above a threshold; iperf3 retransmissions above a share of the segments
sent; bandwidth below a fraction of *the path's own* recent baseline (median
of its previous successful tests — paths differ); eBPF retransmissions from
source to destination above a rate. ``judge_all`` judges a batch at once (the
offline analysis); ``PathJudge`` judges a live mesh incrementally, each test once.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

from netmesh.wire import TestResult

# Not a path fault: the peer's iperf3 server was running another test (a scheduling collision).
NO_EVIDENCE_RESULTS = frozenset({"busy"})

PathKey = tuple[str, str, str]  # (source, destination, protocol)
HISTORY_REASON = "bandwidth "  # how a reason against the path's own baseline starts


@dataclass(frozen=True, kw_only=True)
class Criteria:
    """When a path test counts as FAIL, and when a node is named (collector settings rca_*)."""

    loss_ratio: float = 0.05
    retransmit_ratio: float = 0.02
    mss_bytes: int = 1448
    bandwidth_fraction: float = 0.5
    baseline_min_samples: int = 3
    ebpf_retransmits_per_second: float = 10.0
    drops_per_second: float = 1.0
    min_failing_paths: int = 2
    min_peers: int = 2
    min_confidence: float = 0.5
    min_lift: float = 1.0
    max_suspects: int = 3
    cluster_wide_ratio: float = 0.5
    max_len: int = 2
    # the light tier (collector/lightjudge.py)
    light_alpha: float = 0.001
    light_loss_floor: float = 0.001
    light_min_lost: int = 3
    light_rtt_factor: float = 3.0
    light_rtt_min_increase: float = 0.001
    light_mtu_min_probes: int = 2
    # the mesh: peers, capacity, latency (collector/meshjudge.py); the history's percentile
    peer_fraction: float = 0.6
    peer_mad_factor: float = 4.0
    peer_min_paths: int = 4
    capacity_fraction: float = 0.25
    rtt_factor: float = 3.0
    rtt_min_increase: float = 0.01
    baseline_percentile: float = 0.9
    link_elsewhere_ratio: float = 0.1

    def to_json(self) -> dict[str, float]:
        return {k: float(v) for k, v in self.__dict__.items()}


class PathOutcome(NamedTuple):
    """One path test judged: ``reasons`` empty = OK.

    A NamedTuple, not a dataclass: the collector keeps one per path (100,000 at
    5,000 agents) and the garbage collector stops tracking tuples of plain
    values, so they do not lengthen its full passes.
    """

    source: str
    destination: str
    protocol: str
    result: str = "ok"
    started_at: float = 0.0
    reasons: tuple[str, ...] = ()

    @property
    def failed(self) -> bool:
        return bool(self.reasons)

    @property
    def key(self) -> PathKey:
        return (self.source, self.destination, self.protocol)

    def to_json(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "destination": self.destination,
            "protocol": self.protocol,
            "result": self.result,
            "started_at": self.started_at,
            "reasons": list(self.reasons),
        }


def retransmit_ratio(result: TestResult, mss_bytes: int = 1448) -> float | None:
    """iperf3 retransmissions / segments sent (segments = bytes sent / MSS), or None."""
    if result.retransmits is None or not result.sent_bits_per_second:
        return None
    if result.duration_seconds <= 0:
        return None
    segments = result.sent_bits_per_second * result.duration_seconds / 8 / mss_bytes
    return result.retransmits / segments if segments > 0 else None


def ebpf_reason(rate: float, criteria: Criteria) -> str:
    return f"eBPF retransmissions {rate:.0f}/s > {criteria.ebpf_retransmits_per_second:g}/s"


def judge(
    result: TestResult,
    criteria: Criteria,
    *,
    baseline_bps: float | None = None,
    ebpf_rate: float | None = None,
) -> tuple[str, ...]:
    """Why ``result`` counts as FAIL (empty: OK). Thresholds are exclusive."""
    if not result.ok:
        return (f"test {result.result}" + (f": {result.message}" if result.message else ""),)
    reasons: list[str] = []
    if result.loss_ratio is not None and result.loss_ratio > criteria.loss_ratio:
        reasons.append(f"loss {result.loss_ratio:.1%} > {criteria.loss_ratio:.1%}")
    ratio = retransmit_ratio(result, criteria.mss_bytes)
    if ratio is not None and ratio > criteria.retransmit_ratio:
        reasons.append(
            f"iperf3 retransmits {ratio:.1%} of segments > {criteria.retransmit_ratio:.1%}"
        )
    bw = result.received_bits_per_second
    if (
        bw is not None
        and baseline_bps
        and criteria.bandwidth_fraction > 0
        and bw < criteria.bandwidth_fraction * baseline_bps
    ):
        reasons.append(
            f"{HISTORY_REASON}{bw / 1e6:.0f} Mbit/s < {criteria.bandwidth_fraction:.0%} of the "
            f"path's baseline {baseline_bps / 1e6:.0f} Mbit/s"
        )
    if (
        ebpf_rate is not None
        and criteria.ebpf_retransmits_per_second > 0
        and ebpf_rate > criteria.ebpf_retransmits_per_second
    ):
        reasons.append(ebpf_reason(ebpf_rate, criteria))
    return tuple(reasons)


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q`` quantile (0-1) of ``values``, linear between the closest ranks."""
    ordered = sorted(values)
    pos = q * (len(ordered) - 1)
    low = int(pos)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (pos - low)


class Baselines:
    """Each path's recent successful bandwidths; the baseline is a high percentile of them.

    Counted in tests, not seconds (a sweep can take seconds in the lab and an
    hour on a big cluster). A test is recorded once (by its start time). The
    caller leaves out tests that fail another criterion and, while a path or
    one of its nodes is named by the RCA, every test of it (``frozen``): a
    fault does not become the baseline it is judged against.
    """

    def __init__(self, samples: int = 10, q: float = 0.5) -> None:
        self.samples = samples
        self.q = q
        self.frozen: Callable[[PathKey], bool] = lambda _key: False
        # Tuples, not deques: immutable tuples of numbers drop out of the garbage
        # collector's passes (100,000 paths at 5,000 agents).
        self._hist: dict[PathKey, tuple[tuple[float, float], ...]] = {}

    def baseline(self, key: PathKey, before: float) -> tuple[float | None, int]:
        """Median of the path's samples that started before ``before``, and how many."""
        hist = self._hist.get(key)
        if not hist:
            return None, 0
        vals = [bps for t, bps in hist if t < before]
        return (percentile(vals, self.q) if vals else None), len(vals)

    def observe(self, key: PathKey, started_at: float, bps: float) -> None:
        hist = self._hist.get(key, ())
        if hist and started_at <= hist[-1][0]:
            return
        self._hist[key] = (*hist[-self.samples :], (started_at, bps))

    def keep_only(self, keys: set[PathKey]) -> None:
        for key in self._hist.keys() - keys:
            del self._hist[key]

    def forget(self, key: PathKey) -> None:
        self._hist.pop(key, None)


def judge_path(
    result: TestResult,
    criteria: Criteria,
    baselines: Baselines,
    *,
    ebpf_rate: float | None = None,
) -> PathOutcome:
    """Judge one test against its path's baseline, then record its bandwidth in ``baselines``."""
    key: PathKey = (result.source, result.destination, result.protocol)
    base, n = baselines.baseline(key, result.started_at)
    if n < criteria.baseline_min_samples:
        base = None
    reasons = judge(result, criteria, baseline_bps=base, ebpf_rate=ebpf_rate)
    if (
        result.ok
        and result.received_bits_per_second is not None
        and all(r.startswith((HISTORY_REASON, "eBPF")) for r in reasons)
        and not baselines.frozen(key)
    ):
        baselines.observe(key, result.started_at, result.received_bits_per_second)
    return PathOutcome(
        source=result.source,
        destination=result.destination,
        protocol=result.protocol,
        result=result.result,
        started_at=result.started_at,
        reasons=reasons,
    )


def judge_all(
    results: Iterable[TestResult],
    criteria: Criteria,
    baselines: Baselines,
    ebpf_rates: Mapping[tuple[str, str], float] | None = None,
    *,
    prune: bool = True,
) -> list[PathOutcome]:
    """Judge the latest results (records each successful bandwidth in ``baselines``)."""
    rates = ebpf_rates or {}
    out: list[PathOutcome] = []
    seen: set[PathKey] = set()
    for r in results:
        key: PathKey = (r.source, r.destination, r.protocol)
        seen.add(key)
        if r.result in NO_EVIDENCE_RESULTS:
            continue
        rate = rates.get((r.source, r.destination)) if r.protocol == "tcp" else None
        out.append(judge_path(r, criteria, baselines, ebpf_rate=rate))
    if prune:
        baselines.keep_only(seen)
    return out


# What a cached outcome depends on besides the path: a test is judged once.
TestMark = tuple[float, str, float | None, float | None, float | None, int | None, float]


def _mark(r: TestResult) -> TestMark:
    return (
        r.started_at,
        r.result,
        r.received_bits_per_second,
        r.sent_bits_per_second,
        r.loss_ratio,
        r.retransmits,
        r.duration_seconds,
    )


@dataclass
class _AgentOutcomes:
    results: Sequence[TestResult]  # the tuple judged (identity: unchanged report → reuse)
    outcomes: list[PathOutcome]  # without eBPF reasons
    marks: dict[PathKey, tuple[TestMark, PathOutcome]]
    failing: list[PathOutcome]  # the failed ones among ``outcomes``
    nodes: set[str]  # sources and destinations of ``outcomes``


class PathJudge:
    """``judge_all`` for a live mesh, incrementally: each test is judged once.

    Per agent, the outcomes of its latest results are kept. An agent whose
    results tuple is the very object judged last time costs nothing; otherwise
    each result is looked up by path and test (start time, result, measured
    values) and only new tests are judged and their bandwidth recorded in the
    baselines. The eBPF reason depends on the rates of the moment, so it is
    added at assembly, only on the (few) pairs above the threshold. For the
    same sequence of inputs the outcomes equal ``judge_all``'s (a test checks).
    At 5,000 agents x 20 paths: ~400 ms per run for ``judge_all``, a few ms here.
    """

    def __init__(self, criteria: Criteria, baselines: Baselines) -> None:
        self.criteria = criteria
        self.baselines = baselines
        self._agents: dict[str, _AgentOutcomes] = {}

    def update(self, node: str, results: Sequence[TestResult]) -> None:
        kept = self._agents.get(node)
        if kept is not None and kept.results is results:
            return
        old = kept.marks if kept is not None else {}
        marks: dict[PathKey, tuple[TestMark, PathOutcome]] = {}
        outcomes: list[PathOutcome] = []
        for r in results:
            key: PathKey = (r.source, r.destination, r.protocol)
            if r.result in NO_EVIDENCE_RESULTS:
                continue
            mark = _mark(r)
            hit = old.get(key)
            outcome = (
                hit[1]
                if hit is not None and hit[0] == mark
                else judge_path(r, self.criteria, self.baselines)
            )
            marks[key] = (mark, outcome)
            outcomes.append(outcome)
        for key in old.keys() - {(r.source, r.destination, r.protocol) for r in results}:
            self.baselines.forget(key)
        self._agents[node] = _AgentOutcomes(
            results,
            outcomes,
            marks,
            [o for o in outcomes if o.reasons],
            {node, *(o.destination for o in outcomes)},
        )

    def keep_only(self, nodes: Iterable[str]) -> None:
        """Forget agents not in ``nodes`` (and their paths' baselines)."""
        for node in self._agents.keys() - set(nodes):
            for key in self._agents.pop(node).marks:
                self.baselines.forget(key)

    def assemble(
        self, order: Iterable[str], rates: Mapping[tuple[str, str], float]
    ) -> tuple[list[PathOutcome], list[PathOutcome], set[str]]:
        """Every kept agent's outcomes (in ``order``), eBPF reasons added where rates are high;
        also the failing ones and every node named, without another pass over all."""
        threshold = self.criteria.ebpf_retransmits_per_second
        hot: dict[str, dict[str, float]] = defaultdict(dict)
        if threshold > 0:
            for (src, dst), rate in rates.items():
                if rate > threshold:
                    hot[src][dst] = rate
        out: list[PathOutcome] = []
        failing: list[PathOutcome] = []
        names: set[str] = set()
        for node in order:
            kept = self._agents.get(node)
            if kept is None:
                continue
            names |= kept.nodes
            pairs = hot.get(node)
            if not pairs:
                out += kept.outcomes
                failing += kept.failing
                continue
            for o in kept.outcomes:
                pair_rate = pairs.get(o.destination)
                if pair_rate is not None and o.protocol == "tcp" and o.result == "ok":
                    o2 = o._replace(reasons=(*o.reasons, ebpf_reason(pair_rate, self.criteria)))
                else:
                    o2 = o
                out.append(o2)
                if o2.reasons:
                    failing.append(o2)
        return out, failing, names
