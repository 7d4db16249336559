"""Helpers for RCA runs on a lab: read the verdict, wait for it, time it (tests and benchmark)."""

from __future__ import annotations

import time
from typing import Any

from lab.lab import Lab, get_json
from tests.helpers import wait_for


def verdict(lab: Lab) -> dict[str, Any]:
    return dict(get_json(lab.collector_url + "/api/v1/rca", timeout=5))


def suspects(body: dict[str, Any]) -> list[str]:
    return [str(s["node"]) for s in body.get("suspects", [])]


def rca_deadline(lab: Lab, sweeps: float) -> float:
    """``sweeps`` full sweeps plus one report interval and one RCA run (2 s)."""
    return sweeps * lab.settings.sweep_seconds() + lab.settings.report_interval + 2.0


def wait_clean(lab: Lab, timeout: float) -> dict[str, Any]:
    """Until the verdict is ok (every latest test passes)."""
    return wait_for(
        lambda: (b := verdict(lab))["verdict"] == "ok" and b,
        timeout,
        interval=0.5,
        what="the RCA verdict 'ok'",
    )


def wait_named(lab: Lab, timeout: float) -> tuple[dict[str, Any], float]:
    """Until the verdict names a suspect; the body and the seconds it took."""
    start = time.monotonic()
    body = wait_for(
        lambda: (b := verdict(lab))["verdict"] == "suspects" and b,
        timeout,
        interval=0.5,
        what="a suspect",
    )
    return body, time.monotonic() - start
