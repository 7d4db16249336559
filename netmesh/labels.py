"""Topology labels of a node (``zone=a,rack=r1``): parsing and validation, shared by both sides.

The agent reads them from its ``labels`` setting (static mode) and sends
them in every report; the collector's report parser checks them with the
same rules. Keys look like Kubernetes label keys (an optional DNS prefix and
``/``, then a name of letters, digits, ``-``, ``_``, ``.``); values like
Kubernetes label values (at most 63 such characters). ``zone`` and ``rack``
are the keys the root-cause analysis reads.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

ZONE = "zone"
RACK = "rack"
MAX_LABELS = 16

_NAME = r"[A-Za-z0-9]([A-Za-z0-9._-]{0,61}[A-Za-z0-9])?"
_KEY = re.compile(rf"^([a-z0-9]([a-z0-9.-]{{0,251}}[a-z0-9])?/)?{_NAME}$")
_VALUE = re.compile(rf"^({_NAME})?$")

Labels = tuple[tuple[str, str], ...]  # sorted (key, value) pairs


def label_problem(key: str, value: str) -> str | None:
    """Why ``key=value`` is no valid label, or None."""
    if not _KEY.match(key):
        return f"label key {key!r}: letters, digits, '-', '_', '.' (optionally prefix/name)"
    if not _VALUE.match(value):
        return (
            f"label {key}={value!r}: value must be at most 63 letters, digits, '-', '_', '.', "
            "starting and ending with a letter or digit"
        )
    return None


def check_labels(pairs: Iterable[tuple[str, str]]) -> Labels:
    """Validated, sorted labels; ValueError names the first problem."""
    out: dict[str, str] = {}
    for key, value in pairs:
        problem = label_problem(key, value)
        if problem is not None:
            raise ValueError(problem)
        if key in out:
            raise ValueError(f"label {key!r} given twice")
        out[key] = value
    if len(out) > MAX_LABELS:
        raise ValueError(f"{len(out)} labels: at most {MAX_LABELS}")
    return tuple(sorted(out.items()))


def parse_labels(text: str) -> Labels:
    """``zone=a,rack=r1`` → (("rack", "r1"), ("zone", "a")); ValueError with the reason."""
    pairs = []
    for raw in text.split(","):
        item = raw.strip()
        if not item:
            continue
        key, sep, value = item.partition("=")
        if not sep:
            raise ValueError(f"{item!r} is not key=value (e.g. zone=a,rack=r1)")
        pairs.append((key.strip(), value.strip()))
    return check_labels(pairs)


def label(labels: Labels | Mapping[str, str], key: str) -> str:
    """The value of ``key`` ("" when absent)."""
    items = labels.items() if isinstance(labels, Mapping) else labels
    for k, v in items:
        if k == key:
            return v
    return ""
