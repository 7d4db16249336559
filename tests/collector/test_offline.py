"""netmesh-rca's netmesh method (collector/offline.py, rangequery.py, pathtests.py): a real
collector scraped by a real Prometheus on loopback → range queries → JSONL → ranked table;
--input re-analysis; clear errors."""

from __future__ import annotations

import dataclasses
import io
import json
import os
import pathlib
import shutil
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest

from collector.offline import main
from collector.rangequery import parse_duration
from tests.collector.reports import report
from tests.helpers import free_port, wait_for

PROMETHEUS = shutil.which("prometheus") or "/usr/bin/prometheus"
NODES = {"a": "127.0.0.1", "b": "127.0.0.2", "c": "127.0.0.3", "d": "127.0.0.4"}
BAD = "c"


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "collector.offline", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def _get(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=5) as resp:
        return json.loads(resp.read())


@dataclasses.dataclass
class Stack:
    prometheus: str
    collector: str
    procs: list[subprocess.Popen[bytes]]


def _spawn(cmd: list[str], log: pathlib.Path, env: dict[str, str]) -> subprocess.Popen[bytes]:
    with open(log, "wb") as fh:
        return subprocess.Popen(cmd, stdout=fh, stderr=subprocess.STDOUT, env={**os.environ, **env})


def _post_reports(collector: str, stop: threading.Event) -> None:
    """Every 0.5 s each node reports a new test per peer; paths into BAD fail."""
    while not stop.is_set():
        now = time.time()
        for name, ip in NODES.items():
            peers = tuple(n for n in NODES if n != name)
            rep = report(name, ip, peers, failing=(BAD,) if BAD in peers else ())
            rep = dataclasses.replace(
                rep, results=tuple(dataclasses.replace(r, started_at=now) for r in rep.results)
            )
            req = urllib.request.Request(
                collector + "/api/v1/reports",
                data=json.dumps(rep.to_json()).encode(),
                headers={"Content-Type": "application/json"},
            )
            with urllib.request.urlopen(req, timeout=5):
                pass
        stop.wait(0.5)


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    if not os.path.exists(PROMETHEUS):
        pytest.skip("needs prometheus (scripts/install-deps.sh installs it)")
    tmp = tmp_path_factory.mktemp("offline")
    cport, pport = free_port(), free_port()
    collector = f"http://127.0.0.1:{cport}"
    prometheus = f"http://127.0.0.1:{pport}"
    config = tmp / "prometheus.yml"
    config.write_text(
        json.dumps(
            {
                "global": {"scrape_interval": "1s", "scrape_timeout": "1s"},
                "scrape_configs": [
                    {
                        "job_name": "netmesh-collector",
                        "static_configs": [{"targets": [f"127.0.0.1:{cport}"]}],
                    }
                ],
            }
        )
    )
    procs = [
        _spawn(
            [sys.executable, "-m", "collector"],
            tmp / "collector.log",
            {"NETMESH_BIND_ADDRESS": "127.0.0.1", "NETMESH_PORT": str(cport)},
        ),
        _spawn(
            [
                PROMETHEUS,
                f"--config.file={config}",
                f"--storage.tsdb.path={tmp / 'tsdb'}",
                f"--web.listen-address=127.0.0.1:{pport}",
            ],
            tmp / "prometheus.log",
            {},
        ),
    ]
    stop = threading.Event()
    poster: threading.Thread | None = None
    try:
        wait_for(lambda: _ok(collector + "/healthz"), 20, 0.1, "the collector")
        wait_for(lambda: _ok(prometheus + "/-/ready"), 30, 0.1, "prometheus ready")
        poster = threading.Thread(target=_post_reports, args=(collector, stop), daemon=True)
        poster.start()
        query = "min(changes(netmesh_path_last_test_timestamp_seconds[5m]))"
        url = prometheus + "/api/v1/query?" + urllib.parse.urlencode({"query": query})

        def enough() -> bool:
            result = _get(url)["data"]["result"]
            return bool(result) and float(result[0]["value"][1]) >= 4

        wait_for(enough, 40, 0.5, "5 tests of every path in Prometheus")
        yield Stack(prometheus, collector, procs)
    finally:
        stop.set()
        if poster is not None:
            poster.join(timeout=10)
        for p in procs:
            p.terminate()
        for p in procs:
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(timeout=5)


def _ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as resp:
            return resp.status == 200
    except OSError:
        return False


