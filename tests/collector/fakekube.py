"""A small fake Kubernetes API server (aiohttp) that speaks real list/watch HTTP.

Enough of the API for the collector's watches, driven through the real
``kubernetes`` client:

- ``GET /api/v1/pods``, ``/api/v1/namespaces/{ns}/pods``, ``/api/v1/nodes``
  with ``labelSelector`` (equality terms, ``k=v,k2!=v2``);
- lists carry ``metadata.resourceVersion``; ``?watch=true&resourceVersion=N``
  streams newline-delimited JSON events (chunked) after N, until
  ``timeoutSeconds``;
- a compacted history (``compact()``): a watch from an older version gets
  what a real API server sends, HTTP 200 and one ERROR event with a 410
  Status;
- ``drop_watches()`` cuts every open watch connection mid-stream;
- ``fail_lists(n)`` answers the next n lists with HTTP 500;
- ``POST /apis/authentication.k8s.io/v1/tokenreviews``: ``issue_token`` makes a
  pod-bound ServiceAccount token (a JWT-shaped string with ``exp``); a review
  answers as a real API server does: authenticated with the pod's name, uid
  and node in ``user.extra``, or not, with an error, for an unknown token, an
  expired one, the wrong audience, or a pod that is gone or was replaced;
  ``fail_reviews(n)`` answers the next n reviews with HTTP 500.

Objects are plain dicts; the test mutates the store with ``put`` / ``delete``.
"""

from __future__ import annotations

import asyncio
import base64
import copy
import json
import secrets
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from tests.helpers import free_port

RESOURCES = {"pods": "PodList", "nodes": "NodeList"}


def pod(
    name: str,
    ip: str | None,
    *,
    namespace: str = "default",
    node: str = "node-a",
    host_network: bool = False,
    phase: str = "Running",
    ready: bool = True,
    labels: dict[str, str] | None = None,
    deleting: bool = False,
    iperf3_port: int | None = None,
    uid: str | None = None,
) -> dict[str, Any]:
    meta: dict[str, Any] = {
        "name": name,
        "namespace": namespace,
        "labels": labels or {},
        "uid": uid or f"uid-{namespace}-{name}",
    }
    if deleting:
        meta["deletionTimestamp"] = "2024-01-01T00:00:00Z"
    container: dict[str, Any] = {"name": "main", "image": "x"}
    if iperf3_port is not None:
        container["ports"] = [{"name": "iperf3", "containerPort": iperf3_port}]
    status: dict[str, Any] = {
        "phase": phase,
        "conditions": [{"type": "Ready", "status": "True" if ready else "False"}],
    }
    if ip:
        status["podIP"] = ip
        status["podIPs"] = [{"ip": ip}]
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": meta,
        "spec": {"nodeName": node, "hostNetwork": host_network, "containers": [container]},
        "status": status,
    }


def node(
    name: str,
    ip: str,
    *,
    ready: bool = True,
    unschedulable: bool = False,
    deleting: bool = False,
    labels: dict[str, str] | None = None,
) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name}
    if deleting:
        meta["deletionTimestamp"] = "2024-01-01T00:00:00Z"
    if labels:
        meta["labels"] = labels
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": meta,
        "spec": {"unschedulable": unschedulable},
        "status": {
            "conditions": [{"type": "Ready", "status": "True" if ready else "False"}],
            "addresses": [
                {"type": "InternalIP", "address": ip},
                {"type": "Hostname", "address": name},
            ],
        },
    }


def _matches(obj: dict[str, Any], selector: str) -> bool:
    labels = obj.get("metadata", {}).get("labels") or {}
    for term in filter(None, (t.strip() for t in selector.split(","))):
        if "!=" in term:
            k, v = term.split("!=", 1)
            if labels.get(k.strip()) == v.strip():
                return False
        else:
            k, v = term.split("==", 1) if "==" in term else term.split("=", 1)
            if labels.get(k.strip()) != v.strip():
                return False
    return True


@dataclass(frozen=True)
class IssuedToken:
    namespace: str
    service_account: str
    pod: str
    uid: str
    node: str
    audience: str
    expires: float
    node_claim: bool


def _b64(obj: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(obj).encode()).rstrip(b"=").decode()


