"""The dashboard and rule files under dashboards/, and what the tests derive from them.

Shared by the unit tests (tests/dashboards/) and the real-Prometheus e2e test
(tests/e2e/test_prometheus.py): panel queries with the Grafana variables
substituted, a copy of the rules with short ``for:`` and group intervals, the
metric names the files use, and a ``promtool`` runner.
"""

from __future__ import annotations

import copy
import json
import pathlib
import re
import shutil
import subprocess
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import yaml

from netmesh import catalogue

ROOT = pathlib.Path(__file__).resolve().parents[2]
DASHBOARDS = ROOT / "dashboards"
DASHBOARD = DASHBOARDS / "netmesh.json"
RULES_DIR = DASHBOARDS / "rules"
RULE_FILES = sorted(RULES_DIR.glob("*.yaml"))
RULE_TESTS = sorted((DASHBOARDS / "tests").glob("*.yaml"))
README = ROOT / "README.md"

# The metric the RCA issue will add to the collector; the dashboard's RCA row reads it.
# Grafana's built-in variables, replaced by what Grafana would use for a short range.
BUILTIN_VARIABLES = {"__rate_interval": "1m", "__interval": "15s", "__range": "1h"}


def promtool() -> str | None:
    return shutil.which("promtool")


def run_promtool(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    exe = promtool()
    assert exe is not None, "promtool is not installed (scripts/install-deps.sh installs it)"
    return subprocess.run(
        [exe, *args], capture_output=True, text=True, timeout=timeout, check=False
    )


def load_dashboard() -> dict[str, Any]:
    return dict(json.loads(DASHBOARD.read_text()))


def load_rule_groups() -> list[dict[str, Any]]:
    groups: list[dict[str, Any]] = []
    for path in RULE_FILES:
        groups += yaml.safe_load(path.read_text())["groups"]
    return groups


def rules() -> Iterator[dict[str, Any]]:
    for group in load_rule_groups():
        yield from group["rules"]


def alerts() -> list[dict[str, Any]]:
    return [r for r in rules() if "alert" in r]


def recorded_names() -> set[str]:
    return {r["record"] for r in rules() if "record" in r}


# --------------------------------------------------------------------------- panels


@dataclass(frozen=True)
class Query:
    panel_id: int
    panel_title: str
    ref: str
    expr: str  # as written in the dashboard, with $variables
    instant: bool

    @property
    def name(self) -> str:
        return f"panel {self.panel_id} {self.panel_title!r} query {self.ref}"


def panels(dashboard: Mapping[str, Any]) -> Iterator[dict[str, Any]]:
    """Every panel, rows' nested panels included (rows themselves left out)."""
    for panel in dashboard["panels"]:
        if panel["type"] == "row":
            yield from panel.get("panels", [])
        else:
            yield panel


def queries(dashboard: Mapping[str, Any]) -> list[Query]:
    return [
        Query(p["id"], p["title"], t["refId"], t["expr"], bool(t.get("instant")))
        for p in panels(dashboard)
        for t in p.get("targets", [])
    ]


_VARIABLE = re.compile(r"\$\{(\w+)(?::\w+)?\}|\$(\w+)")


def substitute(text: str, values: Mapping[str, str]) -> str:
    """Replace ``$name`` / ``${name}`` by ``values`` or Grafana's built-ins; unknown ones fail."""

    def one(m: re.Match[str]) -> str:
        name = m.group(1) or m.group(2)
        if name in values:
            return values[name]
        if name in BUILTIN_VARIABLES:
            return BUILTIN_VARIABLES[name]
        raise KeyError(f"unknown variable ${name} in {text!r}")

    return _VARIABLE.sub(one, text)


_LABEL_VALUES = re.compile(r"^\s*label_values\(\s*(?:(?P<sel>.*),\s*)?(?P<label>\w+)\s*\)\s*$")


@dataclass(frozen=True)
class Variable:
    name: str
    selector: str  # series selector (may contain $variables); empty = all series
    label: str


def query_variables(dashboard: Mapping[str, Any]) -> list[Variable]:
    """The ``label_values(selector, label)`` variables, in dashboard order."""
    out: list[Variable] = []
    for var in dashboard["templating"]["list"]:
        if var["type"] != "query":
            continue
        query = var["query"]["query"] if isinstance(var["query"], dict) else var["query"]
        m = _LABEL_VALUES.match(query)
        assert m, f"variable {var['name']}: not label_values(selector, label): {query!r}"
        out.append(Variable(var["name"], (m.group("sel") or "").strip(), m.group("label")))
    return out


# --------------------------------------------------------------------------- metric names

_NAME = re.compile(r"(?<![\w:\"$])(netmesh[a-zA-Z0-9_:]*)")


def metric_names(expr: str) -> set[str]:
    """The netmesh metric and recording-rule names an expression mentions."""
    return set(_NAME.findall(expr))


def exposed_metric_names() -> set[str]:
    """Every series name the collector's /metrics can carry (from the catalogue)."""
    return {n for f in catalogue.exposed_by(catalogue.COLLECTOR) for n in f.series_names}


# --------------------------------------------------------------------------- short rules


def short_rules(for_: str = "2s", interval: str = "1s") -> dict[str, str]:
    """The rule files with every ``for:`` and group ``interval:`` shortened (file name → YAML).

    Expressions, thresholds, labels and annotations stay exactly as shipped,
    so a real Prometheus can show an alert going pending/firing within seconds.
    """
    out: dict[str, str] = {}
    for path in RULE_FILES:
        doc = copy.deepcopy(yaml.safe_load(path.read_text()))
        for group in doc["groups"]:
            group["interval"] = interval
            for rule in group["rules"]:
                if "for" in rule:
                    rule["for"] = for_
        out[path.name] = yaml.safe_dump(doc, sort_keys=False, allow_unicode=True)
    return out
