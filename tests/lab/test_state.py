"""The lab's state file: round trip, locating the running lab, conflicting flags; no root."""

from __future__ import annotations

import argparse
import pathlib

import pytest

from lab import state
from lab.__main__ import _parser, main
from lab.lab import Lab
from lab.settings import LabSettings
from lab.state import LabError
from netmesh.config import build


def up_state(state_dir: pathlib.Path, **settings: object) -> LabSettings:
    """Write the state file `up` writes for these settings (the network is not built)."""
    s = LabSettings(state_dir=str(state_dir), **settings)  # type: ignore[arg-type]
    lab = Lab(s)
    lab.save_state({"settings": state.settings_to_json(s), "pids": {}, "faults": {}})
    return s


def requested(
    argv: list[str], environ: dict[str, str] | None = None
) -> tuple[LabSettings, set[str]]:
    args: argparse.Namespace = _parser().parse_args(argv)
    env = environ or {}
    return build(LabSettings, vars(args), env), state.given_fields(vars(args), env)


def test_settings_round_trip(tmp_path: pathlib.Path) -> None:
    s = LabSettings(nodes=6, racks=3, subnet="10.101.0.0/24", prefix="nmrx", baseline_rate=5000)
    assert state.settings_from_json(state.settings_to_json(s)) == s
    path = tmp_path / "x" / "state.json"
    state.write(path, {"settings": state.settings_to_json(s)})
    assert state.settings_from_json(state.read(path)["settings"]) == s
    assert state.read(tmp_path / "missing.json") == {}


def test_an_older_state_without_new_fields_takes_defaults() -> None:
    assert state.settings_from_json({"nodes": 5, "gone_field": 1}) == LabSettings(nodes=5)


def test_inject_acts_on_the_running_lab_without_repeating_up_flags(tmp_path: pathlib.Path) -> None:
    up_state(tmp_path, nodes=6, subnet="10.102.0.0/24", racks=2)
    wanted, given = requested(["inject", "--node", "node-5", "--state-dir", str(tmp_path)])
    running, found = state.locate(wanted, given)
    assert found and running.nodes == 6 and running.racks == 2
    lab = Lab(running)
    # The node exists and its address is in the running lab's subnet, not the default one.
    assert lab.topo.node("node-5").address == "10.102.0.15"
    assert lab.topo.node("node-5").rack_label == "rack-2"


def test_a_lab_with_another_prefix_is_found_when_it_is_the_only_one(
    tmp_path: pathlib.Path,
) -> None:
    up_state(tmp_path, prefix="nmrone", nodes=3)
    wanted, given = requested(["status", "--state-dir", str(tmp_path)])
    running, found = state.locate(wanted, given)
    assert found and running.prefix == "nmrone" and running.nodes == 3
    up_state(tmp_path, prefix="nmrtwo", nodes=3)
    with pytest.raises(LabError, match=r"several labs are up .*nmrone, nmrtwo.*--prefix"):
        state.locate(wanted, given)
    wanted, given = requested(["status", "--state-dir", str(tmp_path), "--prefix", "nmrtwo"])
    assert state.locate(wanted, given)[0].prefix == "nmrtwo"


def test_conflicting_flags_are_an_error_that_names_them(tmp_path: pathlib.Path) -> None:
    up_state(tmp_path, nodes=6)
    wanted, given = requested(
        ["inject", "--node", "2", "--nodes", "4", "--state-dir", str(tmp_path)]
    )
    with pytest.raises(LabError, match=r"--nodes 4 \(the lab runs with 6\).*drop these flags"):
        state.locate(wanted, given)
    # The same value is no conflict.
    wanted, given = requested(["clear", "--nodes", "6", "--state-dir", str(tmp_path)])
    assert state.locate(wanted, given)[0].nodes == 6


def test_environment_variables_count_as_given(tmp_path: pathlib.Path) -> None:
    up_state(tmp_path, racks=2)
    wanted, given = requested(["down", "--state-dir", str(tmp_path)], {"NETMESH_RACKS": "3"})
    with pytest.raises(LabError, match=r"--racks 3 \(the lab runs with 2\)"):
        state.locate(wanted, given)


def test_without_a_state_file_the_flags_are_used(tmp_path: pathlib.Path) -> None:
    wanted, given = requested(["down", "--state-dir", str(tmp_path), "--nodes", "5"])
    settings, found = state.locate(wanted, given)
    assert not found and settings == wanted


def test_cli_reports_conflicts_and_unknown_nodes_without_a_traceback(
    tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]
) -> None:
    up_state(tmp_path, nodes=6)
    assert main(["status", "--state-dir", str(tmp_path), "--subnet", "10.103.0.0/24"]) == 2
    assert "--subnet '10.103.0.0/24' (the lab runs with '10.211.0.0/24')" in capsys.readouterr().err


def test_racks_setting_is_checked() -> None:
    with pytest.raises(Exception, match="racks 5"):
        LabSettings(nodes=4, racks=5)
