"""Frozen settings dataclasses ↔ command-line flags and NETMESH_ environment variables.

Every field of a settings dataclass becomes a flag (``test_duration`` →
``--test-duration``) and an environment variable (``NETMESH_TEST_DURATION``).
Precedence: flag, then environment, then the field's default. A field's help
text lives in its metadata (``field(metadata=doc("..."))``) so that ``--help``,
the README table and the manifests test all read one source.

The environment is passed in explicitly (``environ=``): only a service's
``__main__`` reads ``os.environ``. ``project`` builds a component's options
dataclass from a service's settings by field name.
"""

from __future__ import annotations

import argparse
import dataclasses
import types
import typing
from collections.abc import Callable, Collection, Mapping, Sequence
from typing import Any, TypeVar

ENV_PREFIX = "NETMESH_"

T = TypeVar("T")


class SettingsError(ValueError):
    """Settings that cannot work; the message lists every problem."""


def doc(help_text: str, *, parse: Callable[[str], Any] | None = None) -> dict[str, Any]:
    """Metadata for a settings field: its help text and an optional string parser."""
    meta: dict[str, Any] = {"help": help_text}
    if parse is not None:
        meta["parse"] = parse
    return meta


def env_name(field_name: str) -> str:
    return ENV_PREFIX + field_name.upper()


def flag_name(field_name: str) -> str:
    return "--" + field_name.replace("_", "-")


def parse_bool(text: str) -> bool:
    value = text.strip().lower()
    if value in {"1", "true", "yes", "on"}:
        return True
    if value in {"0", "false", "no", "off", ""}:
        return False
    raise ValueError(f"expected true/false, got {text!r}")


def parse_str_tuple(text: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in text.split(",") if part.strip())


def _parser_for(field: dataclasses.Field[Any], hints: Mapping[str, Any]) -> Callable[[str], Any]:
    custom = field.metadata.get("parse")
    if custom is not None:
        return typing.cast(Callable[[str], Any], custom)
    hint = hints[field.name]
    if hint is bool:
        return parse_bool
    if hint is int:
        return int
    if hint is float:
        return float
    if hint is str:
        return str
    origin = typing.get_origin(hint)
    if origin is tuple and typing.get_args(hint)[:1] == (str,):
        return parse_str_tuple
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        if args == [str]:
            return str
        if args == [float]:
            return float
        if args == [int]:
            return int
    raise TypeError(f"settings field {field.name}: no parser for type {hint!r}")


def fields_of(cls: type[Any]) -> list[dataclasses.Field[Any]]:
    return [f for f in dataclasses.fields(cls) if f.init]


def default_of(field: dataclasses.Field[Any]) -> Any:
    if field.default is not dataclasses.MISSING:
        return field.default
    if field.default_factory is not dataclasses.MISSING:
        return field.default_factory()
    return dataclasses.MISSING


def add_arguments(parser: argparse.ArgumentParser, cls: type[Any]) -> None:
    """Add one flag per settings field; defaults stay None so the env can fill in."""
    for field in fields_of(cls):
        default = default_of(field)
        shown = "required" if default is dataclasses.MISSING else f"default: {default!r}"
        parser.add_argument(
            flag_name(field.name),
            dest=field.name,
            default=None,
            metavar=field.name.upper(),
            help=f"{field.metadata.get('help', '')} [{env_name(field.name)}; {shown}]",
        )


