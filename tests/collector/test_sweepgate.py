"""netmesh-check --bandwidth: asking for a sweep, waiting for it, its part of the verdict."""

from __future__ import annotations

from typing import Any

import pytest

from collector import check
from collector.gate import HEALTHY, UNHEALTHY, UNKNOWN, Decision
from collector.sweepgate import combine, parse_sweep_view, sweep_decision, sweep_text
from netmesh.jsonreader import WireError
from tests.collector.conftest import FakeClock


def view(state: str = "done", completed: int = 2, **kw: Any) -> dict[str, Any]:
    results = [
        {
            "source": "a",
            "destination": "b",
            "protocol": "tcp",
            "result": "ok" if completed > 0 else None,
            "received_bits_per_second": 9.4e8,
            "loss_ratio": None,
        },
        {
            "source": "b",
            "destination": "a",
            "protocol": "tcp",
            "result": "ok" if completed > 1 else None,
            "received_bits_per_second": 9.3e8,
            "loss_ratio": None,
        },
    ]
    body = {
        "id": "17-1",
        "state": state,
        "tests": 2,
        "completed": completed,
        "failed": 0,
        "reason": "",
        "results": results,
        "now": 100.0,
        "planned_end": 130.0,
    }
    body.update(kw)
    return body


def test_a_clean_sweep_keeps_the_verdict() -> None:
    decision = sweep_decision(parse_sweep_view(view()))
    assert decision == Decision(code=HEALTHY, reasons=("bandwidth: all 2 tests ok",))
    light = Decision(code=HEALTHY, reasons=("verdict ok",))
    assert combine(light, decision).code == HEALTHY
    assert "a->b tcp: ok 940 Mbit/s" in sweep_text(parse_sweep_view(view()))


def test_a_failed_test_is_exit_1_and_named() -> None:
    body = view(failed=1)
    body["results"][1].update(result="busy", received_bits_per_second=None)
    decision = sweep_decision(parse_sweep_view(body))
    assert decision.code == UNHEALTHY
    assert decision.reasons == ("bandwidth: 1 of 2 tests failed: b->a tcp busy",)
    both = combine(Decision(code=HEALTHY, reasons=("ok",)), decision)
    assert both == decision
    assert combine(Decision(code=UNKNOWN, reasons=("stale",)), decision).reasons == ("stale",)


def test_expired_or_unfinished_sweeps_cannot_tell() -> None:
    expired = sweep_decision(parse_sweep_view(view("expired", 1, reason="no result for b->a")))
    assert expired.code == UNKNOWN and "expired: no result for b->a" in expired.reasons[0]
    running = sweep_decision(parse_sweep_view(view("running", 1)), "did not finish within 30s")
    assert running.code == UNKNOWN and "1/2 tests" in running.reasons[0]
    assert sweep_decision(None, "HTTP 401").code == UNKNOWN


@pytest.mark.parametrize(
    ("change", "words"),
    [({"state": "odd"}, "unknown state"), ({"tests": "2"}, "integer"), ({"results": {}}, "list")],
)
def test_malformed_views(change: dict[str, Any], words: str) -> None:
    with pytest.raises(WireError, match=words):
        parse_sweep_view(view(**change))


def test_run_sweep_asks_for_the_mesh_and_follows_it_to_the_end() -> None:
    posted: list[tuple[str, Any]] = []
    answers = [view("running", 0), view("running", 1), view("running", 1), view(), view()]
    paths: list[str] = []

    def post(path: str, body: Any) -> Any:
        posted.append((path, body))
        return view("pending", 0)

    def fetch(path: str) -> Any:
        paths.append(path)
        return answers.pop(0)

    clock = FakeClock(0.0)
    said: list[str] = []
    last, unfinished = check.run_sweep(
        post, fetch, timeout=None, clock=clock, sleep=clock.advance, progress=said.append
    )
    assert posted == [("/api/v1/sweeps", {"mesh": True})]
    assert last is not None and last.state == "done" and unfinished == ""
    assert said[0].endswith("waiting up to 90s")  # planned end 30 s ahead + 60 s
    assert paths == ["/api/v1/sweeps/17-1?results=0"] * 4 + ["/api/v1/sweeps/17-1"]
    assert said[1:] == [
        "bandwidth sweep 17-1: running, 0/2 tests",
        "bandwidth sweep 17-1: running, 1/2 tests",
        "bandwidth sweep 17-1: done, 2/2 tests",
    ]


def test_run_sweep_gives_up_at_its_timeout() -> None:
    clock = FakeClock(0.0)
    last, unfinished = check.run_sweep(
        lambda _p, _b: view("pending", 0),
        lambda _p: view("running", 1),
        timeout=5,
        clock=clock,
        sleep=clock.advance,
    )
    assert last is not None and last.state == "running"
    assert unfinished == "the bandwidth sweep did not finish within 5s"
    assert sweep_decision(last, unfinished).code == UNKNOWN
