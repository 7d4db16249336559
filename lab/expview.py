"""The experiment's terminal view: the live matrix, progress, the summary table."""

from __future__ import annotations

import time
from typing import Any, TextIO


def _fmt(value: float | None, spec: str, missing: str = "-") -> str:
    return missing if value is None else format(value, spec)


def render_matrix(paths: list[dict[str, Any]], nodes: list[str], marked: frozenset[str]) -> str:
    latest: dict[tuple[str, str, str], dict[str, Any]] = {}
    for p in paths:
        latest[(p["source"], p["destination"], p["protocol"])] = p
    width = max(8, *(len(n) for n in nodes)) + 2
    head = "src \\ dst".ljust(width) + "".join(
        (n + ("*" if n in marked else "")).rjust(16) for n in nodes
    )
    lines = ["TCP Mbit/s | UDP loss %   (* = faulty node, or the faulty uplink's rack)", head]
    for src in nodes:
        row = (src + ("*" if src in marked else "")).ljust(width)
        for dst in nodes:
            if src == dst:
                row += "·".rjust(16)
                continue
            tcp = latest.get((src, dst, "tcp"))
            udp = latest.get((src, dst, "udp"))
            bw = None if not tcp or not tcp.get("success") else tcp["bandwidth_bits_per_second"]
            loss = None if not udp or not udp.get("success") else udp.get("loss_ratio")
            cell = _fmt(
                None if bw is None else bw / 1e6,
                ".0f",
                "FAIL" if tcp and not tcp.get("success") else "-",
            )
            cell += " | " + _fmt(
                None if loss is None else loss * 100,
                ".1f",
                "FAIL" if udp and not udp.get("success") else "-",
            )
            row += cell.rjust(16)
        lines.append(row)
    return "\n".join(lines)


def render_retransmits(retx: dict[tuple[str, str], float], top: int = 6) -> str:
    pairs = sorted(((n, k) for k, n in retx.items() if n > 0), reverse=True)[:top]
    if not pairs:
        return "eBPF retransmissions by node pair (this phase): none"
    body = ", ".join(f"{s}->{d} {n:.0f}" for n, (s, d) in pairs)
    return f"eBPF retransmissions by node pair (this phase): {body}"


def progress_bar(fraction: float, width: int = 30) -> str:
    filled = round(max(0.0, min(1.0, fraction)) * width)
    return "[" + "#" * filled + "." * (width - filled) + "]"


def summary_table(rows: list[dict[str, Any]], node: str) -> str:
    """``node``: what was faulted (a node, or "the uplink of rack-2")."""
    head = (
        f"{'phase':<10}{'tests':>6}{'fail':>5}  "
        f"{'TCP Mbit/s to/from/others':>28}  {'UDP loss % to/from/others':>27}  "
        f"{'eBPF retx to/others':>20}"
    )
    what = node if node.startswith(("the uplink", "pod ")) else f"node: {node}"
    lines = [f"Summary (faulty {what})", head, "-" * len(head)]
    for r in rows:
        tcp = "/".join(_fmt(r[f"{g}_tcp_mbps"], ".0f") for g in ("to", "from", "others"))
        loss = "/".join(
            _fmt(None if r[f"{g}_udp_loss"] is None else r[f"{g}_udp_loss"] * 100, ".2f")
            for g in ("to", "from", "others")
        )
        retx = f"{r['to_ebpf_retransmits']:.0f}/{r['others_ebpf_retransmits']:.0f}"
        lines.append(
            f"{r['phase']:<10}{r['tests']:>6}{r['failed']:>5}  {tcp:>28}  {loss:>27}  {retx:>20}"
        )
    for r in rows:
        if r["failures"]:
            why = ", ".join(f"{k} {v}" for k, v in sorted(r["failures"].items()))
            lines.append(f"failed tests in {r['phase']}: {why}")
    return "\n".join(lines)


class Screen:
    """Redraw in place on a terminal; one line per update otherwise."""

    def __init__(self, out: TextIO, live: bool) -> None:
        self.out = out
        self.live = live
        self.last_line = 0.0

    def show(self, text: str, line: str) -> None:
        if self.live:
            self.out.write("\x1b[H\x1b[2J" + text + "\n")
            self.out.flush()
        elif time.monotonic() - self.last_line >= 5:
            self.last_line = time.monotonic()
            self.out.write(line + "\n")
            self.out.flush()
