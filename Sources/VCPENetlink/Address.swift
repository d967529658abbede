import CNetlink
import VCPENet
import VCPESystem

public struct AddressInfo: Sendable, Hashable {
    public var interfaceIndex: Int32
    /// The address with the prefix length of its network (192.168.1.1/24).
    public var prefix: IPPrefix

    public init(interfaceIndex: Int32, prefix: IPPrefix) {
        self.interfaceIndex = interfaceIndex
        self.prefix = prefix
    }
}

extension RouteSocket {
    public func addresses() throws(KernelError) -> [AddressInfo] {
        try dump("addresses", { rtnl_addr_alloc_cache(sock, $0) }) { a in
            IPPrefix(nlAddress: rtnl_addr_get_local(a)).map { AddressInfo(interfaceIndex: rtnl_addr_get_ifindex(a), prefix: $0) }
        }
    }

    public func addresses(on interface: String) throws(KernelError) -> [IPPrefix] {
        let i = try index(of: interface)
        return try addresses().filter { $0.interfaceIndex == i }.map(\.prefix)
    }

    public func addAddress(_ p: IPPrefix, on interface: String) throws(KernelError) {
        try changeAddress(p, on: interface, add: true)
    }

    /// Adds the address unless the interface has it; the same address with another prefix
    /// length is a mismatch.
    public func ensureAddress(_ p: IPPrefix, on interface: String) throws -> EnsureResult {
        let have = try addresses(on: interface)
        if have.contains(p) { return .unchanged }
        if let other = have.first(where: { $0.address == p.address }) {
            throw MismatchError(object: "address \(p.address) on \(interface) \(place)", differences: ["prefix length is \(other.length), not \(p.length)"])
        }
        try addAddress(p, on: interface)
        return .created
    }

    /// Removes the address; one that is gone, or an interface that is gone, is success.
    public func removeAddress(_ p: IPPrefix, on interface: String) throws(KernelError) {
        guard try link(named: interface) != nil else { return }
        do {
            try changeAddress(p, on: interface, add: false)
        } catch where error.errno == .addressNotAvailable {
            return
        }
    }

    private func changeAddress(_ p: IPPrefix, on interface: String, add: Bool) throws(KernelError) {
        let i = try index(of: interface)
        let a = rtnl_addr_alloc()!
        defer { rtnl_addr_put(a) }
        rtnl_addr_set_ifindex(a, i)
        rtnl_addr_set_family(a, p.family == .v4 ? AF_INET : AF_INET6)
        let local = p.nlAddress()
        defer { nl_addr_put(local) }
        try call("set local address", p.description) { rtnl_addr_set_local(a, local) }
        if add {
            try call("add address", "\(p) on \(interface)") { rtnl_addr_add(sock, a, NLM_F_EXCL) }
        } else {
            try call("delete address", "\(p) on \(interface)") { rtnl_addr_delete(sock, a, 0) }
        }
    }
}
