"""Root-cause analysis: which node is the common denominator of the failing paths?

Association-rule mining over the mesh's latest tests (no I/O here):

1. **Judge** every path test OK or FAIL by ``Criteria``: the test failed;
   UDP loss above a threshold; iperf3 retransmissions above a share of the
   segments sent; bandwidth below a fraction of *the path's own* recent
   baseline (median of its previous successful tests — paths differ); eBPF
   retransmissions from source to destination above a rate.
2. **Transactions**: one per (source, destination, protocol) test, items
   ``node=<src>``, ``node=<dst>``, ``src=<src>``, ``dst=<dst>``,
   ``protocol=<p>`` and ``FAIL`` or ``OK``.
3. **Frequent itemsets** (apriori: level-wise candidates, every subset of a
   candidate frequent), up to ``max_len`` items, ``min_support`` a share of
   all transactions. The live analysis sets it to ``min_failing_paths / n``:
   an itemset ``{node=X, FAIL}`` below that could never name a suspect.
4. **Rules** ``{node=X} → {FAIL}``, ``{dst=X} → {FAIL}``, ``{src=X} → {FAIL}``
   (how often X's paths fail) and ``{FAIL} → {node=X}`` (what share of the
   failures X is part of), each with support, confidence and lift — the
   definitions of mlxtend's ``association_rules`` (a test checks that).
5. **Verdict**: greedily pick the node that covers most of the still
   unexplained failing paths, provided it qualifies (``min_failing_paths``
   failing paths with ``min_peers`` distinct peers among those still
   unexplained; its best rule has confidence ≥ ``min_confidence`` and lift
   > ``min_lift``), up to ``max_suspects`` nodes: two faulty nodes come out
   as two suspects, and a victim that only talks to a faulty node (one peer)
   is never named. "cluster-wide" instead of suspects when more than
   ``cluster_wide_ratio`` of the paths that avoid every suspect fail too, or
   when more than that share of all paths fails and the suspects do not
   explain every failing path (or no path avoids them): most of the mesh
   fails and no node explains it. Two faulty nodes of four fail half the
   paths, yet the paths between the other two are clean: suspects, not
   cluster-wide. Nothing is said when nothing fails.

Suspect score of a node (the ``netmesh_rca_suspect_score`` gauge):
confidence({FAIL} → {node}) x the confidence of its best {role} → {FAIL}
rule, 0 unless that rule's lift > ``min_lift``; 1.0 = every failing path
involves the node and every path of it (in that direction) fails.
"""

from __future__ import annotations

import itertools
import statistics
import time
from collections import defaultdict, deque
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from netmesh.wire import RetransmitFlow, TestResult

FAIL = "FAIL"
OK = "OK"
# Not a path fault: the peer's iperf3 server was running another test (a scheduling collision).
NO_EVIDENCE_RESULTS = frozenset({"busy"})

Itemset = frozenset[str]
PathKey = tuple[str, str, str]  # (source, destination, protocol)

VERDICT_OK = "ok"
VERDICT_NO_DATA = "no-data"
VERDICT_SUSPECTS = "suspects"
VERDICT_CLUSTER_WIDE = "cluster-wide"
VERDICT_ISOLATED = "isolated"


@dataclass(frozen=True, kw_only=True)
class Criteria:
    """When a path test counts as FAIL, and when a node is named (collector settings rca_*)."""

    loss_ratio: float = 0.05
    retransmit_ratio: float = 0.02
    mss_bytes: int = 1448
    bandwidth_fraction: float = 0.5
    baseline_min_samples: int = 3
    ebpf_retransmits_per_second: float = 10.0
    min_failing_paths: int = 2
    min_peers: int = 2
    min_confidence: float = 0.5
    min_lift: float = 1.0
    max_suspects: int = 3
    cluster_wide_ratio: float = 0.5
    max_len: int = 2

    def to_json(self) -> dict[str, float]:
        return {k: float(v) for k, v in self.__dict__.items()}


