"""The eBPF retransmission probe: check the kernel, load ebpf/retransmit.c with BCC, drain its map.

``load_probe`` does everything that needs the kernel, once: it checks
privileges, tracefs/kprobes and kernel headers (each failure becomes a
``ProbeUnavailable`` whose message says what to install or mount), renders
and compiles the C, attaches it, and frees the compiler's memory. ``Probe``
runs in the agent under ``guard()``: it loads in a worker thread (BCC
compiles for a second or more) and then drains the map every interval into
``AgentState.probe`` and ``AgentState.retransmits``. If the probe cannot
load it reports ``up=0`` with the reason and returns: the agent keeps testing.

The decisions (mode, port folding, filter, drain arithmetic, series cap)
live in ``agent/probe_logic.py``.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import logging
import os
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from agent.bpfloop import load_then_drain
from agent.probe_errors import capture_stderr, classify, read_process_facts
from agent.probe_logic import (
    KPROBE_FN_NAME,
    KPROBE_FUNCTION,
    SOURCE_PATH,
    STAT_COUNT,
    STAT_EVENTS,
    STAT_FILTERED,
    STAT_INSERTS,
    STAT_LOST,
    TRACEFS_ROOTS,
    TRACEPOINT,
    Drainer,
    Entry,
    KernelFeatures,
    Pending,
    ProbeConfig,
    ProbeUnavailable,
    capabilities,
    choose_variant,
    decode_key,
    find_kernel_headers,
    merge_pending,
    parse_cidrs,
    parse_port_range,
    privilege_problem,
    render_source,
    skb_segs_offset,
)
from agent.settings import AgentSettings
from agent.state import AgentState
from netmesh.config import project
from netmesh.wire import ProbeStatus

log = logging.getLogger(__name__)

PORT_RANGE_FILE = "/proc/sys/net/ipv4/ip_local_port_range"


def probe_config(settings: AgentSettings, port_range_file: str = PORT_RANGE_FILE) -> ProbeConfig:
    """The probe's configuration from the agent's settings and this node's ephemeral range."""
    try:
        with open(port_range_file) as f:
            ephemeral = parse_port_range(f.read())
    except (OSError, ValueError) as exc:
        log.warning("cannot read %s (%s); assuming 32768-60999", port_range_file, exc)
        ephemeral = (32768, 60999)
    return project(
        settings,
        ProbeConfig,
        prefix="probe_",
        defaults=("series_ttl",),
        local_cidrs=parse_cidrs(settings.probe_local_cidrs),
        ephemeral_ports=ephemeral,
    )


