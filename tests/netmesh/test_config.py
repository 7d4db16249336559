"""Settings → a component's options: ``project``."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from netmesh.config import project


@dataclass(frozen=True, kw_only=True)
class Settings:
    test_duration: int = 5
    rca_min_peers: int = 2
    rca_loss_ratio: float = 0.05
    iperf3_binary: str = "iperf3"

    @property
    def doubled(self) -> int:
        return 2 * self.test_duration


@dataclass(frozen=True, kw_only=True)
class Options:
    binary: str
    duration: int = 1
    twice: int = 0
    tags: tuple[str, ...] = field(default=())


@dataclass(frozen=True)  # positional fields work too: project passes keywords
class Criteria:
    min_peers: int = 1
    loss_ratio: float = 0.5
    max_len: int = 2


def test_prefix_copies_every_field_and_defaults_keep_theirs() -> None:
    s = Settings(rca_min_peers=4, rca_loss_ratio=0.1)
    assert project(s, Criteria, prefix="rca_", defaults=("max_len",)) == Criteria(
        min_peers=4, loss_ratio=0.1, max_len=2
    )


def test_rename_properties_and_overrides() -> None:
    got = project(
        Settings(test_duration=7),
        Options,
        rename={"binary": "iperf3_binary", "duration": "test_duration", "twice": "doubled"},
        tags=("a",),
    )
    assert got == Options(binary="iperf3", duration=7, twice=14, tags=("a",))


def test_override_wins_over_the_setting() -> None:
    got = project(Settings(), Criteria, prefix="rca_", defaults=("max_len",), min_peers=9)
    assert got.min_peers == 9


def test_a_field_without_a_source_is_an_error_not_a_silent_default() -> None:
    with pytest.raises(
        TypeError, match=r"Criteria from Settings: nothing for max_len \(no setting rca_max_len\)"
    ):
        project(Settings(), Criteria, prefix="rca_")


def test_names_that_are_no_field_are_errors() -> None:
    with pytest.raises(TypeError, match="Criteria has no field bogus, min_lift"):
        project(Settings(), Criteria, prefix="rca_", defaults=("max_len", "bogus"), min_lift=1.0)


def test_one_rename_map_serves_several_targets() -> None:
    names = {"binary": "iperf3_binary", "duration": "test_duration", "min_peers": "rca_min_peers"}
    assert project(Settings(), Options, rename=names, twice=0, tags=()).binary == "iperf3"
    assert project(Settings(), Criteria, rename=names, prefix="rca_", defaults=("max_len",))


def test_a_misspelt_rename_still_leaves_a_field_without_a_source() -> None:
    with pytest.raises(TypeError, match=r"nothing for binary \(no setting binary\)"):
        project(Settings(), Options, rename={"binaryy": "iperf3_binary"})
