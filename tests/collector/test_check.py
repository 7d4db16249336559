"""netmesh-check (collector/check.py): the waiting, the HTTP client, the CLI, the lab's state file.

The collector's answers come from the real app (the JSON contract) or from
canned bodies (tests/collector/test_gate.py's); the clock is fake and
``sleep`` advances it, so nothing here waits.
"""

from __future__ import annotations

import contextlib
import http.server
import io
import json
import pathlib
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from collector import check, gate
from lab.lab import Lab
from lab.settings import LabSettings
from tests.collector.conftest import FakeClock, MakeClient
from tests.collector.reports import light_path, light_status, report
from tests.collector.test_gate import FAILING, SUSPECT, T0, light_body, nodes_body, rca_body
from tests.helpers import async_wait_for, free_port


class Collector:
    """Canned answers per path, one after another (the last one repeats)."""

    def __init__(self, **answers: list[Any]) -> None:
        self.answers = {f"/api/v1/{k}": v for k, v in answers.items()}
        self.calls: list[str] = []

    def __call__(self, path: str) -> Any:
        self.calls.append(path)
        queue = self.answers[path]
        answer = queue.pop(0) if len(queue) > 1 else queue[0]
        if isinstance(answer, Exception):
            raise answer
        return answer


def run(fake: Collector, timeout: float = 30.0) -> tuple[check.Outcome, list[str], FakeClock]:
    clock = FakeClock(0.0)
    said: list[str] = []
    outcome = check.run_check(
        fake, timeout=timeout, interval=1.0, clock=clock, sleep=clock.advance, progress=said.append
    )
    return outcome, said, clock


def test_waits_for_reports_after_the_start_then_for_an_rca_over_them() -> None:
    fake = Collector(
        light=[light_body(now=T0), light_body(now=T0 + 1), light_body(now=T0 + 4)],
        nodes=[nodes_body(reported=T0 - 1), nodes_body(reported=T0 - 1), nodes_body(T0 + 3)],
        rca=[rca_body(computed_at=T0 + 1), rca_body(computed_at=T0 + 3)],
    )
    outcome, said, clock = run(fake)
    assert outcome.decision.code == gate.HEALTHY
    assert outcome.waited == 2.0 and clock.now == 3.0
    assert said == [
        "waiting (0s of 30s): no report since the check started: node-1, node-2, node-3",
        "fresh light-tier data from 3 members; waiting for the RCA",
    ]
    assert outcome.snapshot is not None and len(outcome.snapshot.cells) == 6
    assert fake.calls.count("/api/v1/rca") == 2


def test_suspects_exit_1() -> None:
    body = rca_body("suspects", summary="suspect: node-2", suspects=[SUSPECT], failing=2)
    fake = Collector(
        light=[light_body()], nodes=[nodes_body()], rca=[{**body, "failing_paths": FAILING}]
    )
    outcome, _, _ = run(fake)
    assert outcome.decision.code == gate.UNHEALTHY
    assert outcome.rca is not None and outcome.rca.suspects[0]["direction"] == "inbound"


def test_stale_agents_after_the_timeout_exit_2_with_the_reason() -> None:
    fake = Collector(light=[light_body()], nodes=[nodes_body(up=False)], rca=[rca_body()])
    outcome, said, clock = run(fake, timeout=5)
    assert outcome.decision.code == gate.UNKNOWN
    assert outcome.decision.reasons == (
        "no fresh data after 5s",
        "agents not up (stale or never reported): node-1, node-2, node-3",
    )
    assert clock.now == 5.0 and len(said) == 1  # the same problem is said once (per 10 s)
    assert "/api/v1/rca" not in fake.calls


