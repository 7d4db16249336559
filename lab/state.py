"""The running lab's state file: what ``up`` built, so later commands act on that lab.

``up`` writes ``<state dir>/<prefix>/state.json``: the lab's settings, its
topology (nodes, addresses, racks), the pids it started and the faults
injected since. ``inject``, ``clear``, ``status`` and ``down`` load the
settings from there instead of rebuilding them from their own flags, so
``netmesh-lab inject --node node-5`` works on a lab started with ``--nodes 6``.
A flag (or NETMESH_ variable) given to them that disagrees with the running
lab is an error, never a silently different lab.
"""

from __future__ import annotations

import dataclasses
import json
import pathlib
from collections.abc import Collection, Mapping
from typing import Any

from lab.settings import LabSettings
from netmesh.config import env_name, flag_name

STATE_FILE = "state.json"


class LabError(RuntimeError):
    """The lab cannot do what was asked; the message says why and what to do."""


def state_path(state_dir: str, prefix: str) -> pathlib.Path:
    return pathlib.Path(state_dir) / prefix / STATE_FILE


def read(path: pathlib.Path) -> dict[str, Any]:
    """The state at ``path``, or {} when there is none (or it is unreadable)."""
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return dict(data) if isinstance(data, dict) else {}


def write(path: pathlib.Path, state: Mapping[str, Any]) -> None:
    """Write atomically (a reader never sees half a file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(state, indent=2, sort_keys=True))
    tmp.replace(path)


def settings_to_json(settings: LabSettings) -> dict[str, Any]:
    return dataclasses.asdict(settings)


def settings_from_json(data: Mapping[str, Any]) -> LabSettings:
    """The settings a state file records; fields it lacks (an older lab) take defaults."""
    names = {f.name for f in dataclasses.fields(LabSettings)}
    return LabSettings(**{k: v for k, v in data.items() if k in names})


def given_fields(flags: Mapping[str, Any], environ: Mapping[str, str]) -> set[str]:
    """The settings the user gave explicitly, by flag or NETMESH_ variable."""
    return {
        f.name
        for f in dataclasses.fields(LabSettings)
        if flags.get(f.name) is not None or env_name(f.name) in environ
    }


def running_labs(state_dir: str) -> list[str]:
    """Prefixes of the labs with a state file under ``state_dir``."""
    root = pathlib.Path(state_dir)
    if not root.is_dir():
        return []
    return sorted(p.parent.name for p in root.glob(f"*/{STATE_FILE}") if read(p))


def locate(requested: LabSettings, given: Collection[str]) -> tuple[LabSettings, bool]:
    """The settings of the lab a command after ``up`` acts on, and whether it has a state file.

    The lab is the one named by ``--prefix``; without it, the default prefix's
    lab, or else the only lab with a state file in the state directory. Settings
    given explicitly must equal the running lab's (LabError otherwise).
    """
    prefix = requested.prefix
    if "prefix" not in given and not read(state_path(requested.state_dir, prefix)):
        labs = running_labs(requested.state_dir)
        if len(labs) == 1:
            prefix = labs[0]
        elif len(labs) > 1:
            raise LabError(
                f"several labs are up in {requested.state_dir} ({', '.join(labs)}): "
                "say which with --prefix"
            )
    state = read(state_path(requested.state_dir, prefix))
    if not state.get("settings"):
        return dataclasses.replace(requested, prefix=prefix), False
    running = dataclasses.replace(
        settings_from_json(state["settings"]), state_dir=requested.state_dir
    )
    conflicts = [
        f"{flag_name(name)} {getattr(requested, name)!r} (the lab runs with "
        f"{getattr(running, name)!r})"
        for name in sorted(given)
        if name not in ("state_dir", "prefix")
        and getattr(requested, name) != getattr(running, name)
    ]
    if conflicts:
        raise LabError(
            f"lab {prefix!r} is up with other settings: "
            + "; ".join(conflicts)
            + ". Commands after `up` act on the running lab: drop these flags/NETMESH_ "
            "variables, or `netmesh-lab down` and `up` again with them."
        )
    return running, True
