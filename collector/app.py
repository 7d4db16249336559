"""The collector's aiohttp app: reports in, member list back, merged /metrics, JSON API.

``create_app(settings)`` wires state, membership and (kubernetes mode) the
watches; background work (TTL sweep, watch threads) starts and stops in the
app's ``cleanup_ctx``.

Endpoints:
- ``POST /api/v1/reports``: an agent's report → 200 with the member list, or a
  4xx with a reason (state unchanged);
- ``GET /metrics``: every agent's series, pod names, self-metrics;
- ``GET /api/v1/nodes``: members and reporting agents, last report, probe, health;
- ``GET /api/v1/matrix``: latest bandwidth, RTT, loss, success per path and protocol;
- ``GET /api/v1/rca``: the latest root-cause analysis (collector/rca.py), recomputed
  every ``rca_interval`` seconds when reports arrived;
- ``GET /`` and ``/static/*``: the web page (collector/web/, plain HTML/CSS/JS);
- ``GET /healthz`` (the loop answers, the watch threads live) and
  ``GET /readyz`` (kubernetes mode: every watch has listed once).
"""

from __future__ import annotations

import asyncio
import json
import logging
import pathlib
import time
from collections.abc import AsyncIterator, Callable
from typing import Any, NoReturn

from aiohttp import web
from prometheus_client import CollectorRegistry, ProcessCollector

from collector import exposition as ex
from collector.gcpolicy import GcPolicy
from collector.kube import Informer, make_api
from collector.live import LiveRca
from collector.membership import KubernetesMembership, Membership, NodeRules, StaticMembership
from collector.metrics import WatchStatus, metric_groups
from collector.podmap import PodInfo, PodMap, parse_node, parse_pod
from collector.settings import CollectorSettings, rca_criteria
from collector.state import CollectorState, Limits, TooManyAgents
from netmesh.tasks import guard
from netmesh.wire import MemberList, WireError, parse_report

log = logging.getLogger(__name__)

REPORTS_PATH = "/api/v1/reports"

SETTINGS = web.AppKey("settings", CollectorSettings)
STATE = web.AppKey("state", CollectorState)
MEMBERSHIP: web.AppKey[Membership] = web.AppKey("membership")


class MemberListBody:
    """The report response as JSON bytes, serialised once per member list, not per report.

    Membership hands out the same MemberList object until the members change,
    so identity is the cache key. (At 5,000 members, serialising per report
    was ~14 ms of a ~15 ms report handler.) An agent that already plans with
    the current epoch gets the short "unchanged" answer instead of ~320 KB.
    """

    def __init__(self) -> None:
        self._list: MemberList | None = None
        self._body = b""
        self._unchanged = b""

    def body(self, members: MemberList, agent_epoch: int | None = None) -> bytes:
        if members is not self._list:
            self._body = json.dumps(members.to_json(), separators=(",", ":")).encode()
            self._unchanged = json.dumps({"epoch": members.epoch, "unchanged": True}).encode()
            self._list = members
        return self._unchanged if agent_epoch == members.epoch else self._body


MEMBER_BODY: web.AppKey[MemberListBody] = web.AppKey("member_body")
INFORMERS: web.AppKey[list[Informer[Any]]] = web.AppKey("informers")
PROCESS = web.AppKey("process", CollectorRegistry)
GC = web.AppKey("gc", GcPolicy)
RCA = web.AppKey("rca", LiveRca)

WEB_DIR = pathlib.Path(__file__).parent / "web"
RCA_JSON_LIMIT = 200  # rules and paths listed by /api/v1/rca (the totals are given)


def limits(settings: CollectorSettings) -> Limits:
    return Limits(
        report_ttl=settings.report_ttl,
        stale_after=settings.stale_after,
        max_agents=settings.max_agents,
        max_series_per_agent=settings.max_series_per_agent,
        max_retransmit_series_per_agent=settings.max_retransmit_series_per_agent,
    )


