/* netmesh: count packets the kernel drops, per drop reason, in the kernel.
 *
 * Loaded by BCC from agent/drops.py, which prepends a prelude of #defines
 * (see agent/drops_logic.py: render_source) before compiling this file:
 *
 *   NETMESH_DROP_MAP_SIZE       max entries of the LRU flow map
 *   NETMESH_REASON_SLOTS        size of the per-reason array (a power of two above
 *                               the kernel's highest reason; larger reasons go
 *                               to the last slot, which user space calls "other")
 *   NETMESH_NOISE_MAX           highest reason that is not a loss: 0 NOT_DROPPED_YET,
 *                               1 CONSUMED, NOT_SPECIFIED (the kernel's number for it,
 *                               read from the tracepoint format, usually 2). These are
 *                               counted per reason (user space exports them apart from
 *                               losses) but never enter the flow map.
 *   NETMESH_TP_SKBADDR, NETMESH_TP_PROTOCOL, NETMESH_TP_REASON
 *                               byte offsets of the tracepoint record's fields, from
 *                               its format file (BCC's TRACEPOINT_PROBE would need
 *                               enum skb_drop_reason in the compile headers, which
 *                               older headers lack; the record's layout is ABI)
 *   NETMESH_SKB_SPAN_START, NETMESH_SKB_SPAN_LEN
 *                               one window of struct sk_buff that holds skb_iif,
 *                               network_header and head; with
 *   NETMESH_SKB_IIF, NETMESH_SKB_NH, NETMESH_SKB_HEAD
 *                               their offsets inside that window. All from the running
 *                               kernel's BTF, not from the compile headers. Unset = no
 *                               flow map updates (per-reason counts only).
 *   NETMESH_LOCAL_V4(a), NETMESH_LOCAL_V6(hi, lo)
 *                               optional local-address filter (probe_local_cidrs, the
 *                               same macros as ebpf/retransmit.c): the local address is
 *                               the destination of a received packet, the source of a
 *                               sent one. With a filter only IP packets that pass it are
 *                               counted, per reason too (and noise is not counted);
 *                               one kernel running several lab "nodes" needs this.
 *
 * Hook: tracepoint skb:kfree_skb (Linux >= 5.17 carries `reason`; agent/drops.py
 *   refuses to load without it: without a reason every normal free would look
 *   like a loss). Since Linux 6.x consumed skbs go to skb:consume_skb, so
 *   kfree_skb fires for drops plus the NOT_SPECIFIED frees of code paths that
 *   call plain kfree_skb(); those are the noise that NETMESH_NOISE_MAX separates.
 *   There is no kprobe variant: the reason is an argument of
 *   sk_skb_reason_drop()/kfree_skb_reason() whose name changed across
 *   versions, and every kernel that has reasons has the tracepoint.
 *
 * Maps:
 *   `drop_reasons`  BPF_PERCPU_ARRAY[NETMESH_REASON_SLOTS] of u64: every event,
 *                   by reason. No atomics (per-CPU), summed by user space.
 *   `drops`         BPF_MAP_TYPE_LRU_HASH, NETMESH_DROP_MAP_SIZE entries, for IP
 *                   packets with a loss reason only:
 *     key   = (reason u16, family u8, IP protocol u8, remote address [16], pad), 24 bytes;
 *             remote = the source address of a received packet (skb_iif set),
 *             the destination of a locally sent one; IPv4 in the first 4 bytes.
 *     value = (count, born_ns) as in ebpf/retransmit.c: count only goes up,
 *             born_ns tells user space a re-inserted (evicted) entry from the old one.
 *   `drop_cache`    BPF_PERCPU_ARRAY[1]: per-CPU pre-aggregation, the last key this
 *                   CPU counted and its pending packets; flushed into `drops` when
 *                   the CPU sees another key. User space adds the pending counts.
 *   `drop_stats`    BPF_PERCPU_ARRAY of counters (indexes below).
 *   User space never deletes (agent/probe_logic.py: Drainer explains why).
 *
 * Bounds and overhead: no loops. Every event: one direct read of the context,
 *   one per-CPU array increment; noise stops there. A loss of an IP packet adds
 *   two bpf_probe_read_kernel (one 56-byte window of the skb, one IP header
 *   prefix) and a compare with this CPU's last key; only a change of key costs
 *   an LRU lookup (+ an insert for a new key) and an atomic add.
 *   Memory: NETMESH_DROP_MAP_SIZE * (20 + 16 + LRU overhead) bytes, ~0.5 MiB for
 *   4096, plus NETMESH_REASON_SLOTS * 8 bytes per CPU.
 *   tests/benchmarks/bench_probe.py measures ns per event (goal <= 100).
 */