def load(
    cls: type[T],
    argv: Sequence[str] | None,
    environ: Mapping[str, str],
    *,
    prog: str | None = None,
    description: str | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> T:
    """Build ``cls`` from flags, then ``environ``, then defaults; raise SettingsError.

    ``overrides`` are already-typed values that win over everything (tests).
    The instance's own ``__post_init__`` performs the semantic validation.
    """
    parser = argparse.ArgumentParser(prog=prog, description=description)
    add_arguments(parser, cls)
    args = vars(parser.parse_args(list(argv) if argv is not None else []))
    return build(cls, args, environ, overrides=overrides)


def build(
    cls: type[T],
    flags: Mapping[str, Any],
    environ: Mapping[str, str],
    *,
    overrides: Mapping[str, Any] | None = None,
) -> T:
    """Build ``cls`` from parsed flag strings (None = not given), then env, then defaults."""
    hints = typing.get_type_hints(cls)
    values: dict[str, Any] = {}
    problems: list[str] = []
    for field in fields_of(cls):
        raw: str | None = flags.get(field.name)
        source = flag_name(field.name)
        if raw is None and env_name(field.name) in environ:
            raw = environ[env_name(field.name)]
            source = env_name(field.name)
        if raw is None:
            continue
        try:
            values[field.name] = _parser_for(field, hints)(raw)
        except (ValueError, TypeError) as exc:
            problems.append(f"{source}={raw!r}: {exc}")
    if problems:
        raise SettingsError("invalid settings:\n  " + "\n  ".join(problems))
    values.update(overrides or {})
    missing = [
        flag_name(f.name)
        for f in fields_of(cls)
        if default_of(f) is dataclasses.MISSING and f.name not in values
    ]
    if missing:
        raise SettingsError(
            "missing required settings: "
            + ", ".join(f"{m} (or {env_name(m[2:].replace('-', '_'))})" for m in missing)
        )
    return cls(**values)


def project(
    settings: object,
    target: type[T],
    /,
    *,
    prefix: str = "",
    rename: Mapping[str, str] | None = None,
    defaults: Collection[str] = (),
    **overrides: Any,
) -> T:
    """Build ``target``, a dataclass of one component's options, from a service's settings.

    Each of the target's fields takes, in this order: the keyword override of
    that name; the target's default if the field is listed in ``defaults``;
    the settings attribute ``rename[field]``, else ``prefix + field``
    (properties count). Anything else is a TypeError, as is a name in
    ``defaults`` or the overrides that is no field of the target: a setting
    renamed later must not leave an option silently at its default.
    ``rename`` may be one map shared by several targets: names in it that
    are no field of this one are ignored.
    """
    rename = rename or {}
    names = [f.name for f in fields_of(target)]
    unknown = sorted((set(defaults) | set(overrides)) - set(names))
    if unknown:
        raise TypeError(f"{target.__name__} has no field {', '.join(unknown)}")
    values: dict[str, Any] = {}
    missing = []
    for name in names:
        source = rename.get(name, prefix + name)
        if name in overrides:
            values[name] = overrides[name]
        elif name in defaults:
            continue
        elif hasattr(settings, source):
            values[name] = getattr(settings, source)
        else:
            missing.append(f"{name} (no setting {source})")
    if missing:
        raise TypeError(
            f"{target.__name__} from {type(settings).__name__}: nothing for {', '.join(missing)}"
        )
    return target(**values)


class Problems:
    """Collects validation problems so that one error names all of them."""

    def __init__(self) -> None:
        self.items: list[str] = []

    def check(self, ok: bool, message: str) -> None:
        if not ok:
            self.items.append(message)

    def raise_if_any(self, what: str) -> None:
        if self.items:
            raise SettingsError(f"invalid {what} settings:\n  " + "\n  ".join(self.items))


def valid_port(port: int) -> bool:
    return 1 <= port <= 65535


def settings_table(cls: type[Any]) -> str:
    """A Markdown table of every field (for the README)."""
    rows = ["| flag | environment | default | meaning |", "|---|---|---|---|"]
    for field in fields_of(cls):
        default = default_of(field)
        shown = "(required)" if default is dataclasses.MISSING else f"`{_show(default)}`"
        rows.append(
            f"| `{flag_name(field.name)}` | `{env_name(field.name)}` | {shown} | "
            f"{field.metadata.get('help', '')} |"
        )
    return "\n".join(rows)


def _show(value: Any) -> str:
    if isinstance(value, tuple):
        return ",".join(str(v) for v in value)
    return str(value)