# --------------------------------------------------------------------------- judging


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
            f"bandwidth {bw / 1e6:.0f} Mbit/s < {criteria.bandwidth_fraction:.0%} of the "
            f"path's baseline {baseline_bps / 1e6:.0f} Mbit/s"
        )
    if (
        ebpf_rate is not None
        and criteria.ebpf_retransmits_per_second > 0
        and ebpf_rate > criteria.ebpf_retransmits_per_second
    ):
        reasons.append(ebpf_reason(ebpf_rate, criteria))
    return tuple(reasons)


class Baselines:
    """Each path's recent successful bandwidths; the baseline is their median.

    Counted in tests, not seconds (a sweep can take seconds in the lab and an
    hour on a big cluster). A test is recorded once (by its start time).
    """

    def __init__(self, samples: int = 10) -> None:
        self.samples = samples
        # Tuples, not deques: immutable tuples of numbers drop out of the garbage
        # collector's passes (100,000 paths at 5,000 agents).
        self._hist: dict[PathKey, tuple[tuple[float, float], ...]] = {}

    def baseline(self, key: PathKey, before: float) -> tuple[float | None, int]:
        """Median of the path's samples that started before ``before``, and how many."""
        hist = self._hist.get(key)
        if not hist:
            return None, 0
        vals = [bps for t, bps in hist if t < before]
        return (statistics.median(vals) if vals else None), len(vals)

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
        base, n = baselines.baseline(key, r.started_at)
        if n < criteria.baseline_min_samples:
            base = None
        reasons = judge(
            r,
            criteria,
            baseline_bps=base,
            ebpf_rate=rates.get((r.source, r.destination)) if r.protocol == "tcp" else None,
        )
        if r.ok and r.received_bits_per_second is not None:
            baselines.observe(key, r.started_at, r.received_bits_per_second)
        out.append(
            PathOutcome(
                source=r.source,
                destination=r.destination,
                protocol=r.protocol,
                result=r.result,
                started_at=r.started_at,
                reasons=reasons,
            )
        )
    if prune:
        baselines.keep_only(seen)
    return out


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


# --------------------------------------------------------------------------- mining


def transaction(outcome: PathOutcome) -> Itemset:
    return frozenset(
        {
            f"node={outcome.source}",
            f"node={outcome.destination}",
            f"src={outcome.source}",
            f"dst={outcome.destination}",
            f"protocol={outcome.protocol}",
            FAIL if outcome.failed else OK,
        }
    )


def frequent_itemsets(
    transactions: Sequence[Itemset], min_support: float, max_len: int = 2
) -> dict[Itemset, int]:
    """Apriori: every itemset of up to ``max_len`` items with support ≥ ``min_support``.

    Returns the itemsets with their counts (support = count / len(transactions)).
    """
    n = len(transactions)
    if n == 0 or max_len < 1:
        return {}

    def frequent(count: int) -> bool:
        return count / n >= min_support

    counts: dict[Itemset, int] = defaultdict(int)
    for t in transactions:
        for item in t:
            counts[frozenset((item,))] += 1
    result = {k: v for k, v in counts.items() if frequent(v)}
    level = sorted(tuple(sorted(k)) for k in result)
    frequent_items = {item for key in result for item in key}
    k = 1
    while level and k < max_len:
        k += 1
        prev = set(level)
        candidates: set[tuple[str, ...]] = set()
        for a, b in itertools.combinations(level, 2):
            if a[:-1] != b[:-1]:
                continue
            cand = tuple(sorted((*a, b[-1])))
            if all(sub in prev for sub in itertools.combinations(cand, k - 1)):
                candidates.add(cand)
        if not candidates:
            break
        level_counts: dict[tuple[str, ...], int] = defaultdict(int)
        for t in transactions:
            items = sorted(i for i in t if i in frequent_items)
            for combo in itertools.combinations(items, k):
                if combo in candidates:
                    level_counts[combo] += 1
        kept = {c: v for c, v in level_counts.items() if frequent(v)}
        for c, v in kept.items():
            result[frozenset(c)] = v
        level = sorted(kept)
    return result


