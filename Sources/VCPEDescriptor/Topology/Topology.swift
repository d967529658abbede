import VCPENet
/// A chain resolved into concrete kernel objects: which namespaces, which links between
/// which interfaces. No addresses are allocated here; that needs the host's state.
public struct Topology: Sendable, Hashable, Codable {
    public struct Namespace: Sendable, Hashable, Codable {
        public var name: String
        /// The service it runs, or "classifier" for the steering namespace.
        public var service: String
        public var role: NamespaceRole
    }

    /// One end of a link; `namespace` nil is the host.
    public struct Endpoint: Sendable, Hashable, Codable, CustomStringConvertible {
        public var namespace: String?
        public var interface: String
        public var description: String { "\(namespace ?? "host")/\(interface)" }

        public init(namespace: String?, interface: String) {
            self.namespace = namespace
            self.interface = interface
        }
    }

    /// A veth pair. `upstream` is the end nearer the customer LAN.
    public struct Link: Sendable, Hashable, Codable {
        public enum Role: String, Sendable, Hashable, Codable { case lan, transit, wan }
        /// Stable identity: transit addresses are allocated to it and kept across applies.
        public var key: String
        public var role: Role
        public var path: String?
        public var upstream: Endpoint
        public var downstream: Endpoint
    }

    public var customer: String
    public var namespaces: [Namespace]
    public var links: [Link]
    public var lanBridge: String
    public var wanBridge: String
    /// Where the LAN gateway address lives.
    public var lanGateway: Endpoint
    /// Where the WAN address lives: the router's WAN end.
    public var wanEndpoint: Endpoint

    /// Resolves a validated chain. Links are one veth per path and hop, so each service knows
    /// the path of a packet from the interface it arrived on.
    public static func resolve(_ chain: Chain) -> Topology {
        let c = chain.customer
        let ns = { (service: String) in KernelNames.namespace(customer: c, service: service) }
        var namespaces = chain.services.map { Namespace(name: ns($0.name), service: $0.name, role: $0.kind.role) }
        var links: [Link] = []
        let steered = chain.classifier != nil || chain.paths.count > 1
        let router = chain.router.name
        let lanGateway: Endpoint

        if steered {
            let cls = KernelNames.classifierNamespace(customer: c)
            namespaces.insert(Namespace(name: cls, service: "classifier", role: .classifier), at: 0)
            lanGateway = Endpoint(namespace: cls, interface: KernelNames.lanInterface)
        } else {
            lanGateway = Endpoint(namespace: ns(chain.paths[0].hops[0]), interface: KernelNames.lanInterface)
        }
        links.append(Link(key: "lan", role: .lan, path: nil,
                          upstream: Endpoint(namespace: nil, interface: KernelNames.lanVethHost(customer: c)),
                          downstream: lanGateway))

        for path in chain.paths {
            var previous: Endpoint? = steered
                ? Endpoint(namespace: KernelNames.classifierNamespace(customer: c), interface: KernelNames.pathOut(path.name))
                : nil
            var previousName = steered ? "classifier" : "lan"
            for hop in path.hops {
                if let up = previous {
                    links.append(Link(key: "\(path.name):\(previousName)>\(hop)", role: .transit, path: path.name,
                                      upstream: up, downstream: Endpoint(namespace: ns(hop), interface: KernelNames.pathIn(path.name))))
                }
                previous = Endpoint(namespace: ns(hop), interface: KernelNames.pathOut(path.name))
                previousName = hop
            }
        }
        let wanEnd = Endpoint(namespace: ns(router), interface: KernelNames.wanInterface)
        links.append(Link(key: "wan", role: .wan, path: nil, upstream: wanEnd,
                          downstream: Endpoint(namespace: nil, interface: KernelNames.wanVethHost(customer: c))))
        return Topology(customer: c, namespaces: namespaces, links: links,
                        lanBridge: KernelNames.lanBridge(customer: c), wanBridge: chain.wan.segment,
                        lanGateway: lanGateway, wanEndpoint: wanEnd)
    }

    /// Every interface name the topology creates, for the IFNAMSIZ check.
    public var interfaceNames: [String] {
        [lanBridge, wanBridge] + links.flatMap { [$0.upstream.interface, $0.downstream.interface] }
    }
}

/// What a customer's namespace is for: one of its services, or the classifier of a steered chain.
public enum NamespaceRole: String, Sendable, Hashable, Codable, CaseIterable {
    case firewall, router, vpn, classifier
}
