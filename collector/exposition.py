"""Prometheus text exposition (format 0.0.4) for the merged /metrics, by hand and fast.

The text format wants every sample of a family in one group under one
``# HELP``/``# TYPE`` header, so an agent cannot be cached as one block.
Instead each agent's report is rendered once, when it arrives, into one
*fragment* (bytes) per family (``AGENT_FAMILIES``); a scrape only joins, per
family, the header and every agent's cached fragment. Retransmission
fragments depend on the pod map as well and are re-rendered when an IP they
name changes identity (collector/state.py tracks that).

Everything here is pure: reports and lookups in, bytes out.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

from collector.podmap import OTHER, Identity
from netmesh import catalogue as cat
from netmesh.catalogue import (
    LIGHT_GAUGES,
    NETWORK_LIGHT_LABELS,
    NETWORK_PATH_LABELS,
    PATH_GAUGES,
    MetricFamily,
)
from netmesh.wire import DropFlow, LightPath, Report, RetransmitFlow, TestResult

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


RETRANSMIT_LABELS = cat.RETRANSMITS.label_names(cat.COLLECTOR)

# Order of an agent's cached fragments: health, probe, light tier up, path gauges,
# test counters, light-tier path gauges, the light-tier RTT histogram, other per-node rows
# (the DNS check).
AGENT_FAMILIES: tuple[cat.MetricFamily, ...] = (
    *(f for f, _ in cat.HEALTH),
    cat.PROBE_UP,
    cat.LIGHT_UP,
    *cat.PATH_FAMILIES,
    cat.PATH_TESTS,
    *cat.LIGHT_FAMILIES,
    cat.LIGHT_RTT,
    *(f for f, _ in cat.REPORT_ROWS),
)
N_FRAGMENTS = len(AGENT_FAMILIES)
_PROBE_UP = len(cat.HEALTH)
_LIGHT_UP = _PROBE_UP + 1
_PATHS = _LIGHT_UP + 1
_TESTS = _PATHS + len(cat.PATH_FAMILIES)
_LIGHT_PATHS = _TESTS + 1
_LIGHT_RTT = _LIGHT_PATHS + len(cat.LIGHT_FAMILIES)
_REPORT_ROWS = _LIGHT_RTT + 1
_BUCKET_LE = tuple(f',le="{le}"}} ' for le in cat.RTT_BUCKET_LABELS)
DROP_LABELS = cat.DROPS_BY_REMOTE.label_names(cat.COLLECTOR)


# --------------------------------------------------------------------------- formatting


def escape(value: str) -> str:
    if "\\" in value or '"' in value or "\n" in value:
        return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return value


def labels(names: Sequence[str], values: Sequence[str]) -> str:
    return "{" + ",".join(f'{n}="{escape(v)}"' for n, v in zip(names, values, strict=True)) + "}"


def number(value: float) -> str:
    if value == int(value) and abs(value) < 1e15:
        return str(int(value))
    return repr(value)


def sample(family: MetricFamily, label_text: str, value: float) -> str:
    return f"{family.name}{label_text} {number(value)}\n"


# --------------------------------------------------------------------------- per agent


@dataclass(frozen=True, slots=True)
class AgentBlock:
    fragments: tuple[bytes, ...]  # one per AGENT_FAMILIES entry
    series: int
    dropped: int


def histogram_lines(family: MetricFamily, label_text: str, lp: LightPath) -> str:
    """A path's RTT histogram: a ``_bucket`` line per bound and +Inf, ``_sum``, ``_count``.

    ``label_text`` is the path's ``{...}``; ``le`` goes last inside it."""
    counts = lp.rtt_bucket_counts or ()
    inner = label_text[:-1]
    bucket = f"{family.name}_bucket{inner}"
    lines = [
        f"{bucket}{le}{c}\n" for le, c in zip(_BUCKET_LE, (*counts, lp.rtt_count), strict=True)
    ]
    lines.append(f"{family.name}_sum{label_text} {number(lp.rtt_sum_seconds)}\n")
    lines.append(f"{family.name}_count{label_text} {lp.rtt_count}\n")
    return "".join(lines)


def _result_series(result: TestResult) -> int:
    return sum(1 for _, value_of in PATH_GAUGES if value_of(result) is not None)