@dataclass(frozen=True, kw_only=True)
class Rule:
    antecedent: Itemset
    consequent: Itemset
    count: int  # transactions holding antecedent and consequent
    support: float
    confidence: float
    lift: float

    def to_json(self) -> dict[str, Any]:
        return {
            "antecedent": sorted(self.antecedent),
            "consequent": sorted(self.consequent),
            "count": self.count,
            "support": self.support,
            "confidence": self.confidence,
            "lift": self.lift,
        }

    def text(self) -> str:
        return (
            f"{{{', '.join(sorted(self.antecedent))}}} -> {{{', '.join(sorted(self.consequent))}}}"
        )


def make_rule(
    itemsets: Mapping[Itemset, int], n: int, antecedent: Itemset, consequent: Itemset
) -> Rule | None:
    """The rule's metrics as mlxtend defines them, or None if an itemset is not frequent."""
    whole = itemsets.get(antecedent | consequent)
    a = itemsets.get(antecedent)
    c = itemsets.get(consequent)
    if not whole or not a or not c:
        return None
    s_whole, s_a, s_c = whole / n, a / n, c / n
    confidence = s_whole / s_a
    return Rule(
        antecedent=antecedent,
        consequent=consequent,
        count=whole,
        support=s_whole,
        confidence=confidence,
        lift=confidence / s_c,
    )


# --------------------------------------------------------------------------- verdict


@dataclass(frozen=True, kw_only=True)
class Suspect:
    node: str
    score: float
    explains: int  # failing paths it was picked for (not already explained by earlier suspects)
    failing: int  # all failing paths that involve it
    peers: int
    direction: str  # inbound, outbound or both
    best_rule: Rule

    def to_json(self) -> dict[str, Any]:
        return {
            "node": self.node,
            "score": self.score,
            "explains": self.explains,
            "failing_paths": self.failing,
            "peers": self.peers,
            "direction": self.direction,
            "confidence": self.best_rule.confidence,
            "lift": self.best_rule.lift,
            "rule": self.best_rule.text(),
        }


@dataclass(frozen=True, kw_only=True)
class Analysis:
    verdict: str
    summary: str
    transactions: int
    failing: tuple[PathOutcome, ...]
    suspects: tuple[Suspect, ...]
    scores: dict[str, float]
    rules: tuple[Rule, ...]
    unexplained: tuple[PathOutcome, ...]
    criteria: Criteria
    nodes: tuple[str, ...] = ()
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def failing_ratio(self) -> float:
        return len(self.failing) / self.transactions if self.transactions else 0.0

    def ranking(self) -> list[tuple[str, float]]:
        """Every node: named suspects first (in order), then by score, then by name."""
        order = {s.node: i for i, s in enumerate(self.suspects)}
        return sorted(
            self.scores.items(),
            key=lambda kv: (order.get(kv[0], len(order)), -kv[1], kv[0]),
        )

    def to_json(self, limit: int | None = None) -> dict[str, Any]:
        """The API form; ``limit`` caps the rule and path lists (their full lengths are given)."""

        def cap(items: Sequence[Any]) -> list[Any]:
            return list(items if limit is None else items[:limit])

        return {
            "verdict": self.verdict,
            "summary": self.summary,
            "transactions": self.transactions,
            "failing": len(self.failing),
            "failing_ratio": self.failing_ratio,
            "suspects": [s.to_json() for s in self.suspects],
            "ranking": [{"node": n, "score": s} for n, s in self.ranking()],
            "rules": [r.to_json() for r in cap(self.rules)],
            "rules_total": len(self.rules),
            "failing_paths": [p.to_json() for p in cap(self.failing)],
            "unexplained_paths": [p.to_json() for p in cap(self.unexplained)],
            "unexplained": len(self.unexplained),
            "criteria": self.criteria.to_json(),
            **self.extra,
        }


def _rank_key(rule: Rule) -> tuple[float, float, float, str]:
    return (-rule.confidence, -rule.lift, -rule.support, rule.text())


