import Foundation
import VCPEController
import VCPENetlink
import VCPENftables
import VCPESystem

/// The controller's socket cache, kept between scrapes: entering a namespace (a fresh
/// thread and setns) costs more than the dump that follows. A socket keeps its namespace
/// alive after its name is gone, so a namespace's sockets are used only while its name
/// still leads to the namespace they were opened in (its inode), and dropped when its
/// customer goes.
final class NamespaceSockets {
    private let cache = SocketCache()
    /// The namespace each name led to when its sockets were opened.
    private var inodes: [String: UInt64] = [:]

    func route(_ namespace: String?) throws -> RouteSocket? {
        guard let namespace else { return try cache.route(nil) }
        return try current(namespace) ? try cache.route(namespace) : nil
    }

    func nft(_ namespace: String) throws -> NftSocket? {
        try current(namespace) ? try cache.nft(namespace) : nil
    }

    /// Whether a namespace of that name exists, with the cache's sockets opened in it.
    private func current(_ namespace: String) throws -> Bool {
        var st = stat()
        guard stat("/run/netns/" + namespace, &st) == 0 else {
            drop(namespace)
            return false
        }
        let inode = UInt64(st.st_ino)
        if inodes[namespace] == inode { return true }
        drop(namespace)
        // Opened where the name leads now, and checked from inside: a namespace replaced
        // between the look and the entry is not taken for the one looked at.
        let inside = try cache.open(namespace) { () -> UInt64? in
            var here = stat()
            return stat("/proc/thread-self/ns/net", &here) == 0 ? UInt64(here.st_ino) : nil
        }
        guard inside == inode else {
            cache.forget(namespace)
            return false
        }
        inodes[namespace] = inode
        return true
    }

    private func drop(_ namespace: String) {
        cache.forget(namespace)
        inodes[namespace] = nil
    }

    /// Closes the sockets of namespaces no applied customer has.
    func keepOnly(_ namespaces: Set<String>) {
        for name in inodes.keys where !namespaces.contains(name) { drop(name) }
    }
}
