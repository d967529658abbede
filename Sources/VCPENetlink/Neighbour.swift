import CNetlink
import VCPENet
import VCPESystem

extension RouteSocket {
    /// A permanent neighbour entry (static ARP/NDP): replaced if one for `address` exists.
    public func setPermanentNeighbour(_ address: IPAddress, mac: [UInt8], on interface: String) throws(KernelError) {
        try withNeighbour(address, on: interface) { n throws(KernelError) in
            let ll = mac.withUnsafeBytes { nl_addr_build(AF_LLC, $0.baseAddress, $0.count) }!
            defer { nl_addr_put(ll) }
            rtnl_neigh_set_lladdr(n, ll)
            rtnl_neigh_set_state(n, Int32(NUD_PERMANENT))
            try call("add neighbour", "\(address) on \(interface)") { rtnl_neigh_add(sock, n, NLM_F_CREATE | NLM_F_REPLACE) }
        }
    }

    /// The link-layer address of a neighbour entry, if there is one.
    public func neighbour(_ address: IPAddress, on interface: String) throws(KernelError) -> (mac: [UInt8], permanent: Bool)? {
        let i = try index(of: interface)
        let found: [([UInt8], Bool)] = try dump("neighbours", { rtnl_neigh_alloc_cache(sock, $0) }) { n in
            guard rtnl_neigh_get_ifindex(n) == i, let d = rtnl_neigh_get_dst(n), IPAddress(nlAddress: d) == address,
                  let ll = rtnl_neigh_get_lladdr(n), let p = nl_addr_get_binary_addr(ll) else { return nil }
            return (Array(UnsafeRawBufferPointer(start: p, count: Int(nl_addr_get_len(ll)))), rtnl_neigh_get_state(n) & Int32(NUD_PERMANENT) != 0)
        }
        return found.first.map { (mac: $0.0, permanent: $0.1) }
    }

    /// Deletes the entry; one that is gone is success.
    public func removeNeighbour(_ address: IPAddress, on interface: String) throws(KernelError) {
        guard try link(named: interface) != nil else { return }
        do {
            try withNeighbour(address, on: interface) { n throws(KernelError) in
                try call("delete neighbour", "\(address) on \(interface)") { rtnl_neigh_delete(sock, n, 0) }
            }
        } catch where error.errno == .noSuchFileOrDirectory {
            return
        }
    }

    private func withNeighbour(_ address: IPAddress, on interface: String, _ body: (OpaquePointer) throws(KernelError) -> Void) throws(KernelError) {
        let n = rtnl_neigh_alloc()!
        defer { rtnl_neigh_put(n) }
        rtnl_neigh_set_ifindex(n, try index(of: interface))
        rtnl_neigh_set_family(n, address.family == .v4 ? AF_INET : AF_INET6)
        let dst = address.nlAddress()
        defer { nl_addr_put(dst) }
        try call("set neighbour address", address.description) { rtnl_neigh_set_dst(n, dst) }
        try body(n)
    }
}
