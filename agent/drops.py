"""The eBPF drop-reason probe: check the kernel, load ebpf/drops.c with BCC, drain its maps.

Runs beside the retransmission probe (agent/probe.py) with the same habits:
``load_drops`` does everything that needs the kernel once and raises
``ProbeUnavailable`` with a reason a human can act on; ``Drops`` runs in the
agent under ``guard()``, loads in a worker thread, then drains every interval
into ``AgentState.drops``. If it cannot load it reports ``up=0`` with the
reason and returns: the agent keeps testing. The decisions live in
``agent/drops_logic.py``.
"""

from __future__ import annotations

import asyncio
import ctypes
import logging
import os
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol

from agent.bpfloop import load_then_drain
from agent.drops_logic import (
    DSTAT_COUNT,
    DSTAT_INSERTS,
    SOURCE_PATH,
    TRACEPOINT,
    DropFlowId,
    DropsConfig,
    ReasonTotals,
    TracepointFormat,
    check_format,
    decode_flow,
    drop_flows,
    parse_format,
    reason_counts,
    reason_slots,
    render_source,
    skb_offsets,
    skb_span,
    split_reasons,
)
from agent.probe import BTF_VMLINUX, _free_compiler_memory, own_capabilities, rss_bytes
from agent.probe_logic import (
    TRACEFS_ROOTS,
    Drainer,
    Entry,
    Pending,
    ProbeUnavailable,
    merge_pending,
    parse_cidrs,
    privilege_problem,
)
from agent.settings import AgentSettings
from agent.state import AgentState
from netmesh.config import project
from netmesh.dropreport import DropStatus

log = logging.getLogger(__name__)
FN_NAME = b"netmesh_kfree_skb"


def drops_config(settings: AgentSettings) -> DropsConfig:
    return project(
        settings,
        DropsConfig,
        prefix="drops_",
        defaults=("series_ttl",),
        local_cidrs=parse_cidrs(settings.probe_local_cidrs),
    )


def read_format(roots: tuple[str, ...] = TRACEFS_ROOTS) -> TracepointFormat | None:
    category, event = TRACEPOINT
    for root in roots:
        path = os.path.join(root, "events", category, event, "format")
        try:
            with open(path) as f:
                return parse_format(f.read())
        except OSError:
            continue
    return None


def read_skb_offsets(bpftool: str = "bpftool", btf: str = BTF_VMLINUX) -> dict[str, int]:
    """sk_buff's skb_iif/network_header/head offsets from the running kernel's BTF; {} if none."""
    if not os.path.exists(btf):
        log.info("no %s: the drop probe counts per reason only (no addresses)", btf)
        return {}
    try:
        with subprocess.Popen(
            [bpftool, "btf", "dump", "file", btf, "format", "raw"],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        ) as proc:
            assert proc.stdout is not None
            offsets = skb_offsets(proc.stdout)
            proc.stdout.close()
            proc.wait(timeout=30)
    except (OSError, subprocess.SubprocessError) as exc:
        log.info("cannot read BTF with %s (%s): drops per reason only", bpftool, exc)
        return {}
    return offsets


class DropMaps(Protocol):
    """What the drain loop needs from a loaded drop probe (faked in unit tests)."""

    mode: str
    capacity: int

    def read(self) -> tuple[list[Entry], dict[str, int], list[int]]:
        """Flow entries, per-reason totals (by name) and the summed ``drop_stats``."""
        ...

    def close(self) -> None: ...


@dataclass
class LoadedDrops:
    bpf: Any
    fmt: TracepointFormat
    slots: int
    capacity: int
    source: str
    mode: str = "tracepoint"

    def _pending(self) -> list[Pending]:
        out = []
        for slot in self.bpf.get_table(b"drop_cache").getvalue(ctypes.c_int(0)):
            flow = None
            if int(slot.pending) > 0:
                k = slot.key
                flow = decode_flow(
                    int(k.reason),
                    int(k.family),
                    int(k.proto),
                    bytes(k.remote),
                    fmt=self.fmt,
                    slots=self.slots,
                )
            out.append(Pending(flow, int(slot.gen), int(slot.pending)))
        return out

    def read(self) -> tuple[list[Entry], dict[str, int], list[int]]:
        before = self._pending()
        entries: list[Entry] = []
        try:
            raw = list(self.bpf.get_table(b"drops").items_lookup_batch())
        except Exception:  # old kernel: no batch ops
            raw = list(self.bpf.get_table(b"drops").items())
        for key, value in raw:
            flow = decode_flow(
                int(key.reason),
                int(key.family),
                int(key.proto),
                bytes(key.remote),
                fmt=self.fmt,
                slots=self.slots,
            )
            if flow is not None:
                entries.append(Entry(flow, int(value.born_ns), int(value.count)))
        entries = merge_pending(entries, before, self._pending())
        reasons_table = self.bpf.get_table(b"drop_reasons")
        per_reason = [0] * self.slots
        for key, values in reasons_table.items():
            per_reason[int(key.value)] = sum(int(v) for v in values)
        stats_table = self.bpf.get_table(b"drop_stats")
        stats = [int(stats_table.sum(ctypes.c_int(i)).value) for i in range(DSTAT_COUNT)]
        return entries, reason_counts(per_reason, self.fmt, self.slots), stats

    def prog_fds(self) -> list[int]:
        return [int(fn.fd) for fn in self.bpf.funcs.values()]

    def close(self) -> None:
        self.bpf.cleanup()


