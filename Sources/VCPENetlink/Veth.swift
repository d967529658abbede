import CNetlink
import VCPESystem

#if canImport(Glibc)
import Glibc
#endif

/// Where a veth end lives and what it is called.
public struct VethEnd: Sendable, Hashable, CustomStringConvertible {
    public var name: String
    /// Namespace name; nil is this socket's own namespace.
    public var namespace: String?
    /// Its Ethernet address from the start; nil lets the kernel pick one.
    public var mac: [UInt8]?

    public init(_ name: String, in namespace: String? = nil, mac: [UInt8]? = nil) {
        self.name = name
        self.namespace = namespace
        self.mac = mac
    }

    public var description: String { "\(namespace ?? "here")/\(name)" }
}

extension RouteSocket {
    /// Creates a veth pair in one request, each end directly in its namespace. Neither end
    /// is brought up here: the kernel refuses UP for the peer in the same message.
    public func addVeth(_ a: VethEnd, _ b: VethEnd, mtu: UInt32? = nil) throws(KernelError) {
        let object = "veth \(a)<->\(b)"
        try checkInterfaceName(a.name)
        try checkInterfaceName(b.name)
        let fds = try openNamespaces([a.namespace, b.namespace], for: object)
        defer { for fd in fds { if let fd { close(fd) } } }
        let link = rtnl_link_veth_alloc()!
        defer { rtnl_link_put(link) }
        let peer = rtnl_link_veth_get_peer(link)!
        defer { rtnl_link_put(peer) }
        rtnl_link_set_name(link, a.name)
        rtnl_link_set_name(peer, b.name)
        if let fd = fds[0] { rtnl_link_set_ns_fd(link, fd) }
        if let fd = fds[1] { rtnl_link_set_ns_fd(peer, fd) }
        if let mtu {
            rtnl_link_set_mtu(link, mtu)
            rtnl_link_set_mtu(peer, mtu)
        }
        for (end, mac) in [(link, a.mac), (peer, b.mac)] {
            guard let mac, let addr = mac.withUnsafeBytes({ nl_addr_build(AF_LLC, $0.baseAddress, $0.count) }) else { continue }
            rtnl_link_set_addr(end, addr)  // takes its own reference
            nl_addr_put(addr)
        }
        // One queue each, asked for: by default the kernel makes one per CPU and then cuts
        // the real count to one, which waits for an RCU grace period per end.
        for end in [link, peer] {
            rtnl_link_set_num_tx_queues(end, 1)
            rtnl_link_set_num_rx_queues(end, 1)
        }
        try call("create", object) { rtnl_link_add(sock, link, NLM_F_CREATE | NLM_F_EXCL) }
    }

    /// Creates the pair unless `a` exists here as a veth; an existing `a` of another kind is
    /// a mismatch. Only `a` can be checked from here when `b` is in another namespace.
    public func ensureVeth(_ a: VethEnd, _ b: VethEnd, mtu: UInt32? = nil) throws -> EnsureResult {
        precondition(a.namespace == nil || a.namespace == namespace, "ensureVeth checks the end in this socket's namespace")
        if let have = try link(named: a.name) {
            var diffs: [String] = []
            if have.kind != "veth" { diffs.append("kind is \(have.kind ?? "plain"), not veth") }
            if let mtu, have.mtu != mtu { diffs.append("mtu is \(have.mtu), not \(mtu)") }
            if have.peerIndex == nil, have.kind == "veth" { diffs.append("its peer is gone") }
            if !diffs.isEmpty { throw MismatchError(object: "veth \(a.name) \(place)", differences: diffs) }
            return .unchanged
        }
        try addVeth(a, b, mtu: mtu)
        return .created
    }

    func openNamespaces(_ names: [String?], for object: String) throws(KernelError) -> [Int32?] {
        var fds: [Int32?] = []
        for n in names {
            guard let n, n != namespace else { fds.append(nil); continue }
            do {
                fds.append(try NetworkNamespace.open(n).rawValue)
            } catch {
                for fd in fds { if let fd { close(fd) } }
                throw KernelError("open namespace \(n) for", "\(object) \(place)", error.errno)
            }
        }
        return fds
    }
}
