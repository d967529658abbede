import VCPEDescriptor
import VCPENet
import VCPEForwarder
import VCPEPolicy
import VCPENetlink
import VCPENftables
import VCPESystem
import VCPEWireGuard

/// Reads what the kernel holds of one customer, in the planner's vocabulary. Only vcpe's
/// objects are reported: namespaces named `vcpe-CUSTOMER.*`, the customer's host links,
/// and inside its namespaces what vcpe could have made (static routes, its rule range,
/// its nftables table). The shared WAN bridge is reported but never as the customer's own.
public struct KernelObserver: HostObserver {
    /// What should be there: says which veth pairs, sysctls and ports to look for.
    public let desired: HostState
    /// Which WireGuard peers have configured endpoints (the rest are learnt).
    let wireguardDevices: [String: WireGuardDevice]
    let sockets: SocketCache
    let wireguard: any WireGuardDriver
    let steering: ForwarderClient

    init(desired: Desired, sockets: SocketCache, wireguard: any WireGuardDriver, steering: ForwarderClient) {
        self.desired = desired.state
        self.wireguardDevices = desired.wireguard
        self.sockets = sockets
        self.wireguard = wireguard
        self.steering = steering
    }

    public func observe(customer: String) throws -> HostState {
        var out = HostState()
        let mine = try sockets.namespaces(prefix: KernelNames.namespace(customer: customer, service: "")).filter(NetworkNamespace.exists)
        let wanted = Set(desired.objects.values.compactMap { if case .namespace(let n) = $0 { n } else { nil } })
        for n in mine { out.insert(.namespace(name: n)) }

        // The namespaces that should be there are read whole; on the host, which may hold
        // thousands of links, only the customer's own names are asked for.
        var snaps: [String: NamespaceSnapshot] = [:]
        for n in mine where wanted.contains(n) {
            let keys = desired.objects.values.compactMap { o -> String? in if case .sysctl(n, let k, _) = o { k } else { nil } }
            // One trip into the namespace opens both sockets and reads the sysctls.
            let sysctls = try sockets.open(n) { try keys.map { ($0, try Sysctl.readHere($0)) } }
            snaps[n] = try sockets.route(n).snapshot()
            try observeInside(n, snaps[n]!, try sockets.nft(n), sysctls, &out)
        }
        try observeWireGuard(customer, snaps, &out)
        let classifierLinks = snaps[KernelNames.classifierNamespace(customer: customer)].map { snap in
            Dictionary(snap.links.map { ($0.name, Int($0.index)) }, uniquingKeysWith: { a, _ in a })
        }
        steering.observe(customer: customer, wanted: desired.objects.values.contains { if case .steering = $0 { true } else { false } },
                         links: classifierLinks, into: &out)
        let hostLinks = try hostLinks(customer)
        observeHost(customer, hostLinks, &out)
        observeVeths(customer, hostLinks, snaps, &out)
        return out
    }

    /// The host links this customer may own or use, by name.
    private func hostLinks(_ customer: String) throws -> [String: LinkInfo] {
        var names: Set = [KernelNames.lanBridge(customer: customer), KernelNames.lanVethHost(customer: customer),
                          KernelNames.wanVethHost(customer: customer)]
        for o in desired.objects.values {
            switch o {
            case .bridge(let n): names.insert(n)
            case .bridgePort(let i, _): names.insert(i)
            default: break
            }
        }
        let host = try sockets.route(nil)
        var out: [String: LinkInfo] = [:]
        for n in names { if let l = try host.link(named: n) { out[n] = l } }
        return out
    }

    // MARK: - Host side

    private func observeHost(_ customer: String, _ host: [String: LinkInfo], _ out: inout HostState) {
        let lanBridge = KernelNames.lanBridge(customer: customer)
        let segments = desired.objects.values.compactMap { o -> String? in
            if case .bridge(let n) = o, n != lanBridge { n } else { nil }
        }
        for name in [lanBridge] + segments where host[name]?.kind == "bridge" { out.insert(.bridge(name: name)) }
        let byIndex = Dictionary(host.values.map { ($0.index, $0.name) }, uniquingKeysWith: { a, _ in a })
        let ownHostLinks: Set = [KernelNames.lanVethHost(customer: customer), KernelNames.wanVethHost(customer: customer)]
        for l in host.values {
            guard let m = l.masterIndex, let bridge = byIndex[m] else { continue }
            // Ports of the customer's own bridge; on a shared segment only the customer's link.
            if bridge == lanBridge || (segments.contains(bridge) && ownHostLinks.contains(l.name)) {
                out.insert(.bridgePort(interface: l.name, bridge: bridge))
            }
        }
    }

    // MARK: - Veth pairs

