import VCPEDescriptor
import VCPENet

/// How an observed object differs from what vcpe makes while being there: a field of the
/// object, so that it is never equal to the desired one and the plan repairs it.
public enum Drift: String, Sendable, Hashable, Codable {
    /// A veth pair intact but for an end down or an Ethernet address not the stable one.
    case ends
    /// What is left of a veth pair: one end, or ends that are not each other's peer.
    case broken
    /// A veth nobody wants.
    case stray
    /// A WireGuard device whose link is down.
    case down
    /// A WireGuard daemon whose device is not in the customer's namespace.
    case notInNamespace
    /// A WireGuard daemon that does not answer on its socket.
    case notAnswering
    /// A chain the forwarder runs on links re-created since it opened them.
    case staleLinks
    /// A chain file left without a forwarder to run it.
    case notRunning
    /// A chain file the running forwarder has not loaded.
    case notLoaded
    /// A chain a forwarder of another vcpe build runs (the binary was upgraded under it).
    case otherBuild
}

/// One kind of kernel object vcpe manages. A kind says everything about itself: its
/// identity, place in the order, description, how to find it on the host and how to make
/// and remove it. Adding a kind is one file and its line in `HostObject.kinds`.
public protocol HostObjectKind: Sendable, Hashable, Codable {
    /// Its name in plans (`vcpe plan --json`).
    static var kindName: String { get }
    /// Creation order: a thing's dependencies have lower ranks; removal runs in reverse.
    static var rank: Int { get }
    /// Identity: two objects with the same id are one kernel object in different states.
    var id: String { get }
    /// What a person reads in `vcpe plan`.
    var summary: String { get }
    /// The namespace it lives in (nil: the host).
    var namespaceName: String? { get }
    var drift: Drift? { get }
    /// Whether it lives on one of `ends` and goes when that interface is deleted.
    func hangs(on ends: Set<Topology.Endpoint>) -> Bool
    /// The ends a (re)made object deletes and makes anew, taking what hung on them.
    var remadeEnds: [Topology.Endpoint] { get }

    /// Makes it; a create that fails leaves nothing of itself behind.
    func create(on host: any HostKernel, _ content: Desired) throws
    /// Turns `current` (the same id) into this one; by default removes it and creates anew.
    func update(from current: Self, on host: any HostKernel, _ content: Desired) throws
    func remove(from host: any HostKernel, _ content: Desired) throws

    /// What the observer should read for this kind (host links, sysctls), given the desired state.
    static func wants(_ desired: HostState, customer: String, _ wants: inout HostView.Wants)
    /// Adds this kind's objects of the customer found in `view`.
    static func observe(_ view: HostView, into out: inout HostState) throws
}

extension HostObjectKind {
    public var drift: Drift? { nil }
    public func hangs(on ends: Set<Topology.Endpoint>) -> Bool { false }
    public var remadeEnds: [Topology.Endpoint] { [] }
    /// A create that fails puts back what was removed, so a failed update leaves the object
    /// as it was (the executor undoes only the actions before it). With the new content: a
    /// kind whose object carries content (tables, devices, chains) updates in place instead.
    public func update(from current: Self, on host: any HostKernel, _ content: Desired) throws {
        try current.remove(from: host, content)
        try undoing(true, { try current.create(on: host, content) }) { try create(on: host, content) }
    }
    public static func wants(_ desired: HostState, customer: String, _ wants: inout HostView.Wants) {}
}

/// Runs `steps` after something was made; if they fail, `undo` takes it away again (best
/// effort: the error that counts is the step's).
func undoing(_ made: Bool, _ undo: () throws -> Void, _ steps: () throws -> Void) throws {
    do {
        try steps()
    } catch {
        if made { try? undo() }
        throw error
    }
}