#include <uapi/linux/ptrace.h>

#ifndef NETMESH_DROP_MAP_SIZE
#define NETMESH_DROP_MAP_SIZE 4096
#endif
#ifndef NETMESH_REASON_SLOTS
#define NETMESH_REASON_SLOTS 256
#endif
#ifndef NETMESH_NOISE_MAX
#define NETMESH_NOISE_MAX 2
#endif

#define ETHERTYPE_IP 0x0800
#define ETHERTYPE_IPV6 0x86DD

struct drop_key {
    u16 reason;
    u8 family; /* 4 or 6 */
    u8 proto;  /* IP protocol (IPv6: the first next header) */
    u8 remote[16];
    u32 pad; /* zero; makes the key three aligned u64 for same_key() */
} __attribute__((aligned(8)));

struct drop_value {
    u64 count;   /* packets; only goes up */
    u64 born_ns; /* bpf_ktime_get_ns() when the entry was inserted */
};

BPF_TABLE("lru_hash", struct drop_key, struct drop_value, drops, NETMESH_DROP_MAP_SIZE);
BPF_PERCPU_ARRAY(drop_reasons, u64, NETMESH_REASON_SLOTS);

/* Per-CPU counters, summed by user space (indexes: agent/drops_logic.py). */
#define DSTAT_INSERTS 0  /* new flow entries inserted */
#define DSTAT_LOST 1     /* could neither insert nor find the entry */
#define DSTAT_NOT_IP 2   /* losses of non-IP packets (per reason only) */
#define DSTAT_NO_HDR 3   /* IP packets without a readable network header */
#define DSTAT_FILTERED 4 /* losses skipped: local address outside the filter */
#define DSTAT_COUNT 5
BPF_PERCPU_ARRAY(drop_stats, u64, DSTAT_COUNT);

static __always_inline void dstat_add(int index)
{
    u64 *slot = drop_stats.lookup(&index);
    if (slot)
        *slot += 1; /* per-CPU slot: no other writer */
}

/* The per-CPU last-key slot (index 0). `pending` counts the packets of `key` on
 * this CPU since the slot took the key (not yet in `drops`); `gen` goes up at
 * every change of key, so user space can tell a slot that changed while it read
 * (it then leaves that CPU's pending out of this drain: it is in `drops` by the
 * next one). Programs on one CPU never run nested (bpf_prog_active). */
struct drop_cache {
    struct drop_key key;
    u64 gen;
    u64 pending;
};
BPF_PERCPU_ARRAY(drop_cache, struct drop_cache, 1);

static __always_inline int same_key(const struct drop_key *a, const struct drop_key *b)
{
    const u64 *x = (const u64 *)a, *y = (const u64 *)b;
    return x[0] == y[0] && x[1] == y[1] && x[2] == y[2];
}

/* Add `n` packets of `key` to the LRU map (inserting the entry if new). */
static __always_inline void flush(struct drop_key *key, u64 n)
{
    struct drop_value *value = drops.lookup(key);
    if (!value) {
        struct drop_value fresh = {};
        fresh.born_ns = bpf_ktime_get_ns();
        if (drops.insert(key, &fresh) == 0)
            dstat_add(DSTAT_INSERTS);
        value = drops.lookup(key);
        if (!value) {
            dstat_add(DSTAT_LOST);
            return;
        }
    }
    __sync_fetch_and_add(&value->count, n);
}

