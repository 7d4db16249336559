"""A synthetic fleet against a real collector: 5,000 agents posting reports, Prometheus scraping.

Starts ``python -m collector`` (static mode) on 127.0.0.1 and drives it with
aiohttp clients posting realistic reports (k peers tested with TCP and UDP,
a few retransmission pairs each; tests/benchmarks/benchlib.py), then:

1. fill: every agent reports once (8 connections, closed loop), then a
   catch-up round: each fetches the final member list (its epoch is old);
2. idle scrapes: GET /metrics with no reports in flight (full scrape time);
3. steady: every agent reports every ``--interval`` seconds (open loop, spread
   evenly, each agent at most one report in flight with the agents' 5 s
   timeout) while /metrics is scraped every ``--scrape-every`` seconds. Like
   a real agent, each report carries the member-list epoch of the previous
   answer, and ``--changed`` of its results are new tests since the last
   report (a 5 s test in a ~7 s slot: at most 2 per 10 s);
4. where the time goes: the same reports through the handler's steps in this
   process (JSON, checks, parse, accept/render, the member-list response).

``BENCH_COLLECTOR_CMD`` runs another collector command line instead of
``-m collector`` (e.g. a wrapper that patches or instruments it; the results go
to bench-results/fleet-<name>.json), ``BENCH_KEEP_LOG=1`` prints its log.

Latency is measured by the client from the moment a report is due until its
response is read (so queueing in the collector counts). Reports RSS and CPU.
Asserts nothing about time.

    .venv/bin/python tests/benchmarks/bench_fleet.py [--agents 5000] [--peers 10] [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import pathlib
import re
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from benchlib import (
    ROOT,
    MiB,
    Row,
    cpu_seconds,
    quantile,
    quick_default,
    report,
    rss_bytes,
    synthetic_report,
)

from collector.membership import StaticMembership
from collector.state import CollectorState, Limits
from netmesh.tokenfile import bearer
from netmesh.wire import parse_report
from tests.helpers import free_port

REPORT_TIMEOUT = 5.0  # the agents' default report_timeout


class Agent:
    """One simulated agent: its report as JSON, new tests between reports, its epoch."""

    def __init__(self, report: dict[str, Any], changed: int) -> None:
        self.report = report
        self.changed = changed
        self.next = 0  # the result that the next new test replaces

    def body(self) -> bytes:
        r = self.report
        r["generated_at"] += 10.0
        results = r["results"]
        for _ in range(self.changed):
            res = results[self.next % len(results)]
            res["started_at"] += 60.0
            if res["received_bits_per_second"] is not None:
                res["received_bits_per_second"] *= 1.0001 if self.next % 2 else 0.9999
            self.next += 1
        r["agent"]["scheduler_lag_seconds"] = 0.001 * (self.next % 7)
        light = r.get("light")
        for lp in light["paths"] if light else ():  # a new window: ~50 more RTTs each
            lp["rtt_median_seconds"] *= 1.0001 if self.next % 2 else 0.9999
            if "rtt_count" in lp:
                lp["rtt_count"] += 50
                lp["rtt_sum_seconds"] += 50 * lp["rtt_median_seconds"]
                lp["rtt_bucket_counts"] = [c + 50 if c else 0 for c in lp["rtt_bucket_counts"]]
        return json.dumps(r).encode()

    def adopt(self, answer: bytes) -> None:
        """The epoch of the collector's answer (a full list or "unchanged")."""
        m = EPOCH.match(answer)
        if m:
            self.report["agent"]["epoch"] = int(m.group(1))


EPOCH = re.compile(rb'\{"epoch":\s*(\d+)')


@dataclass
class Latencies:
    ok: list[float] = field(default_factory=list)
    errors: dict[str, int] = field(default_factory=dict)
    bytes_in: int = 0

    def error(self, what: str) -> None:
        self.errors[what] = self.errors.get(what, 0) + 1


