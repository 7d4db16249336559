"""The static pods file: parsing, validation errors, re-reading on change."""

from __future__ import annotations

import json
import os
import pathlib

import pytest

from collector.podmap import Identity, PodMap
from collector.podsfile import PodsFile, PodsFileError, parse
from collector.settings import CollectorSettings
from netmesh.config import SettingsError


def _body(*pods: dict[str, object]) -> str:
    return json.dumps({"pods": list(pods)})


POD = {"namespace": "lab", "name": "node-2-pod-1", "node": "node-2", "ips": ["10.244.2.2"]}


def test_parse_gives_running_pods() -> None:
    (pod,) = parse(_body(POD))
    assert (pod.namespace, pod.name, pod.node, pod.ips) == (
        "lab",
        "node-2-pod-1",
        "node-2",
        ("10.244.2.2",),
    )
    assert pod.phase == "Running" and not pod.host_network
    (default,) = parse(_body({"name": "a", "node": "n", "ip": "10.0.0.1"}))
    assert default.namespace == "default"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{", "not JSON"),
        ("[]", "expected an object"),
        (_body({"name": "a", "node": "n"}), "addresses"),
        (_body({"name": "a", "node": "n", "ips": ["300.1.1.1"]}), "not an IP"),
        (_body({"node": "n", "ips": ["10.0.0.1"]}), "'name' must be"),
        (_body({"name": "a", "node": "n", "ips": ["10.0.0.1"], "x": 1}), "unknown keys"),
        (_body(POD, POD), "listed twice"),
        (_body(POD, {**POD, "name": "other"}), "claimed by lab/node-2-pod-1 and lab/other"),
    ],
)
def test_parse_errors_name_the_problem(text: str, message: str) -> None:
    with pytest.raises(PodsFileError, match=message):
        parse(text)


def test_poll_rereads_on_change_and_keeps_last_good(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "pods.json"
    path.write_text(_body(POD))
    pod_map = PodMap()
    source = PodsFile(str(path), pod_map)
    assert source.poll() is True
    assert pod_map.resolve("10.244.2.2") == Identity("lab", "node-2-pod-1", "pod")
    assert source.poll() is False  # unchanged
    path.write_text("{broken")
    os.utime(path, ns=(1, 1))
    with pytest.raises(PodsFileError, match=f"pods file {path}: not JSON"):
        source.poll()
    assert source.poll() is False  # the broken version is reported once
    assert pod_map.resolve("10.244.2.2") is not None  # the last good list stays
    path.write_text(_body({**POD, "ips": ["10.244.2.3"]}))
    assert source.poll() is True
    assert pod_map.resolve("10.244.2.2") is None
    assert pod_map.resolve("10.244.2.3") == Identity("lab", "node-2-pod-1", "pod")
    path.unlink()
    with pytest.raises(PodsFileError, match="No such file"):
        source.poll()


def test_pods_file_is_static_mode_only() -> None:
    with pytest.raises(SettingsError, match="pods_file: static mode only"):
        CollectorSettings(mode="kubernetes", pods_file="/x.json")
