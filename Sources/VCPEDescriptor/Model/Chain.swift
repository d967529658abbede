import VCPENet
/// A customer's chain descriptor, version 1, after validation.
/// Order is kept where the file has it (services, paths, rules): names and plans follow it.
public struct Chain: Sendable, Hashable, Codable {
    public static let apiVersion = "vcpe/v1"

    public var customer: String
    public var lan: LAN
    public var wan: WAN
    public var services: [Service]
    public var paths: [Path]
    public var classifier: Classifier?

    public func service(named name: String) -> Service? { services.first { $0.name == name } }
    public func path(named name: String) -> Path? { paths.first { $0.name == name } }

    /// The one router of the chain: validation guarantees it exists.
    public var router: Service { services.first { $0.kind.role == .router }! }

    /// The chain's VPN service and its settings, if it has one (validation allows one).
    public var vpn: (service: Service, settings: VPN)? {
        for s in services { if case .vpn(let v) = s.kind { return (s, v) } }
        return nil
    }

    /// The path unclassified traffic takes: the classifier's default, or the only path.
    public var defaultPath: String { classifier?.defaultPath ?? paths[0].name }

    /// Whether the steered data path caches flows in the kernel (on unless the classifier says).
    public var flowCache: Bool { classifier?.flowCache ?? true }
}

public struct LAN: Sendable, Hashable, Codable {
    public var subnet: IPPrefix
    public var gateway: IPAddress
    /// Existing host interfaces enslaved to the customer's LAN bridge.
    public var attach: [String]
}

public struct WAN: Sendable, Hashable, Codable {
    /// The router's WAN address with its prefix length (`203.0.113.10/24`).
    public var address: IPPrefix
    public var gateway: IPAddress
    /// Host bridge of the provider side, shared by customers; created when missing.
    public var segment: String
}

public struct Service: Sendable, Hashable, Codable {
    public var name: String
    public var kind: Kind

    public enum Kind: Sendable, Hashable, Codable {
        case firewall(Firewall)
        case router(Router)
        case vpn(VPN)

        public var role: NamespaceRole {
            switch self {
            case .firewall: .firewall
            case .router: .router
            case .vpn: .vpn
            }
        }
    }
}

/// What a service's process may use: its container's cgroup limits.
public struct Resources: Sendable, Hashable, Codable {
    public var memoryBytes: Int64
    public var pids: Int64

    public init(memoryBytes: Int64, pids: Int64) {
        self.memoryBytes = memoryBytes
        self.pids = pids
    }

    /// wireguard-go uses 10-20 MiB and a dozen threads.
    public static let vpnDefault = Resources(memoryBytes: 128 << 20, pids: 64)
    public static let memoryRange: ClosedRange<Int64> = (16 << 20)...(64 << 30)
    public static let pidsRange: ClosedRange<Int64> = 8...65536

    /// "64MiB", "2GiB": a whole number of MiB or GiB, in bytes; nil otherwise.
    public static func parseMemory(_ text: String) -> Int64? {
        let u = Array(text.utf8)
        for (unit, shift) in [("MiB", 20), ("GiB", 30)] where u.count > 3 && u.suffix(3).elementsEqual(unit.utf8) {
            // ASCII digits only (no sign, no Unicode digits), at most 12 of them.
            guard let n = asciiDecimal(String(decoding: u.dropLast(3), as: UTF8.self), maxDigits: 12).map(Int64.init),
                  n > 0, n <= Int64.max >> (shift + 1) else { return nil }
            return n << shift
        }
        return nil
    }
}

public enum Zone: String, Sendable, Hashable, Codable, CaseIterable { case lan, wan }
public struct Firewall: Sendable, Hashable, Codable {
    /// Policy for forwarded traffic that no rule matches.
    public var defaultVerdict: Verdict
    public var rules: [FirewallRule]
}

public struct FirewallRule: Sendable, Hashable, Codable {
    public var name: String
    public var action: Verdict
    /// nil: traffic from either side.
    public var from: Zone?
    public var proto: IPProtocolMatch
    /// Empty: any address.
    public var src: [IPPrefix]
    public var dst: [IPPrefix]
    /// Empty: any port.
    public var sport: [PortRange]
    public var dport: [PortRange]
}

public enum NATMode: String, Sendable, Hashable, Codable, CaseIterable { case masquerade, none }

public struct Router: Sendable, Hashable, Codable {
    public var nat: NATMode
    public var portForwards: [PortForward]
}

public struct PortForward: Sendable, Hashable, Codable {
    public enum Proto: String, Sendable, Hashable, Codable, CaseIterable { case tcp, udp }
    public var proto: Proto
    /// Ports on the WAN address.
    public var port: PortRange
    public var toAddress: IPAddress
    /// First port on the LAN host; nil keeps the WAN port.
    public var toPort: UInt16?
}

public struct VPN: Sendable, Hashable, Codable {
    public var address: IPPrefix
    public var listenPort: UInt16
    public var peers: [Peer]
    /// The limits of the container its daemon runs in.
    public var resources = Resources.vpnDefault

    public struct Peer: Sendable, Hashable, Codable {
        public var name: String
        /// 32 raw bytes of the peer's Curve25519 public key.
        public var publicKey: [UInt8]
        public var endpoint: Endpoint?
        public var allowedIPs: [IPPrefix]
        public var keepalive: UInt16?
        public var presharedKeyFile: String?
    }
}

public struct Endpoint: Sendable, Hashable, Codable, CustomStringConvertible {
    public var address: IPAddress
    public var port: UInt16
    public var description: String {
        address.family == .v6 ? "[\(address)]:\(port)" : "\(address):\(port)"
    }
}

public struct Path: Sendable, Hashable, Codable {
    public var name: String
    /// Service names in the order a packet from the LAN crosses them; the last is the router.
    public var hops: [String]
}

public struct Classifier: Sendable, Hashable, Codable {
    public var defaultPath: String
    /// Sorted by priority, lowest first: the first match wins.
    public var rules: [ClassifierRule]
    /// Whether established flows are forwarded by the kernel's flow cache (tc eBPF) rather
    /// than packet by packet in userspace: off for comparison, or for rules that must see
    /// every packet.
    public var flowCache = true

    public init(defaultPath: String, rules: [ClassifierRule], flowCache: Bool = true) {
        self.defaultPath = defaultPath
        self.rules = rules
        self.flowCache = flowCache
    }

    /// State written before the setting existed reads as the default.
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        defaultPath = try c.decode(String.self, forKey: .defaultPath)
        rules = try c.decode([ClassifierRule].self, forKey: .rules)
        flowCache = try c.decodeIfPresent(Bool.self, forKey: .flowCache) ?? true
    }
}

public struct ClassifierRule: Sendable, Hashable, Codable {
    public enum Target: Sendable, Hashable, Codable {
        case path(String)
        case drop
    }

    public var name: String
    public var priority: Int
    public var match: Match
    public var target: Target

    public init(name: String, priority: Int, match: Match, target: Target) {
        self.name = name
        self.priority = priority
        self.match = match
        self.target = target
    }

    public typealias Match = PacketMatch
}

