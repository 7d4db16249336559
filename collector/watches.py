"""Kubernetes mode: the agent-pod, pod and node watches feeding membership and the pod map.

One ``Informer`` (collector/kube.py) per resource, each in its own thread,
started and stopped in the app's ``cleanup_ctx``.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import AsyncIterator, Callable
from typing import Any

from aiohttp import web

from collector.appkeys import INFORMERS
from collector.kube import Informer, make_api
from collector.membership import KubernetesMembership
from collector.podmap import PodInfo, PodMap, parse_node, parse_pod
from collector.settings import CollectorSettings
from collector.state import CollectorState


def _pod_key(obj: Any) -> tuple[str, str]:
    meta = obj.get("metadata", {}) if isinstance(obj, dict) else {}
    return (str(meta.get("namespace", "")), str(meta.get("name", "")))


def _node_key(obj: Any) -> str:
    meta = obj.get("metadata", {}) if isinstance(obj, dict) else {}
    return str(meta.get("name", ""))


def watches(
    settings: CollectorSettings,
    state: CollectorState,
    pod_map: PodMap,
    membership: KubernetesMembership,
    kube_api: Any,
) -> Callable[[web.Application], AsyncIterator[None]]:
    """The cleanup context that runs the watches (``kube_api`` None: from the kubeconfig)."""

    async def ctx(app: web.Application) -> AsyncIterator[None]:
        api = kube_api if kube_api is not None else make_api(settings.kubeconfig)
        informers = _informers(settings, state, pod_map, membership, api)
        app[INFORMERS].extend(informers)
        for informer in informers:
            informer.start()
        yield
        await asyncio.gather(*(asyncio.to_thread(i.stop) for i in informers))

    return ctx


def _informers(
    settings: CollectorSettings,
    state: CollectorState,
    pod_map: PodMap,
    membership: KubernetesMembership,
    api: Any,
) -> list[Informer[Any]]:
    def restarted(resource: str, reason: str) -> None:
        state.stats.watch_restarts[(resource, reason)] += 1

    common: dict[str, Any] = {
        "loop": asyncio.get_running_loop(),
        "on_restart": restarted,
        "watch_timeout": settings.watch_timeout,
        "api_timeout": settings.api_timeout,
        "backoff": settings.watch_backoff,
        "max_backoff": settings.watch_max_backoff,
    }
    return [
        Informer[PodInfo](
            "agents",
            api.list_namespaced_pod,
            kwargs={
                "namespace": settings.agent_namespace,
                "label_selector": settings.agent_selector,
            },
            parse=parse_pod,
            key=_pod_key,
            on_replace=membership.replace_agents,
            on_upsert=membership.upsert_agent,
            on_delete=membership.delete_agent,
            **common,
        ),
        Informer[PodInfo](
            "pods",
            api.list_pod_for_all_namespaces,
            parse=parse_pod,
            key=_pod_key,
            on_replace=pod_map.replace_pods,
            on_upsert=pod_map.upsert_pod,
            on_delete=pod_map.delete_pod,
            **common,
        ),
        Informer(
            "nodes",
            api.list_node,
            parse=functools.partial(
                parse_node, zone_label=settings.zone_label, rack_label=settings.rack_label
            ),
            key=_node_key,
            on_replace=pod_map.replace_nodes,
            on_upsert=pod_map.upsert_node,
            on_delete=pod_map.delete_node,
            **common,
        ),
    ]
