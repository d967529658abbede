import VCPEDescriptor
import VCPENftables

/// The nftables table a service needs, as the planner sees it: identity, size and a digest
/// of its full text, so that any change of a rule changes the object.
enum TableObjects {
    /// The table's host object and the table itself, its comment naming its digest so that
    /// the observer can tell what is installed.
    static func table(for service: Service, in chain: Chain, topology: Topology, tunnel: ServiceTables.Tunnel?) -> (HostObject, NftTable)? {
        guard var t = ServiceTables.table(for: service, in: chain, topology: topology, tunnel: tunnel) else { return nil }
        let d = digest(t.nftText)
        t.comment = commentPrefix + d
        return (.nftTable(namespace: KernelNames.namespace(customer: chain.customer, service: service.name),
                          family: t.family.rawValue, name: t.name, rules: t.ruleCount, digest: d), t)
    }

    static let commentPrefix = "vcpe "

    /// The digest a table comment records, if vcpe wrote it.
    static func digest(fromComment c: String?) -> String {
        guard let c, c.hasPrefix(commentPrefix) else { return "unknown" }
        return String(c.dropFirst(commentPrefix.count))
    }

    /// FNV-1a: stable across runs and processes, unlike Hasher.
    static func digest(_ text: String) -> String {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for b in text.utf8 { h = (h ^ UInt64(b)) &* 0x100_0000_01b3 }
        return zeroPaddedHex(h, width: 16)
    }
}
