"""``netmesh-agent``: read flags and NETMESH_ environment variables, validate, run."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
import sys
from collections.abc import Sequence

from agent.daemon import run_agent
from agent.settings import AgentSettings
from netmesh.config import SettingsError, load


def main(argv: Sequence[str] | None = None) -> int:
    environ = dict(os.environ)
    environ.setdefault("NETMESH_NODE_NAME", socket.gethostname())
    try:
        settings = load(
            AgentSettings,
            sys.argv[1:] if argv is None else argv,
            environ,
            prog="netmesh-agent",
            description="netmesh agent: iperf3 server, scheduled mesh tests, reports.",
        )
    except SettingsError as exc:
        print(f"netmesh-agent: {exc}", file=sys.stderr)
        return 2
    logging.basicConfig(
        level=settings.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    asyncio.run(_serve(settings))
    return 0


async def _serve(settings: AgentSettings) -> None:
    task = asyncio.create_task(run_agent(settings))
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, task.cancel)
    with contextlib.suppress(asyncio.CancelledError):
        await task


if __name__ == "__main__":
    raise SystemExit(main())
