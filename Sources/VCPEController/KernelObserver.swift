import VCPEDescriptor
import VCPENetlink
import VCPENftables
import VCPESystem

/// Reads what the kernel holds of one customer, in the planner's vocabulary. Only vcpe's
/// objects are reported: namespaces named `vcpe-CUSTOMER.*`, the customer's host links,
/// and inside its namespaces what vcpe could have made (static routes, its rule range,
/// its nftables table). The shared WAN bridge is reported but never as the customer's own.
public struct KernelObserver: HostObserver {
    /// What should be there: says which veth pairs, sysctls and ports to look for.
    public let desired: HostState

    public init(desired: HostState) { self.desired = desired }

    public func observe(customer: String) throws -> HostState {
        var out = HostState()
        let mine = try NetworkNamespace.list().filter { KernelNames.parseNamespace($0)?.customer == customer }
        let wanted = Set(desired.objects.values.compactMap { if case .namespace(let n) = $0 { n } else { nil } })
        for n in mine { out.insert(.namespace(name: n)) }

        // Snapshots of the host and of each namespace that should be there.
        var snaps: [String?: NamespaceSnapshot] = [nil: try RouteSocket().snapshot()]
        for n in mine where wanted.contains(n) {
            let s = try RouteSocket(namespace: n)
            snaps[n] = try s.snapshot()
            try observeInside(n, s, snaps[n]!, &out)
        }
        observeHost(customer, snaps[nil]!, &out)
        observeVeths(customer, snaps, &out)
        return out
    }

    // MARK: - Host side

    private func observeHost(_ customer: String, _ host: NamespaceSnapshot, _ out: inout HostState) {
        let lanBridge = KernelNames.lanBridge(customer: customer)
        let segments = desired.objects.values.compactMap { o -> String? in
            if case .bridge(let n) = o, n != lanBridge { n } else { nil }
        }
        for name in [lanBridge] + segments {
            if let l = host.link(named: name), l.kind == "bridge" { out.insert(.bridge(name: name)) }
        }
        let byIndex = Dictionary(host.links.map { ($0.index, $0.name) }, uniquingKeysWith: { a, _ in a })
        let ownHostLinks: Set = [KernelNames.lanVethHost(customer: customer), KernelNames.wanVethHost(customer: customer)]
        for l in host.links {
            guard let m = l.masterIndex, let bridge = byIndex[m] else { continue }
            // Every port of the customer's own bridge; on a shared segment only the customer's link.
            if bridge == lanBridge || (segments.contains(bridge) && ownHostLinks.contains(l.name)) {
                out.insert(.bridgePort(interface: l.name, bridge: bridge))
            }
        }
    }

    // MARK: - Veth pairs

    /// A desired pair is there when both ends exist and each is the other's peer; what is
    /// left of a broken pair, and veths nobody wants, are reported for removal.
    private func observeVeths(_ customer: String, _ snaps: [String?: NamespaceSnapshot], _ out: inout HostState) {
        var claimed = Set<String>()
        for case .veth(let key, let up, let down) in desired.objects.values {
            let a = snaps[up.namespace]?.link(named: up.interface), b = snaps[down.namespace]?.link(named: down.interface)
            if a != nil { claimed.insert("\(up)") }
            if b != nil { claimed.insert("\(down)") }
            guard a != nil || b != nil else { continue }
            if let a, let b, a.kind == "veth", b.kind == "veth", a.peerIndex == b.index, b.peerIndex == a.index {
                out.insert(.veth(key: key, upstream: up, downstream: down))
            } else {
                out.insert(.veth(key: key + " (broken)", upstream: up, downstream: down))
            }
        }
        let hostNames: Set = [KernelNames.lanVethHost(customer: customer), KernelNames.wanVethHost(customer: customer)]
        for (ns, snap) in snaps {
            for l in snap.links where l.kind == "veth" && (ns != nil || hostNames.contains(l.name)) {
                let end = Topology.Endpoint(namespace: ns, interface: l.name)
                if !claimed.contains("\(end)") {
                    out.insert(.veth(key: "stray \(end)", upstream: end, downstream: end))
                }
            }
        }
    }

    // MARK: - Inside a namespace

    private func observeInside(_ ns: String, _ sock: RouteSocket, _ snap: NamespaceSnapshot, _ out: inout HostState) throws {
        for (dev, addrs) in snap.addresses where dev != "lo" {
            for a in addrs where !(a.prefix.family == .v6 && IPPrefix("fe80::/10")!.contains(a.prefix.address)) {
                out.insert(.address(at: Topology.Endpoint(namespace: ns, interface: dev), prefix: a.prefix))
            }
        }
        for r in snap.routes where r.protocolNumber == RouteInfo.staticProtocol && r.destination.family == .v4 {
            out.insert(.route(namespace: ns, destination: r.destination, via: r.gateway, device: r.device ?? "?", table: Int(r.table)))
        }
        for r in snap.rules where DesiredState.policyRulePriorities.contains(Int(r.priority)) {
            out.insert(.policyRule(namespace: ns, inputInterface: r.inputInterface ?? "", table: Int(r.table), priority: Int(r.priority)))
        }
        for case .sysctl(let n, let key, _) in desired.objects.values where n == ns {
            out.insert(.sysctl(namespace: ns, key: key, value: try Sysctl.read(key, namespace: ns)))
        }
        let nft = try NftSocket(namespace: ns)
        for t in try nft.tables() where t.name == ServiceTables.tableName {
            let rules = try nft.rules(family: t.family, table: t.name).count
            out.insert(.nftTable(namespace: ns, family: t.family.rawValue, name: t.name, rules: rules,
                                 digest: FirewallTables.digest(fromComment: t.comment)))
        }
    }
}
