"""IP → pod identity: (namespace, pod) for pods, the node for hostNetwork and node IPs.

Pure parsing of Kubernetes Pod and Node JSON into small frozen records, and
``PodMap``, the index the exposition reads. The watches (collector/kube.py)
feed it on the event loop; nothing here does I/O.

Rules:
- a pod holds its IPs while it is not terminal (Succeeded/Failed release them);
- a hostNetwork pod shares its node's IP, so that IP names the node, never one
  arbitrary pod of the many that share it; node addresses (InternalIP,
  ExternalIP) name the node too;
- two live pods claiming one IP (a pod being deleted and its successor) resolve
  deterministically: not-deleting before deleting, Running before others,
  then by namespace/name;
- an unknown IP stays the raw IP.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, NamedTuple

from netmesh.addresses import is_ip

PodKey = tuple[str, str]  # (namespace, name)

TERMINAL_PHASES = ("Succeeded", "Failed")
NODE_ADDRESS_TYPES = ("InternalIP", "ExternalIP")


@dataclass(frozen=True, slots=True)
class PodInfo:
    namespace: str
    name: str
    node: str
    ips: tuple[str, ...]
    host_network: bool
    phase: str
    ready: bool
    deleting: bool
    iperf3_port: int | None = None
    uid: str = ""  # binds a pod-bound ServiceAccount token to this very pod (collector/auth.py)

    @property
    def key(self) -> PodKey:
        return (self.namespace, self.name)


@dataclass(frozen=True, slots=True)
class NodeInfo:
    name: str
    ready: bool
    unschedulable: bool
    deleting: bool
    addresses: tuple[str, ...]
    zone: str = ""  # the value of the collector's zone_label (RCA topology)
    rack: str = ""  # the value of its rack_label


class Identity(NamedTuple):
    """Who an IP is, by ``kind``:

    - ``pod``: ``namespace``/``name`` of the pod;
    - ``node``: ``name`` is the node's name (a node IP or a hostNetwork pod's);
    - ``ip``: unknown, ``name`` is the IP itself;
    - ``other``: the overflow bucket past a series cap.

    A NamedTuple, not a frozen dataclass: resolving every flow of 5,000 agents
    builds ~15,000 of these per pass, and a frozen dataclass costs ~5x more to make.
    """

    namespace: str  # the pod's namespace; "" for every other kind
    name: str
    kind: str


OTHER = Identity("", "other", "other")


def _dict(obj: Any, key: str) -> dict[str, Any]:
    value = obj.get(key) if isinstance(obj, dict) else None
    return value if isinstance(value, dict) else {}


def _list(obj: dict[str, Any], key: str) -> list[Any]:
    value = obj.get(key)
    return value if isinstance(value, list) else []


def _str(obj: dict[str, Any], key: str) -> str:
    value = obj.get(key)
    return value if isinstance(value, str) else ""


def _condition(status: dict[str, Any], kind: str) -> bool:
    for cond in _list(status, "conditions"):
        if isinstance(cond, dict) and cond.get("type") == kind:
            return cond.get("status") == "True"
    return False


def parse_pod(obj: Any) -> PodInfo | None:
    """A Pod's JSON → PodInfo; None when it lacks a name (nothing to index)."""
    meta, spec, status = _dict(obj, "metadata"), _dict(obj, "spec"), _dict(obj, "status")
    name = _str(meta, "name")
    if not name:
        return None
    ips: list[str] = []
    for entry in _list(status, "podIPs"):
        ip = _str(entry, "ip") if isinstance(entry, dict) else ""
        if ip and is_ip(ip) and ip not in ips:
            ips.append(ip)
    primary = _str(status, "podIP")
    if primary and is_ip(primary) and primary not in ips:
        ips.insert(0, primary)
    port = None
    for container in _list(spec, "containers"):
        for p in _list(container, "ports") if isinstance(container, dict) else []:
            if isinstance(p, dict) and p.get("name") == "iperf3":
                number = p.get("containerPort")
                if isinstance(number, int) and 1 <= number <= 65535:
                    port = number
    return PodInfo(
        namespace=_str(meta, "namespace"),
        name=name,
        node=_str(spec, "nodeName"),
        ips=tuple(ips),
        host_network=spec.get("hostNetwork") is True,
        phase=_str(status, "phase"),
        ready=_condition(status, "Ready"),
        deleting=bool(meta.get("deletionTimestamp")),
        iperf3_port=port,
        uid=_str(meta, "uid"),
    )


def parse_node(
    obj: Any,
    *,
    zone_label: str = "topology.kubernetes.io/zone",
    rack_label: str = "topology.kubernetes.io/rack",
) -> NodeInfo | None:
    meta, spec, status = _dict(obj, "metadata"), _dict(obj, "spec"), _dict(obj, "status")
    labels = _dict(meta, "labels")
    name = _str(meta, "name")
    if not name:
        return None
    addresses = []
    for entry in _list(status, "addresses"):
        if isinstance(entry, dict) and entry.get("type") in NODE_ADDRESS_TYPES:
            ip = _str(entry, "address")
            if is_ip(ip) and ip not in addresses:
                addresses.append(ip)
    return NodeInfo(
        name=name,
        ready=_condition(status, "Ready"),
        unschedulable=spec.get("unschedulable") is True,
        deleting=bool(meta.get("deletionTimestamp")),
        addresses=tuple(addresses),
        zone=_str(labels, zone_label) if zone_label else "",
        rack=_str(labels, rack_label) if rack_label else "",
    )


