/* netmesh: count TCP retransmissions per endpoint pair in the kernel.
 *
 * Loaded by BCC from agent/probe.py, which prepends a prelude of #defines
 * (see agent/probe_logic.py: render_source) before compiling this file:
 *
 *   NETMESH_TRACEPOINT | NETMESH_KPROBE   which attach variant to build (one)
 *   NETMESH_MAP_SIZE                      max entries of the LRU map
 *   NETMESH_EPH_LOW, NETMESH_EPH_HIGH     the local ephemeral port range
 *   NETMESH_TP_HAS_ERR                    the tracepoint has an `err` field
 *                                         (Linux >= 6.14: it fires for failed
 *                                         attempts too; only err == 0 counts)
 *   NETMESH_LOCAL_V4(a), NETMESH_LOCAL_V6(hi, lo)
 *                                         local-address filter (CIDRs)
 *   NETMESH_SKB_SEGS_OFFSET               offset of TCP_SKB_CB(skb)->tcp_gso_segs
 *                                         in struct sk_buff, taken from the
 *                                         running kernel's BTF (not from the
 *                                         compile headers); unset = count skbs
 *
 * Hooks (one counting body, two ways in):
 *   - tracepoint tcp:tcp_retransmit_skb: stable ABI, fields copied for us,
 *     cheapest; fires once per retransmitted skb that was sent.
 *   - kprobe tcp_retransmit_skb(struct sock *sk, ...): for kernels without
 *     the tracepoint; reads struct sock (addresses, ports, family) so it
 *     needs headers matching the running kernel. It fires on every attempt
 *     (also ones that fail, e.g. on a full qdisc) and so may count a little
 *     more than the tracepoint.
 *   Both count segments: a retransmitted skb carries tcp_skb_pcount(skb)
 *   segments (several with TSO/GSO), read from TCP_SKB_CB(skb) at an offset
 *   user space found in BTF; this is what the kernel adds to total_retrans
 *   (iperf3's "retransmits") and to TcpRetransSegs. Without BTF every skb
 *   counts as one, which undercounts when offloads build large skbs.
 *
 * Map: `retransmits`, BPF_MAP_TYPE_LRU_HASH, NETMESH_MAP_SIZE entries.
 *   key   = (family, folded port, local address, remote address), 40 bytes;
 *           IPv4 (also IPv4-mapped IPv6 of dual-stack sockets) is stored as
 *           AF_INET in the first 4 bytes, the rest zero.
 *   value = (count, born_ns): count (segments) only goes up (atomic add); born_ns is
 *           the insertion time and tells user space that an entry is a new
 *           one (the old one was evicted), so a drain never mixes the two.
 *   User space never deletes entries (see agent/probe_logic.py: Drainer).
 * Map: `retransmit_cache`, BPF_PERCPU_ARRAY[1]: per-CPU pre-aggregation, the last
 *   flow this CPU counted and its segments not yet in `retransmits`; a storm on
 *   one flow touches only this CPU's slot, the map only when the flow changes.
 *   User space adds the pending counts (agent/probe_logic.py: merge_pending).
 *   When the map is full the LRU evicts the least recently updated entry;
 *   evictions = inserts - entries, inserts are counted in `probe_stats`.
 *
 * Port folding: the key keeps one port, the service side: the port that is
 *   not in the local ephemeral range; when both or neither are in it, the
 *   lower one. So a client's random source port never becomes a key.
 *
 * Bounds and overhead: no loops (one unrolled 8-step byte loop); the
 *   tracepoint's fields are read straight from its record (no helper), one
 *   probe read of 2 bytes (segments), a per-CPU array increment and a compare
 *   with this CPU's last flow per retransmitted skb; a change of flow adds one
 *   hash lookup (+ one insert for a new flow) and an atomic add; memory is
 *   NETMESH_MAP_SIZE * (40 + 16 + LRU overhead) bytes, about 1 MiB for 8192.
 *   Retransmissions are rare next to packets, so the cost is negligible;
 *   tests/benchmarks/bench_probe.py measures ns per event.
 */
#include <uapi/linux/ptrace.h>
#include <linux/socket.h>
#ifdef NETMESH_KPROBE
#include <net/sock.h>
#endif

