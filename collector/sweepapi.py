"""HTTP handlers of on-demand bandwidth sweeps (the book is collector/sweeps.py).

- ``POST /api/v1/sweeps``: ``{"node": X}`` | ``{"source": A, "destination": B}`` |
  ``{"mesh": true}``, optionally ``"protocols": ["tcp", "udp"]`` → 202 with the
  new sweep (``Location: /api/v1/sweeps/<id>``), or 200 with the same sweep
  when an identical one is still pending or running; 400 malformed body,
  422 unknown node, 429 too many pending, 401/403 like reports when auth is on.
- ``GET /api/v1/sweeps``: every pending, running and recently finished sweep
  with its progress (``?results=1``: with every test's result);
  ``GET /api/v1/sweeps/{id}``: one with every test's result (``?results=0``:
  without; 404 unknown id).
"""

from __future__ import annotations

import json
import logging

from aiohttp import web

from collector.appkeys import MEMBERSHIP, SETTINGS, STATE, SWEEPS
from collector.handlers import authenticate
from collector.sweeps import SweepError

log = logging.getLogger(__name__)

SWEEPS_PATH = "/api/v1/sweeps"
MAX_BODY = 4096

_ERRORS: dict[int, type[web.HTTPException]] = {
    400: web.HTTPBadRequest,
    422: web.HTTPUnprocessableEntity,
    429: web.HTTPTooManyRequests,
}


def _refused(status: int, reason: str, request: web.Request | None = None) -> web.Response:
    """A 4xx with ``{"error": reason}``; counted as a refused sweep when ``request`` is given."""
    if request is not None:
        request.app[SWEEPS].stats.sweeps["refused"] += 1
    return web.json_response({"error": reason}, status=status)


async def post_sweep(request: web.Request) -> web.Response:
    app = request.app
    caller = await authenticate(request, "sweep")
    if request.content_length is not None and request.content_length > MAX_BODY:
        return _refused(413, f"body larger than {MAX_BODY} bytes", request)
    raw = await request.content.read(MAX_BODY + 1)
    if len(raw) > MAX_BODY:
        return _refused(413, f"body larger than {MAX_BODY} bytes", request)
    try:
        body = json.loads(raw)
    except (ValueError, RecursionError) as exc:
        return _refused(400, f"the body is not JSON: {exc}", request)
    book, state = app[SWEEPS], app[STATE]
    book.observe(entry.report for entry in state.agents.values())
    try:
        req, new = book.request(body, app[MEMBERSHIP].current(), caller=str(caller))
    except SweepError as exc:
        return _refused(exc.status, exc.reason)
    if new:
        log.info(
            "sweep %s requested by %s (%s from %s): %d tests",
            req.sweep.id,
            caller,
            req.target(),
            request.remote,
            len(req.expected),
        )
    return web.json_response(
        book.view(req, state.clock()),
        status=202 if new else 200,
        headers={"Location": f"{SWEEPS_PATH}/{req.sweep.id}"},
    )


async def list_sweeps(request: web.Request) -> web.Response:
    book, now = request.app[SWEEPS], request.app[STATE].clock()
    book.tick(now)
    return web.json_response(book.views(now, results=_flag(request, "results", False)))


async def get_sweep(request: web.Request) -> web.Response:
    book, now = request.app[SWEEPS], request.app[STATE].clock()
    book.tick(now)
    req = book.requests.get(request.match_info["id"])
    if req is None:
        return _refused(
            404,
            f"no sweep {request.match_info['id']!r} (finished ones are kept "
            f"for the last {request.app[SETTINGS].sweep_history})",
        )
    return web.json_response(book.view(req, now, results=_flag(request, "results", True)))


def _flag(request: web.Request, name: str, default: bool) -> bool:
    value = request.query.get(name)
    return default if value is None else value not in ("0", "false", "no")


def routes(router: web.UrlDispatcher) -> None:
    router.add_post(SWEEPS_PATH, post_sweep)
    router.add_get(SWEEPS_PATH, list_sweeps)
    router.add_get(SWEEPS_PATH + "/{id}", get_sweep)
