"""A rendered pod template -> `podman run` arguments, so the image test runs the containers
exactly as the manifests declare them (nothing re-typed in the test).

Derived from the manifests: the user and group, capabilities (drop/add),
privileged, allowPrivilegeEscalation, readOnlyRootFilesystem, the seccomp
profile (container's, else the pod's), every volume mount with its readOnly
flag (emptyDir -> tmpfs of the declared size; hostPath -> bind mount of the
same host path; a projected token -> a directory the caller provides), the
environment (the ConfigMap behind envFrom, then env; Downward API fields from
the caller) and the command.

What a lab is not (a cluster) is passed in explicitly by the caller as
``overrides`` (collector URL, static mode, addresses) and listed in the test.
Not derived: resources (podman's cgroupfs manager on this VM's hybrid
cgroups), probes and ports (the container shares a lab node's namespace).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


class Unsupported(ValueError):
    """A pod field this translation does not know; the test must not silently drop it."""


@dataclass(frozen=True)
class Container:
    """One container of a rendered pod template, in podman's terms."""

    args: list[str]  # podman run options (before the image)
    command: list[str]  # after the image
    env: dict[str, str] = field(default_factory=dict)


def pod_spec(workload: Mapping[str, Any]) -> dict[str, Any]:
    return dict(workload["spec"]["template"]["spec"])


def _size(quantity: str) -> str:
    """A Kubernetes quantity (256Mi) as a tmpfs size (256m)."""
    units = {"Ki": "k", "Mi": "m", "Gi": "g"}
    for suffix, unit in units.items():
        if quantity.endswith(suffix):
            return quantity[: -len(suffix)] + unit
    if quantity.isdigit():
        return quantity
    raise Unsupported(f"emptyDir sizeLimit {quantity!r}")


def _seccomp(profile: Mapping[str, Any] | None) -> list[str]:
    kind = (profile or {}).get("type", "RuntimeDefault")
    if kind == "RuntimeDefault":
        return []  # the runtime's own default profile
    if kind == "Unconfined":
        return ["--security-opt", "seccomp=unconfined"]
    if kind == "Localhost":
        return ["--security-opt", f"seccomp={profile and profile['localhostProfile']}"]
    raise Unsupported(f"seccompProfile type {kind!r}")


def _field(path: str, fields: Mapping[str, str]) -> str:
    if path not in fields:
        raise Unsupported(f"Downward API field {path!r}: the caller must provide it")
    return fields[path]


def container(
    pod: Mapping[str, Any],
    name: str,
    *,
    configmaps: Mapping[str, Mapping[str, str]],
    projected_dirs: Mapping[str, str],
    fields: Mapping[str, str],
    overrides: Mapping[str, str],
) -> Container:
    """podman arguments for container ``name`` of ``pod`` (a pod template's spec).

    ``configmaps``: rendered ConfigMaps' data by name; ``projected_dirs``: a host
    directory for each projected volume; ``fields``: Downward API values
    (``spec.nodeName`` ...); ``overrides``: environment that replaces the
    manifests' for the lab (a lab is not a cluster).
    """
    (c,) = [c for c in pod["containers"] if c["name"] == name]
    psc = pod.get("securityContext", {})
    sc = c.get("securityContext", {})
    args: list[str] = []

    uid = sc.get("runAsUser", psc.get("runAsUser"))
    gid = sc.get("runAsGroup", psc.get("runAsGroup"))
    if uid is not None:
        args += ["--user", f"{uid}:{gid if gid is not None else uid}"]
    if sc.get("privileged"):
        args.append("--privileged")
    caps = sc.get("capabilities", {})
    for cap in caps.get("drop", []):
        args += ["--cap-drop", cap]
    for cap in caps.get("add", []):
        args += ["--cap-add", cap]
    if sc.get("allowPrivilegeEscalation") is False:
        args += ["--security-opt", "no-new-privileges"]
    if sc.get("readOnlyRootFilesystem"):
        # Only what the manifests mount is writable (podman would add tmpfs on /tmp, /run).
        args += ["--read-only", "--read-only-tmpfs=false"]
    args += _seccomp(sc.get("seccompProfile", psc.get("seccompProfile")))

    volumes = {v["name"]: v for v in pod.get("volumes", [])}
    for mount in c.get("volumeMounts", []):
        vol = volumes[mount["name"]]
        path = mount["mountPath"]
        ro = bool(mount.get("readOnly"))
        if "emptyDir" in vol:
            opts = "ro" if ro else "rw"
            limit = vol["emptyDir"].get("sizeLimit")
            opts += f",size={_size(limit)}" if limit else ""
            args += ["--tmpfs", f"{path}:{opts},mode=1777"]
        elif "hostPath" in vol:
            args += ["-v", f"{vol['hostPath']['path']}:{path}{':ro' if ro else ''}"]
        elif "projected" in vol:
            if mount["name"] not in projected_dirs:
                raise Unsupported(f"projected volume {mount['name']!r}: give a directory")
            args += ["-v", f"{projected_dirs[mount['name']]}:{path}{':ro' if ro else ''}"]
        else:
            raise Unsupported(f"volume {vol}")

    env: dict[str, str] = {}
    for source in c.get("envFrom", []):
        ref = source["configMapRef"]["name"]
        env.update(configmaps[ref])
    for var in c.get("env", []):
        if "value" in var:
            env[var["name"]] = var["value"]
        else:
            env[var["name"]] = _field(var["valueFrom"]["fieldRef"]["fieldPath"], fields)
    env.update(overrides)
    for key, value in sorted(env.items()):
        args += ["--env", f"{key}={value}"]
    return Container(args=args, command=[*c.get("command", []), *c.get("args", [])], env=env)
