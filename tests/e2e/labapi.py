"""What a running lab's collector and agents answer: JSON, metrics text, light-tier windows."""

from __future__ import annotations

import urllib.request
from typing import Any

from lab.lab import Lab, get_json

Pair = tuple[str, str]


def api(lab: Lab, path: str, timeout: float = 5.0) -> Any:
    """The collector's JSON at ``path`` (``/api/v1/...``, with its query)."""
    return get_json(lab.collector_url + path, timeout=timeout)


def metrics_text(lab: Lab, timeout: float = 5.0) -> str:
    """The collector's ``/metrics`` exposition."""
    with urllib.request.urlopen(lab.collector_url + "/metrics", timeout=timeout) as resp:
        return str(resp.read().decode())


def busy_total(text: str) -> float:
    """How many tests failed with iperf3's "server is busy", from ``/metrics`` text."""
    total = 0.0
    for line in text.splitlines():
        if line.startswith("netmesh_path_tests_total{") and 'result="busy"' in line:
            total += float(line.rsplit(" ", 1)[1])
    return total


def agent_report(lab: Lab, name: str, timeout: float = 5.0) -> dict[str, Any]:
    """The agent of node ``name``'s own ``/api/v1/report``."""
    return dict(get_json(lab.agent_url(lab.topo.node(name)) + "/api/v1/report", timeout=timeout))


def ordered_pairs(lab: Lab) -> set[Pair]:
    """Every (source, destination) pair of distinct lab nodes."""
    names = [n.name for n in lab.topo.nodes]
    return {(a, b) for a in names for b in names if a != b}


def light_windows_after(
    lab: Lab, since: float, min_probes: float = 0
) -> list[dict[str, Any]] | None:
    """The collector's light-tier paths whose window began after ``since`` (and that sent at
    least ``min_probes`` probes), once every ordered pair has one; None until then."""
    paths: list[dict[str, Any]] = api(lab, "/api/v1/light")["paths"]
    got = [
        p
        for p in paths
        if p["reported_at"] - p["window_seconds"] > since
        and (not min_probes or p["values"]["netmesh_light_probes"] >= min_probes)
    ]
    return got if {(p["source"], p["destination"]) for p in got} >= ordered_pairs(lab) else None