def create_app(
    settings: CollectorSettings,
    *,
    clock: Callable[[], float] = time.time,
    kube_api: Any = None,
) -> web.Application:
    """The collector app. ``kube_api`` (a CoreV1Api) overrides the kubeconfig (tests)."""
    app = web.Application(client_max_size=settings.max_report_bytes)
    pod_map = PodMap()
    state = CollectorState(limits(settings), pod_map=pod_map, clock=clock)
    app[SETTINGS] = settings
    app[STATE] = state
    app[INFORMERS] = []
    process = CollectorRegistry(auto_describe=False)
    ProcessCollector(registry=process)
    app[PROCESS] = process
    if settings.mode == "kubernetes":
        membership = KubernetesMembership(
            state,
            pod_map,
            rules=NodeRules(
                exclude_not_ready=settings.exclude_not_ready_nodes,
                exclude_unschedulable=settings.exclude_unschedulable_nodes,
                exclude_deleting=settings.exclude_deleting_nodes,
            ),
            default_port=settings.agent_iperf3_port,
            clock=clock,
        )
        app[MEMBERSHIP] = membership
        app.cleanup_ctx.append(_watches(settings, state, pod_map, membership, kube_api))
    else:
        app[MEMBERSHIP] = StaticMembership(state, clock=clock)
    app[MEMBER_BODY] = MemberListBody()
    app[GC] = GcPolicy(state.stats.gc)
    app.cleanup_ctx.append(_expiry)
    if settings.gc_full_interval > 0:
        app.cleanup_ctx.append(_gc)
    app[RCA] = LiveRca(
        rca_criteria(settings),
        baseline_samples=settings.rca_baseline_samples,
        ebpf_window=settings.rca_ebpf_window,
    )
    if settings.rca_interval > 0:
        app.cleanup_ctx.append(_rca)
    app.router.add_post(REPORTS_PATH, post_report)
    app.router.add_get("/", index)
    app.router.add_static("/static/", WEB_DIR, follow_symlinks=False)
    app.router.add_get("/api/v1/rca", rca)
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/api/v1/nodes", nodes)
    app.router.add_get("/api/v1/matrix", matrix)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    return app


# --------------------------------------------------------------------------- background


async def _expiry(app: web.Application) -> AsyncIterator[None]:
    state, settings = app[STATE], app[SETTINGS]

    async def sweep() -> None:
        while True:
            await asyncio.sleep(settings.expiry_interval)
            for name in state.expire():
                log.info("agent %s expired: no report for %.0fs", name, settings.report_ttl)

    def failed(name: str) -> None:
        state.stats.task_failures[name] += 1

    task = asyncio.create_task(guard("expiry", sweep, on_failure=failed))
    yield
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


async def _gc(app: web.Application) -> AsyncIterator[None]:
    policy, state = app[GC], app[STATE]
    policy.apply()

    def failed(name: str) -> None:
        state.stats.task_failures[name] += 1

    task = asyncio.create_task(
        guard("gc", lambda: policy.run(app[SETTINGS].gc_full_interval), on_failure=failed)
    )
    yield
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    policy.restore()


def _node_resolver(state: CollectorState) -> Callable[[str], str | None]:
    """IP → node name: a node's own IP, or a pod's IP → the pod's node; None if unknown."""

    def resolve(ip: str) -> str | None:
        who = state.resolve(ip)
        if who.kind == "node":
            return who.pod
        if who.kind == "pod":
            info = state.pod_map.pods.get((who.namespace, who.pod))
            return info.node if info is not None and info.node else None
        return None

    return resolve


async def run_rca(app: web.Application) -> None:
    """One RCA run on the loop, in short steps (a thread would hold the GIL against the loop)."""
    state = app[STATE]
    results = {name: state.agents[name].report.results for name in state.sorted_names()}
    flows = {name: state.agents[name].report.retransmits for name in results}
    nodes = {m.name for m in app[MEMBERSHIP].current().members} | results.keys()
    for _ in app[RCA].steps(results, flows, _node_resolver(state), now=state.clock(), nodes=nodes):
        await asyncio.sleep(0)


async def _rca(app: web.Application) -> AsyncIterator[None]:
    state, settings = app[STATE], app[SETTINGS]

    async def loop() -> None:
        seen: tuple[int, int, int] | None = None
        while True:
            mark = (state.stats.reports["accepted"], state.stats.expired, state.agents_version)
            if mark != seen:
                seen = mark
                await run_rca(app)
            await asyncio.sleep(settings.rca_interval)

    def failed(name: str) -> None:
        state.stats.task_failures[name] += 1

    task = asyncio.create_task(guard("rca", loop, on_failure=failed))
    yield
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


def _pod_key(obj: Any) -> tuple[str, str]:
    meta = obj.get("metadata", {}) if isinstance(obj, dict) else {}
    return (str(meta.get("namespace", "")), str(meta.get("name", "")))


def _node_key(obj: Any) -> str:
    meta = obj.get("metadata", {}) if isinstance(obj, dict) else {}
    return str(meta.get("name", ""))