#ifndef NETMESH_MAP_SIZE
#define NETMESH_MAP_SIZE 8192
#endif
#ifndef NETMESH_EPH_LOW
#define NETMESH_EPH_LOW 32768
#define NETMESH_EPH_HIGH 60999
#endif
#ifndef NETMESH_LOCAL_V4
#define NETMESH_LOCAL_V4(a) 1
#endif
#ifndef NETMESH_LOCAL_V6
#define NETMESH_LOCAL_V6(hi, lo) 1
#endif

struct flow_key {
    u32 family; /* AF_INET or AF_INET6 */
    u32 port;   /* folded port, host byte order */
    u8 local[16];
    u8 remote[16];
} __attribute__((aligned(8))); /* five u64 for same_flow() */

struct flow_value {
    u64 count;   /* retransmitted segments; only goes up */
    u64 born_ns; /* bpf_ktime_get_ns() when the entry was inserted */
};

BPF_TABLE("lru_hash", struct flow_key, struct flow_value, retransmits, NETMESH_MAP_SIZE);

/* Per-CPU counters, summed by user space (indexes: agent/probe_logic.py). */
#define STAT_EVENTS 0   /* retransmit events (skbs) counted: kept in retransmit_cache.events */
#define STAT_INSERTS 1  /* new entries inserted */
#define STAT_FILTERED 2 /* skipped: local address outside the filter */
#define STAT_LOST 3     /* could neither insert nor find the entry */
#define STAT_COUNT 4
BPF_PERCPU_ARRAY(probe_stats, u64, STAT_COUNT);

static __always_inline void stat_add(int index)
{
    u64 *slot = probe_stats.lookup(&index);
    if (slot)
        *slot += 1; /* per-CPU slot: no other writer */
}

/* Per-CPU pre-aggregation: the last flow this CPU counted and the segments it
 * counted since (not yet in `retransmits`); flushed into the map when the CPU sees
 * another flow. `gen` goes up at every change of flow, so user space can tell a
 * slot that changed while it read (agent/probe_logic.py: merge_pending). Programs
 * on one CPU never run nested (bpf_prog_active), so the slot has one writer. */
struct flow_cache {
    struct flow_key key;
    u64 gen;
    u64 pending;
    u64 events; /* STAT_EVENTS lives here: same cache line, no second array lookup */
};
BPF_PERCPU_ARRAY(retransmit_cache, struct flow_cache, 1);

static __always_inline int same_flow(const struct flow_key *a, const struct flow_key *b)
{
    const u64 *x = (const u64 *)a, *y = (const u64 *)b;
    return x[0] == y[0] && x[1] == y[1] && x[2] == y[2] && x[3] == y[3] && x[4] == y[4];
}

/* Add `segs` to the map entry of `key`, inserting it if new. */
static __always_inline void flush(struct flow_key *key, u64 segs)
{
    struct flow_value *value = retransmits.lookup(key);
    if (!value) {
        struct flow_value fresh = {};
        fresh.born_ns = bpf_ktime_get_ns();
        if (retransmits.insert(key, &fresh) == 0)
            stat_add(STAT_INSERTS);
        /* else: another CPU inserted it first; use theirs */
        value = retransmits.lookup(key);
        if (!value) {
            stat_add(STAT_LOST);
            return;
        }
    }
    __sync_fetch_and_add(&value->count, segs);
}

static __always_inline u32 fold_port(u16 lport, u16 rport)
{
    int l_eph = lport >= NETMESH_EPH_LOW && lport <= NETMESH_EPH_HIGH;
    int r_eph = rport >= NETMESH_EPH_LOW && rport <= NETMESH_EPH_HIGH;
    if (l_eph && !r_eph)
        return rport;
    if (r_eph && !l_eph)
        return lport;
    return lport < rport ? lport : rport;
}

static __always_inline int is_v4_mapped(const u8 *a)
{
    return a[0] == 0 && a[1] == 0 && a[2] == 0 && a[3] == 0 && a[4] == 0 && a[5] == 0 &&
           a[6] == 0 && a[7] == 0 && a[8] == 0 && a[9] == 0 && a[10] == 0xff &&
           a[11] == 0xff;
}

static __always_inline void unmap_v4(u8 *a)
{
    a[0] = a[12];
    a[1] = a[13];
    a[2] = a[14];
    a[3] = a[15];
    __builtin_memset(a + 4, 0, 12);
}

