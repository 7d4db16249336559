"""Helpers for RCA runs on a lab: read the verdict, wait for it, time it (tests and benchmark)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from lab.lab import Lab, get_json
from tests.helpers import wait_for

Named = tuple[str, str]


def verdict(lab: Lab) -> dict[str, Any]:
    return dict(get_json(lab.collector_url + "/api/v1/rca", timeout=5))


def suspects(body: dict[str, Any]) -> list[str]:
    return [str(s["node"]) for s in body.get("suspects", [])]


def findings(body: dict[str, Any]) -> set[Named]:
    """(kind, subject) of every finding."""
    return {(str(f["kind"]), str(f["subject"])) for f in body.get("findings", [])}


def named(body: dict[str, Any]) -> set[Named]:
    """Everything the verdict names: its findings, and every suspect as ("node", name)."""
    return findings(body) | {("node", s) for s in suspects(body)}


def rca_deadline(lab: Lab, sweeps: float) -> float:
    """``sweeps`` full sweeps plus one report interval and one RCA run (2 s)."""
    return sweeps * lab.settings.sweep_seconds() + lab.settings.report_interval + 2.0


def wait_verdict(
    lab: Lab,
    until: Callable[[dict[str, Any]], object],
    timeout: float,
    what: str,
    interval: float = 0.5,
) -> tuple[dict[str, Any], float]:
    """Until ``until(verdict)`` holds (fail after ``timeout``): the body, the seconds it took."""
    start = time.monotonic()
    body = wait_for(lambda: b if until(b := verdict(lab)) else None, timeout, interval, what)
    return body, time.monotonic() - start


def wait_clean(lab: Lab, timeout: float) -> dict[str, Any]:
    """Until the verdict is ok (every latest test passes)."""
    return wait_verdict(lab, lambda b: b["verdict"] == "ok", timeout, "the RCA verdict 'ok'")[0]


def wait_named(lab: Lab, timeout: float) -> tuple[dict[str, Any], float]:
    """Until the verdict names a suspect; the body and the seconds it took."""
    return wait_verdict(lab, lambda b: b["verdict"] == "suspects", timeout, "a suspect")
