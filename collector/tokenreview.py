"""The Kubernetes TokenReview call: ask the API server who a bearer token belongs to.

``parse_review`` turns a TokenReview's JSON into a ``Review`` (pure);
``KubeReviewer`` sends one through the official client in a small thread
pool of its own, with a timeout, so the blocking call never holds the event
loop and never queues behind other work (or other work behind it).
``token_expiry`` reads the ``exp`` claim of a JWT without verifying it — only
ever used for a token the API server has just authenticated, to keep a cached
answer from outliving the token.

The token travels only in the request body; errors are described by HTTP
status and reason, never with the request.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from collector.kube import _describe

EXTRA_POD_NAME = "authentication.kubernetes.io/pod-name"
EXTRA_POD_UID = "authentication.kubernetes.io/pod-uid"
EXTRA_NODE_NAME = "authentication.kubernetes.io/node-name"
SA_PREFIX = "system:serviceaccount:"


class ReviewUnavailable(Exception):
    """The API server gave no usable answer (timeout, error status, garbage)."""


@dataclass(frozen=True, slots=True)
class Review:
    authenticated: bool
    error: str = ""
    username: str = ""
    audiences: tuple[str, ...] = ()
    pod_name: str = ""
    pod_uid: str = ""
    node_name: str = ""

    @property
    def service_account(self) -> tuple[str, str] | None:
        """(namespace, name) of a ServiceAccount user, else None."""
        if not self.username.startswith(SA_PREFIX):
            return None
        namespace, _, name = self.username[len(SA_PREFIX) :].partition(":")
        return (namespace, name) if namespace and name else None


def _first(extra: dict[str, Any], key: str) -> str:
    values = extra.get(key)
    if isinstance(values, list) and values and isinstance(values[0], str):
        return values[0]
    return ""


def parse_review(obj: Any) -> Review:
    """A TokenReview's JSON → Review; ReviewUnavailable if it is no TokenReview."""
    if not isinstance(obj, dict) or obj.get("kind") != "TokenReview":
        raise ReviewUnavailable("the answer is not a TokenReview")
    status = obj.get("status")
    status = status if isinstance(status, dict) else {}
    user = status.get("user")
    user = user if isinstance(user, dict) else {}
    extra = user.get("extra")
    extra = extra if isinstance(extra, dict) else {}
    audiences = status.get("audiences")
    error = status.get("error")
    username = user.get("username")
    return Review(
        authenticated=status.get("authenticated") is True,
        error=error if isinstance(error, str) else "",
        username=username if isinstance(username, str) else "",
        audiences=tuple(a for a in audiences if isinstance(a, str))
        if isinstance(audiences, list)
        else (),
        pod_name=_first(extra, EXTRA_POD_NAME),
        pod_uid=_first(extra, EXTRA_POD_UID),
        node_name=_first(extra, EXTRA_NODE_NAME),
    )


def token_expiry(token: str) -> float | None:
    """The ``exp`` claim of a JWT (Unix time), None if it has none or is no JWT."""
    parts = token.split(".")
    if len(parts) != 3:
        return None
    payload = parts[1] + "=" * (-len(parts[1]) % 4)
    try:
        claims = json.loads(base64.urlsafe_b64decode(payload))
    except (ValueError, binascii.Error):
        return None
    exp = claims.get("exp") if isinstance(claims, dict) else None
    return float(exp) if isinstance(exp, int | float) and not isinstance(exp, bool) else None


class KubeReviewer:
    """TokenReviews through ``AuthenticationV1Api`` on an ``ApiClient``, off the event loop."""

    def __init__(self, api_client: Any, *, audience: str, timeout: float, workers: int = 4) -> None:
        # The 'kubernetes' extra: only kubernetes mode needs it, so it is imported here.
        from kubernetes import client  # noqa: PLC0415

        self._client = client
        self.api = client.AuthenticationV1Api(api_client)
        self.audience = audience
        self.timeout = timeout
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="tokenreview")

    async def review(self, token: str) -> Review:
        loop = asyncio.get_running_loop()
        call = loop.run_in_executor(self._pool, self._call, token)
        try:
            # The client's own timeout ends the thread's request; this one ends the wait.
            return await asyncio.wait_for(call, self.timeout + 1.0)
        except TimeoutError:
            raise ReviewUnavailable(f"no answer within {self.timeout:.0f}s") from None
        except ReviewUnavailable:
            raise
        except Exception as exc:  # the client's errors have no common base
            raise ReviewUnavailable(_describe(exc)) from None

    def _call(self, token: str) -> Review:
        c = self._client
        body = c.V1TokenReview(
            api_version="authentication.k8s.io/v1",
            kind="TokenReview",
            spec=c.V1TokenReviewSpec(token=token, audiences=[self.audience]),
        )
        # _preload_content=False: the raw urllib3 response (parsed here, like the watches).
        resp: Any = self.api.create_token_review(
            body, _preload_content=False, _request_timeout=self.timeout
        )
        try:
            data = json.loads(resp.data)
        except ValueError:
            raise ReviewUnavailable("the answer is not JSON") from None
        finally:
            resp.release_conn()
        return parse_review(data)

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
