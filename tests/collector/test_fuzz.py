"""Report validation fuzzed with hypothesis: no crash, 4xx for bad input, state unchanged."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from collector.app import create_app
from collector.appkeys import MEMBERSHIP, STATE
from collector.metrics import render_metrics
from collector.settings import CollectorSettings
from tests.collector.reports import flow, report

VALID = report(
    "node-a", "10.0.0.1", ("node-b",), retransmits=(flow("10.0.0.1", "10.0.0.2"),)
).to_json()

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=12,
)


def _paths(obj: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    yield prefix
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield from _paths(v, (*prefix, k))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            yield from _paths(v, (*prefix, i))


PATHS = [p for p in _paths(VALID) if p]


def _replace(obj: Any, path: tuple[Any, ...], value: Any) -> Any:
    if not path:
        return value
    head, rest = path[0], path[1:]
    if isinstance(obj, dict):
        return {**obj, head: _replace(obj[head], rest, value)}
    copy = list(obj)
    copy[head] = _replace(copy[head], rest, value)
    return copy


@pytest.fixture(scope="module")
def harness() -> Iterator[tuple[asyncio.AbstractEventLoop, TestClient[Any, Any]]]:
    loop = asyncio.new_event_loop()
    app = create_app(CollectorSettings(bind_address="127.0.0.1", max_report_bytes=64 * 1024))
    client: TestClient[Any, Any] = TestClient(TestServer(app), loop=loop)
    loop.run_until_complete(client.start_server())
    yield loop, client
    loop.run_until_complete(client.close())
    loop.close()


def _snapshot(client: TestClient[Any, Any]) -> dict[str, Any]:
    state = client.app[STATE]
    return {name: (e.report, e.block, e.retransmits) for name, e in state.agents.items()}


def _post(
    harness: tuple[asyncio.AbstractEventLoop, TestClient[Any, Any]], body: bytes
) -> tuple[int, str]:
    loop, client = harness

    async def go() -> tuple[int, str]:
        resp = await client.post("/api/v1/reports", data=body)
        return resp.status, await resp.text()

    return loop.run_until_complete(go())


def _check(harness: tuple[asyncio.AbstractEventLoop, TestClient[Any, Any]], body: bytes) -> None:
    _, client = harness
    before = _snapshot(client)
    status, text = _post(harness, body)
    assert status == 200 or 400 <= status < 500, (status, text)
    if status != 200:
        assert "report rejected" in text, text
        assert _snapshot(client) == before
    # Whatever was accepted renders.
    state = client.app[STATE]
    render_metrics(state, client.app[MEMBERSHIP].current()).decode()


FUZZ = settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@FUZZ
@given(value=json_values)
def test_arbitrary_json(harness: Any, value: Any) -> None:
    _check(harness, json.dumps(value).encode())


@FUZZ
@given(data=st.binary(max_size=200))
def test_arbitrary_bytes(harness: Any, data: bytes) -> None:
    _check(harness, data)


@FUZZ
@given(path=st.sampled_from(PATHS), value=json_values)
def test_valid_report_with_one_field_replaced(harness: Any, path: Any, value: Any) -> None:
    _check(harness, json.dumps(_replace(VALID, path, value)).encode())


@FUZZ
@given(path=st.sampled_from(PATHS))
def test_valid_report_with_one_field_removed(harness: Any, path: Any) -> None:
    *parent, last = path
    obj: Any = json.loads(json.dumps(VALID))
    target = obj
    for p in parent:
        target = target[p]
    del target[last]
    _check(harness, json.dumps(obj).encode())


def test_deep_nesting_and_huge_body(harness: Any) -> None:
    status, text = _post(harness, b"[" * 30_000 + b"]" * 30_000)
    assert status == 400 and "not_json" in text, text
    status, text = _post(harness, b"{" + b" " * 70_000 + b"}")
    assert status == 413 and "max_report_bytes" in text