def start_collector(
    port: int, agents: int, log: pathlib.Path, token_file: pathlib.Path | None = None
) -> subprocess.Popen[bytes]:
    auth = {"NETMESH_AUTH_TOKEN_FILE": str(token_file)} if token_file else {}
    env = {
        **auth,
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "NETMESH_MODE": "static",
        "NETMESH_BIND_ADDRESS": "127.0.0.1",
        "NETMESH_PORT": str(port),
        "NETMESH_MAX_AGENTS": str(agents),
        "NETMESH_REPORT_TTL": "3600",
        "NETMESH_STALE_AFTER": "3600",
        "NETMESH_LOG_LEVEL": "warning",
    }
    with log.open("wb") as out:
        return subprocess.Popen(
            [sys.executable, *(os.environ.get("BENCH_COLLECTOR_CMD", "-m collector").split())],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


async def wait_healthy(
    session: aiohttp.ClientSession, url: str, proc: subprocess.Popen[bytes]
) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError("the collector exited at start-up")
        try:
            async with session.get(url + "/healthz") as resp:
                if resp.status == 200:
                    return
        except aiohttp.ClientError:
            pass
        await asyncio.sleep(0.1)
    raise RuntimeError("the collector did not become healthy in 30 s")


async def post(
    session: aiohttp.ClientSession,
    url: str,
    body: bytes,
    due: float,
    lat: Latencies,
    *,
    agent: Agent | None = None,
    auth: dict[str, str] | None = None,
) -> None:
    try:
        async with session.post(
            url,
            data=body,
            headers={"Content-Type": "application/json", **(auth or {})},
            timeout=aiohttp.ClientTimeout(total=REPORT_TIMEOUT),
        ) as resp:
            answer = await resp.read()
            if resp.status != 200:
                lat.error(f"http {resp.status}")
                return
            if agent is not None:
                agent.adopt(answer)
                lat.bytes_in += len(answer)
    except TimeoutError:
        lat.error("timeout")
        return
    except aiohttp.ClientError as exc:
        lat.error(type(exc).__name__)
        return
    lat.ok.append(time.monotonic() - due)


async def scrape(session: aiohttp.ClientSession, url: str) -> tuple[float, int, int]:
    started = time.monotonic()
    async with session.get(url + "/metrics", timeout=aiohttp.ClientTimeout(total=60)) as resp:
        body = await resp.read()
    took = time.monotonic() - started
    series = body.count(b"\n") - body.count(b"\n#") - (1 if body.startswith(b"#") else 0)
    return took, len(body), series


async def curl_scrape(url: str) -> float:
    """Seconds curl needs for GET /metrics (0 when curl is missing)."""
    if shutil.which("curl") is None:
        return 0.0
    proc = await asyncio.create_subprocess_exec(
        "curl",
        "-sf",
        "-o",
        "/dev/null",
        "-w",
        "%{time_total}",
        url + "/metrics",
        stdout=asyncio.subprocess.PIPE,
    )
    out, _ = await asyncio.wait_for(proc.communicate(), 60)
    return float(out.decode() or 0)


async def fleet(
    args: argparse.Namespace, bodies: list[bytes], agents: list[Agent], proc_pid: int, url: str
) -> dict:
    out: dict = {}
    reports_url = url + "/api/v1/reports"
    auth = bearer(args.token_value) if args.token_value else None
    me = os.getpid()
    conn = aiohttp.TCPConnector(limit=256)
    async with aiohttp.ClientSession(connector=conn) as session:
        # 1. fill
        lat = Latencies()
        sem = asyncio.Semaphore(8)

        async def one(body: bytes, agent: Agent) -> None:
            async with sem:
                await post(
                    session, reports_url, body, time.monotonic(), lat, agent=agent, auth=auth
                )

        t0 = time.monotonic()
        await asyncio.gather(*(one(b, a) for b, a in zip(bodies, agents, strict=True)))
        out["fill"] = (lat, time.monotonic() - t0)
        out["rss_after_fill"] = rss_bytes(proc_pid)

        # 1b. catch-up: the member list changed with every new agent, so each agent
        # fetches the final list once (what follows any membership change).
        lat = Latencies()
        t0 = time.monotonic()
        await asyncio.gather(*(one(a.body(), a) for a in agents))
        out["catch_up"] = (lat, time.monotonic() - t0)

        # 2. idle scrapes (aiohttp here, then curl: a C client like Prometheus' Go one)
        out["idle_scrapes"] = [await scrape(session, url) for _ in range(args.scrapes)]
        out["curl_scrapes"] = [await curl_scrape(url) for _ in range(args.scrapes)]
        out["rss_after_scrapes"] = rss_bytes(proc_pid)

        # 3. steady: every agent every interval, spread evenly; scrapes meanwhile
        lat = Latencies()
        scrapes: list[tuple[float, int, int]] = []
        in_flight: dict[int, asyncio.Task[None]] = {}
        skipped = 0
        rate = len(bodies) / args.interval
        total = int(rate * args.duration)
        cpu0, me0, t0 = cpu_seconds(proc_pid), cpu_seconds(me), time.monotonic()

        async def scraper() -> None:
            while True:
                await asyncio.sleep(args.scrape_every)
                # curl in its own process, like Prometheus: reading 108 MB in this
                # loop would delay the reports it sends and count as latency.
                if shutil.which("curl"):
                    scrapes.append((await curl_scrape(url), 0, 0))
                else:
                    scrapes.append(await scrape(session, url))

        scrape_task = asyncio.create_task(scraper())
        max_lag = 0.0
        for k in range(total):
            due = t0 + k / rate
            delay = due - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            else:
                max_lag = max(max_lag, -delay)
            i = k % len(bodies)
            prev = in_flight.get(i)
            if prev is not None and not prev.done():
                skipped += 1  # the agent's previous report is still pending
                continue
            in_flight[i] = asyncio.create_task(
                post(session, reports_url, agents[i].body(), due, lat, agent=agents[i], auth=auth)
            )
        await asyncio.gather(*in_flight.values())
        scrape_task.cancel()
        await asyncio.gather(scrape_task, return_exceptions=True)
        wall = time.monotonic() - t0
        out["steady"] = {
            "lat": lat,
            "wall": wall,
            "due": total,
            "skipped": skipped,
            "scrapes": scrapes,
            "collector_cpu": (cpu_seconds(proc_pid) - cpu0) / wall,
            "client_cpu": (cpu_seconds(me) - me0) / wall,
            "client_max_lag": max_lag,
        }
        out["rss_end"] = rss_bytes(proc_pid)
    return out


def breakdown(bodies: list[bytes]) -> dict[str, float]:
    """Mean ms per report of each step of POST /api/v1/reports, in this process."""
    state = CollectorState(Limits(report_ttl=1e9, max_agents=10**6))
    membership = StaticMembership(state)
    steps = dict.fromkeys(("json", "parse", "accept", "members"), 0.0)
    sample = bodies[: min(len(bodies), 2000)]
    for body in bodies:
        t0 = time.perf_counter()
        obj = json.loads(body)
        t1 = time.perf_counter()
        r = parse_report(obj)  # every check, as the handler does
        t2 = time.perf_counter()
        state.accept(r)
        t3 = time.perf_counter()
        if body in sample:
            steps["json"] += t1 - t0
            steps["parse"] += t2 - t1
            steps["accept"] += t3 - t2
    t0 = time.perf_counter()
    for _ in range(50):
        json.dumps(membership.current().to_json())
    steps = {k: v / len(sample) * 1000 for k, v in steps.items()}
    steps["members"] = (time.perf_counter() - t0) / 50 * 1000
    return steps


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--agents", type=int, default=5000)
    parser.add_argument("--peers", type=int, default=10)
    parser.add_argument("--flows", type=int, default=3, help="retransmission pairs per agent")
    parser.add_argument(
        "--light-peers",
        type=int,
        default=0,
        help="light-tier paths per agent (its ring successors; 20 = the default k)",
    )
    parser.add_argument("--interval", type=float, default=10.0, help="agents' report interval")
    parser.add_argument("--duration", type=float, default=30.0, help="steady phase seconds")
    parser.add_argument("--scrape-every", type=float, default=10.0)
    parser.add_argument(
        "--changed", type=int, default=2, help="new test results per report (steady phase)"
    )
    parser.add_argument("--scrapes", type=int, default=3, help="idle scrapes")
    parser.add_argument(
        "--token",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="reports carry a shared bearer token the collector checks (static mode's auth)",
    )
    parser.add_argument(
        "--quick", action="store_true", default=quick_default(), help="1,000 agents, 12 s steady"
    )
    args = parser.parse_args()
    if args.quick:
        args.agents, args.duration, args.scrape_every = min(args.agents, 1000), 12.0, 5.0
    started = time.monotonic()
    reports = [
        synthetic_report(
            i, args.agents, args.peers, flows_per_agent=args.flows, light_peers=args.light_peers
        )
        for i in range(args.agents)
    ]
    bodies = [json.dumps(r.to_json()).encode() for r in reports]
    agents = [Agent(r.to_json(), args.changed) for r in reports]
    del reports
    # The load generator's own garbage-collector passes over these 5,000 reports
    # would show as collector latency: keep them out of its passes.
    gc.collect()
    gc.freeze()
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryDirectory() as tmp:
        log = pathlib.Path(tmp) / "collector.log"
        token_file = None
        args.token_value = ""
        if args.token:
            args.token_value = secrets.token_urlsafe(32)
            token_file = pathlib.Path(tmp) / "token"
            token_file.write_text(args.token_value)
            token_file.chmod(0o600)
        proc = start_collector(port, args.agents, log, token_file)
        try:

            async def run() -> dict:
                async with aiohttp.ClientSession() as s:
                    await wait_healthy(s, url, proc)
                rss0 = rss_bytes(proc.pid)
                res = await fleet(args, bodies, agents, proc.pid, url)
                res["rss_start"] = rss0
                return res

            res = asyncio.run(run())
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
            tail = log.read_text()[-2000:]
            if os.environ.get("BENCH_KEEP_LOG"):
                print(log.read_text()[-6000:])
    steps = breakdown(bodies)

    fill_lat, fill_wall = res["fill"]
    catch_lat, catch_wall = res["catch_up"]
    st = res["steady"]
    lat: Latencies = st["lat"]
    idle = res["idle_scrapes"]
    idle_times = [t for t, _, _ in idle]
    series = idle[-1][2] if idle else 0
    curl = [t for t in res["curl_scrapes"] if t > 0]
    if curl:
        idle_times = curl  # the goal is about the collector, not this process' HTTP client
    scrape_ms = quantile(idle_times, 0.5) * 1000
    aiohttp_ms = quantile([t for t, _, _ in idle], 0.5) * 1000
    p50, p99 = quantile(lat.ok, 0.5) * 1000, quantile(lat.ok, 0.99) * 1000
    answered = len(lat.ok)
    failed = sum(lat.errors.values())
    handled_ok = answered > 0 and failed == 0 and st["skipped"] == 0
    steady_scrapes = [t for t, _, _ in st["scrapes"]]
    n = args.agents
    # issue 14's goals with the light tier (k = 20 light peers); the older ones without
    post_goal_ms, scrape_goal_ms = (50.0, 1000.0) if args.light_peers else (20.0, 500.0)
    rows = [
        Row(
            f"fill: {n} agents report once (8 connections"
            f"{', bearer token' if args.token else ', no token'})",
            f"{fill_wall:.1f} s = {n / fill_wall:.0f} reports/s; "
            f"p50 {quantile(fill_lat.ok, 0.5) * 1000:.1f} ms, "
            f"p99 {quantile(fill_lat.ok, 0.99) * 1000:.1f} ms; errors {fill_lat.errors or 0}",
            value=n / fill_wall,
            unit="reports/s",
        ),
        Row(
            "catch-up: every agent fetches the final member list once (8 connections)",
            f"{catch_wall:.1f} s = {n / catch_wall:.0f} reports/s; "
            f"p50 {quantile(catch_lat.ok, 0.5) * 1000:.1f} ms, "
            f"p99 {quantile(catch_lat.ok, 0.99) * 1000:.1f} ms; errors {catch_lat.errors or 0}; "
            f"answers {catch_lat.bytes_in / max(1, len(catch_lat.ok)) / 1000:.0f} kB on average",
            value=n / catch_wall,
            unit="reports/s",
        ),
        Row(
            f"report handling at {n / args.interval:.0f} reports/s "
            f"(every agent every {args.interval:g} s, scrapes every {args.scrape_every:g} s)",
            f"p50 {p50:.1f} ms, p99 {p99:.1f} ms; answered {answered}/{st['due']}, "
            f"failed {lat.errors or 0}, skipped (previous pending) {st['skipped']}; "
            f"answers {lat.bytes_in / max(1, answered):.0f} B on average",
            goal=f"p99 < {post_goal_ms:g} ms",
            met=handled_ok and p99 < post_goal_ms,
            value=p99 / 1000,
            unit="s",
            extra={"p50": p50 / 1000, "errors": lat.errors, "skipped": st["skipped"]},
        ),
        Row(
            "full scrape, no reports in flight (curl: request to last byte)",
            f"median {scrape_ms:.0f} ms, max {max(idle_times) * 1000:.0f} ms "
            f"(aiohttp client {aiohttp_ms:.0f} ms); {series} series, {idle[-1][1] / 1e6:.0f} MB"
            if idle
            else "none",
            goal=f"< {scrape_goal_ms:g} ms",
            met=bool(idle) and scrape_ms < scrape_goal_ms,
            value=scrape_ms / 1000,
            unit="s",
        ),
        Row(
            "full scrape while agents report",
            (
                f"median {quantile(steady_scrapes, 0.5) * 1000:.0f} ms, "
                f"max {max(steady_scrapes) * 1000:.0f} ms ({len(steady_scrapes)} scrapes)"
            )
            if steady_scrapes
            else "none",
            value=quantile(steady_scrapes, 0.5),
            unit="s",
        ),
        Row(
            "collector RSS",
            f"start {res['rss_start'] / MiB:.0f} MiB, after fill {res['rss_after_fill'] / MiB:.0f}"
            f", after scrapes {res['rss_after_scrapes'] / MiB:.0f}, end {res['rss_end'] / MiB:.0f}",
            value=res["rss_end"],
            unit="bytes",
        ),
        Row(
            "CPU during steady phase (1.0 = one core)",
            f"collector {st['collector_cpu']:.2f}, load generator {st['client_cpu']:.2f}; "
            f"generator max lag {st['client_max_lag'] * 1000:.0f} ms",
            value=st["collector_cpu"],
        ),
        Row(
            "handler steps per report, in-process (ms)",
            ", ".join(f"{k} {v:.2f}" for k, v in steps.items()),
            value=sum(steps.values()) / 1000,
            unit="s",
            extra=steps,
        ),
    ]
    if "Traceback" in tail:
        print(tail, file=sys.stderr)
    whatif = os.environ.get("BENCH_COLLECTOR_CMD", "")
    report(
        ("fleet" if not whatif else "fleet-" + pathlib.Path(whatif.split()[0]).stem)
        + (f"-light{args.light_peers}" if args.light_peers else "")
        + os.environ.get("BENCH_TAG", ""),
        rows,
        params={
            "agents": n,
            "peers": args.peers,
            "flows": args.flows,
            "light_peers": args.light_peers,
            "interval": args.interval,
            "duration": args.duration,
            "scrape_every": args.scrape_every,
            "changed_per_report": args.changed,
            "report_bytes": len(bodies[0]),
            "collector": whatif or "python -m collector",
        },
        started=started,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