def _render_health(report: Report, parts: list[list[str]]) -> None:
    node_label = labels(("node",), (report.node,))
    for i, (fam, value_of) in enumerate(cat.HEALTH):
        value = value_of(report)
        if value is not None:
            parts[i].append(sample(fam, node_label, value))
    if report.probe is not None:
        probe_labels = labels(
            cat.PROBE_UP.label_names(cat.COLLECTOR),
            (report.node, report.probe.mode, report.probe.reason),
        )
        parts[_PROBE_UP].append(sample(cat.PROBE_UP, probe_labels, float(report.probe.up)))
    if report.light is not None:
        light_labels = labels(
            cat.LIGHT_UP.label_names(cat.COLLECTOR), (report.node, report.light.reason)
        )
        parts[_LIGHT_UP].append(sample(cat.LIGHT_UP, light_labels, float(report.light.up)))


def render_agent(report: Report, *, max_series: int, light_histogram: bool = True) -> AgentBlock:
    """Every family of one report except retransmissions, capped at ``max_series`` path series
    (the light tier's RTT histogram left out without ``light_histogram``)."""
    parts: list[list[str]] = [[] for _ in range(N_FRAGMENTS)]
    if report.network == "host":
        # A pod endpoint's health is on its own /metrics: node-labelled families
        # would collide with its node's host agent (collector/metrics.py gives its up/age).
        _render_health(report, parts)
    # The checks' rows (DNS, Service) carry the network: a pod endpoint's are its own.
    for i, (fam, rows_of) in enumerate(cat.REPORT_ROWS):
        names = fam.label_names(cat.COLLECTOR)
        for values, row_value in rows_of(report):
            parts[_REPORT_ROWS + i].append(
                sample(fam, labels(names, (report.node, *values)), row_value)
            )
    net = report.network
    budget = max_series
    total = 0
    offset = _PATHS
    for result in sorted(report.results, key=lambda r: (r.destination, r.protocol)):
        n = _result_series(result)
        total += n
        if n > budget:
            continue
        budget -= n
        label_text = labels(
            NETWORK_PATH_LABELS, (report.node, result.destination, result.protocol, net)
        )
        for j, (path_family, value_of_result) in enumerate(PATH_GAUGES):
            value = value_of_result(result)
            if value is not None:
                parts[offset + j].append(f"{path_family.name}{label_text} {number(value)}\n")
    tests_index = _TESTS
    for count in sorted(report.tests, key=lambda t: (t.destination, t.protocol, t.result)):
        total += 1
        if budget < 1:
            continue
        budget -= 1
        label_text = labels(
            cat.PATH_TESTS.labels,
            (report.node, count.destination, count.protocol, net, count.result),
        )
        parts[tests_index].append(f"{cat.PATH_TESTS.name}{label_text} {count.count}\n")
    light_paths = report.light.paths if report.light is not None else ()
    for lp in light_paths:
        light_values = [(j, fam, value_of(lp)) for j, (fam, value_of) in enumerate(LIGHT_GAUGES)]
        present = [(j, fam, v) for j, fam, v in light_values if v is not None]
        hist = light_histogram and lp.rtt_bucket_counts is not None
        n = len(present) + (cat.LIGHT_RTT_SERIES_PER_PATH if hist else 0)
        total += n
        if n > budget:
            continue
        budget -= n
        label_text = labels(NETWORK_LIGHT_LABELS, (report.node, lp.destination, net))
        for j, fam, v in present:
            parts[_LIGHT_PATHS + j].append(f"{fam.name}{label_text} {number(v)}\n")
        if hist:
            parts[_LIGHT_RTT].append(histogram_lines(cat.LIGHT_RTT, label_text, lp))
    kept = max_series - budget
    return AgentBlock(
        fragments=tuple("".join(p).encode() for p in parts),
        series=kept,
        dropped=total - kept,
    )


FlowKey = tuple[Identity, Identity, int]


@dataclass(frozen=True, slots=True)
class RetransmitBlock:
    fragment: bytes
    keys: frozenset[FlowKey]  # the flows shown on their own (kept next time: stable series)
    ips: frozenset[str]  # the IPs whose identity this block depends on
    series: int
    folded: int  # flows folded into the 'other' bucket


