import VCPEDescriptor

/// A packet's classification key: the fields rules may match.
public struct FlowKey: Sendable, Hashable {
    public var src: IPAddress
    public var dst: IPAddress
    public var proto: UInt8
    public var sport: UInt16
    public var dport: UInt16
    public var dscp: UInt8

    public init(src: IPAddress, dst: IPAddress, proto: UInt8, sport: UInt16 = 0, dport: UInt16 = 0, dscp: UInt8 = 0) {
        self.src = src
        self.dst = dst
        self.proto = proto
        self.sport = sport
        self.dport = dport
        self.dscp = dscp
    }
}

/// First match by rule order, one rule at a time: the oracle the vector engines are
/// tested against, never a product path.
public struct LinearClassifier: Sendable {
    public let rules: [ClassifierRule.Match]

    public init(rules: [ClassifierRule.Match]) { self.rules = rules }

    public func classify(_ k: FlowKey) -> Int? {
        rules.firstIndex { Self.matches($0, k) }
    }

    public static func matches(_ m: ClassifierRule.Match, _ k: FlowKey) -> Bool {
        if let n = m.proto.number, n != k.proto { return false }
        if let d = m.dscp, d != k.dscp { return false }
        if !m.src.isEmpty, !m.src.contains(where: { $0.contains(k.src) }) { return false }
        if !m.dst.isEmpty, !m.dst.contains(where: { $0.contains(k.dst) }) { return false }
        if !m.sport.isEmpty, !m.sport.contains(where: { $0.contains(k.sport) }) { return false }
        if !m.dport.isEmpty, !m.dport.contains(where: { $0.contains(k.dport) }) { return false }
        return true
    }
}
