import VCPEDescriptor
import VCPENet
import VCPENftables

/// The nftables table each service of a chain gets, in its own namespace.
///
/// A firewall filters forwarded traffic between its LAN-side interfaces (toward the
/// customer) and its WAN-side ones (toward the router). A router masquerades on `wan` and
/// forwards ports; the firewalls between it and the LAN accept what it forwards, and the
/// router itself lets nothing else in from the WAN side.
public enum ServiceTables {
    public static let tableName = "vcpe"

    /// Where a VPN service's encrypted traffic comes from and goes to: its address toward the
    /// router and its UDP port. The router forwards that port from the WAN address to it,
    /// and firewalls in between let the tunnel through both ways.
    public struct Tunnel: Sendable, Hashable {
        public var address: IPAddress
        public var port: UInt16
        public init(address: IPAddress, port: UInt16) {
            self.address = address
            self.port = port
        }
    }

    /// The table for `service`, or nil for services that need none. `tunnel` is given to
    /// the services the VPN's encrypted traffic crosses.
    public static func table(for service: Service, in chain: Chain, topology: Topology, tunnel: Tunnel? = nil) -> NftTable? {
        let ns = KernelNames.namespace(customer: chain.customer, service: service.name)
        switch service.kind {
        case .firewall(let fw):
            return firewall(fw, interfaces: interfaces(of: ns, in: topology), portForwards: forwards(chain), tunnel: tunnel)
        case .router(let rt):
            return router(rt, wanAddress: chain.wan.address.address, tunnel: tunnel)
        case .vpn:
            return nil
        }
    }

    /// A service's interfaces by side: LAN-facing ones are downstream ends of links, and so on.
    public static func interfaces(of namespace: String, in topology: Topology) -> (lan: [String], wan: [String]) {
        let lan = topology.links.filter { $0.downstream.namespace == namespace }.map(\.downstream.interface)
        let wan = topology.links.filter { $0.upstream.namespace == namespace }.map(\.upstream.interface)
        return (lan.sorted(), wan.sorted())
    }

    package static func forwards(_ chain: Chain) -> [PortForward] {
        if case .router(let rt) = chain.router.kind { return rt.portForwards }
        return []
    }

    // MARK: - Firewall

    public static func firewall(_ fw: Firewall, interfaces: (lan: [String], wan: [String]), portForwards: [PortForward],
                                tunnel: Tunnel? = nil) -> NftTable {
        var rules: [NftRule] = [
            NftRule([.ctState([.established, .related])], [.accept], comment: "established"),
            NftRule([.ctState([.invalid])], [.drop], comment: "invalid"),
        ]
        for (i, f) in portForwards.enumerated() {
            let port = f.toPort.map { PortRange($0, $0 + (f.port.hi - f.port.lo)) } ?? f.port
            rules.append(NftRule([zone(interfaces.wan), .destination(.prefix(IPPrefix(f.toAddress, 32))),
                                  .destinationPort(f.proto == .tcp ? .tcp : .udp, .range(port))],
                                 [.accept], comment: "port-forward-\(i)"))
        }
        if let tunnel {
            rules.append(NftRule([zone(interfaces.wan), .destination(.prefix(IPPrefix(tunnel.address, 32))),
                                  .destinationPort(.udp, .range(PortRange(tunnel.port, tunnel.port)))], [.accept], comment: "vpn-in"))
            rules.append(NftRule([zone(interfaces.lan), .source(.prefix(IPPrefix(tunnel.address, 32))),
                                  .sourcePort(.udp, .range(PortRange(tunnel.port, tunnel.port)))], [.accept], comment: "vpn-out"))
        }
        for r in fw.rules { rules += translate(r, interfaces: interfaces) }
        if fw.defaultVerdict == .reject {
            rules.append(NftRule([.l4proto(6)], [.reject(.tcpReset)], comment: "default"))
            rules.append(NftRule([], [.reject(.portUnreachable)], comment: "default"))
        }
        let policy: BaseChain.Policy = fw.defaultVerdict == .accept ? .accept : .drop
        return NftTable(family: .inet, name: tableName, counters: fw.rules.map(\.name), chains: [
            NftChain(name: "forward", base: BaseChain(type: .filter, hook: .forward, priority: 0, policy: policy), rules: rules),
        ])
    }

    package static func zone(_ names: [String]) -> Match {
        names.count == 1 ? .iifname(names[0]) : .iifnameIn(names)
    }

