"""Pod identities from a file, for static mode: pod IP → (namespace, pod, node) without Kubernetes.

The file (setting ``pods_file``; the lab writes one) is JSON::

    {"pods": [{"namespace": "lab", "name": "node-2-pod-1", "node": "node-2",
               "ips": ["10.244.2.2"]}]}

``namespace`` defaults to ``default``; ``name``, ``node`` and at least one IP are
required; a pod listed twice or an IP claimed by two pods is an error. The whole
file is the pod list: ``PodsFile.poll`` re-reads it when its size or mtime
changed and replaces the PodMap's pods (which marks their IPs dirty, so the
retransmission series re-resolve). A file that fails to parse raises
``PodsFileError`` naming the problem; the last good list stays in place.
"""

from __future__ import annotations

import json
import os
import pathlib
from typing import Any

from collector.podmap import PodInfo, PodMap
from netmesh.addresses import is_ip

MAX_PODS = 100_000


class PodsFileError(ValueError):
    """The pods file cannot be used; the message names the file and the problem."""


def _entry(index: int, raw: Any) -> PodInfo:
    where = f"pods[{index}]"
    if not isinstance(raw, dict):
        raise PodsFileError(f"{where}: must be an object")
    unknown = set(raw) - {"namespace", "name", "node", "ips", "ip"}
    if unknown:
        raise PodsFileError(f"{where}: unknown keys {sorted(unknown)}")
    fields = {
        k: raw.get(k, "default" if k == "namespace" else "") for k in ("namespace", "name", "node")
    }
    for key, value in fields.items():
        if not isinstance(value, str) or not value:
            raise PodsFileError(f"{where}: {key!r} must be a non-empty string")
    ips = raw.get("ips", [raw["ip"]] if "ip" in raw else [])
    if not isinstance(ips, list) or not ips:
        raise PodsFileError(f"{where} ({fields['name']}): give its addresses as 'ips': [...]")
    for ip in ips:
        if not isinstance(ip, str) or not is_ip(ip):
            raise PodsFileError(f"{where} ({fields['name']}): {ip!r} is not an IP address")
    return PodInfo(
        namespace=fields["namespace"],
        name=fields["name"],
        node=fields["node"],
        ips=tuple(dict.fromkeys(ips)),
        host_network=False,
        phase="Running",
        ready=True,
        deleting=False,
    )


def parse(text: str) -> list[PodInfo]:
    """The pods a file's text lists; PodsFileError on anything wrong."""
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise PodsFileError(f"not JSON: {exc}") from None
    if not isinstance(data, dict) or not isinstance(data.get("pods"), list):
        raise PodsFileError('expected an object {"pods": [...]}')
    if len(data["pods"]) > MAX_PODS:
        raise PodsFileError(f"more than {MAX_PODS} pods")
    pods = [_entry(i, raw) for i, raw in enumerate(data["pods"])]
    seen: dict[tuple[str, str], int] = {}
    owners: dict[str, str] = {}
    for pod in pods:
        if pod.key in seen:
            raise PodsFileError(f"pod {pod.namespace}/{pod.name} is listed twice")
        seen[pod.key] = 1
        for ip in pod.ips:
            other = owners.setdefault(ip, f"{pod.namespace}/{pod.name}")
            if other != f"{pod.namespace}/{pod.name}":
                raise PodsFileError(f"{ip} is claimed by {other} and {pod.namespace}/{pod.name}")
    return pods


class PodsFile:
    """Keeps a PodMap's pods equal to the file's last good version."""

    def __init__(self, path: str, pod_map: PodMap) -> None:
        self.path = pathlib.Path(path)
        self.pod_map = pod_map
        self._seen: tuple[int, int] | None = None  # (mtime_ns, size) of the version last read
        self.pods = 0

    def poll(self) -> bool:
        """Load the file when it changed; True when the map was replaced.

        Raises PodsFileError (once per broken version) when it cannot be read or parsed.
        """
        try:
            st = os.stat(self.path)
        except OSError as exc:
            if self._seen == (0, 0):
                return False
            self._seen = (0, 0)
            raise PodsFileError(f"pods file {self.path}: {exc.strerror}") from None
        signature = (st.st_mtime_ns, st.st_size)
        if signature == self._seen:
            return False
        self._seen = signature
        try:
            pods = parse(self.path.read_text())
        except OSError as exc:
            raise PodsFileError(f"pods file {self.path}: {exc.strerror}") from None
        except PodsFileError as exc:
            raise PodsFileError(f"pods file {self.path}: {exc}") from None
        self.pod_map.replace_pods(pods)
        self.pods = len(pods)
        return True
