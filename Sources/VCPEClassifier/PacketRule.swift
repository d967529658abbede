import VCPENet

/// One rule of the engine: every field is a prefix or range, nil or full range = any.
/// Rules are priority-ordered by their position: the first match wins.
public struct PacketRule: Sendable, Hashable {
    public var src: IPPrefix?
    public var dst: IPPrefix?
    public var proto: UInt8?
    public var sport: PortRange
    public var dport: PortRange
    /// The 6-bit DSCP value.
    public var dscp: UInt8?
    /// Which customer or VLAN the packet came in on, when the engine serves several.
    public var ingress: UInt32?

    public init(src: IPPrefix? = nil, dst: IPPrefix? = nil, proto: UInt8? = nil, sport: PortRange = .all,
                dport: PortRange = .all, dscp: UInt8? = nil, ingress: UInt32? = nil) {
        precondition(src == nil || dst == nil || src!.family == dst!.family, "a rule's addresses share a family")
        precondition(dscp.map { $0 < 64 } ?? true, "DSCP is 6 bits")
        self.src = src
        self.dst = dst
        self.proto = proto
        self.sport = sport
        self.dport = dport
        self.dscp = dscp
        self.ingress = ingress
    }

    /// The family its addresses fix, or nil when it matches both.
    public var family: IPAddress.Family? { src?.family ?? dst?.family }

    public func matches(_ k: FlowKey) -> Bool {
        if let f = family, f != k.src.family { return false }
        if let src, !src.contains(k.src) { return false }
        if let dst, !dst.contains(k.dst) { return false }
        if let proto, proto != k.proto { return false }
        if let dscp, dscp != k.dscp { return false }
        if let ingress, ingress != k.ingress { return false }
        return sport.contains(k.sport) && dport.contains(k.dport)
    }
}

/// A packet's classification key: the fields rules may match.
public struct FlowKey: Sendable, Hashable {
    public var src: IPAddress
    public var dst: IPAddress
    public var proto: UInt8
    public var sport: UInt16
    public var dport: UInt16
    public var dscp: UInt8
    public var ingress: UInt32

    public init(src: IPAddress, dst: IPAddress, proto: UInt8, sport: UInt16 = 0, dport: UInt16 = 0, dscp: UInt8 = 0,
                ingress: UInt32 = 0) {
        self.src = src
        self.dst = dst
        self.proto = proto
        self.sport = sport
        self.dport = dport
        self.dscp = dscp
        self.ingress = ingress
    }
}

/// First match by rule order, one rule at a time: the oracle the compiled engines are
/// tested against, never a product path.
public struct LinearClassifier: Sendable {
    public let rules: [PacketRule]

    public init(rules: [PacketRule]) { self.rules = rules }

    public func classify(_ k: FlowKey) -> Int? { rules.firstIndex { $0.matches(k) } }
}

extension PacketMatch {
    /// The engine's rules for this match: one per combination of its listed
    /// prefixes and port ranges (an empty list is "any").
    public var packetRules: [PacketRule] {
        func orAny<T>(_ list: [T]) -> [T?] { list.isEmpty ? [nil] : list.map { $0 } }
        var out: [PacketRule] = []
        for src in orAny(src) {
            for dst in orAny(dst) {
                // Rules of one family only: a v4 source with a v6 destination matches nothing.
                if let s = src, let d = dst, s.family != d.family { continue }
                for sport in orAny(sport) {
                    for dport in orAny(dport) {
                        out.append(PacketRule(src: src, dst: dst, proto: proto.number, sport: sport ?? .all,
                                              dport: dport ?? .all, dscp: dscp))
                    }
                }
            }
        }
        return out
    }
}
