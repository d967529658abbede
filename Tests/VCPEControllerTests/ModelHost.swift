#if canImport(Glibc)
import Glibc
#endif
import Synchronization
import VCPEContainer
import VCPEDatapath
import VCPEDescriptor
import VCPEForwarder
import VCPENet
import VCPENetlink
import VCPENftables
import VCPEPolicy
@testable import VCPEWireGuard

/// A host in memory that behaves as the kernel does where the executor can tell: links
/// belong to namespaces and go with them, a veth end takes its peer along, addresses and
/// routes need their device and go with it, a table is replaced whole. Every change is
/// journalled, and any of them can be made to fail, so that plan execution and rollback
/// are tested without root.
final class ModelHost: HostKernel {
    struct Link: Hashable {
        var kind: String
        /// As the kernel numbers links: once, at creation.
        var index: Int32 = ModelHost.newIndex()
        var up = false
        var mac: [UInt8]?
        var master: String?
        /// A veth's other end: namespace ("" the host) and name.
        var peer: Place?
    }

    struct Place: Hashable, Comparable, CustomStringConvertible {
        var namespace: String
        var name: String
        static func < (a: Place, b: Place) -> Bool { (a.namespace, a.name) < (b.namespace, b.name) }
        var description: String { "\(namespace.isEmpty ? "host" : namespace)/\(name)" }
    }

    struct Failure: Error, CustomStringConvertible {
        var description: String
    }

    private static let lastIndex = Atomic<Int32>(0)
    static func newIndex() -> Int32 { lastIndex.add(1, ordering: .relaxed).newValue }

    var namespaces: Set<String> = []
    var links: [Place: Link] = [:]
    /// By "PLACE PREFIX".
    var addresses: [String: (place: Place, prefix: IPPrefix)] = [:]
    /// By "NAMESPACE DESTINATION table TABLE".
    var routes: [String: (namespace: String, route: RouteInfo)] = [:]
    /// By "NAMESPACE RULE".
    var rules: [String: (namespace: String, rule: RuleInfo)] = [:]
    var sysctls: [String: String] = [:]
    /// By "NAMESPACE FAMILY NAME": the digest of its text, and what nft would list of it.
    var tables: [String: String] = [:]
    var tableListing: [String: (comment: String?, rules: Int)] = [:]
    var devices: [String: (namespace: String, config: DeviceConfig?, limits: ContainerLimits)] = [:]
    var chains: [String: String] = [:]
    private(set) var journal: [String] = []
    /// Fails the change whose journal line this returns true for (before making it).
    var failWhen: (Int, String) -> Bool = { _, _ in false }

    func change(_ what: String) throws {
        let n = journal.count
        journal.append(what)
        if failWhen(n, what) { throw Failure(description: "model failure at change \(n): \(what)") }
    }

    /// Everything the host holds, one line an object, sorted: what tests compare.
    var state: [String] {
        var out = namespaces.map { "netns \($0)" }
        for (p, l) in links {
            out.append("link \(p) \(l.kind) \(l.up ? "up" : "down") mac \(l.mac.map { $0.map { String($0, radix: 16) }.joined(separator: ":") } ?? "-")"
                       + " master \(l.master ?? "-") peer \(l.peer.map(\.description) ?? "-")")
        }
        out += addresses.keys.map { "address \($0)" } + rules.keys.map { "rule \($0)" }
        out += routes.map { "route \($0.key) via \($0.value.route.gateway.map { "\($0)" } ?? "-") dev \($0.value.namespace)/\($0.value.route.device ?? "?")" }
        out += sysctls.map { "sysctl \($0.key)=\($0.value)" } + tables.map { "table \($0.key) \($0.value)" }
        out += devices.map { "wireguard \($0.key) in \($0.value.namespace) \($0.value.config?.digest ?? "unconfigured") \($0.value.limits)" }
        out += chains.map { "steering \($0.key) \($0.value)" }
        return out.sorted()
    }

