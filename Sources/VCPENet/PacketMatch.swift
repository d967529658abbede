/// Verdicts and matches on packets, in the words both a firewall and the classifier use.
public enum Verdict: String, Sendable, Hashable, Codable, CaseIterable { case accept, drop, reject }
public enum IPProtocolMatch: String, Sendable, Hashable, Codable, CaseIterable {
    case tcp, udp, icmp, any

    public var number: UInt8? {
        switch self {
        case .tcp: 6
        case .udp: 17
        case .icmp: 1
        case .any: nil
        }
    }

    public var hasPorts: Bool { self == .tcp || self == .udp }
}

/// What a classifier rule matches: lists of prefixes and port ranges (empty is "any").
public struct PacketMatch: Sendable, Hashable, Codable {
    public var src: [IPPrefix] = []
    public var dst: [IPPrefix] = []
    public var proto: IPProtocolMatch = .any
    public var sport: [PortRange] = []
    public var dport: [PortRange] = []
    /// Differentiated services code point, 0-63.
    public var dscp: UInt8?

    public init() {}

    /// Engine rules of one family a compiled classifier set may hold, after a match's
    /// lists are expanded (one engine rule per combination of src, dst, sport, dport).
    public static let maxEngineRules = 250_000

    /// Whether every packet this match accepts is also accepted by `self`.
    /// Conservative: true only when each listed element is covered by one element here.
    public func covers(_ other: PacketMatch) -> Bool {
        func prefixes(_ mine: [IPPrefix], _ theirs: [IPPrefix]) -> Bool {
            if mine.isEmpty { return true }
            if theirs.isEmpty { return false }
            return theirs.allSatisfy { t in mine.contains { $0.contains(t) } }
        }
        func ports(_ mine: [PortRange], _ theirs: [PortRange]) -> Bool {
            if mine.isEmpty { return true }
            if theirs.isEmpty { return false }
            return theirs.allSatisfy { t in mine.contains { $0.contains(t) } }
        }
        guard proto == .any || proto == other.proto else { return false }
        guard dscp == nil || dscp == other.dscp else { return false }
        return prefixes(src, other.src) && prefixes(dst, other.dst)
            && ports(sport, other.sport) && ports(dport, other.dport)
    }
}