static __always_inline void count_reason(u32 reason)
{
    u32 slot = reason < NETMESH_REASON_SLOTS ? reason : NETMESH_REASON_SLOTS - 1;
    u64 *n = drop_reasons.lookup(&slot);
    if (n)
        *n += 1; /* per-CPU slot: no other writer */
}

#ifdef NETMESH_LOCAL_V4
static __always_inline u64 be64_at(const u8 *a)
{
    u64 x = 0;
#pragma unroll
    for (int i = 0; i < 8; i++)
        x = (x << 8) | a[i];
    return x;
}
#endif

#define TP_FIELD(type, off) (*(const type *)((const char *)ctx + (off)))

/* Attached to skb:kfree_skb by agent/drops.py (attach_tracepoint). */
int netmesh_kfree_skb(void *ctx)
{
    u32 reason = TP_FIELD(u32, NETMESH_TP_REASON);
#ifndef NETMESH_LOCAL_V4
    count_reason(reason);
#endif
    if (reason <= NETMESH_NOISE_MAX)
        return 0;
#ifdef NETMESH_SKB_SPAN_LEN
    u16 ethertype = TP_FIELD(u16, NETMESH_TP_PROTOCOL);
    if (ethertype != ETHERTYPE_IP && ethertype != ETHERTYPE_IPV6) {
        dstat_add(DSTAT_NOT_IP);
        return 0;
    }
    u8 span[NETMESH_SKB_SPAN_LEN];
    if (bpf_probe_read_kernel(span, sizeof(span), (const char *)TP_FIELD(u64, NETMESH_TP_SKBADDR) + NETMESH_SKB_SPAN_START))
        return 0;
    u16 nh = *(u16 *)(span + NETMESH_SKB_NH);
    const u8 *head = *(const u8 **)(span + NETMESH_SKB_HEAD);
    int received = *(u32 *)(span + NETMESH_SKB_IIF) != 0;
    if (nh == 0xffff || !head) {
        dstat_add(DSTAT_NO_HDR);
        return 0;
    }
    struct drop_key key = {};
    key.reason = reason;
    u8 hdr[40];
    if (ethertype == ETHERTYPE_IP) {
        if (bpf_probe_read_kernel(hdr, 20, head + nh) || (hdr[0] >> 4) != 4) {
            dstat_add(DSTAT_NO_HDR);
            return 0;
        }
        key.family = 4;
        key.proto = hdr[9];
        __builtin_memcpy(key.remote, received ? hdr + 12 : hdr + 16, 4);
#ifdef NETMESH_LOCAL_V4
        const u8 *l = received ? hdr + 16 : hdr + 12;
        u32 a = ((u32)l[0] << 24) | ((u32)l[1] << 16) | ((u32)l[2] << 8) | (u32)l[3];
        if (!(NETMESH_LOCAL_V4(a))) {
            dstat_add(DSTAT_FILTERED);
            return 0;
        }
#endif
    } else {
        if (bpf_probe_read_kernel(hdr, 40, head + nh) || (hdr[0] >> 4) != 6) {
            dstat_add(DSTAT_NO_HDR);
            return 0;
        }
        key.family = 6;
        key.proto = hdr[6];
        __builtin_memcpy(key.remote, received ? hdr + 8 : hdr + 24, 16);
#ifdef NETMESH_LOCAL_V4
        const u8 *l6 = received ? hdr + 24 : hdr + 8;
        if (!(NETMESH_LOCAL_V6(be64_at(l6), be64_at(l6 + 8)))) {
            dstat_add(DSTAT_FILTERED);
            return 0;
        }
#endif
    }
#ifdef NETMESH_LOCAL_V4
    count_reason(reason);
#endif
    /* Per-CPU pre-aggregation: a storm of drops mostly repeats one key, so each CPU
     * counts into its own last-key slot and touches the shared LRU map only when the
     * key changes (see `drop_cache` above). */
    u32 zero = 0;
    struct drop_cache *c = drop_cache.lookup(&zero);
    if (!c)
        return 0;
    if (same_key(&c->key, &key)) {
        c->pending += 1;
        return 0;
    }
    if (c->pending)
        flush(&c->key, c->pending);
    c->key = key;
    c->gen += 1;
    c->pending = 1;
#endif
    return 0;
}
