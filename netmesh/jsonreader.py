"""Typed reading of untrusted JSON objects, naming the path of every problem.

``JsonReader(obj, "agent")`` checks that ``obj`` is an object and reads its
keys as strings, integers, numbers and lists with bounds; every problem is a
``WireError`` whose message starts with the path (``results[3].protocol: ...``)
so that a human can act on it. Used by the wire format's parsers.
"""

from __future__ import annotations

import math
from typing import Any, cast

MAX_NAME = 253  # a DNS subdomain, like a Kubernetes node name


class WireError(ValueError):
    """Input that does not follow the wire format; the message says what and where."""


class JsonReader:
    """Typed access to one JSON object, naming the path of every problem."""

    def __init__(self, obj: Any, path: str) -> None:
        if not isinstance(obj, dict):
            raise WireError(f"{path or 'body'}: expected an object, got {kind(obj)}")
        self.obj = cast(dict[str, Any], obj)
        self.path = path

    def _at(self, key: str) -> str:
        return f"{self.path}.{key}" if self.path else key

    def get(self, key: str, default: Any = ...) -> Any:
        if key not in self.obj:
            if default is ...:
                raise WireError(f"{self._at(key)}: missing")
            return default
        return self.obj[key]

    def string(self, key: str, *, max_len: int = MAX_NAME, allow_empty: bool = False) -> str:
        value = self.get(key)
        if not isinstance(value, str):
            raise WireError(f"{self._at(key)}: expected a string, got {kind(value)}")
        if not value.isascii():  # JSON allows lone surrogates; labels cannot carry them
            try:
                value.encode("utf-8")
            except UnicodeEncodeError:
                raise WireError(f"{self._at(key)}: not valid Unicode: {value[:40]!r}") from None
        if not value and not allow_empty:
            raise WireError(f"{self._at(key)}: must not be empty")
        if len(value) > max_len:
            raise WireError(f"{self._at(key)}: longer than {max_len} characters")
        return value

    def integer(self, key: str, *, low: int = 0, high: int = 2**63 - 1, default: Any = ...) -> int:
        value = self.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int):
            raise WireError(f"{self._at(key)}: expected an integer, got {kind(value)}")
        if not low <= value <= high:
            raise WireError(f"{self._at(key)}: {value} is outside [{low}, {high}]")
        return value

    def number(self, key: str, *, high: float = math.inf, default: Any = ...) -> float:
        value = self.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise WireError(f"{self._at(key)}: expected a number, got {kind(value)}")
        number = float(value)
        if not math.isfinite(number) or number < 0:
            raise WireError(f"{self._at(key)}: must be a finite non-negative number")
        if number > high:
            raise WireError(f"{self._at(key)}: {number} is above {high}")
        return number

    def optional_number(self, key: str, *, high: float = math.inf) -> float | None:
        if self.get(key, None) is None:
            return None
        return self.number(key, high=high)

    def optional_integer(self, key: str) -> int | None:
        if self.get(key, None) is None:
            return None
        return self.integer(key)

    def items(self, key: str, *, limit: int, default: Any = ...) -> list[Any]:
        value = self.get(key, default)
        if not isinstance(value, list):
            raise WireError(f"{self._at(key)}: expected a list, got {kind(value)}")
        if len(value) > limit:
            raise WireError(f"{self._at(key)}: {len(value)} entries, at most {limit} allowed")
        return value

    def child(self, key: str, index: int | None = None) -> str:
        return self._at(key) if index is None else f"{self._at(key)}[{index}]"

    def counts(self, key: str, known: tuple[str, ...]) -> tuple[tuple[str, int], ...]:
        """An object of result → count (absent: none), every result one of ``known``,
        in ``known``'s order."""
        raw = self.get(key, {})
        if not isinstance(raw, dict):
            raise WireError(f"{self._at(key)}: expected an object of result → count")
        for result in raw:
            if result not in known:
                raise WireError(f"{self._at(key)}: unknown result {result!r} (one of {known})")
        reader = JsonReader(raw, self._at(key))
        return tuple((res, reader.integer(res)) for res in known if res in raw)


def kind(value: Any) -> str:
    return "null" if value is None else type(value).__name__
