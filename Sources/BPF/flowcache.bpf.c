// The flow cache in front of the forwarder, loaded once per classifier namespace.
// flow_cache: tc (clsact) ingress on the LAN and path links; a cached flow is rewritten and
// redirected (or dropped) in the kernel; anything else goes on (to the nft netdev drop for
// transit, to the stack for ARP and the namespace's own addresses). Every link is a veth
// whose peer is in another namespace (or on the host), so the redirect goes straight to the
// peer's ingress (bpf_redirect_peer): no veth transmit, no backlog queue, no second softirq.
// flow_miss: the forwarder's packet socket filter; the tap sees every frame before tc runs,
// so it keeps only what the cache will not take: userspace sees misses alone.
#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <linux/ip.h>
#include <linux/in.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>
#include "flowcache.h"

char LICENSE[] SEC("license") = "GPL";

struct {
    __uint(type, BPF_MAP_TYPE_LRU_HASH);
    __uint(max_entries, 16384);
    __type(key, struct vc_flow_key);
    __type(value, struct vc_flow_value);
} flows SEC(".maps");

// The headers a key is made of, for a frame without IP options; others are read again.
struct headers {
    struct ethhdr eth;
    struct iphdr ip;
    __u16 l4[4];  // TCP/UDP ports; ICMP type/code, checksum, identifier
} __attribute__((packed));

// The flow key of a frame whose first bytes are `h`, or 0 when the cache does not handle
// it (not IPv4, not addressed to this interface, lengths that do not fit the frame, a
// fragment, an 802.1ad tag, cut short): userspace makes the same checks.
static __always_inline int flow_key(struct __sk_buff *skb, const struct headers *h, struct vc_flow_key *key) {
    if (h->eth.h_proto != bpf_htons(ETH_P_IP) || h->ip.version != 4 || h->ip.ihl < 5 || (h->ip.frag_off & bpf_htons(0x3fff))) return 0;
    // The destination Ethernet address must be the interface's own (userspace compares it
    // with the interface's address; the kernel has said so in pkt_type already).
    if (skb->pkt_type != PACKET_HOST) return 0;
    __u32 total = bpf_ntohs(h->ip.tot_len);
    if (total < h->ip.ihl * 4u || total + ETH_HLEN > skb->len) return 0;
    __builtin_memset(key, 0, sizeof *key);
    if (skb->vlan_present) {
        if (skb->vlan_proto != bpf_htons(ETH_P_8021Q)) return 0;
        key->vlan_present = 1;
        key->vlan_tci = skb->vlan_tci;
    }
    key->ifindex = skb->ifindex;
    key->src = h->ip.saddr;
    key->dst = h->ip.daddr;
    key->proto = h->ip.protocol;
    key->dscp = h->ip.tos >> 2;
    __u16 l4[4];
    if (h->ip.ihl == 5) {
        __builtin_memcpy(l4, h->l4, sizeof l4);
    } else if (bpf_skb_load_bytes(skb, ETH_HLEN + h->ip.ihl * 4, l4, sizeof l4) < 0) {
        return 0;
    }
    if (h->ip.protocol == IPPROTO_TCP || h->ip.protocol == IPPROTO_UDP) {
        key->sport = l4[0];
        key->dport = l4[1];
    } else if (h->ip.protocol == IPPROTO_ICMP) {
        __u8 type = l4[0] & 0xff;  // the first byte on the wire
        if (type == 0 || type == 8) {  // echo reply, echo request: one flow per identifier
            key->sport = l4[2];
            key->dport = l4[2];
        }
    }
    return 1;
}

SEC("tc")
int flow_cache(struct __sk_buff *skb) {
    void *data = (void *)(long)skb->data, *end = (void *)(long)skb->data_end;
    struct headers *h = data;
    struct vc_flow_key key;
    // Headers in the linear part (veth frames have them there): read in place.
    if ((void *)(h + 1) > end || !flow_key(skb, h, &key)) return TC_ACT_OK;
    struct vc_flow_value *v = bpf_map_lookup_elem(&flows, &key);
    if (!v) return TC_ACT_OK;
    __sync_fetch_and_add(&v->packets, 1);
    __sync_fetch_and_add(&v->bytes, skb->len);
    v->last_seen = bpf_ktime_get_ns();
    __u32 out = v->ifindex;
    if (!out) return TC_ACT_SHOT;
    __builtin_memcpy(h->eth.h_dest, v->macs, 12);
    return bpf_redirect_peer(out, 0);
}

SEC("socket")
int flow_miss(struct __sk_buff *skb) {
    struct headers h;
    struct vc_flow_key key;
    if (bpf_skb_load_bytes(skb, 0, &h, sizeof h) == 0 && flow_key(skb, &h, &key) && bpf_map_lookup_elem(&flows, &key)) return 0;
    return skb->len;
}