    // MARK: HostKernel

    func links(in namespace: String?) throws -> any LinkOperations {
        guard namespace.map(namespaces.contains) ?? true else { throw Failure(description: "no namespace \(namespace!)") }
        return ModelLinks(host: self, namespace: namespace ?? "")
    }

    func tables(in namespace: String) throws -> any TableOperations {
        guard namespaces.contains(namespace) else { throw Failure(description: "no namespace \(namespace)") }
        return ModelTables(host: self, namespace: namespace)
    }

    func ensureNamespace(_ name: String) throws {
        guard !namespaces.contains(name) else { return }
        try change("ensure netns \(name)")
        namespaces.insert(name)
        links[.init(namespace: name, name: "lo")] = .init(kind: "loopback")
    }

    /// What lived in it goes with it; veth peers elsewhere go too.
    func removeNamespace(_ name: String) throws {
        try change("remove netns \(name)")
        namespaces.remove(name)
        for p in links.keys where p.namespace == name { dropLink(p) }
        sysctls = sysctls.filter { !$0.key.hasPrefix(name + " ") }
        tables = tables.filter { !$0.key.hasPrefix(name + " ") }
        tableListing = tableListing.filter { !$0.key.hasPrefix(name + " ") }
        rules = rules.filter { $0.value.namespace != name }
        // A kernel WireGuard device goes with its namespace.
        devices = devices.filter { $0.value.namespace != name }
    }

    func namespaceExists(_ name: String?) -> Bool { name.map(namespaces.contains) ?? true }

    func writeSysctl(_ key: String, _ value: String, namespace: String?) throws {
        try change("sysctl \(key)=\(value) in \(namespace ?? "host")")
        sysctls["\(namespace ?? "") \(key)"] = value
    }

    func disableIPv6(on interface: String) throws { try writeSysctl("net.ipv6.conf.\(interface).disable_ipv6", "1", namespace: nil) }

    private(set) var announced: [String] = []
    func announce(_ prefixes: [IPPrefix], on end: Topology.Endpoint) { announced += prefixes.map { "\($0) on \(end)" } }

    lazy var wireguard: any WireGuardDriver = ModelWireGuard(host: self)
    lazy var modelForwarder = ModelForwarder(host: self)
    var forwarder: any ForwarderControl { modelForwarder }

    /// A link and what hangs on it; a veth's peer with it.
    func dropLink(_ p: Place) {
        guard let l = links.removeValue(forKey: p) else { return }
        addresses = addresses.filter { $0.value.place != p }
        routes = routes.filter { !($0.value.namespace == p.namespace && $0.value.route.device == p.name) }
        for (q, var other) in links where other.master == p.name && q.namespace == p.namespace {
            other.master = nil
            links[q] = other
        }
        if let peer = l.peer { dropLink(peer) }
    }
}

final class ModelLinks: LinkOperations {
    unowned let host: ModelHost
    let namespace: String

    init(host: ModelHost, namespace: String) {
        self.host = host
        self.namespace = namespace
    }

    private func place(_ name: String) -> ModelHost.Place { .init(namespace: namespace, name: name) }

    private func existing(_ name: String) throws -> ModelHost.Link {
        guard let l = host.links[place(name)] else { throw ModelHost.Failure(description: "no link \(place(name))") }
        return l
    }

    func link(named name: String) throws -> LinkInfo? {
        guard let l = host.links[place(name)] else { return nil }
        let master = l.master.flatMap { host.links[place($0)]?.index }
        return LinkInfo(index: l.index, name: name, kind: l.kind, isUp: l.up, operState: l.up ? "up" : "down", mac: l.mac ?? [], mtu: 1500,
                        masterIndex: master, peerIndex: l.peer.flatMap { host.links[$0]?.index })
    }