def _watches(
    settings: CollectorSettings,
    state: CollectorState,
    pod_map: PodMap,
    membership: KubernetesMembership,
    kube_api: Any,
) -> Callable[[web.Application], AsyncIterator[None]]:
    async def ctx(app: web.Application) -> AsyncIterator[None]:
        api = kube_api if kube_api is not None else make_api(settings.kubeconfig)
        loop = asyncio.get_running_loop()

        def restarted(resource: str, reason: str) -> None:
            state.stats.watch_restarts[(resource, reason)] += 1

        common: dict[str, Any] = {
            "loop": loop,
            "on_restart": restarted,
            "watch_timeout": settings.watch_timeout,
            "api_timeout": settings.api_timeout,
            "backoff": settings.watch_backoff,
            "max_backoff": settings.watch_max_backoff,
        }
        informers: list[Informer[Any]] = [
            Informer[PodInfo](
                "agents",
                api.list_namespaced_pod,
                kwargs={
                    "namespace": settings.agent_namespace,
                    "label_selector": settings.agent_selector,
                },
                parse=parse_pod,
                key=_pod_key,
                on_replace=membership.replace_agents,
                on_upsert=membership.upsert_agent,
                on_delete=membership.delete_agent,
                **common,
            ),
            Informer[PodInfo](
                "pods",
                api.list_pod_for_all_namespaces,
                parse=parse_pod,
                key=_pod_key,
                on_replace=pod_map.replace_pods,
                on_upsert=pod_map.upsert_pod,
                on_delete=pod_map.delete_pod,
                **common,
            ),
            Informer(
                "nodes",
                api.list_node,
                parse=parse_node,
                key=_node_key,
                on_replace=pod_map.replace_nodes,
                on_upsert=pod_map.upsert_node,
                on_delete=pod_map.delete_node,
                **common,
            ),
        ]
        app[INFORMERS].extend(informers)
        for informer in informers:
            informer.start()
        yield
        await asyncio.gather(*(asyncio.to_thread(i.stop) for i in informers))

    return ctx


# --------------------------------------------------------------------------- handlers


def _reject(
    state: CollectorState, status: type[web.HTTPException], reason: str, text: str
) -> NoReturn:
    state.stats.reports[reason] += 1
    raise status(text=f"report rejected ({reason}): {text}\n")


async def post_report(request: web.Request) -> web.Response:
    state = request.app[STATE]
    try:
        body = await request.read()
    except web.HTTPRequestEntityTooLarge as exc:
        limit = request.app[SETTINGS].max_report_bytes
        state.stats.reports["too_large"] += 1
        raise web.HTTPRequestEntityTooLarge(
            max_size=limit,
            actual_size=request.content_length or limit + 1,
            text=f"report rejected (too_large): body larger than max_report_bytes ({limit})\n",
        ) from exc
    try:
        obj = json.loads(body)
    except (ValueError, RecursionError) as exc:
        _reject(state, web.HTTPBadRequest, "not_json", f"the body is not JSON: {exc}")
    try:
        report = parse_report(obj)
    except WireError as exc:
        reason = "unsupported_schema" if str(exc).startswith("schema:") else "invalid"
        _reject(state, web.HTTPUnprocessableEntity, reason, str(exc))
    except RecursionError:
        _reject(state, web.HTTPBadRequest, "invalid", "nested too deeply")
    try:
        state.accept(report)
    except TooManyAgents as exc:
        _reject(state, web.HTTPTooManyRequests, "too_many_agents", str(exc))
    state.stats.reports["accepted"] += 1
    return web.Response(
        body=request.app[MEMBER_BODY].body(request.app[MEMBERSHIP].current(), report.agent.epoch),
        content_type="application/json",
    )


def _watch_status(app: web.Application) -> list[WatchStatus]:
    return [WatchStatus(i.name, i.up, i.synced) for i in app[INFORMERS]]


STREAM_CHUNK = 1 << 20  # bytes per write while streaming /metrics


async def metrics(request: web.Request) -> web.StreamResponse:
    """Stream /metrics a family at a time in ~1 MiB writes (chunked transfer encoding).

    At 5,000 agents the body is ~100 MB from ~120,000 cached fragments;
    gathering them at once held the event loop (and every report) for
    30-50 ms, joining and sending them in one piece for hundreds. Between
    families and between writes, report handlers run.
    """
    app = request.app
    groups = metric_groups(
        app[STATE],
        app[MEMBERSHIP].current(),
        _watch_status(app),
        process=app[PROCESS],
        rca=app[RCA] if app[SETTINGS].rca_interval > 0 else None,
    )
    resp = web.StreamResponse(headers={"Content-Type": ex.CONTENT_TYPE})
    resp.enable_chunked_encoding()
    await resp.prepare(request)
    chunk: list[bytes] = []
    size = 0
    for group in groups:
        for part in group:
            chunk.append(part)
            size += len(part)
            if size >= STREAM_CHUNK:
                await resp.write(b"".join(chunk))
                chunk, size = [], 0
        await asyncio.sleep(0)
    if chunk:
        await resp.write(b"".join(chunk))
    await resp.write_eof()
    return resp