def _rank(pod: PodInfo) -> tuple[bool, bool, str, str]:
    return (pod.deleting, pod.phase != "Running", pod.namespace, pod.name)


class PodMap:
    """The IP index over all pods and nodes; ``generation`` changes whenever a lookup may."""

    def __init__(self) -> None:
        self.pods: dict[PodKey, PodInfo] = {}
        self.nodes: dict[str, NodeInfo] = {}
        self._pod_ips: dict[str, set[PodKey]] = {}  # pod-network IPs
        self._host_ips: dict[str, dict[PodKey, str]] = {}  # hostNetwork IP → pod → node
        self._node_ips: dict[str, str] = {}  # node address → node
        self._dirty: set[str] | None = set()  # IPs whose lookup may have changed; None = all
        self.generation = 0
        self.nodes_version = 0  # bumped on any node change (membership reads node health)

    def take_dirty(self) -> set[str] | None:
        """IPs whose identity may have changed since the last call (None: any IP)."""
        dirty, self._dirty = self._dirty, set()
        return dirty

    def _mark(self, ips: Iterable[str]) -> None:
        if self._dirty is not None:
            self._dirty.update(ips)

    # ---- pods
    def replace_pods(self, pods: Iterable[PodInfo]) -> None:
        self.pods = {}
        self._pod_ips = {}
        self._host_ips = {}
        for pod in pods:
            self._add(pod)
        self._dirty = None
        self.generation += 1

    def upsert_pod(self, pod: PodInfo) -> None:
        old = self.pods.get(pod.key)
        if old == pod:
            return
        if old is not None:
            self._remove(old)
        self._add(pod)
        if old is None or _indexed(old) != _indexed(pod):
            self._mark(pod.ips)
            if old is not None:
                self._mark(old.ips)
            self.generation += 1

    def delete_pod(self, key: PodKey) -> None:
        old = self.pods.get(key)
        if old is not None:
            self._remove(old)
            self._mark(old.ips)
            self.generation += 1

    def _add(self, pod: PodInfo) -> None:
        self.pods[pod.key] = pod
        if pod.phase in TERMINAL_PHASES:
            return
        for ip in pod.ips:
            if pod.host_network:
                self._host_ips.setdefault(ip, {})[pod.key] = pod.node
            else:
                self._pod_ips.setdefault(ip, set()).add(pod.key)

    def _remove(self, pod: PodInfo) -> None:
        del self.pods[pod.key]
        for ip in pod.ips:
            keys = self._pod_ips.get(ip)
            if keys is not None:
                keys.discard(pod.key)
                if not keys:
                    del self._pod_ips[ip]
            hosts = self._host_ips.get(ip)
            if hosts is not None:
                hosts.pop(pod.key, None)
                if not hosts:
                    del self._host_ips[ip]

    # ---- nodes
    def replace_nodes(self, nodes: Iterable[NodeInfo]) -> None:
        self.nodes = {n.name: n for n in nodes}
        self._reindex_nodes()
        self._dirty = None
        self.nodes_version += 1

    def upsert_node(self, node: NodeInfo) -> None:
        old = self.nodes.get(node.name)
        if old == node:
            return
        self.nodes[node.name] = node
        self.nodes_version += 1
        if old is None or old.addresses != node.addresses:
            self._reindex_nodes()

    def delete_node(self, name: str) -> None:
        if self.nodes.pop(name, None) is not None:
            self.nodes_version += 1
            self._reindex_nodes()

    def _reindex_nodes(self) -> None:
        old = self._node_ips
        self._node_ips = {}
        for node in sorted(self.nodes.values(), key=lambda n: n.name):
            for ip in node.addresses:
                self._node_ips.setdefault(ip, node.name)
        self._mark(
            ip for ip in old.keys() | self._node_ips.keys() if old.get(ip) != self._node_ips.get(ip)
        )
        self.generation += 1

    # ---- lookups
    def resolve(self, ip: str) -> Identity | None:
        """The identity of ``ip``, or None when neither a pod nor a node holds it."""
        node = self._node_ips.get(ip)
        if node is not None:
            return Identity("", node, "node")
        hosts = self._host_ips.get(ip)
        if hosts:
            return Identity("", min(hosts.values()), "node")
        keys = self._pod_ips.get(ip)
        if keys:
            best = min((self.pods[k] for k in keys), key=_rank)
            return Identity(best.namespace, best.name, "pod")
        return None

    @property
    def ip_count(self) -> int:
        return len(self._node_ips.keys() | self._host_ips.keys() | self._pod_ips.keys())


def _indexed(pod: PodInfo) -> tuple[object, ...]:
    """The fields of a pod that a lookup can see."""
    return (pod.ips, pod.host_network, pod.node, pod.phase in TERMINAL_PHASES, _rank(pod))
