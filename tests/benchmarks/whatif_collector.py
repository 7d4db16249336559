"""What-if for bench_fleet.py: the collector with the member-list response cached (not product).

``POST /api/v1/reports`` answers every report with the whole member list,
rebuilt (``MemberList.to_json`` → ``asdict`` per member) and serialised
(``json.dumps``) for each response: at 5,000 members ~14 ms of a ~15 ms
handler. This launcher runs the real collector with one change: the JSON
bytes of a member list are built once per ``MemberList`` object (the
membership already returns the same object until the list changes) and
reused. It patches at run time, so the benchmark can show what that change
buys without touching the collector's code:

    BENCH_COLLECTOR_CMD=tests/benchmarks/whatif_collector.py \\
        .venv/bin/python tests/benchmarks/bench_fleet.py
"""

from __future__ import annotations

import json
import pathlib
import sys
from typing import Any

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[2]))

from aiohttp import web

from agent.report import MemberList

_plain_to_json = MemberList.to_json
_plain_json_response = web.json_response
_bytes: dict[int, tuple[dict[str, Any], bytes]] = {}  # id(dict) → (dict kept alive, body)


def _to_json(self: MemberList) -> dict[str, Any]:
    cached: dict[str, Any] | None = self.__dict__.get("_bench_json")
    if cached is None:
        cached = _plain_to_json(self)
        object.__setattr__(self, "_bench_json", cached)
        _bytes.clear()  # one list is current at a time
        _bytes[id(cached)] = (cached, json.dumps(cached).encode())
    return cached


def _json_response(data: Any = None, **kw: Any) -> web.Response:
    hit = _bytes.get(id(data))
    if hit is not None and hit[0] is data and not kw:
        return web.Response(body=hit[1], content_type="application/json")
    return _plain_json_response(data, **kw)


MemberList.to_json = _to_json  # type: ignore[method-assign]
web.json_response = _json_response

from collector.__main__ import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