class FakeKube:
    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self.clock = clock  # what "now" is for token expiry
        self.tokens: dict[str, IssuedToken] = {}
        self.reviews = 0
        self._failing_reviews = 0
        self.rv = 100
        self.store: dict[str, dict[tuple[str, str], dict[str, Any]]] = {r: {} for r in RESOURCES}
        self.history: list[tuple[int, str, str, dict[str, Any]]] = []  # rv, resource, type, obj
        self.compacted = 0  # watches from a version below this get 410 Gone
        self.requests: Counter[tuple[str, str]] = Counter()  # (URL path, list|watch)
        self.gone_sent = 0
        self._failing_lists = 0
        self._changed = asyncio.Event()
        self._open: set[web.StreamResponse] = set()
        self._runner: web.AppRunner | None = None
        self.url = ""

    # ---- server lifecycle
    async def start(self) -> str:
        app = web.Application()
        app.router.add_get("/api/v1/pods", self._pods)
        app.router.add_get("/api/v1/namespaces/{namespace}/pods", self._pods)
        app.router.add_get("/api/v1/nodes", self._nodes)
        app.router.add_post("/apis/authentication.k8s.io/v1/tokenreviews", self._tokenreview)
        self._runner = web.AppRunner(app, shutdown_timeout=0.5)
        await self._runner.setup()
        port = free_port()
        await web.TCPSite(self._runner, "127.0.0.1", port).start()
        self.url = f"http://127.0.0.1:{port}"
        return self.url

    async def stop(self) -> None:
        self.drop_watches()
        if self._runner is not None:
            await self._runner.cleanup()

    # ---- what tests do
    def put(self, resource: str, obj: dict[str, Any]) -> dict[str, Any]:
        obj = copy.deepcopy(obj)
        meta = obj["metadata"]
        key = (meta.get("namespace", ""), meta["name"])
        kind = "MODIFIED" if key in self.store[resource] else "ADDED"
        self.rv += 1
        meta["resourceVersion"] = str(self.rv)
        self.store[resource][key] = obj
        self._record(resource, kind, obj)
        return obj

    def delete(self, resource: str, name: str, namespace: str = "") -> None:
        obj = self.store[resource].pop((namespace, name))
        self.rv += 1
        obj = copy.deepcopy(obj)
        obj["metadata"]["resourceVersion"] = str(self.rv)
        self._record(resource, "DELETED", obj)

    def compact(self) -> None:
        """Forget the history: any watch resumed from an older version gets 410 Gone."""
        self.compacted = self.rv
        self.history = []

    def drop_watches(self) -> int:
        """Cut every open watch connection without ending the chunked stream."""
        n = 0
        for resp in list(self._open):
            transport = resp._req.transport if resp._req is not None else None  # type: ignore[attr-defined]
            if transport is not None:
                transport.abort()
                n += 1
        self._open.clear()
        return n

    def fail_lists(self, n: int) -> None:
        self._failing_lists = n

    def issue_token(
        self,
        pod_name: str,
        namespace: str = "netmesh",
        *,
        audience: str = "netmesh-collector",
        expires_in: float = 600.0,
        service_account: str = "netmesh-agent",
        node_claim: bool = True,
    ) -> str:
        """A pod-bound ServiceAccount token for a pod in the store (its uid and node)."""
        obj = self.store["pods"][(namespace, pod_name)]
        expires = self.clock() + expires_in
        token = ".".join(
            (
                _b64({"alg": "RS256", "kid": "fake"}),
                _b64({"aud": [audience], "exp": int(expires), "sub": service_account}),
                secrets.token_urlsafe(32),
            )
        )
        self.tokens[token] = IssuedToken(
            namespace=namespace,
            service_account=service_account,
            pod=pod_name,
            uid=obj["metadata"]["uid"],
            node=obj["spec"]["nodeName"],
            audience=audience,
            expires=expires,
            node_claim=node_claim,
        )
        return token

    def fail_reviews(self, n: int) -> None:
        self._failing_reviews = n

    def review_status(self, token: str, audiences: list[str]) -> dict[str, Any]:
        """What kube-apiserver's authenticators answer for ``token`` (status of a TokenReview)."""
        issued = self.tokens.get(token)
        if issued is None:
            return {"user": {}, "error": "[invalid bearer token, token lookup failed]"}
        if issued.expires <= self.clock():
            return {"user": {}, "error": "[invalid bearer token, token is expired]"}
        if issued.audience not in audiences:
            return {
                "user": {},
                "error": f"[invalid bearer token, token audiences [{issued.audience!r}] is "
                f"invalid for the target audiences {audiences!r}]",
            }
        pod_obj = self.store["pods"].get((issued.namespace, issued.pod))
        if pod_obj is None or pod_obj["metadata"]["uid"] != issued.uid:
            return {
                "user": {},
                "error": f"[invalid bearer token, pod {issued.pod} not found or replaced]",
            }
        extra = {
            "authentication.kubernetes.io/pod-name": [issued.pod],
            "authentication.kubernetes.io/pod-uid": [issued.uid],
            "authentication.kubernetes.io/credential-id": ["JTI=fake"],
        }
        if issued.node_claim:
            extra["authentication.kubernetes.io/node-name"] = [issued.node]
        return {
            "authenticated": True,
            "user": {
                "username": f"system:serviceaccount:{issued.namespace}:{issued.service_account}",
                "uid": f"sa-uid-{issued.service_account}",
                "groups": ["system:serviceaccounts", f"system:serviceaccounts:{issued.namespace}"],
                "extra": extra,
            },
            "audiences": [issued.audience],
        }

    @property
    def open_watches(self) -> int:
        return len(self._open)

    def _record(self, resource: str, kind: str, obj: dict[str, Any]) -> None:
        self.history.append((self.rv, resource, kind, obj))
        self._changed.set()
        self._changed = asyncio.Event()

    # ---- HTTP
    async def _pods(self, request: web.Request) -> web.StreamResponse:
        return await self._serve(request, "pods", request.match_info.get("namespace"))

    async def _nodes(self, request: web.Request) -> web.StreamResponse:
        return await self._serve(request, "nodes", None)

    async def _tokenreview(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.reviews += 1
        if self._failing_reviews > 0:
            self._failing_reviews -= 1
            return web.json_response(
                {"kind": "Status", "status": "Failure", "code": 500, "message": "injected"},
                status=500,
            )
        spec = body.get("spec") or {}
        audiences = spec.get("audiences") or ["https://kubernetes.default.svc"]
        return web.json_response(
            {
                "apiVersion": "authentication.k8s.io/v1",
                "kind": "TokenReview",
                "metadata": {"creationTimestamp": None},
                "spec": spec,
                "status": self.review_status(str(spec.get("token", "")), list(audiences)),
            },
            status=201,
        )

    async def _serve(
        self, request: web.Request, resource: str, namespace: str | None
    ) -> web.StreamResponse:
        q = request.query
        selector = q.get("labelSelector", "")

        def wanted(obj: dict[str, Any]) -> bool:
            ns_ok = namespace is None or obj["metadata"].get("namespace") == namespace
            return ns_ok and _matches(obj, selector)

        if q.get("watch") in ("true", "1", "True"):
            self.requests[(request.path, "watch")] += 1
            return await self._watch(request, resource, wanted)
        self.requests[(request.path, "list")] += 1
        if self._failing_lists > 0:
            self._failing_lists -= 1
            return web.json_response(
                {"kind": "Status", "status": "Failure", "code": 500, "message": "injected"},
                status=500,
            )
        items = [o for o in self.store[resource].values() if wanted(o)]
        return web.json_response(
            {
                "apiVersion": "v1",
                "kind": RESOURCES[resource],
                "metadata": {"resourceVersion": str(self.rv)},
                "items": items,
            }
        )

    async def _watch(self, request: web.Request, resource: str, wanted: Any) -> web.StreamResponse:
        since = int(request.query.get("resourceVersion") or self.rv)
        timeout = float(request.query.get("timeoutSeconds") or 300)
        resp = web.StreamResponse(headers={"Content-Type": "application/json"})
        resp.enable_chunked_encoding()
        await resp.prepare(request)
        if since < self.compacted:
            self.gone_sent += 1
            status = {
                "kind": "Status",
                "apiVersion": "v1",
                "metadata": {},
                "status": "Failure",
                "message": f"too old resource version: {since} ({self.compacted})",
                "reason": "Expired",
                "code": 410,
            }
            await resp.write(json.dumps({"type": "ERROR", "object": status}).encode() + b"\n")
            await resp.write_eof()
            return resp
        self._open.add(resp)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        try:
            while True:
                changed = self._changed  # before reading: a change while writing wakes us
                for rv, res, kind, obj in list(self.history):
                    if rv > since and res == resource:
                        since = rv
                        if wanted(obj):
                            line = json.dumps({"type": kind, "object": obj}).encode() + b"\n"
                            await resp.write(line)
                remaining = deadline - loop.time()
                if remaining <= 0:
                    break
                try:
                    await asyncio.wait_for(changed.wait(), remaining)
                except TimeoutError:
                    break
            await resp.write_eof()
        except (ConnectionError, RuntimeError):
            pass  # the client went away, or drop_watches() cut it
        finally:
            self._open.discard(resp)
        return resp
