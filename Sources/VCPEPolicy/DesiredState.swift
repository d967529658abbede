import VCPEDatapath
import VCPEDescriptor
import VCPENet
import VCPENftables
import VCPEWireGuard

/// The desired host objects of one customer, and the full nftables tables behind the
/// `NftTableObject`s (which carry only a digest).
public struct Desired: Sendable {
    public var state: HostState
    public var tables: [String: NftTable]
    /// WireGuard devices behind the `WireGuardObject`s, by object id.
    public var wireguard: [String: WireGuardDevice] = [:]
    /// Forwarder configurations behind the `SteeringObject`s, by object id.
    public var steering: [String: SteeringConfig] = [:]

    public static let empty = Desired(state: HostState(), tables: [:])
}

/// Compiles a chain and its topology into the host objects that make it work.
///
/// Routing: every service forwards toward the router by a default route out of its
/// path's downstream link and back toward the LAN through its upstream link. A chain
/// with several paths keeps one routing table per path, chosen by the arriving interface.
public enum DesiredState {
    public static let mainTable = 254
    package static let firstPathTable = 100
    package static let policyRulePriority = 1000
    package static let markRulePriority = 1500
    /// Rules vcpe owns in its namespaces; others are left alone.
    package static let policyRulePriorities = 1000..<2000

    public static func compile(_ chain: Chain, _ topo: Topology, transit: [String: IPPrefix], secrets: VPNSecrets? = nil) -> Desired {
        var s = HostState()
        var tables: [String: NftTable] = [:]
        let steered = topo.namespaces.contains { $0.role == .classifier }
        for ns in topo.namespaces {
            s.insert(.namespace(name: ns.name))
            // The classifier's forwarder moves frames itself; kernel forwarding there would duplicate them.
            s.insert(.sysctl(namespace: ns.name, key: "net.ipv4.ip_forward", value: ns.role == .classifier ? "0" : "1"))
            if steered { s.insert(.sysctl(namespace: ns.name, key: "net.ipv4.conf.all.rp_filter", value: "0")) }
        }
        s.insert(.bridge(name: topo.lanBridge))
        s.insert(.bridge(name: topo.wanBridge))
        for i in chain.lan.attach { s.insert(.bridgePort(interface: i, bridge: topo.lanBridge)) }
        for link in topo.links {
            s.insert(.veth(key: link.key, upstream: link.upstream, downstream: link.downstream))
            switch link.role {
            case .lan: s.insert(.bridgePort(interface: link.upstream.interface, bridge: topo.lanBridge))
            case .wan: s.insert(.bridgePort(interface: link.downstream.interface, bridge: topo.wanBridge))
            case .transit:
                let net = transit[link.key]!
                s.insert(.address(at: link.upstream, prefix: IPPrefix(net.network, 31)))
                s.insert(.address(at: link.downstream, prefix: IPPrefix(net.network.adding(1), 31)))
            }
        }
        s.insert(.address(at: topo.lanGateway, prefix: IPPrefix(chain.lan.gateway, chain.lan.subnet.length)))
        s.insert(.address(at: topo.wanEndpoint, prefix: chain.wan.address))

        let routerNS = topo.wanEndpoint.namespace!
        let anyV4 = IPPrefix(IPAddress(v4: 0), 0)
        s.insert(.route(namespace: routerNS, destination: anyV4, via: chain.wan.gateway, device: KernelNames.wanInterface, table: mainTable))

        var arrivals: [String: [(interface: String, mark: UInt32)]] = [:]
        for (index, path) in chain.paths.enumerated() {
            let table = steered ? firstPathTable + index : mainTable
            let hops = topo.links.filter { $0.path == path.name }
            for link in hops {
                let net = transit[link.key]!
                let upNS = link.upstream.namespace!, downNS = link.downstream.namespace!
                // Upstream side sends everything else toward the router; the classifier
                // steers by frames, not routes, so it gets none.
                if upNS != topo.lanGateway.namespace || !steered {
                    s.insert(.route(namespace: upNS, destination: anyV4, via: net.network.adding(1), device: link.upstream.interface, table: table))
                }
                // Downstream side reaches the LAN back through the upstream end. A service on
                // several paths does so through the default path's: unmarked traffic toward
                // the LAN (port forwards) then meets the same services as unclassified traffic.
                let back = HostObject.route(namespace: downNS, destination: chain.lan.subnet, via: net.network,
                                            device: link.downstream.interface, table: mainTable)
                if path.name == chain.defaultPath || s.objects[back.id] == nil { s.insert(back) }
                guard steered else { continue }
                // A packet's path is the interface it arrived on; replies carry the path's
                // mark (restored from conntrack) and go back up the same path.
                s.insert(.route(namespace: downNS, destination: chain.lan.subnet, via: net.network, device: link.downstream.interface, table: table))
                s.insert(.policyRule(namespace: downNS, inputInterface: link.downstream.interface, fwmark: 0, table: table,
                                     priority: policyRulePriority + index))
                s.insert(.policyRule(namespace: downNS, inputInterface: "", fwmark: Int(ServiceTables.pathMark(index)), table: table,
                                     priority: markRulePriority + index))
                arrivals[downNS, default: []].append((link.downstream.interface, ServiceTables.pathMark(index)))
                if downNS == routerNS {
                    s.insert(.route(namespace: downNS, destination: anyV4, via: chain.wan.gateway, device: KernelNames.wanInterface, table: table))
                }
            }
        }
        // Where LAN traffic enters a service: the gateway's interface, or (steered) each
        // path's first link out of the classifier.
        var lanEntries: [String: [String]] = [:]
        if steered {
            for link in topo.links where link.role == .transit && link.upstream.namespace == topo.lanGateway.namespace {
                lanEntries[link.downstream.namespace!, default: []].append(link.downstream.interface)
            }
        } else {
            lanEntries[topo.lanGateway.namespace!] = [topo.lanGateway.interface]
        }
        var configs: [String: WireGuardDevice] = [:]
        let vpn = addVPN(chain, topo, transit: transit, secrets: secrets, steered: steered, into: &s, configs: &configs)
        for service in chain.services {
            let ns = KernelNames.namespace(customer: chain.customer, service: service.name)
            let tunnel = vpn.flatMap { $0.crossed.contains(ns) ? $0.tunnel : nil }
            let steering = arrivals[ns].map(ServiceTables.steeringChain(arrivals:))
            let guarded = lanEntries[ns].map { ServiceTables.lanSourceChain(interfaces: $0, subnet: chain.lan.subnet) }
            if let (object, table) = TableObjects.table(for: service, in: chain, topology: topo, tunnel: tunnel,
                                                        extra: [guarded, steering].compactMap { $0 }) {
                s.insert(object)
                tables[object.id] = table
            }
        }
        var steeringConfigs: [String: SteeringConfig] = [:]
        if steered, let config = steering(chain, topo, transit: transit) {
            let interfaces = [(config.lan.interface, config.lan.gateway)] + config.paths.map { ($0.interface, $0.address) }
            let (object, table) = TableObjects.object(for: ServiceTables.classifierTable(interfaces: interfaces), in: config.namespace)
            s.insert(object)
            tables[object.id] = table
            let forwarder = HostObject(SteeringObject(customer: chain.customer, namespace: config.namespace, rules: config.rules.count, digest: config.digest))
            s.insert(forwarder)
            steeringConfigs[forwarder.id] = config
        }
        return Desired(state: s, tables: tables, wireguard: configs, steering: steeringConfigs)
    }
}