def test_an_unreachable_collector_is_retried_until_the_deadline() -> None:
    down = check.Unreachable("collector http://c unreachable: [Errno 111] Connection refused")
    fake = Collector(light=[down, down, light_body()], nodes=[nodes_body()], rca=[rca_body()])
    outcome, said, _ = run(fake)
    assert outcome.decision.code == gate.HEALTHY
    assert said[0].endswith("unreachable: [Errno 111] Connection refused")
    never = Collector(light=[down], nodes=[nodes_body()], rca=[rca_body()])
    outcome, _, clock = run(never, timeout=3)
    assert outcome.decision.reasons == ("no fresh data after 3s", str(down))
    assert outcome.snapshot is None and clock.now == 3.0


def test_an_rca_that_never_catches_up_or_is_off() -> None:
    stale = Collector(light=[light_body()], nodes=[nodes_body()], rca=[rca_body(computed_at=T0)])
    outcome, _, clock = run(stale, timeout=2)
    assert outcome.decision.reasons == ("no root-cause analysis since the data came in",)
    assert clock.now == check.RCA_GRACE  # the RCA gets its grace even past --timeout
    off = Collector(
        light=[light_body()], nodes=[nodes_body()], rca=[{"verdict": "off", "summary": "off"}]
    )
    assert run(off)[0].decision == gate.Decision(code=2, reasons=("RCA verdict off: off",))


def test_errors_and_malformed_answers_end_the_check_at_once() -> None:
    broken = Collector(light=[{"now": T0, "paths": "x"}], nodes=[nodes_body()], rca=[rca_body()])
    with pytest.raises(check.CheckError, match=r"malformed answer from /api/v1/light: .*paths"):
        run(broken)
    http = Collector(light=[check.CheckError("GET /api/v1/light: HTTP 404 Not Found")])
    with pytest.raises(check.CheckError, match="HTTP 404"):
        run(http)


# ---------------------------------------------------------------- HTTP client and CLI


