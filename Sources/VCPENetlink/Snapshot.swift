import VCPESystem
/// Everything vcpe programs in one namespace, read back in one go: the controller's
/// observed picture of that namespace.
public struct NamespaceSnapshot: Sendable, Hashable {
    public var links: [LinkInfo]
    public var addresses: [String: [AddressInfo]]
    public var routes: [RouteInfo]
    public var rules: [RuleInfo]

    public init(links: [LinkInfo], addresses: [String: [AddressInfo]], routes: [RouteInfo], rules: [RuleInfo]) {
        self.links = links
        self.addresses = addresses
        self.routes = routes
        self.rules = rules
    }

    public func link(named name: String) -> LinkInfo? { links.first { $0.name == name } }
}

extension RouteSocket {
    public func snapshot() throws(KernelError) -> NamespaceSnapshot {
        let links = try links()
        let names = Dictionary(links.map { ($0.index, $0.name) }, uniquingKeysWith: { a, _ in a })
        let addrs = Dictionary(grouping: try addresses()) { names[$0.interfaceIndex] ?? "#\($0.interfaceIndex)" }
        return NamespaceSnapshot(links: links, addresses: addrs,
                                 routes: try routes(family: .v4, names: names) + routes(family: .v6, names: names),
                                 rules: try rules())
    }
}
