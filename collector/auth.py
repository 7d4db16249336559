"""Who may report for which node: the authenticators and the TokenReview cache.

A report handler asks in three steps (collector/handlers.py):

1. ``lookup(token)``: the cheap path — the answer for a shared token (a
   constant-time compare) or a cached TokenReview (a hash and a dict read);
   None when the token must be reviewed; ``Rejected`` (401) when there is none;
2. ``verify(token)``: the slow path (the API server), only after the rate
   limiter let the source through;
3. ``authorize(caller, node, network)``: may this caller speak for ``node``
   (on the host or the pod network)? Checked on every report, never cached (a
   pod moves, goes away, is replaced).

Modes:

- ``none``: anyone may report as any node (static mode without a token);
- ``token``: a shared bearer token (``hmac.compare_digest``); any holder may
  report as any node — the token proves membership of the mesh, not identity;
- ``tokenreview``: the agent's audience-bound, pod-bound ServiceAccount token,
  reviewed by the API server. The token's pod must be an agent pod (the
  agent-pod watch: agent namespace and selector) with the token's pod uid, and
  run on the node the report speaks for; the token's own node name (newer
  clusters) must agree with the pod's. A pod-network endpoint's report: the
  token's pod must be a pod of the agent namespace (from the pod map's watch of
  all pods), not on the host network, with the token's uid, on that node.

Tokens never appear in messages: they name pods, nodes and reasons.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import time
from collections import Counter, OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol

from collector.podmap import PodInfo, PodKey
from collector.tokenreview import Review, ReviewUnavailable, token_expiry

UNAUTHENTICATED = "unauthenticated"
FORBIDDEN = "forbidden"
UNAVAILABLE = "auth_unavailable"


class Rejected(Exception):
    """A report refused before it touches the state: HTTP status, result label, reason."""

    def __init__(self, status: int, result: str, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.result = result
        self.reason = reason


def unauthenticated(reason: str) -> Rejected:
    return Rejected(401, UNAUTHENTICATED, reason)


def forbidden(reason: str) -> Rejected:
    return Rejected(403, FORBIDDEN, reason)


@dataclass(frozen=True, slots=True)
class Caller:
    """Who sent a report: ``anyone`` (no auth), ``token`` (shared token) or a ``pod``."""

    kind: str
    namespace: str = ""
    pod: str = ""
    uid: str = ""
    node: str = ""  # the token's node name; "" when the cluster does not put it in

    def __str__(self) -> str:
        return f"pod {self.namespace}/{self.pod}" if self.kind == "pod" else self.kind


ANYONE = Caller("anyone")
TOKEN_HOLDER = Caller("token")


class Authenticator(Protocol):
    mode: str

    def lookup(self, token: str | None) -> Caller | None: ...

    async def verify(self, token: str) -> Caller: ...

    def authorize(self, caller: Caller, node: str, network: str = "host") -> None: ...

    def close(self) -> None: ...


class NoAuth:
    mode = "none"

    def lookup(self, token: str | None) -> Caller | None:
        return ANYONE

    async def verify(self, token: str) -> Caller:
        return ANYONE

    def authorize(self, caller: Caller, node: str, network: str = "host") -> None:
        return None

    def close(self) -> None:
        return None


class StaticToken(NoAuth):
    mode = "token"

    def __init__(self, token: str) -> None:
        self._token = token.encode()

    def lookup(self, token: str | None) -> Caller:
        if token is None:
            raise unauthenticated("no bearer token (Authorization: Bearer <token>)")
        if not hmac.compare_digest(token.encode(), self._token):
            raise unauthenticated("invalid token")
        return TOKEN_HOLDER

    async def verify(self, token: str) -> Caller:
        return self.lookup(token)


class ReviewCache:
    """Positive answers by token digest until their expiry; at most ``size``, oldest out first."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._entries: OrderedDict[bytes, tuple[Caller, float]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: bytes, now: float) -> Caller | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        if entry[1] <= now:
            del self._entries[key]
            return None
        return entry[0]

    def put(self, key: bytes, caller: Caller, expires: float) -> None:
        self._entries[key] = (caller, expires)
        self._entries.move_to_end(key)
        while len(self._entries) > self.size:
            self._entries.popitem(last=False)


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


