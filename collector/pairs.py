"""Offline RCA, eBPF evidence: retransmissions per (source, destination) pair (no I/O).

Which series: any result object, counter or gauge, whose labels name a
source and a destination, by the first of these label schemes that fits:

- netmesh's collector family ``netmesh_tcp_retransmits_total{node, src_namespace,
  src_pod, dst_namespace, dst_pod, port}`` (endpoints ``namespace/pod``; a node
  name for node and hostNetwork IPs; unknown IPs raw; the ``other`` bucket left out);
- the source design's ``src_ip`` / ``dst_ip`` (``sum(...) by (src_ip, dst_ip)``);
- netmesh's agent family ``netmesh_tcp_flow_retransmits_total{local_address,
  remote_address}`` (the local address is the one retransmitting: the source);
- ``source`` / ``destination``, ``src`` / ``dst``.

The path gauges (``netmesh_path_*``) are path tests, never pair evidence.
Node endpoints (``level="node"``) need netmesh's collector family: the source
is the counting node (its kernel retransmitted); the destination is a node
name as the collector resolved it, or the node a destination pod was seen
sending from; other destinations are left out (and counted).

Evidence per pair, summed over its series: for a counter, the increase over
the window as Prometheus' ``increase()`` counts it (a drop is a reset: the
value after it counts from zero), without extrapolating to the window's
edges; for a gauge, its largest value. Counter when the name ends in
``_total`` or there is no name (an aggregation of one, as in the design's
query), unless ``kind`` says otherwise.
"""

from __future__ import annotations

import itertools
import math
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from collector.rangequery import PATH_FAMILIES, OfflineError
from netmesh import catalogue as cat

Pair = tuple[str, str]
Points = tuple[tuple[float, float], ...]  # (time, value), in time order
Kind = Literal["counter", "gauge"]
Level = Literal["pod", "node"]

NODE, SRC_NS, SRC_POD, DST_NS, DST_POD, PORT = cat.RETRANSMITS.label_names(cat.COLLECTOR)
LOCAL, REMOTE, _FLOW_PORT = cat.FLOW_RETRANSMITS.labels
OTHER = "other"  # the collector's and the agent's overflow bucket


@dataclass(frozen=True)
class Scheme:
    """The labels naming a pair's source and destination (and their namespaces)."""

    source: str
    destination: str
    source_namespace: str = ""
    destination_namespace: str = ""

    def fits(self, metric: Mapping[str, str]) -> bool:
        return self.source in metric and self.destination in metric

    def endpoint(self, metric: Mapping[str, str], name: str, namespace: str) -> str:
        ns = metric.get(namespace, "") if namespace else ""
        return f"{ns}/{metric[name]}" if ns else metric[name]

    def pair(self, metric: Mapping[str, str]) -> Pair:
        return (
            self.endpoint(metric, self.source, self.source_namespace),
            self.endpoint(metric, self.destination, self.destination_namespace),
        )

    def describe(self) -> str:
        src = f"{self.source_namespace}/{self.source}" if self.source_namespace else self.source
        dst = (
            f"{self.destination_namespace}/{self.destination}"
            if self.destination_namespace
            else self.destination
        )
        return f"{src} -> {dst}"


NETMESH = Scheme(SRC_POD, DST_POD, SRC_NS, DST_NS)
SCHEMES = (
    NETMESH,
    Scheme("src_ip", "dst_ip"),
    Scheme(LOCAL, REMOTE),
    Scheme("source", "destination"),
    Scheme("src", "dst"),
)
LABEL_HELP = ", ".join(s.describe() for s in SCHEMES)


def increase(points: Points) -> float:
    """A counter's increase over ``points`` as ``increase()`` counts resets (no extrapolation)."""
    total = 0.0
    for (_, before), (_, after) in itertools.pairwise(points):
        total += after - before if after >= before else after
    return total


