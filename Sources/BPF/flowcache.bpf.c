// The flow cache in front of the forwarder, loaded once per classifier namespace.
// flow_cache: tc (clsact) ingress on the LAN and path links; a cached flow is rewritten and
// redirected (or dropped) in the kernel; anything else goes on (to the nft netdev drop for
// transit, to the stack for ARP and the namespace's own addresses).
// flow_miss: the forwarder's packet socket filter; the tap sees every frame before tc runs,
// so it keeps only what the cache will not take: userspace sees misses alone.
#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/in.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>
#include "flowcache.h"

char LICENSE[] SEC("license") = "GPL";

// Slot 0: the LAN interface's index (only frames from it carry a DSCP to classify on). A
// map rather than a constant, so a forwarder that restarts can keep the program in place.
struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __uint(max_entries, 1);
    __type(key, __u32);
    __type(value, __u32);
} config SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_LRU_HASH);
    __uint(max_entries, 16384);
    __type(key, struct vc_flow_key);
    __type(value, struct vc_flow_value);
} flows SEC(".maps");

// The frame's flow key, or 0 when the cache does not handle it (not IPv4, a fragment,
// an 802.1ad tag, cut short).
static __always_inline int flow_key(struct __sk_buff *skb, struct vc_flow_key *key) {
    __u16 proto;
    if (bpf_skb_load_bytes(skb, 12, &proto, 2) < 0 || proto != bpf_htons(ETH_P_IP)) return 0;
    struct iphdr ip;
    if (bpf_skb_load_bytes(skb, ETH_HLEN, &ip, sizeof ip) < 0 || ip.ihl < 5) return 0;
    if (ip.frag_off & bpf_htons(0x3fff)) return 0;
    __builtin_memset(key, 0, sizeof *key);
    if (skb->vlan_present) {
        if (skb->vlan_proto != bpf_htons(ETH_P_8021Q)) return 0;
        key->vlan_present = 1;
        key->vlan_tci = skb->vlan_tci;
    }
    key->ifindex = skb->ifindex;
    key->src = ip.saddr;
    key->dst = ip.daddr;
    key->proto = ip.protocol;
    __u32 zero = 0;
    __u32 *lan = bpf_map_lookup_elem(&config, &zero);
    if (lan && skb->ifindex == *lan) key->dscp = ip.tos >> 2;
    __u32 l4 = ETH_HLEN + ip.ihl * 4;
    if (ip.protocol == IPPROTO_TCP || ip.protocol == IPPROTO_UDP) {
        __u16 ports[2];
        if (bpf_skb_load_bytes(skb, l4, ports, 4) < 0) return 0;
        key->sport = ports[0];
        key->dport = ports[1];
    } else if (ip.protocol == IPPROTO_ICMP) {
        __u8 icmp[6];
        if (bpf_skb_load_bytes(skb, l4, icmp, 6) < 0) return 0;
        if (icmp[0] == 0 || icmp[0] == 8) {  // echo reply, echo request: one flow per identifier
            __u16 id = icmp[4] | icmp[5] << 8;
            key->sport = id;
            key->dport = id;
        }
    }
    return 1;
}

SEC("tc")
int flow_cache(struct __sk_buff *skb) {
    struct vc_flow_key key;
    if (!flow_key(skb, &key)) return TC_ACT_OK;
    struct vc_flow_value *v = bpf_map_lookup_elem(&flows, &key);
    if (!v) return TC_ACT_OK;
    __sync_fetch_and_add(&v->packets, 1);
    __sync_fetch_and_add(&v->bytes, skb->len);
    v->last_seen = bpf_ktime_get_ns();
    __u32 out = v->ifindex;
    if (!out) return TC_ACT_SHOT;
    if (bpf_skb_store_bytes(skb, 0, v->macs, 12, 0) < 0) return TC_ACT_SHOT;
    return bpf_redirect(out, 0);
}

SEC("socket")
int flow_miss(struct __sk_buff *skb) {
    struct vc_flow_key key;
    if (flow_key(skb, &key) && bpf_map_lookup_elem(&flows, &key)) return 0;
    return skb->len;
}
