import VCPEDescriptor
import VCPENet
import VCPENftables

/// An nftables table; `digest` names its content so that any change of rules shows. The
/// table itself is the desired state's (`Desired.tables`, by id).
public struct NftTableObject: HostObjectKind {
    public static let kindName = "nftTable"
    public static let rank = 9
    public var namespace: String
    public var family: NftFamily
    public var name: String
    public var rules: Int
    public var digest: String

    public init(namespace: String, family: NftFamily, name: String, rules: Int, digest: String) {
        self.namespace = namespace
        self.family = family
        self.name = name
        self.rules = rules
        self.digest = digest
    }

    public var namespaceName: String? { namespace }
    public var id: String { "table \(family.rawValue) \(name) in \(namespace)" }
    public var summary: String { "nftables table \(family.rawValue) \(name) (\(rules) rules) in \(namespace)" }
    /// A netdev table's chains are bound to devices of its namespace and go with them.
    public func hangs(on ends: Set<Topology.Endpoint>) -> Bool { family == .netdev && ends.contains { $0.namespace == namespace } }

    /// One atomic batch replaces the whole table.
    public func create(on host: any HostKernel, _ content: Desired) throws {
        guard let table = content.tables[id] else { throw StateError("no table content for \(summary)") }
        try host.tables(in: namespace).replaceTable(table, expectedGeneration: nil)
    }

    public func update(from current: NftTableObject, on host: any HostKernel, _ content: Desired) throws { try create(on: host, content) }

    public func remove(from host: any HostKernel, _ content: Desired) throws {
        try host.tables(in: namespace).removeTable(family: family, name: name)
    }

    public static func observe(_ view: HostView, into out: inout HostState) throws {
        for ns in view.snapshots.keys {
            let nft = try view.nftables(ns)
            for t in try nft.tables() where t.name == ServiceTables.tableName {
                out.insert(NftTableObject(namespace: ns, family: t.family, name: t.name, rules: try nft.ruleCount(family: t.family, table: t.name),
                                          digest: TableObjects.digest(fromComment: t.comment)))
            }
        }
    }
}
