import VCPENet

/// nftables address families vcpe uses (NFPROTO_* values).
public enum NftFamily: String, Sendable, Hashable, Codable, CaseIterable {
    case inet, ip, ip6, netdev

    public var value: UInt8 {
        switch self {
        case .inet: 1
        case .ip: 2
        case .ip6: 10
        case .netdev: 5
        }
    }

    public init?(value: UInt32) {
        guard let f = Self.allCases.first(where: { UInt32($0.value) == value }) else { return nil }
        self = f
    }
}

/// A whole table: what one transaction installs or replaces.
public struct NftTable: Sendable, Hashable {
    public var family: NftFamily
    public var name: String
    /// Named counters (nft `counter NAME {}`), referenced by `Statement.namedCounter`.
    public var counters: [String] = []
    public var sets: [NftSet] = []
    public var chains: [NftChain] = []
    /// Kept in the table's user data; vcpe records there what it installed.
    public var comment: String?

    public init(family: NftFamily, name: String, counters: [String] = [], sets: [NftSet] = [], chains: [NftChain] = [],
                comment: String? = nil) {
        self.family = family
        self.name = name
        self.counters = counters
        self.sets = sets
        self.chains = chains
        self.comment = comment
    }

    public var ruleCount: Int { chains.reduce(0) { $0 + $1.rules.count } }
}

public struct NftChain: Sendable, Hashable {
    public var name: String
    /// nil: a regular chain, reached only by jump or goto.
    public var base: BaseChain?
    public var rules: [NftRule]

    public init(name: String, base: BaseChain? = nil, rules: [NftRule] = []) {
        self.name = name
        self.base = base
        self.rules = rules
    }
}

public struct BaseChain: Sendable, Hashable {
    public enum ChainType: String, Sendable, Hashable { case filter, nat, route }
    public enum Hook: String, Sendable, Hashable {
        case prerouting, input, forward, output, postrouting, ingress

        /// NF_INET_* (NF_NETDEV_INGRESS is 0 as well).
        public var number: UInt32 {
            switch self {
            case .prerouting, .ingress: 0
            case .input: 1
            case .forward: 2
            case .output: 3
            case .postrouting: 4
            }
        }
    }
    public enum Policy: String, Sendable, Hashable { case accept, drop }

    public var type: ChainType
    public var hook: Hook
    public var priority: Int32
    public var policy: Policy?
    /// netdev ingress chains name their device.
    public var device: String?

    public init(type: ChainType, hook: Hook, priority: Int32, policy: Policy? = nil, device: String? = nil) {
        self.type = type
        self.hook = hook
        self.priority = priority
        self.policy = policy
        self.device = device
    }
}

/// A named set; anonymous sets come from matches with several values.
public struct NftSet: Sendable, Hashable {
    public enum KeyType: String, Sendable, Hashable {
        case ipv4Address = "ipv4_addr", ipv6Address = "ipv6_addr", inetService = "inet_service", ifname

        /// nft's datatype numbers, as stored in the kernel.
        var datatype: UInt32 {
            switch self {
            case .ipv4Address: 7
            case .ipv6Address: 8
            case .inetService: 13
            case .ifname: 41
            }
        }

        var length: UInt32 {
            switch self {
            case .ipv4Address: 4
            case .ipv6Address: 16
            case .inetService: 2
            case .ifname: 16
            }
        }
    }

    public var name: String
    public var keyType: KeyType
    /// Prefixes and ranges need an interval set.
    public var interval: Bool
    public var elements: [SetElement]

    public init(name: String, keyType: KeyType, interval: Bool, elements: [SetElement]) {
        self.name = name
        self.keyType = keyType
        self.interval = interval
        self.elements = elements
    }
}

public enum SetElement: Sendable, Hashable {
    case prefix(IPPrefix)
    case ports(PortRange)
    case interface(String)
}

public struct NftRule: Sendable, Hashable {
    public var matches: [Match]
    public var statements: [Statement]
    /// Shown by `nft list`; vcpe names rules after the descriptor's rule names.
    public var comment: String?

    public init(_ matches: [Match] = [], _ statements: [Statement], comment: String? = nil) {
        self.matches = matches
        self.statements = statements
        self.comment = comment
    }
}

public enum TransportProtocol: String, Sendable, Hashable {
    case tcp, udp

    public var number: UInt8 { self == .tcp ? 6 : 17 }
}

public enum CtState: String, Sendable, Hashable, CaseIterable, Comparable {
    case invalid, established, related, new, untracked

    /// NF_CT_STATE_* bits as nft compares them.
    var bit: UInt32 {
        switch self {
        case .invalid: 1
        case .established: 2
        case .related: 4
        case .new: 8
        case .untracked: 64
        }
    }

    public static func < (a: CtState, b: CtState) -> Bool { a.bit < b.bit }
}

public enum CtStatus: String, Sendable, Hashable, CaseIterable, Comparable {
    case snat, dnat

    /// IPS_SRC_NAT and IPS_DST_NAT bits.
    var bit: UInt32 { self == .snat ? 0x10 : 0x20 }

    public static func < (a: CtStatus, b: CtStatus) -> Bool { a.bit < b.bit }
}

/// One condition of a rule. Dependencies (`meta nfproto`, `meta l4proto`) are added by the
/// compiler where nft would add them, so the kernel holds exactly what `nft -f` installs.
public enum Match: Sendable, Hashable {
    public enum AddressValue: Sendable, Hashable {
        case prefix(IPPrefix)
        /// An anonymous interval set.
        case anyOf([IPPrefix])
        /// A named set of the table; its family decides the header.
        case set(String, IPAddress.Family)
    }

    public enum PortValue: Sendable, Hashable {
        case range(PortRange)
        case anyOf([PortRange])
        case set(String)
    }

    case iifname(String)
    case oifname(String)
    /// Any of several interfaces (an anonymous set of names).
    case iifnameIn([String])
    case oifnameIn([String])
    case nfproto(IPAddress.Family)
    case l4proto(UInt8)
    case source(AddressValue)
    case destination(AddressValue)
    case sourcePort(TransportProtocol, PortValue)
    case destinationPort(TransportProtocol, PortValue)
    case icmpType(UInt8)
    case icmpv6Type(UInt8)
    case ctState(Set<CtState>)
    /// Any of these conntrack status bits (`ct status dnat`: the connection was DNAT-ed here).
    case ctStatus(Set<CtStatus>)
    case ctMark(UInt32)
    case mark(UInt32)
}

public enum Statement: Sendable, Hashable {
    public enum RejectKind: Sendable, Hashable {
        /// ICMP(v6) port unreachable for the packet's family (icmpx in inet tables).
        case portUnreachable
        case tcpReset
    }

    public enum TimeUnit: String, Sendable, Hashable {
        case second, minute, hour

        var seconds: UInt64 { self == .second ? 1 : self == .minute ? 60 : 3600 }
    }

    case counter
    case namedCounter(String)
    case log(prefix: String?)
    case limit(rate: UInt64, per: TimeUnit, burst: UInt32)
    case setMark(UInt32)
    case setCtMark(UInt32)
    case masquerade
    case snat(IPAddress, port: UInt16?)
    case dnat(IPAddress, port: UInt16?)
    case accept
    case drop
    case reject(RejectKind)
    case jump(String)
    case goto(String)
    case `return`
}