def rss_bytes() -> int:
    """This process's resident set size (VmRSS), in bytes; 0 if unknown."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


# --------------------------------------------------------------------------- kernel checks


def kernel_features(tracefs_roots: tuple[str, ...] = TRACEFS_ROOTS) -> KernelFeatures:
    tracefs = [r for r in tracefs_roots if os.path.isdir(os.path.join(r, "events"))]
    category, event = TRACEPOINT
    tp_dirs = [os.path.join(r, "events", category, event) for r in tracefs]
    tp_dir = next((d for d in tp_dirs if os.path.isdir(d)), None)
    has_err = False
    if tp_dir is not None:
        try:
            with open(os.path.join(tp_dir, "format")) as f:
                has_err = any(
                    line.strip().startswith("field:int err;") for line in f.read().splitlines()
                )
        except OSError:
            pass
    kprobes = os.path.exists("/sys/bus/event_source/devices/kprobe/type") or any(
        os.path.exists(os.path.join(r, "kprobe_events")) for r in tracefs
    )
    return KernelFeatures(
        tracefs=bool(tracefs),
        tracepoint=tp_dir is not None,
        tracepoint_has_err=has_err,
        kprobes=kprobes,
    )


BTF_VMLINUX = "/sys/kernel/btf/vmlinux"


def read_skb_segs_offset(bpftool: str = "bpftool", btf: str = BTF_VMLINUX) -> int | None:
    """TCP_SKB_CB(skb)->tcp_gso_segs's offset from the running kernel's BTF; None if unknown."""
    if not os.path.exists(btf):
        log.info("no %s (CONFIG_DEBUG_INFO_BTF off): the probe counts skbs, not segments", btf)
        return None
    # Streamed line by line: the dump is tens of MB of text we do not want to hold.
    try:
        with subprocess.Popen(
            [bpftool, "btf", "dump", "file", btf, "format", "raw"],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        ) as proc:
            assert proc.stdout is not None
            offset = skb_segs_offset(proc.stdout)
            proc.stdout.close()
            proc.wait(timeout=30)
    except (OSError, subprocess.SubprocessError) as exc:
        log.info("cannot read BTF with %s (%s): the probe counts skbs, not segments", bpftool, exc)
        return None
    if offset is None:
        log.info("BTF has no sk_buff.cb/tcp_skb_cb.tcp_gso_segs: the probe counts skbs")
    return offset


def own_capabilities() -> int:
    try:
        with open("/proc/self/status") as f:
            return capabilities(f.read())
    except OSError:
        return 0


# --------------------------------------------------------------------------- the loaded probe


class KernelMaps(Protocol):
    """What the drain loop needs from a loaded probe (faked in unit tests)."""

    mode: str
    capacity: int

    def read(self) -> tuple[list[Entry], list[int]]:
        """All map entries and the summed ``probe_stats`` counters."""
        ...

    def close(self) -> None: ...


@dataclass
class LoadedProbe:
    """A compiled and attached BCC program."""

    bpf: Any
    mode: str
    capacity: int
    source: str
    rss: dict[str, int] = field(default_factory=dict)
    _batch: bool = True

    def _pending(self) -> tuple[list[Pending], int]:
        """Every CPU's pre-aggregation slot (ebpf/retransmit.c: retransmit_cache), and the
        events counted in them."""
        out, events = [], 0
        for slot in self.bpf.get_table(b"retransmit_cache").getvalue(ctypes.c_int(0)):
            k = slot.key
            flow = None
            if int(slot.pending) > 0:
                flow = decode_key(int(k.family), int(k.port), bytes(k.local), bytes(k.remote))
            out.append(Pending(flow, int(slot.gen), int(slot.pending)))
            events += int(slot.events)
        return out, events

    def read(self) -> tuple[list[Entry], list[int]]:
        before, _ = self._pending()
        table = self.bpf.get_table(b"retransmits")
        raw: list[tuple[Any, Any]] = []
        if self._batch:
            # One syscall per chunk instead of two per entry (Linux >= 5.6).
            try:
                raw = list(table.items_lookup_batch())
            except Exception as exc:  # old kernel: fall back to get_next_key + lookup
                log.info("batch map lookup unavailable (%s); reading entry by entry", exc)
                self._batch = False
        if not self._batch:
            raw = list(table.items())
        entries = []
        for key, value in raw:
            flow = decode_key(int(key.family), int(key.port), bytes(key.local), bytes(key.remote))
            if flow is not None:
                entries.append(Entry(flow, int(value.born_ns), int(value.count)))
        after, events = self._pending()
        entries = merge_pending(entries, before, after)
        stats_table = self.bpf.get_table(b"probe_stats")
        stats = [int(stats_table.sum(ctypes.c_int(i)).value) for i in range(STAT_COUNT)]
        stats[STAT_EVENTS] = events
        return entries, stats

    def prog_fds(self) -> list[int]:
        """File descriptors of the loaded programs (for bpf stats in the benchmark)."""
        return [int(fn.fd) for fn in self.bpf.funcs.values()]

    def close(self) -> None:
        self.bpf.cleanup()


# Shared objects that only compiling needs (Debian/Ubuntu link libbcc against the shared
# libLLVM and libclang-cpp; other builds link them into libbcc itself).
COMPILER_LIBRARIES = ("libLLVM", "libclang", "libbcc")
MADV_DONTNEED = 4


def compiler_mappings(
    smaps: str, names: tuple[str, ...] = COMPILER_LIBRARIES
) -> list[tuple[int, int]]:
    """(start, length) of the mappings in a /proc/<pid>/smaps text that are safe to drop:
    a compiler library's, not writable, without a single private (modified) page.

    Such a mapping holds only clean file pages (code, read-only data), which the
    kernel reads back from the file if they are ever touched again. Mappings with
    anonymous pages (relocated read-only data, .data, .bss) are left alone:
    dropping those would lose their contents.
    """
    out: list[tuple[int, int]] = []
    current: tuple[int, int] | None = None
    for line in smaps.splitlines():
        head = line.split(maxsplit=5)
        if head and "-" in head[0] and len(head) >= 5 and not head[0].endswith(":"):
            current = None
            path = head[5] if len(head) == 6 else ""
            if "w" not in head[1] and any(n in os.path.basename(path) for n in names):
                lo, _, hi = head[0].partition("-")
                current = (int(lo, 16), int(hi, 16) - int(lo, 16))
        elif current is not None and line.startswith("Anonymous:"):
            if int(line.split()[1]) == 0:
                out.append(current)
            current = None
    return out


def _drop_compiler_pages() -> int:
    """Unmap the compiler libraries' clean resident pages; return the bytes advised.

    After loading, LLVM/clang's code and read-only data stay resident though the
    probe never runs them again. BCC's ``free_bcc_memory`` does this for libbcc's
    own code only, which covers LLVM where it is linked into libbcc but not the
    shared libLLVM/libclang-cpp of Debian's build.
    """
    try:
        with open("/proc/self/smaps") as f:
            smaps = f.read()
        libc = ctypes.CDLL(None, use_errno=True)
    except OSError:
        return 0
    madvise = libc.madvise
    madvise.argtypes = (ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int)
    return sum(
        size for start, size in compiler_mappings(smaps) if madvise(start, size, MADV_DONTNEED) == 0
    )


def _free_compiler_memory(bpf: Any) -> None:
    """Give back what compiling took: BCC's own hook, glibc's free heap, compiler pages.

    ``free_bcc_memory`` (BCC >= 0.13) drops libbcc's own text pages; LLVM/clang's
    freed heap only returns to the kernel with malloc_trim; their code pages
    (shared libraries on Debian, which free_bcc_memory does not cover) with
    MADV_DONTNEED on their clean read-only mappings.
    """
    free = getattr(bpf, "free_bcc_memory", None)
    if free is not None:
        free()
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    dropped = _drop_compiler_pages()
    log.debug("dropped %.1f MiB of compiler library mappings", dropped / 2**20)


def load_probe(
    config: ProbeConfig,
    *,
    environ: Mapping[str, str] | None = None,
    release: str | None = None,
    features: KernelFeatures | None = None,
    cap_eff: int | None = None,
    print_to: Callable[[str], None] | None = None,
    segs_offset: Any = ...,
) -> LoadedProbe:
    """Check, compile, attach. Raises ProbeUnavailable with a reason a human can act on."""
    if config.mode == "off":
        raise ProbeUnavailable("disabled (probe_mode=off)")
    problem = privilege_problem(own_capabilities() if cap_eff is None else cap_eff)
    if problem:
        raise ProbeUnavailable(problem)
    feats = kernel_features() if features is None else features
    variant = choose_variant(config.mode, feats)
    headers = find_kernel_headers(
        os.uname().release if release is None else release,
        os.environ if environ is None else environ,
    )
    source = render_source(
        SOURCE_PATH.read_text(),
        config,
        variant=variant,
        tracepoint_has_err=feats.tracepoint_has_err,
        skb_segs_offset=read_skb_segs_offset() if segs_offset is ... else segs_offset,
    )
    if config.print_source:
        (print_to or _print_stdout)(source)
    rss = {"before_import": rss_bytes()}
    try:
        from bcc import BPF  # noqa: PLC0415 - heavy (LLVM); only when the probe runs
    except ImportError as exc:
        raise ProbeUnavailable(
            f"BCC is not importable ({exc}): install python3-bpfcc (Debian/Ubuntu) "
            "and use a Python that sees it (a venv needs --system-site-packages)"
        ) from None
    rss["after_import"] = rss_bytes()
    # BCC writes the real cause (EPERM, verifier log, compiler errors) to stderr.
    err: list[str] = []
    facts = read_process_facts()

    def why(exc: Exception, stage: str) -> str:
        log_text = "".join(err)
        return classify(
            str(exc), log_text, stage=stage, variant=variant, headers=str(headers), facts=facts
        )

    try:
        with capture_stderr() as err:
            bpf = BPF(text=source.encode())
    except Exception as exc:
        raise ProbeUnavailable(why(exc, "load")) from None
    try:
        with capture_stderr() as err:
            if variant == "kprobe":
                bpf.attach_kprobe(event=KPROBE_FUNCTION.encode(), fn_name=KPROBE_FN_NAME.encode())
        if variant != "kprobe" and not bpf.num_open_tracepoints():
            raise ProbeUnavailable("tracepoint: tcp:tcp_retransmit_skb did not attach")
    except ProbeUnavailable:
        bpf.cleanup()
        raise
    except Exception as exc:
        bpf.cleanup()
        raise ProbeUnavailable(why(exc, "attach")) from None
    rss["after_load"] = rss_bytes()
    _free_compiler_memory(bpf)
    rss["after_free"] = rss_bytes()
    log.info(
        "retransmission probe attached (%s, map size %d, headers %s); RSS MiB: "
        "before import %.1f, after import %.1f, after load %.1f, after freeing the compiler %.1f",
        variant,
        config.map_size,
        headers,
        *(rss[k] / 2**20 for k in ("before_import", "after_import", "after_load", "after_free")),
    )
    return LoadedProbe(bpf=bpf, mode=variant, capacity=config.map_size, source=source, rss=rss)


def _print_stdout(text: str) -> None:
    print(text, file=sys.stdout, flush=True)


# --------------------------------------------------------------------------- drain loop


class Probe:
    """Load once, then drain every ``config.interval`` seconds into the agent state."""

    def __init__(
        self,
        config: ProbeConfig,
        state: AgentState,
        *,
        loader: Callable[[ProbeConfig], KernelMaps] = load_probe,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.config = config
        self.state = state
        self.loader = loader
        self.clock = clock
        self.sleep = sleep
        # Survives a reload by guard(): counters keep going up.
        self.drainer = Drainer(series_cap=config.series_cap, series_ttl=config.series_ttl)
        self.maps: KernelMaps | None = None
        self.stats: list[int] = [0] * STAT_COUNT

    async def run(self, iterations: int | None = None) -> None:
        """Load, then drain until cancelled (or ``iterations`` drains, for tests)."""
        await load_then_drain(
            "retransmission probe",
            lambda: self.loader(self.config),
            attach=self._attach,
            drain=self.drain,
            down=self._down,
            interval=self.config.interval,
            sleep=self.sleep,
            iterations=iterations,
        )

    def _attach(self, maps: KernelMaps | None) -> None:
        self.maps = maps
        if maps is not None:
            # A reload gives a fresh map: forget what the old one held, keep the totals.
            self.drainer.seen = {}
            self.stats = [0] * STAT_COUNT

    async def drain(self) -> None:
        maps = self.maps
        if maps is None:
            return
        entries, stats = await asyncio.to_thread(maps.read)
        self.apply(maps, entries, stats)

    def apply(self, maps: KernelMaps, entries: list[Entry], stats: list[int]) -> None:
        self.drainer.drain(entries, self.clock())
        # born_ns 0: counts still per CPU (merge_pending), not map entries
        in_map = sum(1 for e in entries if e.born_ns)
        self.drainer.note_map(inserts=stats[STAT_INSERTS], entries=in_map)
        self.stats = stats
        self.state.retransmits = self.drainer.flows()
        self.state.probe = ProbeStatus(
            mode=maps.mode,
            up=1,
            reason="",
            map_entries=in_map,
            map_capacity=maps.capacity,
            evictions=self.drainer.evictions,
        )
        log.debug(
            "probe drained: %d entries, events %d, filtered %d, lost %d, evictions %d",
            len(entries),
            stats[STAT_EVENTS],
            stats[STAT_FILTERED],
            stats[STAT_LOST],
            self.drainer.evictions,
        )

    def _down(self, reason: str) -> None:
        previous = self.state.probe
        self.state.probe = ProbeStatus(
            mode="none",
            up=0,
            reason=reason,
            map_capacity=self.config.map_size,
            evictions=previous.evictions if previous else 0,
        )