async def nodes(request: web.Request) -> web.Response:
    state = request.app[STATE]
    members = request.app[MEMBERSHIP].current()
    now = state.clock()
    by_name = {m.name: m for m in members.members}
    out = []
    for name in sorted(by_name.keys() | state.agents.keys()):
        entry = state.agents.get(name)
        member = by_name.get(name)
        item: dict[str, Any] = {
            "name": name,
            "member": member is not None,
            "address": member.address if member else entry.report.address if entry else None,
            "iperf3_port": member.iperf3_port
            if member
            else entry.report.iperf3_port
            if entry
            else None,
            "up": bool(entry is not None and state.is_fresh(entry, now)),
        }
        if entry is not None:
            r = entry.report
            item.update(
                last_report_at=entry.received_at,
                report_age_seconds=state.age(entry, now),
                generated_at=r.generated_at,
                agent_started_at=r.started_at,
                http_port=r.http_port,
                probe=None
                if r.probe is None
                else {"mode": r.probe.mode, "up": r.probe.up, "reason": r.probe.reason},
                health={
                    "iperf3_server_up": r.agent.iperf3_server_up,
                    "iperf3_server_restarts": r.agent.iperf3_server_restarts,
                    "scheduler_lag_seconds": r.agent.scheduler_lag_seconds,
                    "skipped_tests": r.agent.skipped_tests,
                    "members": r.agent.members,
                    "epoch": r.agent.epoch,
                },
                paths=len(r.results),
                failing_paths=sum(1 for res in r.results if not res.ok),
                series_dropped=entry.block.dropped,
                retransmit_flows_folded=entry.retransmits.folded,
            )
        else:
            item.update(last_report_at=None, report_age_seconds=None, probe=None, health=None)
        out.append(item)
    return web.json_response({"epoch": members.epoch, "nodes": out})


async def matrix(request: web.Request) -> web.Response:
    state = request.app[STATE]
    names = sorted(
        {m.name for m in request.app[MEMBERSHIP].current().members} | state.agents.keys()
    )
    paths = [
        {
            "source": r.source,
            "destination": r.destination,
            "protocol": r.protocol,
            "result": r.result,
            "success": r.ok,
            "message": r.message,
            "started_at": r.started_at,
            "bandwidth_bits_per_second": r.received_bits_per_second,
            "rtt_seconds": r.rtt_mean_seconds,
            "retransmits": r.retransmits,
            "jitter_seconds": r.jitter_seconds,
            "loss_ratio": r.loss_ratio,
        }
        for r in state.latest_results()
    ]
    return web.json_response({"nodes": names, "paths": paths})


async def healthz(request: web.Request) -> web.Response:
    """Alive when the loop answers and every watch thread runs."""
    dead = [i.name for i in request.app[INFORMERS] if not i.alive]
    if dead:
        return web.json_response({"status": "watch threads ended", "watches": dead}, status=500)
    return web.json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    """Ready once every watch listed at least once (static mode: at once)."""
    waiting = [i.name for i in request.app[INFORMERS] if not i.synced]
    if waiting:
        return web.json_response(
            {"status": "waiting for first list", "watches": waiting}, status=503
        )
    return web.json_response({"status": "ready"})


async def rca(request: web.Request) -> web.Response:
    """The latest root-cause analysis (verdict, ranked suspects, rules, failing paths)."""
    live, state = request.app[RCA], request.app[STATE]
    if request.app[SETTINGS].rca_interval <= 0:
        return web.json_response({"verdict": "off", "summary": "RCA is off (rca_interval 0)"})
    if live.latest is None or live.computed_at is None:
        return web.json_response(
            {"verdict": "no-data", "summary": "", "suspects": [], "ranking": [], "rules": []}
        )
    body = live.latest.to_json(limit=RCA_JSON_LIMIT)
    body.update(
        computed_at=live.computed_at,
        age_seconds=max(0.0, state.clock() - live.computed_at),
        duration_seconds=live.seconds,
        runs=live.runs,
    )
    return web.json_response(body)


async def index(request: web.Request) -> web.FileResponse:
    """The web page (static HTML; it reads the JSON API)."""
    return web.FileResponse(WEB_DIR / "index.html", headers={"Cache-Control": "no-cache"})
