import VCPEDescriptor
import VCPENet

/// One kernel object vcpe manages, in the form both the planner and the observer speak.
/// Equality is the drift check: an observed object equal to the desired one needs nothing.
public enum HostObject: Sendable, Hashable, Codable {
    case namespace(name: String)
    case bridge(name: String)
    /// A veth pair; `key` is the topology's stable link key.
    case veth(key: String, upstream: Topology.Endpoint, downstream: Topology.Endpoint)
    /// A host interface placed in a bridge (`lan.attach`, the veth host ends).
    case bridgePort(interface: String, bridge: String)
    case address(at: Topology.Endpoint, prefix: IPPrefix)
    case route(namespace: String, destination: IPPrefix, via: IPAddress?, device: String, table: Int)
    /// `inputInterface` "" and `fwmark` 0 match anything.
    case policyRule(namespace: String, inputInterface: String, fwmark: Int, table: Int, priority: Int)
    case sysctl(namespace: String, key: String, value: String)
    /// A WireGuard device; `digest` names its whole configuration (secrets included,
    /// revealing none), `publicKey` is what the operator gives the peers.
    case wireguard(namespace: String, interface: String, listenPort: Int, publicKey: String, digest: String)
    /// An nftables table; `digest` names its content so that any change of rules shows.
    case nftTable(namespace: String, family: String, name: String, rules: Int, digest: String)
    /// A chain in service on the forwarder (rules and links named by `digest`).
    case steering(customer: String, namespace: String, rules: Int, digest: String)

    /// What the observer appends to a veth's key when the pair is intact but an end is down
    /// or its Ethernet address is not the stable one (an apply killed between making the pair
    /// and setting it up, a change by hand): the update sets them, it does not re-create it.
    package static let endsDrift = " (ends)"

    /// Identity: two objects with the same id are the same kernel object in different states.
    public var id: String {
        switch self {
        case .namespace(let n): "netns \(n)"
        case .bridge(let n): "bridge \(n)"
        // A pair whose addresses drifted is the same pair in another state (an update).
        case .veth(let key, let up, let down): "veth \(key.hasSuffix(Self.endsDrift) ? String(key.dropLast(Self.endsDrift.count)) : key) \(up)<->\(down)"
        case .bridgePort(let i, _): "port \(i)"
        case .address(let at, let p): "address \(p) on \(at)"
        case .route(let ns, let d, _, _, let t): "route \(d) table \(t) in \(ns)"
        case .policyRule(let ns, let iif, let mark, _, let prio): "rule \(prio) iif \(iif) fwmark \(mark) in \(ns)"
        case .sysctl(let ns, let k, _): "sysctl \(k) in \(ns)"
        case .wireguard(let ns, let i, _, _, _): "wireguard \(i) in \(ns)"
        case .nftTable(let ns, let f, let n, _, _): "table \(f) \(n) in \(ns)"
        case .steering(let c, _, _, _): "steering \(c)"
        }
    }

    /// Creation order: a thing's dependencies sort before it; removal runs in reverse.
    /// Whether the object lives on one of `ends` and goes when its interface is deleted:
    /// addresses, routes through it, bridge membership, netdev chains and per-interface sysctls.
    public func hangs(on ends: Set<Topology.Endpoint>) -> Bool {
        switch self {
        case .address(let at, _): return ends.contains(at)
        case .route(let ns, _, _, let dev, _): return ends.contains(Topology.Endpoint(namespace: ns, interface: dev))
        case .bridgePort(let interface, _): return ends.contains(Topology.Endpoint(namespace: nil, interface: interface))
        case .nftTable(let ns, let family, _, _, _): return family == "netdev" && ends.contains { $0.namespace == ns }
        case .sysctl(let ns, let key, _):
            return ends.contains { $0.namespace == ns && key.split(whereSeparator: { $0 == "." || $0 == "/" }).contains(Substring($0.interface)) }
        default: return false
        }
    }

    public var rank: Int {
        switch self {
        case .namespace: 0
        case .bridge: 1
        case .veth: 2
        case .bridgePort: 3
        case .sysctl: 4
        case .wireguard: 5
        case .address: 6
        case .route: 7
        case .policyRule: 8
        case .nftTable: 9
        case .steering: 10
        }
    }

    /// What a person reads in `vcpe plan`.
    public var summary: String {
        switch self {
        case .namespace(let n): "namespace \(n)"
        case .bridge(let n): "bridge \(n) on the host"
        case .veth(_, let up, let down): "veth \(up) <-> \(down)"
        case .bridgePort(let i, let b): "host interface \(i) into bridge \(b)"
        case .address(let at, let p): "address \(p) on \(at)"
        case .route(let ns, let d, let via, let dev, let t):
            "route \(d.length == 0 ? "default" : d.description)\(via.map { " via \($0)" } ?? "") dev \(dev)\(t == 254 ? "" : " table \(t)") in \(ns)"
        case .policyRule(let ns, let iif, let mark, let t, let prio):
            "rule \(prio): \(iif.isEmpty ? "" : "iif \(iif) ")\(mark == 0 ? "" : "fwmark \(mark) ")lookup \(t) in \(ns)"
        case .sysctl(let ns, let k, let v): "sysctl \(k)=\(v) in \(ns)"
        case .wireguard(let ns, let i, let port, let key, _): "wireguard \(i) listening on udp \(port), public key \(key), in \(ns)"
        case .nftTable(let ns, let f, let n, let r, _): "nftables table \(f) \(n) (\(r) rules) in \(ns)"
        case .steering(let c, let ns, let r, _): "forwarder steering \(c) (\(r) classifier rules) from \(ns)"
        }
    }
}

/// What is (observed) or should be (desired) on the host for one customer, by identity.
public struct HostState: Sendable, Hashable {
    public var objects: [String: HostObject] = [:]

    public init(_ objects: [HostObject] = []) {
        for o in objects { insert(o) }
    }

    public mutating func insert(_ o: HostObject) { objects[o.id] = o }
    public var isEmpty: Bool { objects.isEmpty }
}

extension Topology.Endpoint {
    /// The Ethernet address vcpe gives the interface (KernelNames.stableMAC).
    package var stableMAC: [UInt8] { KernelNames.stableMAC(namespace: namespace, interface: interface) }
}
