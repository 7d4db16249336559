"""Offline RCA, retrieval: Prometheus range queries over a window, saved and loaded as JSONL.

Every series is one JSON line, exactly as Prometheus' ``query_range`` returns it
(``{"metric": {...}, "values": [[t, "v"], ...]}``), so
``curl .../query_range | jq -c '.data.result[]'`` makes a valid input too —
with or without ``__name__`` (an aggregation like ``sum(x) by (src_ip, dst_ip)``
has none). What a method needs from the series is checked by that method
(``collector/pathtests.py``, ``collector/pairs.py``).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import re
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterable, Sequence
from typing import Any

from netmesh import catalogue as cat
from netmesh.wire import PROTOCOLS

MAX_POINTS = 10_000  # Prometheus refuses more than 11,000 points per series
PATH_FAMILIES = frozenset(f.name for f in cat.PATH_FAMILIES)

Series = dict[str, Any]


class OfflineError(Exception):
    """Something the user must fix; the message says what."""


_DURATION = re.compile(r"^(\d+(?:\.\d+)?)(ms|s|m|h|d|w)$")
_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_duration(text: str) -> float:
    """``90s``, ``15m``, ``2h``, ``7d`` → seconds."""
    m = _DURATION.match(text.strip())
    if not m or float(m.group(1)) <= 0:
        raise argparse.ArgumentTypeError(f"{text!r}: use a duration like 30s, 15m, 2h or 7d")
    return float(m.group(1)) * _UNITS[m.group(2)]


def query_range(
    base: str, query: str, *, start: float, end: float, step: float, timeout: float
) -> list[Series]:
    params = urllib.parse.urlencode({"query": query, "start": start, "end": end, "step": step})
    url = base.rstrip("/") + "/api/v1/query_range?" + params
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            raw = resp.read()
    except urllib.error.HTTPError as exc:
        detail = exc.read().decode(errors="replace")
        with contextlib.suppress(ValueError, AttributeError):
            detail = str(json.loads(detail).get("error", detail))
        raise OfflineError(f"Prometheus at {base} rejected {query!r}: {detail}") from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise OfflineError(f"cannot reach Prometheus at {base}: {reason}") from None
    try:
        body = json.loads(raw)
        result = body["data"]["result"]
        if body.get("status") != "success" or not isinstance(result, list):
            raise ValueError(body.get("error", "not a success"))
    except (ValueError, KeyError, TypeError) as exc:
        raise OfflineError(
            f"{base} did not answer like Prometheus' query_range API ({exc}); is it Prometheus?"
        ) from None
    return [dict(series) for series in result]


def retrieve(
    base: str,
    since: float,
    names: Sequence[str],
    *,
    required: str,
    step: float | None,
    selector: str,
    timeout: float,
    now: float,
) -> list[Series]:
    """Every series of the families ``names`` over the last ``since`` seconds.

    ``required``: the family without which there is nothing to analyse.
    """
    if not base.startswith(("http://", "https://")):
        raise OfflineError(f"--prometheus {base!r}: give a URL like http://prometheus:9090")
    step = step or max(1.0, math.ceil(since / MAX_POINTS))
    if since / step > MAX_POINTS:
        raise OfflineError(
            f"--step {step:g}s gives {since / step:.0f} points per series over --since "
            f"{since:g}s; Prometheus allows about 11000: use a larger --step"
        )
    out: list[Series] = []
    for name in names:
        out += query_range(
            base, f"{name}{{{selector}}}", start=now - since, end=now, step=step, timeout=timeout
        )
    if not any(s.get("metric", {}).get("__name__") == required for s in out):
        raise OfflineError(
            f"Prometheus at {base} has no {required}{{{selector}}} samples in the last "
            f"{since:g}s: is it scraping the netmesh collector (and is the selector right)?"
        )
    return out


def save(series: Iterable[Series], path: str) -> int:
    n = 0
    with open(path, "w") as fh:
        for s in series:
            fh.write(json.dumps(s, separators=(",", ":")) + "\n")
            n += 1
    return n


def load(path: str) -> list[Series]:
    """Read a JSONL file of series; a malformed line is an error naming it."""
    try:
        fh = open(path)  # noqa: SIM115 - closed below
    except OSError as exc:
        raise OfflineError(f"cannot read {path}: {exc.strerror or exc}") from None
    out: list[Series] = []
    with fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            where = f"{path}:{lineno}"
            try:
                obj = json.loads(line)
            except ValueError as exc:
                raise OfflineError(
                    f"{where}: not JSON ({exc}); expected JSON lines, one Prometheus "
                    '{"metric": {...}, "values": [[t, "v"], ...]} object per line'
                ) from None
            out.append(check_series(obj, where))
    if not out:
        raise OfflineError(f"{path}: no series (the file is empty)")
    return out


def check_series(obj: Any, where: str) -> Series:
    if not isinstance(obj, dict):
        raise OfflineError(f"{where}: expected an object with 'metric' and 'values'")
    metric, values = obj.get("metric"), obj.get("values")
    if not isinstance(metric, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in metric.items()
    ):
        raise OfflineError(f"{where}: 'metric' must be an object of label names to strings")
    name = metric.get("__name__")
    if name in PATH_FAMILIES:
        missing = [label for label in cat.PATH_LABELS if not isinstance(metric.get(label), str)]
        if missing:
            raise OfflineError(f"{where}: {name} without label(s) {missing}")
        if metric["protocol"] not in PROTOCOLS:
            raise OfflineError(f"{where}: unknown protocol {metric['protocol']!r}")
    if not isinstance(values, list):
        raise OfflineError(f"{where}: 'values' must be a list of [time, \"value\"] pairs")
    for i, pair in enumerate(values):
        try:
            t, v = pair
            t, v = float(t), float(v)
        except (TypeError, ValueError):
            raise OfflineError(
                f'{where}: values[{i}] = {pair!r} is not a [time, "value"] pair'
            ) from None
        if not math.isfinite(t):
            raise OfflineError(f"{where}: values[{i}] has a time that is not a number")
    return {"metric": metric, "values": values}