    func setLink(_ name: String, up: Bool?, mtu: UInt32?, mac: [UInt8]?, newName: String?) throws {
        var l = try existing(name)
        try host.change("set link \(place(name)) up=\(up.map(String.init) ?? "-")")
        if let up { l.up = up }
        if let mac { l.mac = mac }
        host.links[place(name)] = l
    }

    func setMAC(_ name: String, _ mac: [UInt8]) throws { try setLink(name, up: nil, mtu: nil, mac: mac, newName: nil) }

    /// Absence is fine, as in the kernel bindings (which then send nothing).
    func removeLink(_ name: String) throws {
        guard host.links[place(name)] != nil else { return }
        try host.change("remove link \(place(name))")
        host.dropLink(place(name))
    }

    func ensureBridge(_ name: String) throws -> EnsureResult {
        if let l = host.links[place(name)] {
            guard l.kind == "bridge" else { throw ModelHost.Failure(description: "\(place(name)) is a \(l.kind)") }
            return .unchanged
        }
        try host.change("add bridge \(place(name))")
        host.links[place(name)] = .init(kind: "bridge")
        return .created
    }

    func ensureVeth(_ a: VethEnd, _ b: VethEnd, mtu: UInt32?) throws -> EnsureResult {
        if let have = host.links[place(a.name)] {
            guard have.kind == "veth", have.peer != nil else { throw ModelHost.Failure(description: "\(place(a.name)) is not a veth with a peer") }
            return .unchanged
        }
        try addVeth(a, b)
        return .created
    }

    private func addVeth(_ a: VethEnd, _ b: VethEnd) throws {
        let pa = place(a.name), pb = ModelHost.Place(namespace: b.namespace ?? namespace, name: b.name)
        guard host.links[pa] == nil, host.links[pb] == nil else { throw ModelHost.Failure(description: "veth \(pa) or \(pb) exists") }
        guard pb.namespace.isEmpty || host.namespaces.contains(pb.namespace) else { throw ModelHost.Failure(description: "no namespace \(pb.namespace)") }
        try host.change("add veth \(pa) \(pb)")
        host.links[pa] = .init(kind: "veth", mac: a.mac, peer: pb)
        host.links[pb] = .init(kind: "veth", mac: b.mac, peer: pa)
    }

    func enslave(_ port: String, to bridge: String) throws {
        var l = try existing(port)
        _ = try existing(bridge)
        try host.change("enslave \(place(port)) to \(bridge)")
        l.master = bridge
        host.links[place(port)] = l
    }

    func release(_ port: String) throws {
        guard var l = host.links[place(port)] else { return }
        try host.change("release \(place(port))")
        l.master = nil
        host.links[place(port)] = l
    }

    func addresses(on interface: String) throws -> [IPPrefix] {
        host.addresses.values.filter { $0.place == place(interface) }.map(\.prefix)
    }

    func ensureAddress(_ p: IPPrefix, on interface: String) throws -> EnsureResult {
        _ = try existing(interface)
        let key = "\(place(interface)) \(p)"
        if host.addresses[key] != nil { return .unchanged }
        try host.change("add address \(key)")
        host.addresses[key] = (place(interface), p)
        return .created
    }

    func removeAddress(_ p: IPPrefix, on interface: String) throws {
        try host.change("remove address \(place(interface)) \(p)")
        host.addresses["\(place(interface)) \(p)"] = nil
    }

    func addRoute(_ route: RouteInfo, replace: Bool) throws {
        guard let dev = route.device else { throw ModelHost.Failure(description: "a route without a device") }
        _ = try existing(dev)
        let key = "\(namespace) \(route.destination) table \(route.table)"
        guard replace || host.routes[key] == nil else { throw ModelHost.Failure(description: "route \(key) exists") }
        try host.change("add route \(key)")
        host.routes[key] = (namespace, route)
    }

    func removeRoute(_ route: RouteInfo) throws {
        try host.change("remove route \(namespace) \(route.destination) table \(route.table)")
        host.routes["\(namespace) \(route.destination) table \(route.table)"] = nil
    }

