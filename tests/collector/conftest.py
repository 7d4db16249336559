"""Collector test fixtures: a fake clock and the app behind aiohttp's test client."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from collector.app import create_app
from collector.settings import CollectorSettings


class FakeClock:
    def __init__(self, now: float = 1_700_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


MakeClient = Callable[..., Awaitable[TestClient[Any, Any]]]


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def make_client(clock: FakeClock) -> AsyncIterator[MakeClient]:
    clients: list[TestClient[Any, Any]] = []

    async def make(kube_api: Any = None, **settings: Any) -> TestClient[Any, Any]:
        settings.setdefault("bind_address", "127.0.0.1")
        settings.setdefault("gc_full_interval", 0)  # process-wide; tests/collector/test_gcpolicy.py
        app = create_app(CollectorSettings(**settings), clock=clock, kube_api=kube_api)
        client: TestClient[Any, Any] = TestClient(TestServer(app))
        await client.start_server()
        clients.append(client)
        return client

    yield make
    for client in clients:
        await client.close()


def promtool_check(text: str) -> None:
    """`promtool check metrics` must be clean (lint problems are printed and fail)."""
    promtool = shutil.which("promtool") or "/usr/bin/promtool"
    proc = subprocess.run(
        [promtool, "check", "metrics"],
        input=text.encode(),
        capture_output=True,
        timeout=30,
        check=False,
    )
    out = (proc.stdout + proc.stderr).decode()
    assert proc.returncode == 0 and not out.strip(), out
