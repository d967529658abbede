import CNetlink
import VCPESystem

extension RouteSocket {
    public func addBridge(_ name: String) throws(KernelError) {
        try addLink(name, kind: "bridge")
    }

    /// A new link of a kind that needs no settings to exist (bridge, wireguard, dummy).
    public func addLink(_ name: String, kind: String) throws(KernelError) {
        try checkInterfaceName(name)
        let link = rtnl_link_alloc()!
        defer { rtnl_link_put(link) }
        rtnl_link_set_name(link, name)
        try call("set type \(kind) for", name) { rtnl_link_set_type(link, kind) }
        try call("create \(kind)", name) { rtnl_link_add(sock, link, NLM_F_CREATE | NLM_F_EXCL) }
    }

    /// Creates the bridge unless it exists; an interface of that name that is no bridge is a mismatch.
    public func ensureBridge(_ name: String) throws -> EnsureResult {
        if let have = try link(named: name) {
            guard have.kind == "bridge" else {
                throw MismatchError(object: "bridge \(name) \(place)", differences: ["it is a \(have.kind ?? "plain device"), not a bridge"])
            }
            return .unchanged
        }
        try addBridge(name)
        return .created
    }

    /// Makes `port` a port of `bridge`.
    public func enslave(_ port: String, to bridge: String) throws(KernelError) {
        let master = try index(of: bridge), slave = try index(of: port)
        try call("enslave", "\(port) to \(bridge)") { rtnl_link_enslave_ifindex(sock, master, slave) }
    }

    /// Takes `port` out of its bridge; a port in no bridge, or gone, is success.
    public func release(_ port: String) throws(KernelError) {
        guard let l = try link(named: port), l.masterIndex != nil else { return }
        try call("release", port) { rtnl_link_release_ifindex(sock, l.index) }
    }
}