/// One kernel object of any kind, in the form both the planner and the observer speak.
/// Equality is the drift check: an observed object equal to the desired one needs nothing.
public struct HostObject: Sendable, Hashable, Codable {
    /// Every kind, in no particular order (ranks order them).
    public static let kinds: [any HostObjectKind.Type] = [
        NamespaceObject.self, BridgeObject.self, VethObject.self, BridgePortObject.self, SysctlObject.self,
        WireGuardObject.self, AddressObject.self, RouteObject.self, PolicyRuleObject.self, NftTableObject.self,
        SteeringObject.self,
    ]

    public let kind: any HostObjectKind

    /// What every kind asks to be read for a customer's `desired` state.
    public static func wants(_ desired: HostState, customer: String) -> HostView.Wants {
        var wants = HostView.Wants()
        for kind in kinds { kind.wants(desired, customer: customer, &wants) }
        return wants
    }

    /// Every kind's objects found in what was read.
    public static func observe(_ view: HostView) throws -> HostState {
        var out = HostState()
        for kind in kinds { try kind.observe(view, into: &out) }
        return out
    }

    public init(_ kind: some HostObjectKind) { self.kind = kind }

    public var id: String { kind.id }
    public var rank: Int { type(of: kind).rank }
    public var summary: String { kind.summary }
    public var namespace: String? { kind.namespaceName }
    public var drift: Drift? { kind.drift }
    public func hangs(on ends: Set<Topology.Endpoint>) -> Bool { kind.hangs(on: ends) }
    public var remadeEnds: [Topology.Endpoint] { kind.remadeEnds }
    /// The object as a `K`, if it is one.
    public func `as`<K: HostObjectKind>(_: K.Type) -> K? { kind as? K }

    public func create(on host: any HostKernel, _ content: Desired) throws { try kind.create(on: host, content) }
    public func remove(from host: any HostKernel, _ content: Desired) throws { try kind.remove(from: host, content) }
    public func update(from current: HostObject, on host: any HostKernel, _ content: Desired) throws {
        func update<K: HostObjectKind>(_ wanted: K) throws {
            guard let current = current.kind as? K else { throw StateError("cannot update \(current.summary) into \(wanted.summary)") }
            try wanted.update(from: current, on: host, content)
        }
        try update(kind)
    }

    public static func == (a: HostObject, b: HostObject) -> Bool { AnyHashable(a.kind) == AnyHashable(b.kind) }
    public func hash(into h: inout Hasher) { h.combine(AnyHashable(kind)) }

    /// `{"KIND": {fields}}`, the form plans have always had.
    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: KindKey.self)
        try c.encode(kind, forKey: KindKey(type(of: kind).kindName))
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: KindKey.self)
        guard c.allKeys.count == 1, let key = c.allKeys.first,
              let k = Self.kinds.first(where: { $0.kindName == key.stringValue }) else {
            throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: "not one known kind of host object"))
        }
        kind = try c.decode(k, forKey: key)
    }

    struct KindKey: CodingKey {
        var stringValue: String
        init(_ s: String) { stringValue = s }
        init?(stringValue s: String) { stringValue = s }
        var intValue: Int? { nil }
        init?(intValue: Int) { nil }
    }
}

/// What is (observed) or should be (desired) on the host for one customer, by identity.
public struct HostState: Sendable, Hashable {
    public var objects: [String: HostObject] = [:]

    public init(_ objects: [HostObject] = []) {
        for o in objects { insert(o) }
    }

    public mutating func insert(_ o: HostObject) { objects[o.id] = o }
    public mutating func insert(_ k: some HostObjectKind) { insert(HostObject(k)) }
    public var isEmpty: Bool { objects.isEmpty }
    /// The objects of one kind.
    public func all<K: HostObjectKind>(_: K.Type) -> [K] { objects.values.compactMap { $0.kind as? K } }
}

extension Topology.Endpoint {
    /// The Ethernet address vcpe gives the interface (KernelNames.stableMAC).
    package var stableMAC: [UInt8] { KernelNames.stableMAC(namespace: namespace, interface: interface) }
}
