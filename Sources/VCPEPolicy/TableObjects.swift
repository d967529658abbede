import VCPEDescriptor
import VCPENet
import VCPENftables

/// The nftables table a service needs, as the planner sees it: identity, size and a digest
/// of its full text, so that any change of a rule changes the object.
package enum TableObjects {
    /// The table's host object and the table itself, its comment naming its digest so that
    /// the observer can tell what is installed.
    /// `extra` chains (steering, the LAN source guard) are added to the service's table
    /// (made for it if the service has none).
    package static func table(for service: Service, in chain: Chain, topology: Topology, tunnel: ServiceTables.Tunnel?,
                      extra: [NftChain] = []) -> (HostObject, NftTable)? {
        var table = ServiceTables.table(for: service, in: chain, topology: topology, tunnel: tunnel)
        if !extra.isEmpty {
            if table == nil { table = NftTable(family: .inet, name: ServiceTables.tableName) }
            table!.chains.insert(contentsOf: extra, at: 0)
        }
        guard let table else { return nil }
        return object(for: table, in: KernelNames.namespace(customer: chain.customer, service: service.name))
    }

    /// Any table vcpe installs in `namespace`, its comment naming its digest.
    package static func object(for table: NftTable, in namespace: String) -> (HostObject, NftTable) {
        var t = table
        let d = digest(t.nftText)
        t.comment = commentPrefix + d
        return (HostObject(NftTableObject(namespace: namespace, family: t.family, name: t.name, rules: t.ruleCount, digest: d)), t)
    }

    package static let commentPrefix = "vcpe "

    /// The digest a table comment records, if vcpe wrote it.
    package static func digest(fromComment c: String?) -> String {
        guard let c, c.hasPrefix(commentPrefix) else { return "unknown" }
        return String(c.dropFirst(commentPrefix.count))
    }

    package static func digest(_ text: String) -> String { fnv1aDigest(text) }
}
