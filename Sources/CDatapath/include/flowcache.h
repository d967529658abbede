// The flow cache's map layout, shared by the tc/socket-filter eBPF program
// (Sources/BPF/flowcache.bpf.c) and the forwarder. Fields are in network byte order as
// they appear in the frame, except ifindex, generation, rule, path and the counters.
#ifndef VCPE_FLOWCACHE_H
#define VCPE_FLOWCACHE_H

#include <linux/types.h>

// One direction of a flow as it arrives on one interface of a classifier namespace.
struct vc_flow_key {
    __u32 ifindex;
    __u32 src;
    __u32 dst;
    __u16 sport;        // TCP/UDP ports; ICMP echo: the identifier in both
    __u16 dport;
    __u16 vlan_tci;     // 802.1Q tag (the kernel keeps it in the frame's metadata)
    __u8 proto;
    __u8 dscp;
    __u8 vlan_present;
    __u8 pad[3];
};

// What the cache does with it: rewrite the Ethernet addresses and redirect, or drop.
struct vc_flow_value {
    __u8 macs[12];      // destination, then source
    __u32 ifindex;      // where to send it; 0 drops it
    __u32 generation;   // the rule table that decided (see the forwarder's revalidation)
    __u16 rule;         // that table's counter index; VC_FLOW_RETURN for the return direction
    __u16 path;
    __u64 packets;      // since installed, updated by the program
    __u64 bytes;
    __u64 last_seen;    // CLOCK_MONOTONIC ns of the last packet
};

#define VC_FLOW_RETURN 0xffff

#endif
