import Foundation
import VCPEClassifier
import VCPENet

/// What the forwarder needs to steer one customer's traffic: written by the controller
/// (one file per customer), read by the forwarder at start and on every reload.
public struct SteeringConfig: Sendable, Hashable, Codable {
    public struct LAN: Sendable, Hashable, Codable {
        public var interface: String
        public var gateway: IPAddress
        public var subnet: IPPrefix

        public init(interface: String, gateway: IPAddress, subnet: IPPrefix) {
            self.interface = interface
            self.gateway = gateway
            self.subnet = subnet
        }
    }

    /// The classifier's end of a path's first link: its own transit address and the next
    /// service's, whose Ethernet address frames are sent to.
    public struct PathLink: Sendable, Hashable, Codable {
        public var name: String
        public var interface: String
        public var address: IPAddress
        public var peer: IPAddress

        public init(name: String, interface: String, address: IPAddress, peer: IPAddress) {
            self.name = name
            self.interface = interface
            self.address = address
            self.peer = peer
        }
    }

    public var customer: String
    public var namespace: String
    public var lan: LAN
    public var paths: [PathLink]
    public var defaultPath: String
    /// Priority order, first match wins.
    public var rules: [SteeringRule]
    /// Established flows forwarded by the kernel (tc eBPF), or every packet in userspace.
    public var flowCache: Bool

    public init(customer: String, namespace: String, lan: LAN, paths: [PathLink], defaultPath: String, rules: [SteeringRule],
                flowCache: Bool = true) {
        self.customer = customer
        self.namespace = namespace
        self.lan = lan
        self.paths = paths
        self.defaultPath = defaultPath
        self.rules = rules
        self.flowCache = flowCache
    }

    /// Files written before the flow cache existed read as cached.
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        customer = try c.decode(String.self, forKey: .customer)
        namespace = try c.decode(String.self, forKey: .namespace)
        lan = try c.decode(LAN.self, forKey: .lan)
        paths = try c.decode([PathLink].self, forKey: .paths)
        defaultPath = try c.decode(String.self, forKey: .defaultPath)
        rules = try c.decode([SteeringRule].self, forKey: .rules)
        flowCache = try c.decodeIfPresent(Bool.self, forKey: .flowCache) ?? true
    }

    /// Names the whole configuration: what the controller compares with what runs.
    public var digest: String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        return fnv1aDigest(String(decoding: (try? encoder.encode(self)) ?? Data(), as: UTF8.self))
    }

    /// The same sockets serve both: only the rules differ, so they can be swapped live.
    /// Turning the cache on or off opens the chain anew (with or without the program).
    package func sameLinks(as other: SteeringConfig) -> Bool {
        namespace == other.namespace && lan == other.lan && paths == other.paths && flowCache == other.flowCache
    }
}

/// One classifier rule as the forwarder runs it: what it matches and where matching
/// packets go. The same JSON as the descriptor's rule, so chain files keep their form.
public struct SteeringRule: Sendable, Hashable, Codable {
    public enum Target: Sendable, Hashable, Codable {
        case path(String)
        case drop
    }

    public var name: String
    public var priority: Int
    public var match: PacketMatch
    public var target: Target

    public init(name: String, priority: Int, match: PacketMatch, target: Target) {
        self.name = name
        self.priority = priority
        self.match = match
        self.target = target
    }
}
