"""/metrics is streamed in chunks: the body is whole, nothing repeats."""

from __future__ import annotations

import collections

from prometheus_client.parser import text_string_to_metric_families

from collector.handlers import STREAM_CHUNK
from tests.collector.conftest import MakeClient
from tests.collector.reports import report

AGENTS = 300
PEERS = tuple(f"node-{i:03d}" for i in range(AGENTS))


async def test_large_metrics_body_streams_whole(make_client: MakeClient) -> None:
    client = await make_client()
    for i, name in enumerate(PEERS):
        ip = f"10.1.{i // 250}.{i % 250 + 1}"
        resp = await client.post("/api/v1/reports", json=report(name, ip, PEERS[:40]).to_json())
        assert resp.status == 200, await resp.text()
    resp = await client.get("/metrics")
    body = await resp.read()
    assert resp.status == 200
    assert len(body) > 2 * STREAM_CHUNK, "the test must span several chunks"
    assert resp.headers["Transfer-Encoding"] == "chunked"
    text = body.decode()
    assert text.endswith("\n")
    seen: collections.Counter[tuple[str, tuple[tuple[str, str], ...]]] = collections.Counter()
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            seen[(s.name, tuple(sorted(s.labels.items())))] += 1
    assert max(seen.values()) == 1, "a sample appears twice"
    sources = {
        dict(labels)["source_node"] for name, labels in seen if name == "netmesh_path_success"
    }
    assert sources == set(PEERS)