def load_drops(
    config: DropsConfig,
    *,
    fmt: TracepointFormat | Any | None = ...,
    offsets: dict[str, int] | None = None,
    cap_eff: int | None = None,
    print_to: Callable[[str], None] | None = None,
) -> LoadedDrops:
    """Check, compile, attach. Raises ProbeUnavailable with a reason a human can act on."""
    if config.mode == "off":
        raise ProbeUnavailable("disabled (drops_mode=off)")
    problem = privilege_problem(own_capabilities() if cap_eff is None else cap_eff)
    if problem:
        raise ProbeUnavailable(problem)
    tp_format = read_format() if fmt is ... else fmt
    check_format(tp_format, config.mode)
    assert tp_format is not None
    span = skb_span(read_skb_offsets() if offsets is None else offsets)
    source = render_source(SOURCE_PATH.read_text(), config, tp_format, span)
    if config.print_source:
        (print_to or (lambda t: print(t, file=sys.stdout, flush=True)))(source)
    try:
        from bcc import BPF  # noqa: PLC0415 - heavy (LLVM); only when the probe runs
    except ImportError as exc:
        raise ProbeUnavailable(f"BCC is not importable ({exc}): install python3-bpfcc") from None
    try:
        bpf = BPF(text=source.encode())
    except Exception as exc:
        raise ProbeUnavailable(f"tracepoint: BPF compile/load failed ({exc})") from None
    try:
        bpf.attach_tracepoint(tp=b"skb:kfree_skb", fn_name=FN_NAME)
    except Exception as exc:
        bpf.cleanup()
        raise ProbeUnavailable(f"tracepoint: skb:kfree_skb did not attach: {exc}") from None
    _free_compiler_memory(bpf)
    log.info(
        "drop-reason probe attached (map size %d, %d reasons named by the kernel, %s); "
        "RSS %.1f MiB",
        config.map_size,
        len(tp_format.names),
        "per reason and remote address" if span else "per reason only (no BTF offsets)",
        rss_bytes() / 2**20,
    )
    return LoadedDrops(
        bpf=bpf,
        fmt=tp_format,
        slots=reason_slots(tp_format),
        capacity=config.map_size,
        source=source,
    )


class Drops:
    """Load once, then drain every ``config.interval`` seconds into ``AgentState.drops``."""

    def __init__(
        self,
        config: DropsConfig,
        state: AgentState,
        *,
        loader: Callable[[DropsConfig], DropMaps] = load_drops,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        ready: Callable[[], bool] = lambda: True,
        ready_timeout: float = 300.0,
    ) -> None:
        self.ready = ready
        self.ready_timeout = ready_timeout
        self.config = config
        self.state = state
        self.loader = loader
        self.clock = clock
        self.sleep = sleep
        # Survive a reload by guard(): counters keep going up.
        self.drainer = Drainer(series_cap=config.series_cap, series_ttl=config.series_ttl)
        self.reasons = ReasonTotals()
        self.maps: DropMaps | None = None

    async def run(self, iterations: int | None = None) -> None:
        waited = 0.0
        while not self.ready() and waited < self.ready_timeout:
            await self.sleep(0.2)
            waited += 0.2
        await load_then_drain(
            "drop-reason probe",
            lambda: self.loader(self.config),
            attach=self._attach,
            drain=self.drain,
            down=self._down,
            interval=self.config.interval,
            sleep=self.sleep,
            iterations=iterations,
        )

    def _attach(self, maps: DropMaps | None) -> None:
        self.maps = maps
        if maps is not None:
            self.drainer.seen = {}
            self.reasons.reload()

    async def drain(self) -> None:
        maps = self.maps
        if maps is None:
            return
        entries, reasons, stats = await asyncio.to_thread(maps.read)
        self.apply(maps, entries, reasons, stats)

    def apply(
        self, maps: DropMaps, entries: list[Entry], reasons: dict[str, int], stats: list[int]
    ) -> None:
        self.drainer.drain(entries, self.clock())
        in_map = sum(1 for e in entries if e.born_ns)  # born_ns 0: still per CPU
        self.drainer.note_map(inserts=stats[DSTAT_INSERTS], entries=in_map)
        self.reasons.update(reasons)
        losses, noise = split_reasons(self.reasons.totals())
        self.state.drops = DropStatus(
            mode=maps.mode,
            up=1,
            reason="",
            map_entries=in_map,
            map_capacity=maps.capacity,
            evictions=self.drainer.evictions,
            unspecified=noise,
            reasons=losses,
            flows=drop_flows(self.drainer),
        )

    def _down(self, reason: str) -> None:
        previous = self.state.drops
        self.state.drops = DropStatus(
            mode="none",
            up=0,
            reason=reason,
            map_capacity=self.config.map_size,
            evictions=previous.evictions if previous else 0,
            unspecified=previous.unspecified if previous else 0,
            reasons=previous.reasons if previous else (),
            flows=previous.flows if previous else (),
        )


__all__ = ["DropFlowId", "Drops", "LoadedDrops", "drops_config", "load_drops"]