def analyse(
    outcomes: Sequence[PathOutcome],
    criteria: Criteria,
    nodes: Iterable[str] = (),
    *,
    failing: Sequence[PathOutcome] | None = None,
    complete: bool = False,
) -> Analysis:
    """Mine the rules over ``outcomes`` and decide the verdict (see the module docstring).

    ``failing`` (the failed outcomes, in order) may be given when known;
    ``complete``: ``nodes`` already holds every source and destination.
    """
    n = len(outcomes)
    names = sorted(
        set(nodes)
        if complete
        else {*nodes, *(o.source for o in outcomes), *(o.destination for o in outcomes)}
    )
    scores = dict.fromkeys(names, 0.0)
    failing = tuple(o for o in outcomes if o.failed) if failing is None else tuple(failing)

    def result(verdict: str, summary: str, **kw: Any) -> Analysis:
        return Analysis(
            verdict=verdict,
            summary=summary,
            transactions=n,
            failing=failing,
            suspects=kw.get("suspects", ()),
            scores=scores,
            rules=kw.get("rules", ()),
            unexplained=kw.get("unexplained", failing),
            criteria=criteria,
            nodes=tuple(names),
        )

    if n == 0:
        return result(VERDICT_NO_DATA, "")
    if not failing:
        return result(VERDICT_OK, "")

    transactions = [transaction(o) for o in outcomes]
    min_support = max(1, criteria.min_failing_paths) / n
    itemsets = frequent_itemsets(transactions, min_support, criteria.max_len)
    fail = frozenset((FAIL,))
    rules: list[Rule] = []
    best: dict[str, Rule] = {}
    coverage: dict[str, Rule] = {}
    for name in names:
        for role in ("node", "dst", "src"):
            rule = make_rule(itemsets, n, frozenset((f"{role}={name}",)), fail)
            if rule is None:
                continue
            rules.append(rule)
            if name not in best or _rank_key(rule) < _rank_key(best[name]):
                best[name] = rule
        rule = make_rule(itemsets, n, fail, frozenset((f"node={name}",)))
        if rule is not None:
            rules.append(rule)
            coverage[name] = rule
    for name, rule in best.items():
        if name in coverage and rule.lift > criteria.min_lift:
            scores[name] = coverage[name].confidence * rule.confidence
    rules.sort(key=_rank_key)

    by_node: dict[str, set[int]] = defaultdict(set)
    for i, o in enumerate(failing):
        by_node[o.source].add(i)
        by_node[o.destination].add(i)
    remaining = set(range(len(failing)))
    suspects: list[Suspect] = []
    while remaining and len(suspects) < criteria.max_suspects:
        pick: tuple[tuple[int, float, str], str, set[int], int] | None = None
        for name, rule in best.items():
            if any(s.node == name for s in suspects):
                continue
            if rule.confidence < criteria.min_confidence or rule.lift <= criteria.min_lift:
                continue
            cover = by_node[name] & remaining
            peer_set = {
                failing[i].destination if failing[i].source == name else failing[i].source
                for i in cover
            }
            if len(cover) < criteria.min_failing_paths or len(peer_set) < criteria.min_peers:
                continue
            key = (-len(cover), -scores[name], name)
            if pick is None or key < pick[0]:
                pick = (key, name, cover, len(peer_set))
        if pick is None:
            break
        _key, name, cover, peers = pick
        inbound = sum(1 for i in by_node[name] if failing[i].destination == name)
        outbound = len(by_node[name]) - inbound
        direction = (
            "inbound"
            if inbound >= 2 * outbound
            else "outbound"
            if outbound >= 2 * inbound
            else "both"
        )
        suspects.append(
            Suspect(
                node=name,
                score=scores[name],
                explains=len(cover),
                failing=len(by_node[name]),
                peers=peers,
                direction=direction,
                best_rule=best[name],
            )
        )
        remaining -= cover

    named = {s.node for s in suspects}
    avoiding = [o for o in outcomes if o.source not in named and o.destination not in named]
    background = (
        sum(1 for o in avoiding if o.failed) / len(avoiding) if avoiding else len(failing) / n
    )
    unexplained = tuple(failing[i] for i in sorted(remaining))
    shown_rules = tuple(rules)
    share = len(failing) / n
    if background > criteria.cluster_wide_ratio or (
        share > criteria.cluster_wide_ratio and (remaining or not avoiding)
    ):
        return result(
            VERDICT_CLUSTER_WIDE,
            f"cluster-wide: {len(failing)} of {n} path tests fail ({share:.0%}); "
            f"no node explains it"
            + (
                f" ({background:.0%} of the paths that avoid every suspect fail too)"
                if named
                else ""
            ),
            rules=shown_rules,
            unexplained=failing,
        )
    if not suspects:
        paths = ", ".join(f"{o.source}->{o.destination} {o.protocol}" for o in failing[:5])
        more = f" and {len(failing) - 5} more" if len(failing) > 5 else ""
        return result(
            VERDICT_ISOLATED,
            f"{len(failing)} failing path test(s) with no common node: {paths}{more}",
            rules=shown_rules,
        )
    parts = [
        f"{s.node} ({s.failing} of {len(failing)} failing paths, {s.direction}, "
        f"confidence {s.best_rule.confidence:.2f}, lift {s.best_rule.lift:.2f})"
        for s in suspects
    ]
    lead = "suspect: " if len(suspects) == 1 else f"{len(suspects)} suspects: "
    tail = f"; {len(unexplained)} failing path test(s) unexplained" if unexplained else ""
    return result(
        VERDICT_SUSPECTS,
        lead + "; ".join(parts) + tail,
        suspects=tuple(suspects),
        rules=shown_rules,
        unexplained=unexplained,
    )


