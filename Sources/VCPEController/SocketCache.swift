import VCPENetlink
import VCPENftables
import VCPESystem

/// Netlink sockets by namespace, kept for a whole run. Closing a netfilter socket while
/// the kernel still holds committed transactions to free waits for an RCU grace period
/// (nf_tables flushes its destroy work on release), so closing one per customer right after
/// its commit cost a grace period each; kept open, they are closed together at the end.
final class SocketCache {
    private var routes: [String: RouteSocket] = [:]
    private var nfts: [String: NftSocket] = [:]

    func route(_ ns: String?) throws -> RouteSocket {
        if let s = routes[ns ?? ""] { return s }
        if let ns { try open(ns); return routes[ns]! }
        let s = try RouteSocket()
        routes[""] = s
        return s
    }

    func nft(_ ns: String) throws -> NftSocket {
        if nfts[ns] == nil { try open(ns) }
        return nfts[ns]!
    }

    /// Opens the namespace's missing sockets in one trip into it, and runs `alsoThere` there.
    @discardableResult
    func open<T>(_ ns: String, alsoThere: @escaping () throws -> T = { () }) throws -> T {
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
    func forget(_ ns: String) {
        routes[ns] = nil
        nfts[ns] = nil
    }
}
