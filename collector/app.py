"""The collector's aiohttp app: reports in, member list back, merged /metrics, JSON API.

``create_app(settings)`` is the composition root: it builds state, membership,
GC policy and live RCA into the app (keys in collector/appkeys.py), the route
table (handlers in collector/handlers.py) and the background work in the
app's ``cleanup_ctx``: the TTL sweep, the full-GC timer, the RCA timer (each
a ``netmesh.tasks.background`` task) and, in kubernetes mode, the watches
(collector/watches.py).

Endpoints:
- ``POST /api/v1/reports``: an agent's report → 200 with the member list, or a
  4xx with a reason (state unchanged);
- ``GET /metrics``: every agent's series, pod names, self-metrics;
- ``GET /api/v1/nodes``: members and reporting agents, last report, probe, health;
- ``GET /api/v1/matrix``: latest bandwidth, RTT, loss, success per path and protocol;
- ``GET /api/v1/light``: the latest light-tier window per ordered pair (loss by
  direction, RTT, MTU probe), when each was reported, and the collector's clock;
- ``POST /api/v1/sweeps``, ``GET /api/v1/sweeps[/{id}]``: on-demand bandwidth
  sweeps of a node, a pair or the mesh, and their progress (collector/sweepapi.py);
- ``GET /api/v1/rca``: the latest root-cause analysis (collector/live.py), recomputed
  every ``rca_interval`` seconds when reports arrived;
- ``GET /`` and ``/static/*``: the web page (collector/web/, plain HTML/CSS/JS);
- ``GET /healthz`` (the loop answers, the watch threads live) and
  ``GET /readyz`` (kubernetes mode: every watch has listed once).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

from aiohttp import web
from prometheus_client import CollectorRegistry, ProcessCollector

from collector import handlers
from collector.appkeys import (
    AUTH,
    GC,
    INFORMERS,
    LAYERS,
    MEMBER_BODY,
    MEMBERSHIP,
    POD_MEMBER_BODY,
    POD_MEMBERSHIP,
    PROCESS,
    RCA,
    REJECT_LIMITER,
    SETTINGS,
    STATE,
    SWEEPS,
)
from collector.auth import Authenticator, NoAuth, StaticToken, TokenReviewAuth
from collector.gcpolicy import GcPolicy
from collector.kube import make_api
from collector.layers import LayerJudge
from collector.lightjudge import settled
from collector.live import LiveRca
from collector.memberbody import MemberListBody
from collector.membership import KubernetesMembership, NodeRules, StaticMembership
from collector.podmap import PodInfo, PodKey, PodMap
from collector.podsfile import PodsFile, PodsFileError
from collector.ratelimit import RejectLimiter
from collector.settings import (
    CollectorSettings,
    dns_criteria,
    pod_criteria,
    rca_criteria,
    service_criteria,
)
from collector.state import CollectorState, Limits
from collector.sweepapi import routes as sweep_routes
from collector.sweeps import SweepBook
from collector.tokenreview import KubeReviewer
from collector.topology import topology_of
from collector.watches import watches
from netmesh.config import project
from netmesh.tasks import background
from netmesh.tokenfile import MIN_SHARED_TOKEN_LENGTH, TokenFileError, read_token

log = logging.getLogger(__name__)

REPORTS_PATH = "/api/v1/reports"


def limits(settings: CollectorSettings) -> Limits:
    return project(settings, Limits)


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
        if settings.auth_mode == "tokenreview" and kube_api is None:
            kube_api = make_api(settings.kubeconfig)
        app.cleanup_ctx.append(watches(settings, state, pod_map, membership, kube_api))

        def agent_pod(key: PodKey) -> PodInfo | None:
            # Looked up at call time: every re-list replaces membership.agent_pods.
            return membership.agent_pods.get(key)

    else:
        app[MEMBERSHIP] = StaticMembership(state, clock=clock)
        agent_pod = _no_pods
        if settings.pods_file:
            app.cleanup_ctx.append(_pods_file)
    app[AUTH] = authenticator(settings, state, kube_api, agent_pod, clock)
    state.stats.auth_mode = app[AUTH].mode
    app[REJECT_LIMITER] = RejectLimiter(
        rate=settings.auth_reject_rate,
        burst=settings.auth_reject_burst,
        max_sources=settings.auth_reject_sources,
    )
    app.cleanup_ctx.append(_auth)
    app[MEMBER_BODY] = MemberListBody()
    app[POD_MEMBERSHIP] = StaticMembership(state.pod_network, clock=clock)
    app[POD_MEMBER_BODY] = MemberListBody()
    app[SWEEPS] = SweepBook(
        max_pending=settings.sweep_max_pending,
        lead=settings.sweep_lead,
        grace=settings.sweep_grace,
        history=settings.sweep_history,
        clock=clock,
        stats=state.stats,
    )
    app[GC] = GcPolicy(state.stats.gc)
    app.cleanup_ctx.append(_expiry)
    if settings.gc_full_interval > 0:
        app.cleanup_ctx.append(_gc)
    app[RCA] = LiveRca(
        rca_criteria(settings),
        baseline_samples=settings.rca_baseline_samples,
        ebpf_window=settings.rca_ebpf_window,
        dns_criteria=dns_criteria(settings),
        service_criteria=service_criteria(settings),
        pod_criteria=pod_criteria(settings),
    )
    app[LAYERS] = LayerJudge(rca_criteria(settings))
    if settings.rca_interval > 0:
        app.cleanup_ctx.append(_rca)
    _routes(app.router)
    return app


def _no_pods(key: PodKey) -> PodInfo | None:
    return None


class AuthConfigError(ValueError):
    """The authentication settings cannot work (e.g. an unreadable token file)."""


def _pod_lookup(pod_map: PodMap) -> Callable[[PodKey], PodInfo | None]:
    def lookup(key: PodKey) -> PodInfo | None:
        return pod_map.pods.get(key)  # looked up at call time: a re-list replaces the dict

    return lookup


def authenticator(
    settings: CollectorSettings,
    state: CollectorState,
    kube_api: Any,
    agent_pod: Callable[[PodKey], PodInfo | None],
    clock: Callable[[], float],
) -> Authenticator:
    """The authenticator of ``settings.auth_mode`` (collector/auth.py)."""
    mode = settings.auth_mode
    if mode == "token":
        try:
            token = read_token(settings.auth_token_file)
        except TokenFileError as exc:
            raise AuthConfigError(str(exc)) from None
        if len(token) < MIN_SHARED_TOKEN_LENGTH:
            raise AuthConfigError(
                f"token file {settings.auth_token_file}: a shared token needs at least "
                f"{MIN_SHARED_TOKEN_LENGTH} characters"
            )
        return StaticToken(token)
    if mode == "tokenreview":
        reviewer = KubeReviewer(
            kube_api.api_client,
            audience=settings.auth_audience,
            timeout=settings.auth_review_timeout,
        )
        return TokenReviewAuth(
            reviewer.review,
            agent_pod,
            any_pod=_pod_lookup(state.pod_map),
            audience=settings.auth_audience,
            namespace=settings.agent_namespace,
            cache_ttl=settings.auth_cache_ttl,
            cache_size=settings.auth_cache_size,
            clock=clock,
            counts=state.stats.token_reviews,
            close=reviewer.close,
        )
    log.warning(
        "reports are UNAUTHENTICATED (auth none): anyone who reaches this collector can report "
        "as any node; set --auth-token-file (and the agents' --auth-token-file)"
    )
    return NoAuth()


async def _auth(app: web.Application) -> AsyncIterator[None]:
    yield
    app[AUTH].close()


def _routes(router: web.UrlDispatcher) -> None:
    router.add_post(REPORTS_PATH, handlers.post_report)
    router.add_get("/", handlers.index)
    router.add_static("/static/", handlers.WEB_DIR, follow_symlinks=False)
    router.add_get("/api/v1/rca", handlers.rca)
    router.add_get("/metrics", handlers.metrics)
    router.add_get("/api/v1/nodes", handlers.nodes)
    router.add_get("/api/v1/matrix", handlers.matrix)
    router.add_get("/api/v1/light", handlers.light)
    router.add_get("/healthz", handlers.healthz)
    router.add_get("/readyz", handlers.readyz)
    sweep_routes(router)


# --------------------------------------------------------------------------- background


def _count_failure(state: CollectorState) -> Callable[[str], None]:
    def failed(name: str) -> None:
        state.stats.task_failures[name] += 1

    return failed


async def _expiry(app: web.Application) -> AsyncIterator[None]:
    state, settings = app[STATE], app[SETTINGS]

    async def sweep() -> None:
        while True:
            await asyncio.sleep(settings.expiry_interval)
            for name in state.expire():
                log.info("agent %s expired: no report for %.0fs", name, settings.report_ttl)
            book = app[SWEEPS]
            if book.busy():
                book.observe(entry.report for entry in state.agents.values())
                book.tick(state.clock())

    async with background("expiry", sweep, on_failure=_count_failure(state)):
        yield


PODS_FILE_INTERVAL = 2.0  # seconds between checks of the pods file for a change


async def _pods_file(app: web.Application) -> AsyncIterator[None]:
    """Static mode's pod identities from a file: read at start-up (a broken file stops the
    start), then re-read on change; a broken later version is logged and counted."""
    state = app[STATE]
    source = PodsFile(app[SETTINGS].pods_file, state.pod_map)
    source.poll()
    log.info("pods file %s: %d pods", source.path, source.pods)

    async def watch() -> None:
        while True:
            await asyncio.sleep(PODS_FILE_INTERVAL)
            try:
                if source.poll():
                    log.info("pods file %s re-read: %d pods", source.path, source.pods)
            except PodsFileError as exc:
                log.error("%s (keeping the last good pod list)", exc)
                state.stats.task_failures["pods-file"] += 1

    async with background("pods-file", watch, on_failure=_count_failure(state)):
        yield


async def _gc(app: web.Application) -> AsyncIterator[None]:
    policy, interval = app[GC], app[SETTINGS].gc_full_interval
    policy.apply()
    async with background(
        "gc", lambda: policy.run(interval), on_failure=_count_failure(app[STATE])
    ):
        yield
    policy.restore()


def _node_resolver(state: CollectorState, *, pods: bool = True) -> Callable[[str], str | None]:
    """IP → node name: a node's own IP, or a pod's IP → the pod's node; None if unknown.

    ``pods`` False: a pod's IP → None (pod blame takes the pods' flows, collector/podrca.py).
    """

    def resolve(ip: str) -> str | None:
        who = state.resolve(ip)
        if who.kind == "node":
            return who.name
        if who.kind == "pod" and pods:
            info = state.pod_map.pods.get((who.namespace, who.name))
            return info.node if info is not None and info.node else None
        return None

    return resolve


def _pod_resolver(state: CollectorState) -> Callable[[str], tuple[str, str] | None]:
    """IP → (namespace/name, node) of the pod holding it; None for nodes and unknown IPs."""

    def resolve(ip: str) -> tuple[str, str] | None:
        who = state.resolve(ip)
        if who.kind != "pod":
            return None
        info = state.pod_map.pods.get((who.namespace, who.name))
        return (f"{who.namespace}/{who.name}", info.node if info is not None else "")

    return resolve


async def run_rca(app: web.Application) -> None:
    """One RCA run on the loop, in short steps (a thread would hold the GIL against the loop)."""
    state = app[STATE]
    results = {name: state.agents[name].report.results for name in state.sorted_names()}
    flows = {name: state.agents[name].report.retransmits for name in results}
    nodes = {m.name for m in app[MEMBERSHIP].current().members} | results.keys()
    reports = {name: state.agents[name].report for name in results}
    light = settled(
        {name: r.light.paths for name, r in reports.items() if r.light is not None},
        {name: r.started_at for name, r in reports.items()},
        {name: r.generated_at for name, r in reports.items()},
    )
    kube_nodes = state.pod_map.nodes if app[SETTINGS].mode == "kubernetes" else None
    topology = topology_of((state.agents[name].report for name in results), kube_nodes)
    drops = {name: state.agents[name].report.drops for name in results}
    dns = {name: r.dns for name, r in reports.items() if r.dns}
    service = {name: r.service for name, r in reports.items() if r.service}
    pod_reports = {n: e.report for n, e in state.pod_network.agents.items()}
    pod_dns = {name: r.dns for name, r in pod_reports.items() if r.dns}
    pod_service = {name: r.service for name, r in pod_reports.items() if r.service}
    live = app[RCA]
    steps = live.steps(
        results,
        flows,
        _node_resolver(state, pods=not live.pods.enabled),
        now=state.clock(),
        nodes=nodes,
        light=light,
        topology=topology,
        drops=drops,
        dns=dns,
        pod_dns=pod_dns,
        service=service,
        pod_service=pod_service,
        resolve_pod=_pod_resolver(state),
    )
    for _ in steps:
        await asyncio.sleep(0)
    pods = state.pod_network
    pod_light = {
        name: report.light.paths
        for name in pods.sorted_names()
        if (report := pods.agents[name].report).light is not None
    }
    # The host light tier as the host RCA judged it (not judged twice).
    app[LAYERS].run(pod_light, light, results, app[RCA].light_outcomes or None)


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

    async with background("rca", loop, on_failure=_count_failure(state)):
        yield
