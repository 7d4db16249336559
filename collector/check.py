"""``netmesh-check``: is the mesh healthy right now? One command for CI pipelines and upgrade gates.

::

    netmesh-check --collector http://netmesh-collector.netmesh:9100   # exit 0, 1 or 2
    netmesh-check --lab --json                                         # the running lab's collector

It waits (at most ``--timeout``) until every member has reported after the
check started and every ordered pair of members has light-tier data, then
until the collector's RCA has run over those reports; it prints the
light-tier matrix and the verdict and exits **0** healthy, **1** suspects or
failing paths, **2** cannot tell (unreachable, HTTP errors, malformed
answers, stale agents, RCA off or without data). The judgement is pure
(collector/gate.py); this module is the HTTP client, the waiting and the CLI.
Every request has a timeout; a collector that does not answer (connection
refused, timeout) is retried until ``--timeout``, an error answer ends the
check at once.

With ``--bandwidth`` it first asks for an on-demand sweep of the whole mesh
(``POST /api/v1/sweeps {"mesh": true}``, with ``--token-file``'s bearer token
when the collector authenticates; ``--lab`` uses the lab's token), prints its
progress until it is done (at most ``--bandwidth-timeout``, default: the
sweep's planned end + 60 s), and adds its outcome to the verdict
(collector/sweepgate.py): a failed test → 1, an expired sweep → 2.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import pathlib
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TextIO

from collector.gate import (
    UNKNOWN,
    Decision,
    Rca,
    Snapshot,
    decide,
    freshness,
    parse_rca,
    parse_snapshot,
    rca_due,
    report_json,
    report_text,
)
from collector.sweepgate import SweepView, combine, parse_sweep_view, sweep_decision, sweep_text
from netmesh.config import env_name
from netmesh.jsonreader import WireError
from netmesh.tokenfile import TokenFileError, bearer, read_token

NODES, LIGHT, RCA = "/api/v1/nodes", "/api/v1/light", "/api/v1/rca"
SWEEPS = "/api/v1/sweeps"
SWEEP_SLACK = 60.0  # seconds a sweep may take past its planned end before the check gives up
MAX_ANSWER_BYTES = 64 << 20  # /api/v1/light at 5,000 agents x 20 peers is ~20 MB
RCA_GRACE = 10.0  # seconds the RCA may take after the data is fresh, even past --timeout
PROGRESS_EVERY = 10.0  # seconds between repeated progress lines

# Where `netmesh-lab` keeps a lab's state (lab/settings.py LabSettings: state_dir, prefix;
# lab/lab.py Lab.state_path); tests/collector/test_check.py holds the two to the same values.
LAB_STATE_DIR = "/run/netmesh-lab"
LAB_PREFIX = "nmlab"
LAB_STATE_FILE = "state.json"
LAB_TOKEN_FILE = "auth-token"

Fetch = Callable[[str], Any]
Post = Callable[[str, Any], Any]


class CheckError(Exception):
    """The check cannot tell (exit 2); the message says why."""


class Unreachable(CheckError):
    """The collector did not answer (refused, timed out): retried until the deadline."""


def http_fetch(base: str, timeout: float) -> Fetch:
    """GET ``base + path`` as JSON, every request bounded by ``timeout`` seconds."""

    def fetch(path: str) -> Any:
        request = urllib.request.Request(base + path, headers={"Accept": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=timeout) as resp:
                body = resp.read(MAX_ANSWER_BYTES + 1)
        except urllib.error.HTTPError as exc:
            raise CheckError(f"GET {base}{path}: HTTP {exc.code} {exc.reason}") from None
        except urllib.error.URLError as exc:
            raise Unreachable(f"collector {base} unreachable: {exc.reason}") from None
        except (OSError, TimeoutError) as exc:
            raise Unreachable(f"collector {base} unreachable: {exc}") from None
        if len(body) > MAX_ANSWER_BYTES:
            raise CheckError(f"GET {base}{path}: answer larger than {MAX_ANSWER_BYTES} bytes")
        try:
            return json.loads(body)
        except (ValueError, RecursionError) as exc:
            raise CheckError(f"GET {base}{path}: the answer is not JSON: {exc}") from None

    return fetch


def http_post(base: str, timeout: float, token: str = "") -> Post:
    """POST JSON to ``base + path``; the answer as JSON; an error answer's reason in CheckError."""

    def post(path: str, body: Any) -> Any:
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if token:
            headers.update(bearer(token))
        request = urllib.request.Request(
            base + path, data=json.dumps(body).encode(), headers=headers, method="POST"
        )
        try:
            with urllib.request.urlopen(request, timeout=timeout) as resp:
                text = resp.read(MAX_ANSWER_BYTES + 1)
        except urllib.error.HTTPError as exc:
            detail = exc.read(4096).decode("utf-8", "replace").strip()
            raise CheckError(f"POST {base}{path}: HTTP {exc.code}: {detail}") from None
        except urllib.error.URLError as exc:
            raise Unreachable(f"collector {base} unreachable: {exc.reason}") from None
        except (OSError, TimeoutError) as exc:
            raise Unreachable(f"collector {base} unreachable: {exc}") from None
        try:
            return json.loads(text)
        except (ValueError, RecursionError) as exc:
            raise CheckError(f"POST {base}{path}: the answer is not JSON: {exc}") from None

    return post


