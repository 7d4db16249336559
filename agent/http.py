"""The agent's HTTP endpoints: /metrics (this node), /api/v1/report, /healthz."""

from __future__ import annotations

import time
from collections.abc import Callable

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from agent.state import AgentState

STATE = web.AppKey("state", AgentState)
REGISTRY = web.AppKey("registry", CollectorRegistry)
Clock = Callable[[], float]
CLOCK: web.AppKey[Clock] = web.AppKey("clock")


def create_app(
    state: AgentState, registry: CollectorRegistry, *, clock: Callable[[], float] = time.time
) -> web.Application:
    app = web.Application()
    app[STATE] = state
    app[REGISTRY] = registry
    app[CLOCK] = clock
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/api/v1/report", report)
    app.router.add_get("/healthz", healthz)
    return app


async def metrics(request: web.Request) -> web.Response:
    body = generate_latest(request.app[REGISTRY])
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


async def report(request: web.Request) -> web.Response:
    state = request.app[STATE]
    return web.json_response(state.report(request.app[CLOCK]()).to_json())


async def healthz(request: web.Request) -> web.Response:
    """Alive when the event loop answers; the iperf3 server's state is in the body."""
    state = request.app[STATE]
    return web.json_response({"status": "ok", "iperf3_server_up": state.server_up()})