def test_prometheus_to_jsonl_to_ranked_table(stack: Stack, tmp_path: pathlib.Path) -> None:
    saved = tmp_path / "window.jsonl"
    proc = _run("--prometheus", stack.prometheus, "--since", "5m", "--step", "1s",
                "--save", str(saved))  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "saved" in proc.stderr and str(saved) in proc.stderr
    print(proc.stdout)
    lines = proc.stdout.splitlines()
    assert any(line.startswith("verdict: suspects") and " c (" in line for line in lines)
    ranked = [line.split() for line in lines if line.strip()[:1].isdigit() and "/" in line]
    assert ranked[0][:2] == ["1", BAD] and ranked[0][-1] == "suspect", ranked
    assert float(ranked[0][2]) == 1.0
    assert all(float(row[2]) < 0.5 for row in ranked[1:])
    # The saved file holds Prometheus' series as they came.
    series = [json.loads(line) for line in saved.read_text().splitlines()]
    names = {s["metric"]["__name__"] for s in series}
    assert {"netmesh_path_success", "netmesh_path_last_test_timestamp_seconds"} <= names
    # Re-analysing the file gives the same table.
    again = _run("--input", str(saved))
    assert again.returncode == 0, again.stderr
    assert again.stdout == proc.stdout


def test_json_output_counts_every_test_once(stack: Stack, tmp_path: pathlib.Path) -> None:
    out = io.StringIO()
    saved = tmp_path / "w.jsonl"
    code = main(
        ["--prometheus", stack.prometheus, "--since", "5m", "--step", "1s",
         "--save", str(saved), "--json"],
        out=out,
    )  # fmt: skip
    assert code == 0
    body = json.loads(out.getvalue())
    assert [s["node"] for s in body["suspects"]] == [BAD]
    # Every test once: one per distinct value of a path's last-test timestamp.
    window = body["window"]
    assert window["paths"] == 24
    stamps = {
        (tuple(sorted(s["metric"].items())), v)
        for line in saved.read_text().splitlines()
        if (s := json.loads(line))["metric"]["__name__"]
        == "netmesh_path_last_test_timestamp_seconds"
        for _t, v in s["values"]
    }
    assert window["tests"] == len(stamps) == body["transactions"]


def test_unreachable_prometheus_is_a_clear_error() -> None:
    port = free_port()
    proc = _run("--prometheus", f"http://127.0.0.1:{port}", "--since", "10m", "--timeout", "3")
    assert proc.returncode == 1
    assert proc.stderr.startswith(
        f"netmesh-rca: cannot reach Prometheus at http://127.0.0.1:{port}"
    )
    assert "Traceback" not in proc.stderr


def test_empty_result_is_a_clear_error(stack: Stack, tmp_path: pathlib.Path) -> None:
    saved = tmp_path / "none.jsonl"
    proc = _run("--prometheus", stack.prometheus, "--since", "5m", "--selector",
                'job="no-such-job"', "--save", str(saved))  # fmt: skip
    assert proc.returncode == 1
    assert "has no netmesh_path_success" in proc.stderr and "selector" in proc.stderr
    assert not saved.exists()


def test_not_prometheus_is_a_clear_error(stack: Stack) -> None:
    proc = _run("--prometheus", stack.collector, "--since", "5m")
    assert proc.returncode == 1 and "rejected" in proc.stderr and "Traceback" not in proc.stderr


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("", "no series (the file is empty)"),
        ("{not json\n", ":1: not JSON"),
        ('{"metric": {}, "values": []}\n', "no path tests (no netmesh_path_success values)"),
        ('{"metric": [], "values": []}\n', ":1: 'metric' must be an object of label names"),
        (
            '{"metric": {"__name__": "netmesh_path_success"}, "values": []}\n',
            ":1: netmesh_path_success without label(s)",
        ),
        (
            '{"metric": {"__name__": "netmesh_path_success", "source_node": "a", '
            '"destination_node": "b", "protocol": "tcp"}, "values": [[1, "x"]]}\n',
            ":1: values[0] = [1, 'x'] is not a [time, \"value\"] pair",
        ),
        (
            '{"metric": {"__name__": "netmesh_path_loss_ratio", "source_node": "a", '
            '"destination_node": "b", "protocol": "udp"}, "values": [[1, "0"]]}\n',
            "no path tests (no netmesh_path_success values)",
        ),
    ],
)
def test_malformed_file_is_a_clear_error(
    tmp_path: pathlib.Path, content: str, message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text(content)
    assert main(["--input", str(path)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("netmesh-rca: ") and message in err, err


def test_missing_file_and_bad_flags(
    tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--input", str(tmp_path / "nope.jsonl")]) == 1
    assert "cannot read" in capsys.readouterr().err
    assert parse_duration("2h") == 7200 and parse_duration("90s") == 90
    with pytest.raises(SystemExit):
        main(["--prometheus", "http://x", "--since", "two hours"])
    with pytest.raises(SystemExit):
        main([])  # one of --prometheus / --input is required
