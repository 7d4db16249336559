"""Kubernetes mode: reports authenticated by TokenReview through the real client and fake API.

The agent's pod-bound token must be valid, for the collector's audience, not
expired, of an agent pod (the agent-pod watch) on the node the report speaks
for. Rejections are 401/403 with a reason and change nothing; positive reviews
are cached (no API call on a hit, a new one after the TTL or the token's own
expiry); a source whose rejections pile up gets 429.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from collector.appkeys import INFORMERS, MEMBERSHIP, STATE
from tests.collector.conftest import FakeClock, MakeClient
from tests.collector.fakekube import FakeKube, node, pod
from tests.collector.reports import report
from tests.collector.test_kube import agent, api_for, until

KUBE_AUTH = {
    "mode": "kubernetes",  # auth auto: tokenreview
    "watch_timeout": 30,
    "api_timeout": 5.0,
    "watch_backoff": 0.1,
    "watch_max_backoff": 0.5,
    "auth_cache_ttl": 60.0,
    "auth_review_timeout": 5.0,
    "rca_interval": 0,
}


@pytest.fixture
async def fake(clock: FakeClock) -> AsyncIterator[FakeKube]:
    server = FakeKube(clock=clock)
    await server.start()
    for name, ip in (("node-a", "192.168.0.1"), ("node-b", "192.168.0.2")):
        server.put("nodes", node(name, ip))
        server.put("pods", agent(name, ip))
    # Not agents: a workload in another namespace, and an unlabelled pod beside the agents.
    server.put("pods", pod("web", "10.1.0.5", namespace="shop", node="node-a"))
    server.put("pods", pod("debug", "10.1.0.6", namespace="netmesh", node="node-a"))
    yield server
    await server.stop()


async def start(fake: FakeKube, make_client: MakeClient, **extra: Any) -> TestClient[Any, Any]:
    client = await make_client(kube_api=api_for(fake), **{**KUBE_AUTH, **extra})
    await until(lambda: all(i.synced for i in client.app[INFORMERS]), "first lists")
    await until(lambda: len(client.app[MEMBERSHIP].current().members) == 2, "two agent members")
    return client


async def post(
    client: TestClient[Any, Any], node_name: str, token: str | None
) -> tuple[int, str, Any]:
    headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
    body = report(node_name, "192.168.0.1", ("node-b",)).to_json()
    resp = await client.post("/api/v1/reports", json=body, headers=headers)
    return resp.status, await resp.text(), resp.headers


async def test_valid_agent_accepted_and_cached(
    fake: FakeKube, make_client: MakeClient, clock: FakeClock
) -> None:
    client = await start(fake, make_client)
    token = fake.issue_token("agent-node-a")
    status, text, _ = await post(client, "node-a", token)
    assert status == 200, text
    assert "node-a" in client.app[STATE].agents
    assert fake.reviews == 1
    for _ in range(3):  # cache hits: no API call
        assert (await post(client, "node-a", token))[0] == 200
    assert fake.reviews == 1
    clock.advance(61)  # past auth_cache_ttl: reviewed again
    assert (await post(client, "node-a", token))[0] == 200
    assert fake.reviews == 2
    stats = client.app[STATE].stats
    assert stats.reports["accepted"] == 5 and stats.token_reviews["authenticated"] == 2
    metrics = await (await client.get("/metrics")).text()
    assert 'netmesh_collector_auth_mode{mode="tokenreview"} 1' in metrics
    assert 'netmesh_collector_token_reviews_total{result="authenticated"} 2' in metrics
    assert (await (await client.get("/healthz")).json())["auth"] == "tokenreview"
    assert token not in metrics


async def test_cache_never_outlives_the_token(
    fake: FakeKube, make_client: MakeClient, clock: FakeClock
) -> None:
    client = await start(fake, make_client)
    token = fake.issue_token("agent-node-a", expires_in=20)  # shorter than the cache TTL
    assert (await post(client, "node-a", token))[0] == 200
    clock.advance(21)
    status, text, _ = await post(client, "node-a", token)
    assert status == 401 and "expired" in text, text
    assert fake.reviews == 2


async def test_node_b_token_for_node_a_is_forbidden(
    fake: FakeKube, make_client: MakeClient
) -> None:
    client = await start(fake, make_client)
    state = client.app[STATE]
    status, text, _ = await post(client, "node-a", fake.issue_token("agent-node-b"))
    assert status == 403, text
    assert "report rejected (forbidden)" in text and "runs on node node-b, not node-a" in text
    assert state.agents == {} and state.agents_version == 0
    assert state.stats.reports == {"forbidden": 1}


@pytest.mark.parametrize(
    ("case", "reason"),
    [
        ("none", "no bearer token"),
        ("garbage", "invalid bearer token"),
        ("wrong-audience", "audiences"),
        ("expired", "expired"),
        ("deleted-pod", "not found"),
    ],
)
async def test_unauthenticated(
    fake: FakeKube, make_client: MakeClient, case: str, reason: str
) -> None:
    client = await start(fake, make_client)
    token: str | None = {
        "none": None,
        "garbage": "not-a-token",
        "wrong-audience": fake.issue_token("agent-node-a", audience="https://kubernetes.default"),
        "expired": fake.issue_token("agent-node-a", expires_in=-1),
    }.get(case, "")
    if case == "deleted-pod":
        fake.put("pods", agent("node-c", "192.168.0.3"))
        token = fake.issue_token("agent-node-c")
        fake.delete("pods", "agent-node-c", "netmesh")
    status, text, headers = await post(client, "node-a", token)
    assert status == 401, text
    assert reason in text and "report rejected (unauthenticated)" in text
    assert headers["WWW-Authenticate"].startswith("Bearer")
    if token:
        assert token not in text
    state = client.app[STATE]
    assert state.agents == {} and state.stats.reports == {"unauthenticated": 1}


@pytest.mark.parametrize(
    ("pod_name", "namespace", "reason"),
    [
        ("debug", "netmesh", "is not an agent pod"),
        ("web", "shop", "agents run in netmesh"),
    ],
)
async def test_valid_token_of_a_pod_that_is_no_agent(
    fake: FakeKube, make_client: MakeClient, pod_name: str, namespace: str, reason: str
) -> None:
    client = await start(fake, make_client)
    token = fake.issue_token(pod_name, namespace, service_account="default")
    status, text, _ = await post(client, "node-a", token)
    assert status == 403 and reason in text, text
    assert client.app[STATE].agents == {}


async def test_replaced_agent_pod_is_forbidden_even_when_cached(
    fake: FakeKube, make_client: MakeClient
) -> None:
    client = await start(fake, make_client)
    token = fake.issue_token("agent-node-a")
    assert (await post(client, "node-a", token))[0] == 200
    # Same name, new pod (uid): the cached answer must not carry over.
    fake.put("pods", agent("node-a", "192.168.0.1", uid="uid-new"))
    await until(
        lambda: client.app[MEMBERSHIP].agent_pods[("netmesh", "agent-node-a")].uid == "uid-new",
        "the replaced pod",
    )
    status, text, _ = await post(client, "node-a", token)
    assert status == 403 and "replaced" in text, text
    assert fake.reviews == 1


async def test_api_failure_is_503_and_not_cached(fake: FakeKube, make_client: MakeClient) -> None:
    client = await start(fake, make_client)
    token = fake.issue_token("agent-node-a")
    fake.fail_reviews(1)
    status, text, _ = await post(client, "node-a", token)
    assert status == 503 and "cannot verify the token now: HTTP 500" in text, text
    assert client.app[STATE].agents == {}
    assert (await post(client, "node-a", token))[0] == 200
    assert client.app[STATE].stats.token_reviews == {"error": 1, "authenticated": 1}


async def test_rejections_are_rate_limited_per_source(
    fake: FakeKube, make_client: MakeClient
) -> None:
    client = await start(fake, make_client, auth_reject_burst=3, auth_reject_rate=0.01)
    good = fake.issue_token("agent-node-a")
    assert (await post(client, "node-a", good))[0] == 200  # cached from now on
    for _ in range(3):
        assert (await post(client, "node-a", "bad-token"))[0] == 401
    reviews = fake.reviews
    status, text, headers = await post(client, "node-a", "bad-token")
    assert status == 429 and "rate_limited" in text, text
    assert int(headers["Retry-After"]) >= 1
    assert fake.reviews == reviews, "a rate-limited source still reached the API server"
    # An agent whose token is cached is not held up by its neighbour's flood.
    assert (await post(client, "node-a", good))[0] == 200
    assert client.app[STATE].stats.reports["rate_limited"] == 1