extension DesiredState {
    /// What the forwarder needs for a chain with a classifier; nil for a chain without.
    public static func steering(_ chain: Chain, _ topo: Topology, transit: [String: IPPrefix]) -> SteeringConfig? {
        guard let ns = topo.namespaces.first(where: { $0.role == .classifier })?.name else { return nil }
        let links: [SteeringConfig.PathLink] = chain.paths.compactMap { path in
            guard let link = topo.links.first(where: { $0.path == path.name && $0.upstream.namespace == ns }),
                  let net = transit[link.key] else { return nil }
            return SteeringConfig.PathLink(name: path.name, interface: link.upstream.interface, address: net.network, peer: net.network.adding(1))
        }
        return SteeringConfig(customer: chain.customer, namespace: ns,
                              lan: .init(interface: topo.lanGateway.interface, gateway: chain.lan.gateway, subnet: chain.lan.subnet),
                              paths: links, defaultPath: chain.defaultPath,
                              rules: (chain.classifier?.rules ?? []).map(SteeringRule.init), flowCache: chain.flowCache)
    }
}

extension SteeringRule {
    /// The forwarder's form of a descriptor rule.
    package init(_ rule: ClassifierRule) {
        let target: Target = switch rule.target {
        case .path(let p): .path(p)
        case .drop: .drop
        }
        self.init(name: rule.name, priority: rule.priority, match: rule.match, target: target)
    }
}
