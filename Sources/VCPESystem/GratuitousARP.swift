import CSystemShim

/// Announces an IPv4 address on an interface: neighbours that had it elsewhere (a gateway
/// whose interface was made anew, a chain moved to this host) update their ARP caches now
/// instead of when their entries go stale.
public enum GratuitousARP {
    public static func announce(_ ipv4: [UInt8], ifindex: Int32, mac: [UInt8], in namespace: String?) throws {
        guard ipv4.count == 4, mac.count == 6, mac != [0, 0, 0, 0, 0, 0] else { return }
        try NetworkNamespace.perform(in: namespace) {
            try syscall("send gratuitous ARP on", "interface \(ifindex)") { vcpe_send_gratuitous_arp(ifindex, mac, ipv4) }
        }
    }
}