    /// A desired pair is there when both ends exist and each is the other's peer; what is
    /// left of a broken pair, and veths nobody wants, are reported for removal.
    private func observeVeths(_ customer: String, _ host: [String: LinkInfo], _ snaps: [String: NamespaceSnapshot], _ out: inout HostState) {
        func link(_ e: Topology.Endpoint) -> LinkInfo? {
            guard let ns = e.namespace else { return host[e.interface] }
            return snaps[ns]?.link(named: e.interface)
        }
        var claimed = Set<String>()
        for case .veth(let key, let up, let down) in desired.objects.values {
            let a = link(up), b = link(down)
            if a != nil { claimed.insert("\(up)") }
            if b != nil { claimed.insert("\(down)") }
            guard a != nil || b != nil else { continue }
            if let a, let b, a.kind == "veth", b.kind == "veth", a.peerIndex == b.index, b.peerIndex == a.index {
                // An intact pair with an end down or another Ethernet address drifted.
                let right = a.isUp && b.isUp && a.mac == up.stableMAC && b.mac == down.stableMAC
                out.insert(.veth(key: key + (right ? "" : HostObject.endsDrift), upstream: up, downstream: down))
            } else {
                out.insert(.veth(key: key + " (broken)", upstream: up, downstream: down))
            }
        }
        let hostVeths = [KernelNames.lanVethHost(customer: customer), KernelNames.wanVethHost(customer: customer)]
            .compactMap { host[$0] }.filter { $0.kind == "veth" }
        for (ns, links) in [(String?.none, hostVeths)] + snaps.map({ (Optional($0.key), $0.value.links) }) {
            for l in links where l.kind == "veth" {
                let end = Topology.Endpoint(namespace: ns, interface: l.name)
                if !claimed.contains("\(end)") {
                    out.insert(.veth(key: "stray \(end)", upstream: end, downstream: end))
                }
            }
        }
    }

    // MARK: - WireGuard

    /// The customer's device, wherever its daemon runs: in the namespace that holds its
    /// interface, else (a daemon whose device is elsewhere or that does not answer) marked
    /// so that apply replaces it and delete stops it.
    private func observeWireGuard(_ customer: String, _ snaps: [String: NamespaceSnapshot], _ out: inout HostState) throws {
        let interface = KernelNames.wireguardInterface(customer: customer)
        let wanted = desired.objects.values.first { if case .wireguard = $0 { true } else { false } }
        let endpoints = wireguardDevices.values.reduce(into: Set<[UInt8]>()) { $0.formUnion($1.config.configuredEndpoints) }
        // A daemon's limits are what its cgroup holds; a kernel device has none to differ.
        let wantedLimits = wanted.flatMap { wireguardDevices[$0.id]?.limits }
        let holder = snaps.first { $0.value.link(named: interface) != nil }
        let ns = holder?.key ?? wanted?.namespace ?? KernelNames.namespace(customer: customer, service: "?")
        if let state = try wireguard.state(of: interface, in: ns, configuredEndpoints: endpoints) {
            let port = Int(state.config.listenPort)
            guard let link = holder?.value.link(named: interface) else {
                out.insert(.wireguard(namespace: ns, interface: interface, listenPort: port, publicKey: "?", digest: "not-in-namespace"))
                return
            }
            let limits = wireguard.limits(of: interface) ?? wantedLimits
            out.insert(.wireguard(namespace: ns, interface: interface, listenPort: port, publicKey: state.config.privateKey.publicKey.base64,
                                  digest: (limits.map { WireGuardDevice.digest(state.config.digest, $0) } ?? state.config.digest)
                                      + (link.isUp ? "" : " (down)")))
        } else if wanted != nil, wireguard.processID(of: interface) != nil {
            // Looked for only where a device is wanted: finding a process reads all of /proc.
            out.insert(.wireguard(namespace: ns, interface: interface, listenPort: 0, publicKey: "?", digest: "not-answering"))
        }
    }

    // MARK: - Inside a namespace

    private func observeInside(_ ns: String, _ snap: NamespaceSnapshot, _ nft: NftSocket, _ sysctls: [(String, String)],
                               _ out: inout HostState) throws {
        for (dev, addrs) in snap.addresses where dev != "lo" {
            for a in addrs where !(a.prefix.family == .v6 && IPPrefix("fe80::/10")!.contains(a.prefix.address)) {
                out.insert(.address(at: Topology.Endpoint(namespace: ns, interface: dev), prefix: a.prefix))
            }
        }
        for r in snap.routes where r.protocolNumber == RouteInfo.staticProtocol && r.destination.family == .v4 {
            out.insert(.route(namespace: ns, destination: r.destination, via: r.gateway, device: r.device ?? "?", table: Int(r.table)))
        }
        for r in snap.rules where DesiredState.policyRulePriorities.contains(Int(r.priority)) {
            out.insert(.policyRule(namespace: ns, inputInterface: r.inputInterface ?? "", fwmark: Int(r.fwmark ?? 0),
                                   table: Int(r.table), priority: Int(r.priority)))
        }
        for (key, value) in sysctls { out.insert(.sysctl(namespace: ns, key: key, value: value)) }
        for t in try nft.tables() where t.name == ServiceTables.tableName {
            let rules = try nft.rules(family: t.family, table: t.name).count
            out.insert(.nftTable(namespace: ns, family: t.family.rawValue, name: t.name, rules: rules,
                                 digest: TableObjects.digest(fromComment: t.comment)))
        }
    }
}