def run_sweep(
    post: Post,
    fetch: Fetch,
    *,
    timeout: float | None,
    interval: float = 1.0,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
    progress: Callable[[str], None] = lambda _m: None,
) -> tuple[SweepView | None, str]:
    """Ask for a sweep of the mesh and wait for it: (its last view, why it is unfinished)."""
    began = clock()
    view = _parsed(SWEEPS, parse_sweep_view, post(SWEEPS, {"mesh": True}))
    planned_end, now = view.raw.get("planned_end"), view.raw.get("now")
    if timeout is None:
        ahead = (
            planned_end - now if isinstance(planned_end, float) and isinstance(now, float) else 0
        )
        timeout = max(0.0, ahead) + SWEEP_SLACK
    progress(f"{view.progress()}; waiting up to {timeout:.0f}s")
    said = view.progress()
    while not view.finished:
        if clock() - began >= timeout:
            return view, f"the bandwidth sweep did not finish within {timeout:.0f}s"
        sleep(interval)
        view = _parsed(SWEEPS, parse_sweep_view, fetch(f"{SWEEPS}/{view.id}?results=0"))
        if view.progress() != said:
            said = view.progress()
            progress(said)
    # Polled without the per-test list (a mesh of 200 nodes has 79,600 tests); now with it.
    return _parsed(SWEEPS, parse_sweep_view, fetch(f"{SWEEPS}/{view.id}")), ""


@dataclass(frozen=True, kw_only=True)
class Outcome:
    snapshot: Snapshot | None
    rca: Rca | None
    decision: Decision
    waited: float


def _parsed(path: str, parse: Callable[..., Any], *args: Any) -> Any:
    try:
        return parse(*args)
    except WireError as exc:
        raise CheckError(f"malformed answer from {path}: {exc}") from None


def run_check(
    fetch: Fetch,
    *,
    timeout: float,
    interval: float = 1.0,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
    progress: Callable[[str], None] = lambda _m: None,
) -> Outcome:
    """Wait for fresh data, then for an RCA over it; decide. CheckError → exit 2 by the caller."""
    began = clock()
    deadline = began + timeout
    since: float | None = None  # the collector's clock at the first answer
    said, said_at = "", -PROGRESS_EVERY
    while True:
        try:
            light = fetch(LIGHT)
            snap: Snapshot | None = _parsed(LIGHT, parse_snapshot, fetch(NODES), light)
        except Unreachable as exc:
            snap, problems = None, [str(exc)]
        else:
            assert snap is not None
            since = snap.now if since is None else since
            problems = freshness(snap, since)
        if snap is not None and not problems:
            break
        now = clock()
        if now >= deadline:
            reasons = [f"no fresh data after {timeout:g}s", *problems]
            return Outcome(
                snapshot=snap,
                rca=None,
                decision=Decision(code=UNKNOWN, reasons=tuple(reasons)),
                waited=now - began,
            )
        text = "; ".join(problems)
        if text != said or now - said_at >= PROGRESS_EVERY:
            progress(f"waiting ({now - began:.0f}s of {timeout:g}s): {text}")
            said, said_at = text, now
        sleep(max(0.0, min(interval, deadline - now)))
    fresh_at = clock()
    progress(f"fresh light-tier data from {len(snap.members)} members; waiting for the RCA")
    rca_deadline = max(deadline, fresh_at + RCA_GRACE)
    rca = _wait_rca(
        fetch, rca_due(snap), deadline=rca_deadline, interval=interval, clock=clock, sleep=sleep
    )
    return Outcome(snapshot=snap, rca=rca, decision=decide((), rca), waited=fresh_at - began)


def _wait_rca(
    fetch: Fetch,
    due: float,
    *,
    deadline: float,
    interval: float,
    clock: Callable[[], float],
    sleep: Callable[[float], None],
) -> Rca | None:
    """The first analysis computed at or after ``due`` (collector clock); None by the deadline."""
    while True:
        rca: Rca = _parsed(RCA, parse_rca, fetch(RCA))
        if rca.verdict == "off" or (rca.computed_at is not None and rca.computed_at >= due):
            return rca
        now = clock()
        if now >= deadline:
            return None
        sleep(max(0.0, min(interval, deadline - now)))


# --------------------------------------------------------------------------- CLI


def lab_collector_url(state_dir: str, prefix: str) -> str:
    """The running lab's collector URL, from its state file (written by ``netmesh-lab up``)."""
    path = pathlib.Path(state_dir) / prefix / LAB_STATE_FILE
    try:
        state = json.loads(path.read_text())
    except FileNotFoundError:
        raise CheckError(
            f"no lab {prefix!r} is up ({path} does not exist): run `netmesh-lab up`, "
            "or give --lab-prefix/--lab-state-dir, or --collector URL"
        ) from None
    except (OSError, ValueError) as exc:
        raise CheckError(f"cannot read the lab's state {path}: {exc}") from None
    url = state.get("collector_url") if isinstance(state, dict) else None
    if not isinstance(url, str) or not url.startswith("http"):
        raise CheckError(f"the lab's state {path} names no collector_url")
    return url