    func ensureRule(_ rule: RuleInfo, family: IPAddress.Family) throws -> EnsureResult {
        let key = "\(namespace) \(rule)"
        if host.rules[key] != nil { return .unchanged }
        try host.change("add rule \(key)")
        host.rules[key] = (namespace, rule)
        return .created
    }

    func removeRule(_ rule: RuleInfo, family: IPAddress.Family) throws {
        try host.change("remove rule \(namespace) \(rule)")
        host.rules["\(namespace) \(rule)"] = nil
    }
}

final class ModelTables: TableOperations {
    unowned let host: ModelHost
    let namespace: String

    init(host: ModelHost, namespace: String) {
        self.host = host
        self.namespace = namespace
    }

    /// One atomic batch: the whole table's text, or nothing.
    func replaceTable(_ t: NftTable, expectedGeneration: UInt32?) throws {
        try host.change("replace table \(namespace) \(t.family.rawValue) \(t.name)")
        host.tables["\(namespace) \(t.family.rawValue) \(t.name)"] = fnv1aDigest(t.nftText)
        host.tableListing["\(namespace) \(t.family.rawValue) \(t.name)"] = (t.comment, t.ruleCount)
    }

    func removeTable(family: NftFamily, name: String) throws {
        try host.change("remove table \(namespace) \(family.rawValue) \(name)")
        host.tables["\(namespace) \(family.rawValue) \(name)"] = nil
        host.tableListing["\(namespace) \(family.rawValue) \(name)"] = nil
    }
}

/// Devices as a daemon-less driver keeps them: an interface link in the namespace and a
/// configuration.
final class ModelWireGuard: WireGuardDriver, @unchecked Sendable {
    unowned let host: ModelHost
    init(host: ModelHost) { self.host = host }

    var name: String { "model" }
    var hasDaemon: Bool { false }

    func state(of interface: String, in namespace: String, configuredEndpoints: Set<[UInt8]>) throws -> DeviceState? {
        guard let d = host.devices[interface], d.namespace == namespace, let config = d.config else { return nil }
        return DeviceState(config: config, peers: [])
    }

    func create(_ interface: String, in namespace: String, limits: ContainerLimits) throws {
        try host.change("create wireguard \(interface) in \(namespace)")
        _ = try remove(interface, in: nil)
        host.devices[interface] = (namespace, nil, limits)
        host.links[.init(namespace: namespace, name: interface)] = .init(kind: "wireguard")
    }

    func configure(_ interface: String, in namespace: String, _ wanted: DeviceConfig, over current: DeviceConfig?) throws {
        guard host.devices[interface] != nil else { throw ModelHost.Failure(description: "no device \(interface)") }
        try host.change("configure wireguard \(interface)")
        host.devices[interface]!.config = wanted
    }

    func remove(_ interface: String, in namespace: String?) throws -> Bool {
        guard let d = host.devices.removeValue(forKey: interface) else { return false }
        host.dropLink(.init(namespace: d.namespace, name: interface))
        return true
    }

    func removeAll(_ interfaces: [String]) throws -> [String] { try interfaces.filter { try remove($0, in: nil) } }
    func processID(of interface: String) -> pid_t? { nil }
    func container(of interface: String) -> ContainerInfo? { nil }
    func limits(of interface: String) -> ContainerLimits? { host.devices[interface]?.limits }

    func setLimits(_ interface: String, _ limits: ContainerLimits) throws {
        try host.change("limits wireguard \(interface) \(limits)")
        host.devices[interface]?.limits = limits
    }

    func health(of interface: String, in namespace: String, state: DeviceState?) -> DeviceHealth { state == nil ? .missing : .up }
}