@dataclass(frozen=True, kw_only=True)
class Evidence:
    """The pair series of a window, by (source, destination) endpoint."""

    scheme: Scheme
    level: Level
    kind: Kind
    names: tuple[str, ...]  # metric names ("" for an aggregation without one)
    series: Mapping[Pair, tuple[Points, ...]]
    endpoints: tuple[str, ...]
    left_out: int = 0  # pair series that name no usable pair (other bucket, self, unresolved)
    samples: int = 0
    start: float | None = None
    end: float | None = None

    def amount(self, pair: Pair) -> float:
        """Retransmissions of ``pair`` in the window (counter increase, or the gauge's maximum)."""
        parts = self.series.get(pair, ())
        if self.kind == "gauge":
            return max((v for points in parts for _, v in points), default=0.0)
        return sum(increase(points) for points in parts)

    def amounts(self) -> dict[Pair, float]:
        return {pair: self.amount(pair) for pair in self.series}

    def rate_at(self, pair: Pair, at: float, window: float) -> float | None:
        """Retransmissions per second of a counter pair over the ``window`` seconds up to ``at``
        (the live collector's rate; the last two samples when the window holds fewer)."""
        total, known = 0.0, False
        for points in self.series.get(pair, ()):
            upto = [p for p in points if p[0] <= at]
            recent = [p for p in upto if p[0] >= at - window]
            if len(recent) < 2:
                recent = upto[-2:]
            if len(recent) < 2 or recent[-1][0] <= recent[0][0]:
                continue
            total += increase(tuple(recent)) / (recent[-1][0] - recent[0][0])
            known = True
        return total if known else None

    def describe(self) -> str:
        names = ", ".join(n or "(no metric name)" for n in self.names)
        where = f" ({self.left_out} series left out)" if self.left_out else ""
        how = "increase" if self.kind == "counter" else "largest value"
        return (
            f"{sum(len(s) for s in self.series.values())} series of {names}{where}; labels "
            f"{self.scheme.describe()}; {self._endpoints()}; {self.kind} ({how} in the window)"
        )

    def _endpoints(self) -> str:
        return f"{self.level} endpoints" if self.scheme == NETMESH else "endpoints as labelled"

    def to_json(self) -> dict[str, Any]:
        return {
            "metrics": list(self.names),
            "labels": {"source": self.scheme.source, "destination": self.scheme.destination},
            "level": self.level,
            "kind": self.kind,
            "series": sum(len(s) for s in self.series.values()),
            "left_out": self.left_out,
            "samples": self.samples,
            "start": self.start,
            "end": self.end,
        }


def _points(values: Sequence[Sequence[Any]]) -> Points:
    pts = sorted((float(t), float(v)) for t, v in values)
    return tuple((t, v) for t, v in pts if math.isfinite(v))


def _kind(name: str, kind: Kind | None) -> Kind:
    if kind is not None:
        return kind
    return "counter" if not name or name.endswith("_total") else "gauge"


def find_evidence(
    series: Sequence[Mapping[str, Any]], *, level: Level = "pod", kind: Kind | None = None
) -> Evidence | None:
    """The pair evidence among ``series``; None when no series names a source and destination."""
    candidates = [
        s
        for s in series
        if s["metric"].get("__name__") not in PATH_FAMILIES
        and any(scheme.fits(s["metric"]) for scheme in SCHEMES)
    ]
    if not candidates:
        return None
    names = sorted({s["metric"].get("__name__", "") for s in candidates})
    if len(names) > 1:
        shown = ", ".join(n or "(no metric name)" for n in names)
        raise OfflineError(f"the pair series belong to several metrics ({shown}): keep one")
    scheme = next(sc for sc in SCHEMES if any(sc.fits(s["metric"]) for s in candidates))
    if level == "node" and scheme != NETMESH:
        raise OfflineError(
            f"node endpoints need {cat.RETRANSMITS.name}'s labels ({NODE}, {SRC_POD}, "
            f"{DST_POD}); this file names pairs by {scheme.describe()}: use pod endpoints"
        )
    pod_node = {  # a pod that retransmitted is on the node that counted it
        scheme.pair(s["metric"])[0]: s["metric"][NODE]
        for s in candidates
        if level == "node" and scheme.fits(s["metric"]) and s["metric"].get(NODE)
    }
    by_pair: dict[Pair, list[Points]] = defaultdict(list)
    endpoints: set[str] = set()
    left_out = samples = 0
    times: list[float] = []
    for s in candidates:
        metric = s["metric"]
        if not scheme.fits(metric):
            left_out += 1
            continue
        src, dst = scheme.pair(metric)
        if level == "node":
            node_dst = metric[DST_POD] if not metric.get(DST_NS) else pod_node.get(dst)
            src, dst = metric.get(NODE, ""), node_dst or ""
        if OTHER in (src, dst) or metric.get(PORT) == OTHER or not src or not dst or src == dst:
            left_out += 1
            continue
        points = _points(s["values"])
        samples += len(points)
        times += [t for t, _ in points[:1] + points[-1:]]
        endpoints.update((src, dst))
        by_pair[(src, dst)].append(points)
    if not samples:
        raise OfflineError(
            f"the window holds no samples of {names[0] or 'the pair series'} "
            f"({len(candidates)} series, all empty or unusable)"
        )
    return Evidence(
        scheme=scheme,
        level=level,
        kind=_kind(names[0], kind),
        names=tuple(names),
        series={pair: tuple(parts) for pair, parts in by_pair.items()},
        endpoints=tuple(sorted(endpoints)),
        left_out=left_out,
        samples=samples,
        start=min(times),
        end=max(times),
    )