static __always_inline u64 be64_at(const u8 *a)
{
    u64 x = 0;
#pragma unroll
    for (int i = 0; i < 8; i++)
        x = (x << 8) | a[i];
    return x;
}

/* Segments in a retransmitted skb: tcp_skb_pcount(skb), at least 1. */
static __always_inline u64 skb_segments(const void *skb)
{
#ifdef NETMESH_SKB_SEGS_OFFSET
    u16 segs = 0;
    bpf_probe_read_kernel(&segs, sizeof(segs), (const char *)skb + NETMESH_SKB_SEGS_OFFSET);
    return segs ? segs : 1;
#else
    return 1;
#endif
}

/* The one counting body; `key` has family and addresses filled in. */
static __always_inline int count_flow(struct flow_key *key, u16 lport, u16 rport, u64 segs)
{
    if (key->family == AF_INET6 && is_v4_mapped(key->local) && is_v4_mapped(key->remote)) {
        key->family = AF_INET;
        unmap_v4(key->local);
        unmap_v4(key->remote);
    }
    if (key->family == AF_INET) {
        u32 a = ((u32)key->local[0] << 24) | ((u32)key->local[1] << 16) |
                ((u32)key->local[2] << 8) | (u32)key->local[3];
        if (!(NETMESH_LOCAL_V4(a))) {
            stat_add(STAT_FILTERED);
            return 0;
        }
    } else if (key->family == AF_INET6) {
        u64 hi = be64_at(key->local);
        u64 lo = be64_at(key->local + 8);
        if (!(NETMESH_LOCAL_V6(hi, lo))) {
            stat_add(STAT_FILTERED);
            return 0;
        }
    } else {
        return 0;
    }
    key->port = fold_port(lport, rport);

    u32 zero = 0;
    struct flow_cache *c = retransmit_cache.lookup(&zero);
    if (!c)
        return 0;
    c->events += 1;
    if (same_flow(&c->key, key)) {
        c->pending += segs;
        return 0;
    }
    if (c->pending)
        flush(&c->key, c->pending);
    c->key = *key;
    c->gen += 1;
    c->pending = segs;
    return 0;
}

#ifdef NETMESH_TRACEPOINT
TRACEPOINT_PROBE(tcp, tcp_retransmit_skb)
{
#ifdef NETMESH_TP_HAS_ERR
    if (args->err != 0)
        return 0;
#endif
    struct flow_key key = {};
    key.family = args->family;
    /* The record is the program's context: plain loads, no bpf_probe_read_kernel
     * (each helper call costs about as much as the rest of the program). */
    if (key.family == AF_INET) {
        __builtin_memcpy(key.local, args->saddr, 4);
        __builtin_memcpy(key.remote, args->daddr, 4);
    } else if (key.family == AF_INET6) {
        __builtin_memcpy(key.local, args->saddr_v6, 16);
        __builtin_memcpy(key.remote, args->daddr_v6, 16);
    } else {
        return 0;
    }
    return count_flow(&key, args->sport, args->dport, skb_segments(args->skbaddr));
}
#endif

#ifdef NETMESH_KPROBE
int netmesh_kprobe_retransmit(struct pt_regs *ctx, struct sock *sk, struct sk_buff *skb)
{
    struct flow_key key = {};
    u16 family = 0, lport = 0, dport = 0;
    bpf_probe_read_kernel(&family, sizeof(family), &sk->__sk_common.skc_family);
    bpf_probe_read_kernel(&lport, sizeof(lport), &sk->__sk_common.skc_num);
    bpf_probe_read_kernel(&dport, sizeof(dport), &sk->__sk_common.skc_dport);
    key.family = family;
    if (family == AF_INET) {
        bpf_probe_read_kernel(key.local, 4, &sk->__sk_common.skc_rcv_saddr);
        bpf_probe_read_kernel(key.remote, 4, &sk->__sk_common.skc_daddr);
    } else if (family == AF_INET6) {
        bpf_probe_read_kernel(key.local, 16, &sk->__sk_common.skc_v6_rcv_saddr);
        bpf_probe_read_kernel(key.remote, 16, &sk->__sk_common.skc_v6_daddr);
    } else {
        return 0;
    }
    return count_flow(&key, lport, ntohs(dport), skb_segments(skb));
}
#endif
