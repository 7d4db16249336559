"""Judged meshes for the RCA tests: which paths fail, by construction."""

from __future__ import annotations

import random
from collections.abc import Callable

from collector.judging import PathOutcome

PROTOCOLS = ("tcp", "udp")


def names(n: int) -> list[str]:
    return [f"node-{i}" for i in range(1, n + 1)]


def mesh(
    n: int, fails: Callable[[str, str, str], bool] = lambda _s, _d, _p: False
) -> list[PathOutcome]:
    """Every ordered pair and protocol of ``n`` nodes; ``fails(src, dst, proto)`` marks FAIL."""
    out = []
    for s in names(n):
        for d in names(n):
            if s == d:
                continue
            for p in PROTOCOLS:
                out.append(
                    PathOutcome(
                        source=s,
                        destination=d,
                        protocol=p,
                        reasons=("loss 20.0% > 5.0%",) if fails(s, d, p) else (),
                    )
                )
    return out


def inbound(*bad: str) -> Callable[[str, str, str], bool]:
    """Receiver-side loss on ``bad``: every path into them fails."""
    return lambda _s, d, _p: d in bad


def down(*bad: str) -> Callable[[str, str, str], bool]:
    """``bad`` unreachable: every path into or out of them fails."""
    return lambda s, d, _p: s in bad or d in bad


def random_fails(share: float, seed: int) -> Callable[[str, str, str], bool]:
    rng = random.Random(seed)
    memo: dict[tuple[str, str, str], bool] = {}

    def f(s: str, d: str, p: str) -> bool:
        return memo.setdefault((s, d, p), rng.random() < share)

    return f