    /// One descriptor rule; more than one nft rule when it spans IP versions, or rejects
    /// traffic of any protocol (TCP gets a reset, the rest ICMP).
    package static func translate(_ r: FirewallRule, interfaces: (lan: [String], wan: [String])) -> [NftRule] {
        var base: [Match] = []
        switch r.from {
        case .lan?: base.append(zone(interfaces.lan))
        case .wan?: base.append(zone(interfaces.wan))
        case nil: break
        }
        let families: [IPAddress.Family?] = {
            let used = Set((r.src + r.dst).map(\.family))
            return used.isEmpty ? [nil] : [.v4, .v6].filter { used.contains($0) }
        }()
        var out: [NftRule] = []
        for family in families {
            let src = r.src.filter { $0.family == family }, dst = r.dst.filter { $0.family == family }
            // A rule with addresses of one side only in the other family cannot match here.
            if family != nil, (!r.src.isEmpty && src.isEmpty) || (!r.dst.isEmpty && dst.isEmpty) { continue }
            var m = base
            if let v = addressValue(src) { m.append(.source(v)) }
            if let v = addressValue(dst) { m.append(.destination(v)) }
            switch r.proto {
            case .tcp, .udp:
                let p: TransportProtocol = r.proto == .tcp ? .tcp : .udp
                if let v = portValue(r.sport) { m.append(.sourcePort(p, v)) }
                if let v = portValue(r.dport) { m.append(.destinationPort(p, v)) }
                if r.sport.isEmpty && r.dport.isEmpty { m.append(.l4proto(p.number)) }
            case .icmp:
                m.append(.l4proto(family == .v6 ? 58 : 1))
            case .any:
                break
            }
            let counter = Statement.namedCounter(r.name)
            switch r.action {
            case .accept: out.append(NftRule(m, [counter, .accept], comment: r.name))
            case .drop: out.append(NftRule(m, [counter, .drop], comment: r.name))
            case .reject where r.proto == .tcp: out.append(NftRule(m, [counter, .reject(.tcpReset)], comment: r.name))
            case .reject where r.proto == .any:
                out.append(NftRule(m + [.l4proto(6)], [counter, .reject(.tcpReset)], comment: r.name))
                out.append(NftRule(m, [counter, .reject(.portUnreachable)], comment: r.name))
            case .reject: out.append(NftRule(m, [counter, .reject(.portUnreachable)], comment: r.name))
            }
        }
        return out
    }

    package static func addressValue(_ ps: [IPPrefix]) -> Match.AddressValue? {
        switch ps.count {
        case 0: nil
        case 1: .prefix(ps[0])
        default: .anyOf(ps)
        }
    }

    package static func portValue(_ rs: [PortRange]) -> Match.PortValue? {
        switch rs.count {
        case 0: nil
        case 1: .range(rs[0])
        default: .anyOf(rs)
        }
    }

    // MARK: - Router

    public static func router(_ rt: Router, wanAddress: IPAddress, tunnel: Tunnel? = nil) -> NftTable? {
        guard rt.nat == .masquerade || !rt.portForwards.isEmpty || tunnel != nil else { return nil }
        let wan = KernelNames.wanInterface
        var chains: [NftChain] = []
        if !rt.portForwards.isEmpty || tunnel != nil {
            var rules = rt.portForwards.enumerated().map { i, f in
                NftRule([.iifname(wan), .destination(.prefix(IPPrefix(wanAddress, 32))),
                         .destinationPort(f.proto == .tcp ? .tcp : .udp, .range(f.port))],
                        [.dnat(f.toAddress, port: f.toPort)], comment: "port-forward-\(i)")
            }
            // Handshakes the peer starts reach the VPN service through this forward.
            if let tunnel {
                rules.append(NftRule([.iifname(wan), .destination(.prefix(IPPrefix(wanAddress, 32))),
                                      .destinationPort(.udp, .range(PortRange(tunnel.port, tunnel.port)))],
                                     [.dnat(tunnel.address, port: nil)], comment: "vpn"))
            }
            chains.append(NftChain(name: "prerouting", base: BaseChain(type: .nat, hook: .prerouting, priority: -100, policy: .accept), rules: rules))
        }
        if rt.nat == .none, let tunnel {
            // The tunnel's transit address means nothing outside: it leaves as the WAN address.
            chains.append(NftChain(name: "postrouting", base: BaseChain(type: .nat, hook: .postrouting, priority: 100, policy: .accept),
                                   rules: [NftRule([.oifname(wan), .source(.prefix(IPPrefix(tunnel.address, 32)))], [.masquerade], comment: "vpn")]))
        }
        if rt.nat == .masquerade {
            // Behind NAT the LAN is reached from the WAN only through a port forward or by
            // replies: the firewalls cannot tell, their conntrack does not see this DNAT.
            chains.append(NftChain(name: "forward", base: BaseChain(type: .filter, hook: .forward, priority: 0, policy: .accept), rules: [
                NftRule([.iifname(wan), .ctState([.established, .related])], [.accept], comment: "established"),
                NftRule([.iifname(wan), .ctStatus([.dnat])], [.accept], comment: "port-forwards"),
                NftRule([.iifname(wan)], [.counter, .drop], comment: "not-forwarded"),
            ]))
            chains.append(NftChain(name: "postrouting", base: BaseChain(type: .nat, hook: .postrouting, priority: 100, policy: .accept),
                                   rules: [NftRule([.oifname(wan)], [.masquerade], comment: "masquerade")]))
        }
        return NftTable(family: .ip, name: tableName, chains: chains)
    }
}