/// A forwarder that runs what it was given, on the links as they were then.
final class ModelForwarder: ForwarderControl, ForwarderObservation {
    unowned let host: ModelHost
    init(host: ModelHost) { self.host = host }
    /// What it runs, by customer: the file and the interfaces' indexes when it opened them.
    var running: [String: (config: SteeringConfig, interfaces: [String: Int])] = [:]
    /// Not running at all (its chain files stay); run by another vcpe build.
    var stopped = false, otherBuild = false

    func ensure(_ config: SteeringConfig) throws {
        try host.change("steer \(config.customer)")
        // Started, or restarted with this build, as ensureRunning does.
        (stopped, otherBuild) = (false, false)
        host.chains[config.customer] = config.digest
        let names = [config.lan.interface] + config.paths.map(\.interface)
        running[config.customer] = (config, Dictionary(uniqueKeysWithValues: names.compactMap { n in
            host.links[.init(namespace: config.namespace, name: n)].map { (n, Int($0.index)) }
        }))
    }

    func remove(customers: [String]) throws -> Set<String> {
        let there = Set(customers.filter { host.chains[$0] != nil })
        for c in there {
            try host.change("unsteer \(c)")
            host.chains[c] = nil
            running[c] = nil
        }
        return there
    }

    func steering(_ customer: String) -> SteeringSeen {
        guard !stopped else { return .notRunning }
        guard let r = running[customer] else { return .notLoaded }
        return .running(digest: r.config.digest, rules: r.config.rules.count + 1, interfaces: r.interfaces)
    }

    func chainFile(_ customer: String) -> SteeringConfig? { running[customer]?.config }
    func hasChainFile(_ customer: String) -> Bool { running[customer] != nil }
    var runsAnotherBuild: Bool { otherBuild }
}

/// The model read as the observer reads the kernel (HostView.read, as KernelObserver does).
extension ModelHost: HostReading {
    func namespaces(prefix: String) throws -> [String] { namespaces.filter { $0.hasPrefix(prefix) }.sorted() }

    func read(_ ns: String, sysctls keys: [String]) throws -> (snapshot: NamespaceSnapshot, sysctls: [(key: String, value: String)]) {
        let links = ModelLinks(host: self, namespace: ns)
        let infos = self.links.keys.filter { $0.namespace == ns }.compactMap { try? links.link(named: $0.name) }
        let byName = Dictionary(uniqueKeysWithValues: infos.map { ($0.name, $0.index) })
        var addrs: [String: [AddressInfo]] = [:]
        for a in addresses.values where a.place.namespace == ns {
            addrs[a.place.name, default: []].append(AddressInfo(interfaceIndex: byName[a.place.name] ?? 0, prefix: a.prefix))
        }
        let snapshot = NamespaceSnapshot(links: infos, addresses: addrs, routes: routes.values.filter { $0.namespace == ns }.map(\.route),
                                         rules: rules.values.filter { $0.namespace == ns }.map(\.rule))
        return (snapshot, keys.map { (key: $0, value: sysctls["\(ns) \($0)"] ?? "") })
    }

    func hostLink(named name: String) throws -> LinkInfo? { try ModelLinks(host: self, namespace: "").link(named: name) }
    func nftables(_ ns: String) throws -> any TableReading { ModelTables(host: self, namespace: ns) }
    var steering: any ForwarderObservation { modelForwarder }

    func observe(customer: String, desired: Desired) throws -> HostState {
        try HostObject.observe(HostView.read(customer: customer, desired: desired, from: self))
    }
}

extension ModelTables: TableReading {
    func tables() throws -> [TableInfo] {
        host.tableListing.compactMap { key, listing in
            let parts = key.split(separator: " ").map(String.init)
            guard parts.count == 3, parts[0] == namespace, let family = NftFamily(rawValue: parts[1]) else { return nil }
            return TableInfo(family: family, name: parts[2], comment: listing.comment)
        }
    }

    func ruleCount(family: NftFamily, table: String) throws -> Int { host.tableListing["\(namespace) \(family.rawValue) \(table)"]?.rules ?? 0 }
}