def render_retransmits(
    node: str,
    flows: Iterable[RetransmitFlow],
    resolve: Callable[[str], Identity],
    *,
    cap: int,
    previous: frozenset[FlowKey] = frozenset(),
) -> RetransmitBlock:
    """Aggregate flows to identity pairs, keep at most ``cap`` series, fold the rest to 'other'.

    Pairs shown last time are kept first (their counters stay continuous), then
    the largest. The agent's own overflow bucket (local == "other") folds in.
    """
    totals: dict[FlowKey, int] = {}
    ips: set[str] = set()
    other = 0
    for flow in flows:
        if flow.local == "other" or flow.remote == "other":
            other += flow.count
            continue
        ips.add(flow.local)
        ips.add(flow.remote)
        key = (resolve(flow.local), resolve(flow.remote), flow.port)
        totals[key] = totals.get(key, 0) + flow.count
    has_other = other > 0 or len(totals) > cap
    room = cap - 1 if has_other else cap
    ranked = sorted(totals.items(), key=lambda kv: (kv[0] not in previous, -kv[1], _order(kv[0])))
    shown = ranked[:room]
    folded = ranked[room:]
    other += sum(count for _, count in folded)
    lines = [
        f"{cat.RETRANSMITS.name}"
        f"{labels(RETRANSMIT_LABELS, (node, s.namespace, s.name, d.namespace, d.name, str(port)))}"
        f" {count}\n"
        for (s, d, port), count in sorted(shown, key=lambda kv: _order(kv[0]))
    ]
    if has_other:
        other_labels = labels(
            RETRANSMIT_LABELS,
            (node, OTHER.namespace, OTHER.name, OTHER.namespace, OTHER.name, "other"),
        )
        lines.append(f"{cat.RETRANSMITS.name}{other_labels} {other}\n")
    return RetransmitBlock(
        fragment="".join(lines).encode(),
        keys=frozenset(k for k, _ in shown),
        ips=frozenset(ips),
        series=len(lines),
        folded=len(folded),
    )


DropKey = tuple[str, Identity, str]  # (reason, remote identity, protocol)


EMPTY_BLOCK = RetransmitBlock(b"", frozenset(), frozenset(), 0, 0)


def render_drops(
    node: str,
    flows: Iterable[DropFlow],
    resolve: Callable[[str], Identity],
    *,
    cap: int,
    previous: frozenset[DropKey] = frozenset(),
) -> tuple[RetransmitBlock, frozenset[DropKey]]:
    """Drop flows by (reason, remote identity, protocol), at most ``cap`` series, rest 'other'.

    The same habits as ``render_retransmits`` (series shown last time first, then
    the largest); returns the block and the keys shown.
    """
    totals: dict[DropKey, int] = {}
    ips: set[str] = set()
    other = 0
    for flow in flows:
        if flow.remote == "other":
            other += flow.count
            continue
        ips.add(flow.remote)
        key = (flow.reason, resolve(flow.remote), flow.protocol)
        totals[key] = totals.get(key, 0) + flow.count
    has_other = other > 0 or len(totals) > cap
    room = cap - 1 if has_other else cap

    def order(key: DropKey) -> tuple[str, str, str, str]:
        return (key[0], key[1].namespace, key[1].name, key[2])

    ranked = sorted(totals.items(), key=lambda kv: (kv[0] not in previous, -kv[1], order(kv[0])))
    shown, folded = ranked[:room], ranked[room:]
    other += sum(count for _, count in folded)
    name = cat.DROPS_BY_REMOTE.name
    lines = [
        f"{name}{labels(DROP_LABELS, (node, reason, r.namespace, r.name, proto))} {count}\n"
        for (reason, r, proto), count in sorted(shown, key=lambda kv: order(kv[0]))
    ]
    if has_other:
        other_labels = labels(DROP_LABELS, (node, "other", OTHER.namespace, OTHER.name, "other"))
        lines.append(f"{name}{other_labels} {other}\n")
    block = RetransmitBlock(
        fragment="".join(lines).encode(),
        keys=frozenset(),
        ips=frozenset(ips),
        series=len(lines),
        folded=len(folded),
    )
    return block, frozenset(k for k, _ in shown)


def _order(key: FlowKey) -> tuple[str, str, str, str, int]:
    s, d, port = key
    return (s.namespace, s.name, d.namespace, d.name, port)


# --------------------------------------------------------------------------- merging


def merge(
    families: Sequence[MetricFamily],
    fragments: Sequence[Iterable[bytes]],
) -> list[bytes]:
    """Header + fragments per family, as one flat list; families without samples left out.

    The fragments are not joined here: the caller joins everything once, so a
    scrape copies each byte once (at 5,000 agents that is ~100 MB, not ~200).
    """
    out: list[bytes] = []
    for family, frags in zip(families, fragments, strict=True):
        parts = [f for f in frags if f]
        if parts:
            out.append(family.header())
            out += parts
    return out


def render_family(family: MetricFamily, rows: Iterable[tuple[Sequence[str], float]]) -> bytes:
    """A whole family at once (self-metrics and per-scrape families), the catalogue's labels."""
    names = family.label_names(cat.COLLECTOR)
    body = "".join(sample(family, labels(names, values), value) for values, value in rows)
    return family.header() + body.encode() if body else b""


def render_simple(items: Mapping[MetricFamily, float]) -> bytes:
    return b"".join(family.header() + sample(family, "", v).encode() for family, v in items.items())