@contextlib.contextmanager
def serving(answers: dict[str, tuple[int, bytes]]) -> Iterator[str]:
    """A tiny HTTP server with canned answers (status, body) per path."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            status, body = answers.get(self.path, (404, b"404: Not Found"))
            self.send_response(status)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def ok(body: Any) -> tuple[int, bytes]:
    return 200, json.dumps(body).encode()


def test_http_fetch_errors() -> None:
    with serving({"/api/v1/nodes": (200, b"<html>")}) as url:
        fetch = check.http_fetch(url, timeout=2)
        with pytest.raises(check.CheckError, match="HTTP 404 Not Found"):
            fetch("/api/v1/light")
        with pytest.raises(check.CheckError, match="the answer is not JSON"):
            fetch("/api/v1/nodes")
    with pytest.raises(check.Unreachable, match="unreachable"):
        check.http_fetch(f"http://127.0.0.1:{free_port()}", timeout=2)("/api/v1/nodes")


def main(*argv: str, environ: dict[str, str] | None = None) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = check.main(list(argv), out=out, err=err, environ=environ or {})
    return code, out.getvalue(), err.getvalue()


def test_main_prints_matrix_and_verdict_and_json() -> None:
    now = time.time()  # the fake collector's clock: reports are "just now"
    answers = {
        "/api/v1/light": ok(light_body(now=now)),
        "/api/v1/nodes": ok(nodes_body(reported=now + 1)),
        "/api/v1/rca": ok(rca_body(computed_at=now + 2)),
    }
    with serving(answers) as url:
        code, out, err = main("--collector", url + "/", "--timeout", "5")
        assert code == 0, (out, err)
        assert "from \\ to" in out and "verdict: ok" in out
        assert out.rstrip().endswith("exit 0 (healthy): verdict ok: no suspects, no failing paths")
        assert "waiting for the RCA" in err
        code, out, _ = main("--collector", url, "--json")
    body = json.loads(out)
    assert code == 0 and body["exit_code"] == 0 and body["collector"] == url
    assert len(body["matrix"]) == 6 and body["verdict"] == "ok"


def test_main_cannot_tell_says_why() -> None:
    with serving({}) as url:
        code, out, err = main("--collector", url, "--json")
    assert code == 2
    assert json.loads(out)["reasons"] == [f"GET {url}/api/v1/light: HTTP 404 Not Found"]
    assert err.strip().endswith(f"cannot tell: GET {url}/api/v1/light: HTTP 404 Not Found")


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        ((), "one of the arguments --collector --lab is required"),
        (("--collector", "http://c", "--lab"), "not allowed with argument"),
        (("--collector", "c:9100"), "expected http://HOST:PORT"),
        (("--lab", "--timeout", "0"), "must be a positive number"),
        (("--lab", "--timeout", "nan"), "must be a positive number"),
        (("--lab", "--bandwidth-timeout", "-1"), "must be a positive number"),
    ],
)
def test_bad_flags_are_argparse_errors(
    argv: tuple[str, ...], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exc:
        check.main(list(argv), environ={})
    assert exc.value.code == 2
    assert message in capsys.readouterr().err


def test_lab_url_comes_from_the_labs_state_file(tmp_path: pathlib.Path) -> None:
    lab = Lab(LabSettings(state_dir=str(tmp_path), prefix="nmx", subnet="10.212.0.0/24"))
    code, _, err = main("--lab", "--lab-state-dir", str(tmp_path), "--lab-prefix", "nmx")
    assert code == 2 and "no lab 'nmx' is up" in err and "netmesh-lab up" in err
    lab.save_state({"collector_url": lab.collector_url})
    assert check.lab_collector_url(str(tmp_path), "nmx") == "http://10.212.0.1:9100"
    # NETMESH_PREFIX / NETMESH_STATE_DIR, like netmesh-lab
    env = {"NETMESH_PREFIX": "nmx", "NETMESH_STATE_DIR": str(tmp_path)}
    args = check.parser(env).parse_args(["--lab"])
    assert (args.lab_prefix, args.lab_state_dir) == ("nmx", str(tmp_path))
    lab.state_path.write_text("{}")
    with pytest.raises(check.CheckError, match="names no collector_url"):
        check.lab_collector_url(str(tmp_path), "nmx")


def test_lab_defaults_are_the_labs() -> None:
    settings = LabSettings()
    assert (settings.state_dir, settings.prefix) == (check.LAB_STATE_DIR, check.LAB_PREFIX)
    lab = Lab(settings)
    assert lab.state_path == pathlib.Path(
        check.LAB_STATE_DIR, check.LAB_PREFIX, check.LAB_STATE_FILE
    )


# ---------------------------------------------------------------- the real collector's answers


async def test_the_collectors_answers_make_a_fresh_snapshot_and_a_verdict(
    make_client: MakeClient, clock: FakeClock
) -> None:
    client = await make_client(rca_interval=0.05)
    names = ("a", "b", "c")
    since = clock.now
    clock.advance(1)
    for i, name in enumerate(names):
        peers = tuple(n for n in names if n != name)
        light = light_status(*(light_path(p) for p in peers))
        rep = report(name, f"10.0.0.{i + 1}", peers, light=light)
        assert (await client.post("/api/v1/reports", json=rep.to_json())).status == 200

    async def get(path: str) -> Any:
        resp = await client.get(path)
        assert resp.status == 200
        return await resp.json()

    snap = gate.parse_snapshot(await get(check.NODES), await get(check.LIGHT))
    assert snap.names == list(names) and gate.freshness(snap, since) == []
    assert gate.freshness(snap, since + 2) == ["no report since the check started: a, b, c"]

    async def analysed() -> gate.Rca | None:
        rca = gate.parse_rca(await get(check.RCA))
        fresh = rca.computed_at is not None and rca.computed_at >= gate.rca_due(snap)
        return rca if fresh else None

    rca = await async_wait_for(analysed, 10, what="an RCA run")
    assert gate.decide((), rca) == gate.Decision(
        code=0, reasons=("verdict ok: no suspects, no failing paths",)
    )