class TokenReviewAuth:
    """Agent pods by their ServiceAccount tokens, reviewed by the API server and cached."""

    mode = "tokenreview"

    def __init__(
        self,
        review: Callable[[str], Awaitable[Review]],
        agent_pod: Callable[[PodKey], PodInfo | None],
        *,
        any_pod: Callable[[PodKey], PodInfo | None] = lambda _key: None,
        audience: str,
        namespace: str,
        cache_ttl: float,
        cache_size: int,
        clock: Callable[[], float] = time.time,
        counts: Counter[str] | None = None,
        close: Callable[[], None] = lambda: None,
    ) -> None:
        self.review = review
        self.agent_pod = agent_pod
        self.any_pod = any_pod
        self.audience = audience
        self.namespace = namespace
        self.cache_ttl = cache_ttl
        self.cache = ReviewCache(cache_size)
        self.clock = clock
        self.counts: Counter[str] = counts if counts is not None else Counter()
        self._close = close
        self._pending: dict[bytes, asyncio.Future[Caller]] = {}

    def lookup(self, token: str | None) -> Caller | None:
        if token is None:
            raise unauthenticated("no bearer token (Authorization: Bearer <token>)")
        return self.cache.get(_digest(token), self.clock())

    async def verify(self, token: str) -> Caller:
        """Review ``token`` (one review per token however many reports wait for it)."""
        key = _digest(token)
        pending = self._pending.get(key)
        if pending is None:
            pending = asyncio.ensure_future(self._review(key, token))
            self._pending[key] = pending
            pending.add_done_callback(lambda _f: self._pending.pop(key, None))
        return await asyncio.shield(pending)

    async def _review(self, key: bytes, token: str) -> Caller:
        try:
            review = await self.review(token)
        except ReviewUnavailable as exc:
            self.counts["error"] += 1
            raise Rejected(503, UNAVAILABLE, f"cannot verify the token now: {exc}") from None
        if not review.authenticated:
            self.counts["unauthenticated"] += 1
            raise unauthenticated(f"token review: {review.error or 'not authenticated'}")
        if self.audience not in review.audiences:
            self.counts["unauthenticated"] += 1
            raise unauthenticated(f"the token is not issued for audience {self.audience}")
        self.counts["authenticated"] += 1
        account = review.service_account
        if account is None or not review.pod_name:
            # Authenticated, but not bound to a pod: it cannot speak for any node.
            caller = Caller("user", namespace=account[0] if account else "")
        else:
            caller = Caller(
                "pod",
                namespace=account[0],
                pod=review.pod_name,
                uid=review.pod_uid,
                node=review.node_name,
            )
        now = self.clock()
        expires = now + self.cache_ttl
        exp = token_expiry(token)
        if exp is not None:
            expires = min(expires, exp)
        if expires > now:
            self.cache.put(key, caller, expires)
        return caller

    def authorize(self, caller: Caller, node: str, network: str = "host") -> None:
        if caller.kind != "pod":
            raise forbidden("the token is not bound to a pod (use the agent's projected token)")
        if caller.namespace != self.namespace:
            raise forbidden(
                f"{caller}: ServiceAccount of namespace {caller.namespace}, "
                f"agents run in {self.namespace}"
            )
        if network == "pod":
            pod = self.any_pod((caller.namespace, caller.pod))
            if pod is None or pod.host_network:
                raise forbidden(f"{caller} is not a pod-network pod of {self.namespace}")
        else:
            pod = self.agent_pod((caller.namespace, caller.pod))
            if pod is None:
                raise forbidden(f"{caller} is not an agent pod")
        if caller.uid and pod.uid and caller.uid != pod.uid:
            raise forbidden(f"{caller}: the token's pod was replaced (uid differs)")
        if caller.node and caller.node != pod.node:
            raise forbidden(
                f"{caller}: the token names node {caller.node}, the pod runs on {pod.node}"
            )
        if pod.node != node:
            raise forbidden(f"{caller} runs on node {pod.node or '(none)'}, not {node}")

    def close(self) -> None:
        self._close()
