"""The collector's HTTP handlers: reports in, /metrics streamed, JSON API, probes, web page.

The JSON bodies are shaped in collector/views.py; the app's parts are read
through the keys in collector/appkeys.py.
"""

from __future__ import annotations

import asyncio
import json
import logging
import pathlib
from typing import NoReturn

from aiohttp import web

from collector import exposition as ex
from collector import views
from collector.appkeys import (
    AUTH,
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
from collector.auth import Caller, Rejected
from collector.metrics import WatchStatus, metric_groups
from collector.ratelimit import retry_after_header
from collector.state import CollectorState, TooManyAgents
from netmesh.tokenfile import AUTHORIZATION, from_header
from netmesh.wire import NETWORKS, MemberList, WireError, parse_report

log = logging.getLogger(__name__)

WEB_DIR = pathlib.Path(__file__).parent / "web"
STREAM_CHUNK = 1 << 20  # bytes per write while streaming /metrics


def _reject(
    state: CollectorState, status: type[web.HTTPException], reason: str, text: str
) -> NoReturn:
    state.stats.reports[reason] += 1
    raise status(text=f"report rejected ({reason}): {text}\n")


_REFUSALS: dict[int, type[web.HTTPException]] = {
    401: web.HTTPUnauthorized,
    403: web.HTTPForbidden,
    503: web.HTTPServiceUnavailable,
}


def _too_many(request: web.Request, wait: float) -> NoReturn:
    request.app[STATE].stats.reports["rate_limited"] += 1
    raise web.HTTPTooManyRequests(
        headers={"Retry-After": retry_after_header(wait)},
        text=f"report rejected (rate_limited): too many rejected reports from {request.remote}; "
        f"retry after {wait:.1f}s\n",
    )


def _refuse(request: web.Request, exc: Rejected, node: str = "", what: str = "report") -> NoReturn:
    """401/403 with the reason, charged to the source's budget (429 once it is spent); 503.

    ``what`` names the request in the log and the answer (report or sweep); a
    refused report counts in ``reports[result]``, a refused sweep in ``sweeps``.
    """
    limiter = request.app[REJECT_LIMITER]
    source = request.remote or ""
    if exc.status in (401, 403):
        wait = limiter.retry_after(source)
        if wait > 0:
            _too_many(request, wait)
        limiter.charge(source)
    log.info("%s from %s%s rejected (%s): %s", what, source, node, exc.result, exc.reason)
    stats = request.app[STATE].stats
    if what == "report":
        stats.reports[exc.result] += 1
    else:
        stats.sweeps["refused"] += 1
    headers = {"WWW-Authenticate": 'Bearer realm="netmesh"'} if exc.status == 401 else None
    raise _REFUSALS[exc.status](
        headers=headers, text=f"{what} rejected ({exc.result}): {exc.reason}\n"
    )


async def authenticate(request: web.Request, what: str = "report") -> Caller:
    """The caller, from the cache or a shared token at once, else verified (rate limited)."""
    auth = request.app[AUTH]
    token = from_header(request.headers.get(AUTHORIZATION))
    try:
        caller = auth.lookup(token)
        if caller is None and token is not None:
            # A source whose rejections used up its budget gets no more reviews for now.
            wait = request.app[REJECT_LIMITER].retry_after(request.remote or "")
            if wait > 0:
                _too_many(request, wait)
            caller = await auth.verify(token)
    except Rejected as exc:
        _refuse(request, exc, what=what)
    if caller is None:  # an authenticator that neither answers nor rejects
        raise web.HTTPInternalServerError(text="no authentication answer\n")
    return caller


async def post_report(request: web.Request) -> web.Response:
    """An agent's report → 200 with the member list, or a 4xx with a reason (state unchanged).

    Authentication comes first (401 before the body is read), authorisation
    for the report's node once it is parsed (403); neither touches the state.
    """
    state = request.app[STATE]
    caller = await authenticate(request)
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
        request.app[AUTH].authorize(caller, report.node, report.network)
    except Rejected as exc:
        _refuse(request, exc, f" ({caller}) for node {report.node} ({report.network} network)")
    try:
        state.accept(report)
    except TooManyAgents as exc:
        _reject(state, web.HTTPTooManyRequests, "too_many_agents", str(exc))
    state.stats.reports["accepted"] += 1
    if report.network == "pod":
        # Pod endpoints plan and probe among themselves; on-demand sweeps are the
        # host network's (their results and requests name host paths).
        return web.Response(
            body=request.app[POD_MEMBER_BODY].body(
                request.app[POD_MEMBERSHIP].current(), report.agent.epoch
            ),
            content_type="application/json",
        )
    sweeps = request.app[SWEEPS]
    if sweeps.busy():
        sweeps.record(report)
        sweeps.tick(state.clock())
    return web.Response(
        body=request.app[MEMBER_BODY].body(
            request.app[MEMBERSHIP].current(), report.agent.epoch, sweeps.answer()
        ),
        content_type="application/json",
    )


def _watch_status(app: web.Application) -> list[WatchStatus]:
    return [WatchStatus(i.name, i.up, i.synced) for i in app[INFORMERS]]


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
        pod_members=app[POD_MEMBERSHIP].current(),
        layers=app[LAYERS],
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


def _network(request: web.Request) -> tuple[CollectorState, MemberList]:
    """The state and member list of ``?network=host|pod`` (default host); 400 otherwise."""
    name = request.query.get("network", "host")
    if name not in NETWORKS:
        raise web.HTTPBadRequest(text=f"network {name!r}: one of {', '.join(NETWORKS)}\n")
    if name == "pod":
        return request.app[STATE].pod_network, request.app[POD_MEMBERSHIP].current()
    return request.app[STATE], request.app[MEMBERSHIP].current()


async def nodes(request: web.Request) -> web.Response:
    state, members = _network(request)
    return web.json_response(views.nodes(state, members, now=state.clock()))


async def matrix(request: web.Request) -> web.Response:
    state, members = _network(request)
    return web.json_response(views.matrix(state, members))


async def light(request: web.Request) -> web.Response:
    state, members = _network(request)
    return web.json_response(views.light(state, members, now=state.clock()))


async def rca(request: web.Request) -> web.Response:
    """The latest root-cause analysis (verdict, ranked suspects, rules, failing paths)."""
    app = request.app
    enabled = app[SETTINGS].rca_interval > 0
    return web.json_response(
        views.rca(app[RCA], enabled=enabled, now=app[STATE].clock(), layers=app[LAYERS])
    )


async def healthz(request: web.Request) -> web.Response:
    """Alive when the loop answers and every watch thread runs; ``auth`` names the auth mode."""
    auth = request.app[AUTH].mode
    dead = [i.name for i in request.app[INFORMERS] if not i.alive]
    if dead:
        return web.json_response(
            {"status": "watch threads ended", "watches": dead, "auth": auth}, status=500
        )
    return web.json_response({"status": "ok", "auth": auth})


async def readyz(request: web.Request) -> web.Response:
    """Ready once every watch listed at least once (static mode: at once)."""
    waiting = [i.name for i in request.app[INFORMERS] if not i.synced]
    if waiting:
        return web.json_response(
            {"status": "waiting for first list", "watches": waiting}, status=503
        )
    return web.json_response({"status": "ready"})


async def index(request: web.Request) -> web.FileResponse:
    """The web page (static HTML; it reads the JSON API)."""
    return web.FileResponse(WEB_DIR / "index.html", headers={"Cache-Control": "no-cache"})