# --------------------------------------------------------------------------- live


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
            outcome = hit[1] if hit is not None and hit[0] == mark else self._judge(key, r)
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

    def _judge(self, key: PathKey, r: TestResult) -> PathOutcome:
        base, n = self.baselines.baseline(key, r.started_at)
        if n < self.criteria.baseline_min_samples:
            base = None
        reasons = judge(r, self.criteria, baseline_bps=base)
        if r.ok and r.received_bits_per_second is not None:
            self.baselines.observe(key, r.started_at, r.received_bits_per_second)
        return PathOutcome(
            source=r.source,
            destination=r.destination,
            protocol=r.protocol,
            result=r.result,
            started_at=r.started_at,
            reasons=reasons,
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


class LiveRca:
    """The collector's RCA over time: path baselines, eBPF rates, the latest analysis.

    ``steps`` does one run in short steps (the collector yields to its event
    loop between them: a thread would hold the GIL against the loop's I/O);
    ``run`` does it at once. ``latest`` is replaced whole (readers never see a
    half-made analysis).
    """

    def __init__(
        self,
        criteria: Criteria,
        *,
        baseline_samples: int = 10,
        ebpf_window: float = 30.0,
        perf: Callable[[], float] = time.perf_counter,
    ) -> None:
        self.criteria = criteria
        self.baselines = Baselines(baseline_samples)
        self.judge = PathJudge(criteria, self.baselines)
        self.rates = RetransmitRates(ebpf_window)
        self.perf = perf
        self.latest: Analysis | None = None
        self.computed_at: float | None = None
        self.seconds = 0.0
        self.runs = 0

    def steps(
        self,
        results: Mapping[str, Sequence[TestResult]],
        flows: Mapping[str, Sequence[RetransmitFlow]],
        resolve_node: Callable[[str], str | None],
        *,
        now: float,
        nodes: Iterable[str] = (),
        budget: float = 0.005,
    ) -> Iterator[None]:
        """One run; yields whenever ``budget`` seconds went by.

        ``results``: node → its latest results; ``flows``: node → its eBPF
        flows (``resolve_node`` maps a remote IP to a node). The mining
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
        spent += self.perf() - started
        yield
        started = self.perf()
        analysis = analyse(outcomes, self.criteria, names, failing=failing, complete=True)
        self.latest = analysis
        self.computed_at = now
        self.runs += 1
        self.seconds = spent + self.perf() - started

    def run(
        self,
        results: Mapping[str, Sequence[TestResult]],
        flows: Mapping[str, Sequence[RetransmitFlow]],
        resolve_node: Callable[[str], str | None],
        *,
        now: float,
        nodes: Iterable[str] = (),
    ) -> Analysis:
        for _ in self.steps(results, flows, resolve_node, now=now, nodes=nodes):
            pass
        assert self.latest is not None
        return self.latest
