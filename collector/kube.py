"""List, then watch, through the official ``kubernetes`` client (kopf's watching loop).

One ``Informer`` per resource runs the blocking client in its own thread:

1. list (JSON parsed and turned into small records in the thread, off the
   event loop) and hand the whole set to the loop (``on_replace``);
2. watch from the list's resourceVersion, handing each ADDED / MODIFIED /
   DELETED record to the loop (``on_upsert`` / ``on_delete``); BOOKMARKs only
   move the resourceVersion;
3. the server ends the watch (its timeout, a dropped connection): watch
   again from the last resourceVersion — nothing is lost, nothing re-listed;
4. 410 Gone (the version was compacted away): list again;
5. any other error: back off exponentially, then resume the watch (or the
   list, if there was none yet). Never re-list on a timer.

All state is owned by the event loop: the thread only calls
``loop.call_soon_threadsafe``. ``stop()`` shuts the open response's socket so
the blocked read returns at once, and joins the thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import socket
import threading
import time
from collections.abc import Callable
from typing import Any, Generic, TypeVar

log = logging.getLogger(__name__)

T = TypeVar("T")

HTTP_GONE = 410
QUICK_END = 1.0  # seconds; a watch that ends sooner is retried with back-off


class KubeError(Exception):
    """A list or watch failed; the message says which resource and why."""


class Gone(KubeError):
    """The watched resourceVersion is too old (410 Gone): list again."""


def make_api(kubeconfig: str) -> Any:
    """A CoreV1Api from a kubeconfig file, or from the in-cluster service account."""
    # The 'kubernetes' extra: only kubernetes mode needs it, so it is imported here.
    from kubernetes import client, config  # noqa: PLC0415

    cfg = client.Configuration()
    loader: Any = config.load_kube_config if kubeconfig else config.load_incluster_config
    if kubeconfig:
        loader(config_file=kubeconfig, client_configuration=cfg)
    else:
        loader(client_configuration=cfg)
    return client.CoreV1Api(client.ApiClient(cfg))


class Informer(Generic[T]):
    """List-then-watch one resource in a thread; deliver parsed records on the event loop.

    ``list_func`` is a generated client method (``CoreV1Api.list_node``,
    ``list_namespaced_pod`` with ``namespace=`` in ``kwargs``, ...). ``parse``
    turns an object's JSON into a record (None = ignore) and ``key`` names an
    object (for deletions of objects ``parse`` ignored).
    """

    def __init__(
        self,
        name: str,
        list_func: Callable[..., Any],
        *,
        loop: asyncio.AbstractEventLoop,
        parse: Callable[[Any], T | None],
        key: Callable[[Any], Any],
        on_replace: Callable[[list[T]], None],
        on_upsert: Callable[[T], None],
        on_delete: Callable[[Any], None],
        on_restart: Callable[[str, str], None] = lambda name, reason: None,
        kwargs: dict[str, Any] | None = None,
        watch_timeout: int = 300,
        api_timeout: float = 30.0,
        backoff: float = 1.0,
        max_backoff: float = 30.0,
    ) -> None:
        self.name = name
        self.list_func = list_func
        self.loop = loop
        self.parse = parse
        self.key = key
        self.on_replace = on_replace
        self.on_upsert = on_upsert
        self.on_delete = on_delete
        self.on_restart = on_restart
        self.kwargs = dict(kwargs or {})
        self.watch_timeout = watch_timeout
        self.api_timeout = api_timeout
        self.backoff = backoff
        self.max_backoff = max_backoff
        # Read on the loop, written in the thread: plain flags, set atomically.
        self.synced = False  # the first list has been applied
        self.up = False  # listed and watching, not backing off
        self._stopping = threading.Event()
        self._resp: Any = None
        self._thread: threading.Thread | None = None

    # ---- lifecycle (called on the loop)
    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name=f"watch-{self.name}", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Ask the thread to end, unblock its read, wait for it."""
        self._stopping.set()
        _shutdown(self._resp)
        if self._thread is not None:
            self._thread.join(timeout)
            if self._thread.is_alive():
                log.warning("watch %s did not stop within %.1fs", self.name, timeout)

    @property
    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    # ---- the thread
    def _post(self, fn: Callable[..., None], *args: Any) -> None:
        if self._stopping.is_set():
            return
        with contextlib.suppress(RuntimeError):  # the loop closed under us at shutdown
            self.loop.call_soon_threadsafe(fn, *args)

    def _replaced(self, records: list[T]) -> None:  # on the loop
        self.on_replace(records)
        self.synced = True

    def _restart(self, reason: str) -> None:
        self._post(self.on_restart, self.name, reason)

    def _run(self) -> None:
        delay = self.backoff
        version: str | None = None
        while not self._stopping.is_set():
            try:
                if version is None:
                    version = self._list()
                    delay = self.backoff
                started = time.monotonic()
                version = self._watch(version)
                if not self._stopping.is_set():
                    log.debug("watch %s ended; resuming from %s", self.name, version)
                    self._restart("closed")
                if time.monotonic() - started < QUICK_END:  # a proxy closing at once: no hot loop
                    self._stopping.wait(delay)
                    delay = min(self.max_backoff, delay * 2)
                else:
                    delay = self.backoff
            except Gone:
                log.info("watch %s: resourceVersion %s is gone; listing again", self.name, version)
                version = None
                self._restart("gone")
            except Exception as exc:
                if self._stopping.is_set():
                    break
                self.up = False
                log.warning(
                    "%s %s failed: %s; retrying in %.1fs",
                    "watch" if version is not None else "list",
                    self.name,
                    _describe(exc),
                    delay,
                )
                self._restart("error")
                self._stopping.wait(delay)
                delay = min(self.max_backoff, delay * 2)
        self.up = False

    def _list(self) -> str:
        resp = self.list_func(
            **self.kwargs, _preload_content=False, _request_timeout=self.api_timeout
        )
        self._resp = resp
        try:
            body = json.loads(resp.data)
        finally:
            self._resp = None
            resp.release_conn()
        if not isinstance(body, dict) or not isinstance(body.get("items"), list):
            raise KubeError(f"list {self.name}: the answer is not a list of objects")
        version = _version(body)
        if not version:
            raise KubeError(f"list {self.name}: the answer has no resourceVersion")
        records = [r for r in (self.parse(item) for item in body["items"]) if r is not None]
        self._post(self._replaced, records)
        log.debug("listed %d %s at version %s", len(records), self.name, version)
        return version

    def _watch(self, version: str) -> str:
        """Stream events until the server ends the watch; return the last resourceVersion."""
        try:
            resp = self.list_func(
                **self.kwargs,
                watch=True,
                resource_version=version,
                timeout_seconds=self.watch_timeout,
                allow_watch_bookmarks=True,
                _preload_content=False,
                _request_timeout=(self.api_timeout, self.watch_timeout + self.api_timeout),
            )
        except Exception as exc:
            if getattr(exc, "status", None) == HTTP_GONE:
                raise Gone(str(exc)) from exc
            raise
        self._resp = resp
        self.up = True
        try:
            for line in _lines(resp):
                if self._stopping.is_set():
                    break
                version = self._event(line, version)
        finally:
            self._resp = None
            with contextlib.suppress(Exception):
                resp.release_conn()
        return version

    def _event(self, line: bytes, version: str) -> str:
        try:
            event = json.loads(line)
        except ValueError as exc:
            raise KubeError(f"watch {self.name}: an event is not JSON: {exc}") from None
        kind = event.get("type") if isinstance(event, dict) else None
        obj = event.get("object") if isinstance(event, dict) else None
        if not isinstance(obj, dict):
            raise KubeError(f"watch {self.name}: event without an object")
        if kind == "ERROR":
            code = obj.get("code")
            if code == HTTP_GONE:
                raise Gone(str(obj.get("message", "")))
            raise KubeError(f"watch {self.name}: error {code}: {obj.get('message', '')}")
        new_version = _version(obj) or version
        if kind in ("ADDED", "MODIFIED"):
            record = self.parse(obj)
            if record is not None:
                self._post(self.on_upsert, record)
            else:
                self._post(self.on_delete, self.key(obj))
        elif kind == "DELETED":
            self._post(self.on_delete, self.key(obj))
        elif kind != "BOOKMARK":
            log.debug("watch %s: ignoring event type %r", self.name, kind)
        return new_version


def _version(obj: dict[str, Any]) -> str:
    meta = obj.get("metadata")
    value = meta.get("resourceVersion") if isinstance(meta, dict) else None
    return value if isinstance(value, str) else ""


def _lines(resp: Any) -> Any:
    """Newline-delimited events of a chunked watch response."""
    buffer = b""
    for chunk in resp.stream(64 * 1024, decode_content=True):
        buffer += chunk
        while b"\n" in buffer:
            line, buffer = buffer.split(b"\n", 1)
            if line.strip():
                yield line
    if buffer.strip():
        yield buffer


def _shutdown(resp: Any) -> None:
    """Unblock a thread reading ``resp`` (urllib3's shutdown(), else the raw socket)."""
    if resp is None:
        return
    shutdown = getattr(resp, "shutdown", None)
    if callable(shutdown):
        with contextlib.suppress(Exception):
            shutdown()
            return
    conn = getattr(resp, "connection", None)
    sock = getattr(conn, "sock", None)
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)


def _describe(exc: BaseException) -> str:
    status = getattr(exc, "status", None)
    reason = getattr(exc, "reason", None)
    if status is not None:
        return f"HTTP {status} {reason or ''}".strip()
    return f"{type(exc).__name__}: {exc}"
