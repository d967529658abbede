import VCPENetlink
import VCPENftables
import VCPESystem

/// What one run keeps of the host's namespaces: netlink sockets into each, and the names
/// under /run/netns.
///
/// Sockets: closing a netfilter socket while the kernel still holds committed transactions
/// to free waits for an RCU grace period (nf_tables flushes its destroy work on release), so
/// closing one per customer right after its commit cost a grace period each; kept open, they
/// are closed together at the end.
///
/// Names: the directory is read once, then kept current by vcpe's own creates and removes
/// (the lock keeps other vcpe processes out); reading it per customer made a run over many
/// customers quadratic (1,200 entries read 400 times for a 400-customer re-apply).
///
/// The agent's scrape keeps one for its whole life (VCPEAgent's NamespaceSockets), checking
/// each namespace's identity before use.
public final class SocketCache {
    private var routes: [String: RouteSocket] = [:]
    private var nfts: [String: NftSocket] = [:]
    private var names: Set<String>?

    public init() {}

    /// Every entry of /run/netns starting with `prefix` (mounted or not), sorted.
    func namespaces(prefix: String) throws -> [String] {
        if names == nil { names = Set(try NetworkNamespace.entries()) }
        return names!.filter { $0.hasPrefix(prefix) }.sorted()
    }

    /// A namespace vcpe has just made.
    func noteCreated(_ ns: String) { names?.insert(ns) }

    public func route(_ ns: String?) throws -> RouteSocket {
        if let s = routes[ns ?? ""] { return s }
        if let ns { try open(ns); return routes[ns]! }
        let s = try RouteSocket()
        routes[""] = s
        return s
    }

    public func nft(_ ns: String) throws -> NftSocket {
        if nfts[ns] == nil { try open(ns) }
        return nfts[ns]!
    }

    /// Opens the namespace's missing sockets in one trip into it, and runs `alsoThere` there.
    @discardableResult
    public func open<T>(_ ns: String, alsoThere: @escaping () throws -> T = { () }) throws -> T {
        let needRoute = routes[ns] == nil, needNft = nfts[ns] == nil
        let (route, nft, extra) = try NetworkNamespace.perform(in: ns) {
            (needRoute ? try RouteSocket.openHere(labeled: ns) : nil,
             needNft ? try NftSocket.openHere(labeled: ns) : nil, try alsoThere())
        }
        if let route { routes[ns] = route }
        if let nft { nfts[ns] = nft }
        return extra
    }

    /// A namespace that is removed: its sockets would point at the old one.
    public func forget(_ ns: String) {
        routes[ns] = nil
        nfts[ns] = nil
        names?.remove(ns)
    }
}
