"""collector/auth.py and collector/tokenreview.py without an API server: injected reviews, clocks.

Static mode (shared token, and none) is tested through the real app.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import pathlib
from typing import Any

import pytest

from collector.app import AuthConfigError
from collector.appkeys import STATE
from collector.auth import (
    ANYONE,
    TOKEN_HOLDER,
    Caller,
    Rejected,
    ReviewCache,
    StaticToken,
    TokenReviewAuth,
)
from collector.podmap import PodInfo, PodKey
from collector.settings import CollectorSettings
from collector.tokenreview import Review, ReviewUnavailable, parse_review, token_expiry
from netmesh.config import SettingsError
from tests.collector.conftest import FakeClock, MakeClient
from tests.collector.reports import report

SECRET = "s3cret-shared-token-0123456789"


def agent_pod(node: str = "node-a", uid: str = "uid-a") -> PodInfo:
    return PodInfo(
        namespace="netmesh",
        name="agent-a",
        node=node,
        ips=("10.0.0.1",),
        host_network=True,
        phase="Running",
        ready=True,
        deleting=False,
        uid=uid,
    )


GOOD = Review(
    authenticated=True,
    username="system:serviceaccount:netmesh:netmesh-agent",
    audiences=("netmesh-collector",),
    pod_name="agent-a",
    pod_uid="uid-a",
    node_name="node-a",
)


class Reviews:
    """An injected TokenReview: counts calls, answers ``answer`` (or raises it)."""

    def __init__(self, answer: Review | Exception = GOOD) -> None:
        self.answer = answer
        self.calls = 0
        self.gate: asyncio.Event | None = None

    async def __call__(self, token: str) -> Review:
        self.calls += 1
        if self.gate is not None:
            await self.gate.wait()
        if isinstance(self.answer, Exception):
            raise self.answer
        return self.answer


def make_auth(
    reviews: Reviews, clock: FakeClock, pods: dict[PodKey, PodInfo] | None = None, **kw: Any
) -> TokenReviewAuth:
    pods = {("netmesh", "agent-a"): agent_pod()} if pods is None else pods
    options: dict[str, Any] = {
        "audience": "netmesh-collector",
        "namespace": "netmesh",
        "cache_ttl": 60.0,
        "cache_size": 100,
        "clock": clock,
    }
    return TokenReviewAuth(reviews, pods.get, **{**options, **kw})


def jwt(exp: float) -> str:
    payload = base64.urlsafe_b64encode(json.dumps({"exp": exp}).encode()).rstrip(b"=").decode()
    return f"eyJhbGciOiJSUzI1NiJ9.{payload}.c2ln"


# --------------------------------------------------------------------------- token review


async def test_cache_hit_skips_the_review_and_expiry_reviews_again(clock: FakeClock) -> None:
    reviews = Reviews()
    auth = make_auth(reviews, clock)
    token = jwt(clock() + 3600)
    assert auth.lookup(token) is None
    caller = await auth.verify(token)
    assert caller == Caller("pod", "netmesh", "agent-a", "uid-a", "node-a")
    assert auth.lookup(token) == caller and reviews.calls == 1
    clock.advance(59)
    assert auth.lookup(token) == caller
    clock.advance(2)
    assert auth.lookup(token) is None
    await auth.verify(token)
    assert reviews.calls == 2


async def test_cache_stops_at_the_token_expiry(clock: FakeClock) -> None:
    auth = make_auth(Reviews(), clock)
    token = jwt(clock() + 10)
    await auth.verify(token)
    clock.advance(9)
    assert auth.lookup(token) is not None
    clock.advance(2)
    assert auth.lookup(token) is None


async def test_concurrent_reviews_of_one_token_call_the_api_once(clock: FakeClock) -> None:
    reviews = Reviews()
    reviews.gate = asyncio.Event()
    auth = make_auth(reviews, clock)
    waiting = [asyncio.ensure_future(auth.verify("tok")) for _ in range(20)]
    await asyncio.sleep(0)
    reviews.gate.set()
    callers = await asyncio.gather(*waiting)
    assert reviews.calls == 1 and len(set(callers)) == 1


@pytest.mark.parametrize(
    ("answer", "status", "text"),
    [
        (Review(authenticated=False, error="token is expired"), 401, "token is expired"),
        (Review(authenticated=True, audiences=("api",), pod_name="x"), 401, "audience"),
        (ReviewUnavailable("HTTP 500"), 503, "cannot verify the token now: HTTP 500"),
    ],
)
async def test_failed_reviews_are_not_cached(
    clock: FakeClock, answer: Review | Exception, status: int, text: str
) -> None:
    reviews = Reviews(answer)
    auth = make_auth(reviews, clock)
    for calls in (1, 2):
        with pytest.raises(Rejected) as info:
            await auth.verify("tok")
        assert info.value.status == status and text in info.value.reason
        assert reviews.calls == calls


def test_no_token_is_401(clock: FakeClock) -> None:
    with pytest.raises(Rejected) as info:
        make_auth(Reviews(), clock).lookup(None)
    assert info.value.status == 401


@pytest.mark.parametrize(
    ("caller", "pod", "node", "reason"),
    [
        (
            Caller("pod", "netmesh", "agent-a", "uid-a", "node-a"),
            agent_pod(),
            "node-b",
            "not node-b",
        ),
        (
            Caller("pod", "netmesh", "agent-a", "uid-a", "node-b"),
            agent_pod(),
            "node-a",
            "names node",
        ),
        (Caller("pod", "netmesh", "agent-a", "uid-x", ""), agent_pod(), "node-a", "replaced"),
        (Caller("pod", "netmesh", "agent-z", "", ""), agent_pod(), "node-a", "not an agent pod"),
        (Caller("pod", "kube-system", "agent-a", "", ""), agent_pod(), "node-a", "namespace"),
        (Caller("user", "netmesh"), agent_pod(), "node-a", "not bound to a pod"),
    ],
)
def test_authorize_refuses(
    clock: FakeClock, caller: Caller, pod: PodInfo, node: str, reason: str
) -> None:
    auth = make_auth(Reviews(), clock, {("netmesh", "agent-a"): pod})
    with pytest.raises(Rejected) as info:
        auth.authorize(caller, node)
    assert info.value.status == 403 and reason in info.value.reason


def test_authorize_accepts_with_and_without_the_node_claim(clock: FakeClock) -> None:
    auth = make_auth(Reviews(), clock)
    auth.authorize(Caller("pod", "netmesh", "agent-a", "uid-a", "node-a"), "node-a")
    auth.authorize(Caller("pod", "netmesh", "agent-a", "", ""), "node-a")  # older clusters


def test_review_cache_is_bounded_oldest_out() -> None:
    cache = ReviewCache(3)
    for i in range(5):
        cache.put(bytes([i]), ANYONE, 100.0)
    assert len(cache) == 3
    assert cache.get(b"\x00", 0) is None and cache.get(b"\x04", 0) == ANYONE


def test_parse_review_and_token_expiry() -> None:
    obj = {
        "kind": "TokenReview",
        "status": {
            "authenticated": True,
            "audiences": ["netmesh-collector"],
            "user": {
                "username": "system:serviceaccount:netmesh:netmesh-agent",
                "extra": {
                    "authentication.kubernetes.io/pod-name": ["agent-a"],
                    "authentication.kubernetes.io/pod-uid": ["uid-a"],
                },
            },
        },
    }
    review = parse_review(obj)
    assert review.authenticated and review.pod_name == "agent-a" and review.node_name == ""
    assert review.service_account == ("netmesh", "netmesh-agent")
    assert not parse_review({"kind": "TokenReview", "status": {"error": "x"}}).authenticated
    with pytest.raises(ReviewUnavailable):
        parse_review({"kind": "Status"})
    assert token_expiry(jwt(123)) == 123.0
    assert token_expiry("opaque") is None and token_expiry("a.!!!.c") is None


# --------------------------------------------------------------------------- static mode


def test_static_token_compare() -> None:
    auth = StaticToken(SECRET)
    assert auth.lookup(SECRET) == TOKEN_HOLDER
    for bad in (None, "", SECRET + "x", SECRET[:-1]):
        with pytest.raises(Rejected) as info:
            auth.lookup(bad)
        assert info.value.status == 401 and SECRET not in info.value.reason
    auth.authorize(TOKEN_HOLDER, "any-node")  # a shared token speaks for every node


async def test_static_mode_with_a_token(tmp_path: pathlib.Path, make_client: MakeClient) -> None:
    path = tmp_path / "token"
    path.write_text(SECRET + "\n")
    client = await make_client(auth_token_file=str(path), rca_interval=0)
    body = report("node-a").to_json()
    for headers, status in (
        ({}, 401),
        ({"Authorization": "Bearer wrong-token-wrong-token"}, 401),
        ({"Authorization": "Basic " + SECRET}, 401),
    ):
        resp = await client.post("/api/v1/reports", json=body, headers=headers)
        text = await resp.text()
        assert resp.status == status and "unauthenticated" in text and SECRET not in text
    state = client.app[STATE]
    assert state.agents == {} and state.stats.reports == {"unauthenticated": 3}
    resp = await client.post(
        "/api/v1/reports", json=body, headers={"Authorization": f"Bearer {SECRET}"}
    )
    assert resp.status == 200 and "node-a" in state.agents
    assert (await (await client.get("/healthz")).json())["auth"] == "token"
    metrics = await (await client.get("/metrics")).text()
    assert 'netmesh_collector_auth_mode{mode="token"} 1' in metrics
    assert 'netmesh_collector_reports_total{result="unauthenticated"} 3' in metrics


async def test_static_mode_without_a_token_says_so(
    make_client: MakeClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="collector.app")
    client = await make_client(rca_interval=0)
    assert any("UNAUTHENTICATED" in r.message for r in caplog.records)
    assert (await (await client.get("/healthz")).json())["auth"] == "none"
    resp = await client.post("/api/v1/reports", json=report("node-a").to_json())
    assert resp.status == 200
    metrics = await (await client.get("/metrics")).text()
    assert 'netmesh_collector_auth_mode{mode="none"} 1' in metrics


async def test_bad_token_files_stop_the_collector(
    tmp_path: pathlib.Path, make_client: MakeClient
) -> None:
    short = tmp_path / "short"
    short.write_text("abc")
    empty = tmp_path / "empty"
    empty.write_text("\n")
    for path, why in ((short, "at least 16"), (empty, "empty"), (tmp_path / "no", "cannot read")):
        with pytest.raises(AuthConfigError, match=why):
            await make_client(auth_token_file=str(path))


def test_auth_settings_are_validated() -> None:
    assert CollectorSettings().auth_mode == "none"
    assert CollectorSettings(auth_token_file="/t").auth_mode == "token"
    assert CollectorSettings(mode="kubernetes").auth_mode == "tokenreview"
    for bad, match in (
        ({"auth": "tokenreview"}, "needs mode kubernetes"),
        ({"auth": "token"}, "needs auth_token_file"),
        ({"mode": "kubernetes", "auth_token_file": "/t"}, "token mode reads it"),
        ({"auth": "magic"}, "one of"),
    ):
        with pytest.raises(SettingsError, match=match):
            CollectorSettings(**bad)
