"""Push the agent's report to the collector; adopt the member list it answers with.

When the collector is unreachable the agent keeps testing its last known
members. Retries back off exponentially (up to ``max_backoff``) and the log
says so once per change of state, not once per attempt.

With a token file the report carries ``Authorization: Bearer <token>``, the
file re-read before every report (the kubelet rotates a projected
ServiceAccount token in place). The collector's refusals are counted apart:
401 (or no readable token) ``unauthenticated``, 403 ``forbidden``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable

import aiohttp

from agent.state import AgentState
from netmesh.tokenfile import TokenFileError, bearer, read_token
from netmesh.wire import WireError, parse_report_answer

log = logging.getLogger(__name__)

REPORTS_PATH = "/api/v1/reports"
REFUSALS = {401: "unauthenticated", 403: "forbidden"}  # any other status: "rejected"


class Reporter:
    def __init__(
        self,
        state: AgentState,
        *,
        collector_url: str,
        interval: float,
        timeout: float,
        max_backoff: float = 60.0,
        token_file: str = "",
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.state = state
        self.url = collector_url.rstrip("/") + REPORTS_PATH
        self.interval = interval
        self.timeout = timeout
        self.max_backoff = max(max_backoff, interval)
        self.token_file = token_file
        self.clock = clock
        self._failing: str | None = None

    async def run(self) -> None:
        timeout = aiohttp.ClientTimeout(total=self.timeout)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            delay = self.interval
            while True:
                ok = await self.push_once(session)
                delay = self.interval if ok else min(self.max_backoff, delay * 2)
                await asyncio.sleep(delay)

    async def push_once(self, session: aiohttp.ClientSession) -> bool:
        """One report; True when the collector accepted it and sent a valid member list."""
        headers: dict[str, str] = {}
        if self.token_file:
            try:
                headers = bearer(read_token(self.token_file))
            except TokenFileError as exc:
                return self._failed("unauthenticated", str(exc))
        body = self.state.report(self.clock()).to_json()
        try:
            async with session.post(self.url, json=body, headers=headers) as resp:
                text = await resp.text()
                if resp.status != 200:
                    result = REFUSALS.get(resp.status, "rejected")
                    return self._failed(result, f"HTTP {resp.status}: {text.strip()[:300]}")
                members, sweeps = parse_report_answer(json.loads(text), self.state.members)
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            return self._failed("unreachable", f"{type(exc).__name__}: {exc}")
        except (ValueError, WireError) as exc:
            return self._failed("bad_response", str(exc))
        self.state.set_members(members)
        self.state.adopt_sweeps(sweeps)
        self.state.reports["ok"] += 1
        self.state.collector_up = True
        self.state.last_report_at = self.clock()
        if self._failing is not None:
            log.info("collector %s reachable again (%d members)", self.url, len(members.members))
            self._failing = None
        return True

    def _failed(self, result: str, detail: str) -> bool:
        self.state.reports[result] += 1
        self.state.collector_up = False
        if self._failing != result:
            log.warning(
                "report to %s failed (%s): %s; still testing %d known members, "
                "retrying with backoff",
                self.url,
                result,
                detail,
                len(self.state.members.members),
            )
            self._failing = result
        return False
