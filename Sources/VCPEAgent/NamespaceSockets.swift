import Foundation
import VCPENetlink
import VCPENftables
import VCPESystem

/// Netlink sockets into customers' namespaces, kept between scrapes: entering a namespace
/// (a fresh thread and setns) costs more than the dump that follows. A socket keeps its
/// namespace alive after its name is gone, so each is kept only while the name still
/// leads to the same namespace (its inode), and dropped when its customer goes.
final class NamespaceSockets {
    private struct Entry {
        let inode: UInt64
        let route: RouteSocket
        var nft: NftSocket?
    }
    private var entries: [String: Entry] = [:]
    private var host: RouteSocket?

    /// The namespace's identity now: nil when no namespace has that name.
    private static func inode(_ namespace: String) -> UInt64? {
        var st = stat()
        guard stat("/run/netns/" + namespace, &st) == 0 else { return nil }
        return UInt64(st.st_ino)
    }

    func route(_ namespace: String?) throws -> RouteSocket? {
        guard let namespace else {
            if host == nil { host = try RouteSocket() }
            return host
        }
        return try entry(namespace, nft: false)?.route
    }

    func nft(_ namespace: String) throws -> NftSocket? { try entry(namespace, nft: true)?.nft }

    private func entry(_ namespace: String, nft: Bool) throws -> Entry? {
        guard let inode = Self.inode(namespace) else {
            entries[namespace] = nil
            return nil
        }
        if var e = entries[namespace], e.inode == inode {
            if nft && e.nft == nil {
                e.nft = try NetworkNamespace.perform(in: namespace) { try NftSocket.openHere(labeled: namespace) }
                entries[namespace] = e
            }
            return e
        }
        // Opened where the name leads now; the inode is checked again from inside, so a
        // namespace replaced meanwhile is not taken for the one named.
        let opened = try NetworkNamespace.perform(in: namespace) { () throws -> Entry? in
            var st = stat()
            guard stat("/proc/thread-self/ns/net", &st) == 0, UInt64(st.st_ino) == inode else { return nil }
            return Entry(inode: inode, route: try RouteSocket.openHere(labeled: namespace),
                         nft: nft ? try NftSocket.openHere(labeled: namespace) : nil)
        }
        entries[namespace] = opened
        return opened
    }

    /// Closes the sockets of namespaces no applied customer has.
    func keepOnly(_ namespaces: Set<String>) {
        for name in entries.keys where !namespaces.contains(name) { entries[name] = nil }
    }
}