def _positive(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 0 < value < math.inf:  # also refuses nan
        raise argparse.ArgumentTypeError(f"{text!r}: must be a positive number")
    return value


def _url(text: str) -> str:
    if not text.startswith(("http://", "https://")):
        raise argparse.ArgumentTypeError(f"{text!r}: expected http://HOST:PORT or https://...")
    return text.rstrip("/")


def parser(environ: Mapping[str, str]) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="netmesh-check",
        description="Wait for fresh light-tier data of every pair, print the matrix and the "
        "collector's verdict; exit 0 healthy, 1 suspects or failing paths, 2 cannot tell.",
    )
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--collector", type=_url, metavar="URL", help="the collector's base URL")
    src.add_argument(
        "--lab", action="store_true", help="the running lab's collector (netmesh-lab's state)"
    )
    p.add_argument(
        "--lab-prefix",
        default=environ.get(env_name("prefix"), LAB_PREFIX),
        help=f"the lab's prefix, like netmesh-lab --prefix (default {LAB_PREFIX})",
    )
    p.add_argument(
        "--lab-state-dir",
        default=environ.get(env_name("state_dir"), LAB_STATE_DIR),
        help=f"the lab's state directory, like netmesh-lab --state-dir (default {LAB_STATE_DIR})",
    )
    p.add_argument(
        "--timeout",
        type=_positive,
        default=120.0,
        help="seconds to wait for fresh data of every pair (default 120)",
    )
    p.add_argument(
        "--request-timeout",
        type=_positive,
        default=5.0,
        help="seconds per HTTP request (default 5)",
    )
    p.add_argument(
        "--interval", type=_positive, default=1.0, help="seconds between polls (default 1)"
    )
    p.add_argument("--json", action="store_true", help="print one JSON object (stdout)")
    p.add_argument(
        "--bandwidth",
        action="store_true",
        help="first run an on-demand iperf3 sweep of every pair and wait for it; a failed "
        "test makes the exit 1, an unfinished sweep 2",
    )
    p.add_argument(
        "--bandwidth-timeout",
        type=_positive,
        default=None,
        help="seconds to wait for the sweep (default: its planned end + 60)",
    )
    p.add_argument(
        "--token-file",
        default=environ.get(env_name("auth_token_file"), ""),
        help="bearer token for POST /api/v1/sweeps when the collector authenticates "
        "(--lab: the lab's token)",
    )
    return p


def main(
    argv: Sequence[str] | None = None,
    *,
    out: TextIO | None = None,
    err: TextIO | None = None,
    environ: Mapping[str, str] | None = None,
) -> int:
    environ = os.environ if environ is None else environ
    p = parser(environ)
    args = p.parse_args(argv)
    out, err = out or sys.stdout, err or sys.stderr

    def progress(message: str) -> None:
        print(f"netmesh-check: {message}", file=err, flush=True)

    url = args.collector or ""
    sweep: SweepView | None = None
    unfinished = ""
    try:
        if args.lab:
            url = lab_collector_url(args.lab_state_dir, args.lab_prefix)
        if args.bandwidth:
            token_file = args.token_file
            if args.lab and not token_file:
                token_file = str(
                    pathlib.Path(args.lab_state_dir) / args.lab_prefix / LAB_TOKEN_FILE
                )
            sweep, unfinished = run_sweep(
                http_post(url, args.request_timeout, _token(token_file)),
                http_fetch(url, args.request_timeout),
                timeout=args.bandwidth_timeout,
                interval=args.interval,
                progress=progress,
            )
        outcome = run_check(
            http_fetch(url, args.request_timeout),
            timeout=args.timeout,
            interval=args.interval,
            progress=progress,
        )
    except CheckError as exc:
        outcome = Outcome(
            snapshot=None, rca=None, decision=Decision(code=UNKNOWN, reasons=(str(exc),)), waited=0
        )
    decision = outcome.decision
    if args.bandwidth:
        decision = combine(decision, sweep_decision(sweep, unfinished))
    parts = (url, outcome.snapshot, outcome.rca, decision, outcome.waited)
    if args.json:
        body = report_json(*parts)
        if args.bandwidth:
            body["bandwidth"] = None if sweep is None else sweep.raw
        json.dump(body, out, indent=2)
        out.write("\n")
    else:
        if args.bandwidth:
            print(sweep_text(sweep) + "\n", file=out)
        print(report_text(*parts), file=out)
    if decision.code == UNKNOWN:
        progress("cannot tell: " + "; ".join(decision.reasons))
    return decision.code


def _token(path: str) -> str:
    if not path:
        return ""
    try:
        return read_token(path)
    except TokenFileError as exc:
        raise CheckError(str(exc)) from None


if __name__ == "__main__":
    raise SystemExit(main())
