import Foundation
import Logging
import VCPEContainer
import VCPEDescriptor
import VCPENet
import VCPEForwarder
import VCPEPolicy
import VCPENetlink
import VCPENftables
import VCPESystem
import VCPEWireGuard

/// Observe the host, plan the difference to the descriptor, execute it: per customer,
/// all or nothing.
public final class Reconciler {
    public let store: StateStore
    let logger: Logger
    /// Read once per run: the lock keeps anyone else from changing it meanwhile.
    private lazy var allocator: TransitAllocator = store.transitAllocator()
    /// One set of netlink sockets for the whole run (see SocketCache).
    private let sockets = SocketCache()
    /// Starts removing retired links in the background; nil: `delete` removes them itself.
    public var reapInBackground: (() throws -> Void)?
    /// Runs service processes as OCI containers; bundles under the state directory.
    public let containers: ContainerRuntime
    /// Runs the VPN services' WireGuard devices.
    public let wireguard: any WireGuardDriver
    /// The vcpe executable, which runs the forwarder for chains with a classifier.
    public var executable: String?
    public var forwarder: ForwarderProcess { ForwarderProcess(state: store.directory.standardizedFileURL.path, executable: executable) }
    /// Made on first use, after `executable` is set; caches the forwarder's report for the run.
    lazy var steering = ForwarderClient(forwarder: forwarder)

    public init(store: StateStore, logger: Logger = Logger(label: "vcpe")) {
        self.store = store
        self.logger = logger
        containers = ContainerRuntime(bundles: store.directory.standardizedFileURL.path + "/containers")
        wireguard = WireGuard.driver(containers: containers)
    }

    /// The plan `apply` would run now, touching nothing (allocations are not saved).
    public func plan(_ chain: Chain) throws -> Plan {
        var allocator = self.allocator
        return try planAgainstHost(chain, allocator: &allocator, secrets: try secrets(chain, makeKey: false)).plan
    }

    /// What the chain needs, and the difference from what the kernel holds of the customer.
    private func planAgainstHost(_ chain: Chain, allocator: inout TransitAllocator, secrets: VPNSecrets?) throws -> (desired: Desired, plan: Plan) {
        let desired = try Planner.desired(chain, allocator: &allocator, secrets: secrets)
        let observed = try KernelObserver(desired: desired, sockets: sockets, wireguard: wireguard, forwarder: steering).observe(customer: chain.customer)
        return (desired, Plan.difference(customer: chain.customer, desired: desired.state, observed: observed))
    }

    /// The keys of the chain's VPN: the stored private key (made and stored first when
    /// `makeKey`), the preshared keys read from their files. nil for a chain without VPN.
    func secrets(_ chain: Chain, makeKey: Bool) throws -> VPNSecrets? {
        guard let vpn = chain.vpn?.settings else { return nil }
        var key = store.wireguardKey(chain.customer)
        if key == nil && makeKey {
            key = WireGuardKey.generate()
            try store.save(wireguardKey: key!, for: chain.customer)
        }
        var out = VPNSecrets(privateKey: key)
        for peer in vpn.peers {
            guard let file = peer.presharedKeyFile else { continue }
            // Read by root under the lock: a regular file of a key's size, never a link, a
            // FIFO or a device.
            let text: String
            do { text = String(decoding: try SafeFile.readRegular(file, limit: 4096), as: UTF8.self) } catch {
                throw StateError("vpn peer \(peer.name): cannot read presharedKeyFile \(file): \(error)")
            }
            guard let psk = WireGuardKey(base64: text) else {
                throw StateError("vpn peer \(peer.name): presharedKeyFile \(file) does not hold a key (expected 44 characters of base64, as `wg genpsk` writes)")
            }
            out.presharedKeys[peer.name] = psk.raw
        }
        return out
    }

    /// Allocates transit addresses for all these chains and saves them in one write, so
    /// applying many customers does not pay a synchronous write each. Chains that fail to
    /// plan are skipped here; their apply reports the error.
    public func reserve(_ chains: [Chain]) throws {
        var allocator = self.allocator
        for chain in chains { _ = try? Planner.allocateTransit(Topology.resolve(chain), customer: chain.customer, allocator: &allocator) }
        if allocator != self.allocator {
            try store.save(allocator)
            self.allocator = allocator
        }
    }

    public struct ApplyResult: Sendable, Codable {
        public var customer: String
        public var actions: Int
        public var plan: Plan
    }

    /// Makes the host match the chain. On failure the customer is rolled back to what it
    /// was and the error says what failed; a crash half-way is repaired by the next apply.
    public func apply(_ chain: Chain, descriptor: String) throws -> ApplyResult {
        let others = store.customers().filter { $0 != chain.customer }.compactMap(store.lastApplied)
        if let why = try HostClaims.conflict(chain, others: others, host: sockets.route(nil)) {
            throw StateError("\(chain.customer): \(why)")
        }
        let before = allocator
        var allocator = before
        let record = store.record(chain.customer)
        // A key with no record is what a delete interrupted between the two left: a new
        // customer of that name gets a key of its own, never the old one.
        if record == nil, store.wireguardKey(chain.customer) != nil { store.removeWireguardKey(chain.customer) }
        let (desired, plan) = try planAgainstHost(chain, allocator: &allocator, secrets: try secrets(chain, makeKey: true))

        // Allocations first: a crash after this point re-finds the same addresses.
        if allocator != before {
            try store.save(allocator)
            self.allocator = allocator
        }
        if !plan.isEmpty {
            try noteSegment(chain.wan.segment)
            // What to restore on rollback is what the last successful apply installed.
            let previous = record.flatMap { ChainDecoder.validate($0.descriptor).chain }.map { prev -> Desired in
                var a = allocator
                return (try? Planner.desired(prev, allocator: &a, secrets: try secrets(prev, makeKey: false))) ?? .empty
            } ?? .empty
            do {
                try Executor(desired: desired, previous: previous, host: LiveKernel(sockets: sockets, wireguard: wireguard, forwarder: steering),
                             logger: logger).run(plan)
            } catch {
                if record == nil {  // a new customer leaves nothing behind, its addresses included
                    allocator.release(customer: chain.customer)
                    try? store.save(allocator)
                    self.allocator = allocator
                }
                throw error
            }
        }
        if !plan.isEmpty || record?.descriptor != descriptor {
            try store.save(StateStore.CustomerRecord(descriptor: descriptor, appliedAt: Date()), for: chain.customer)
        }
        // A no-op (the agent's every interval) says nothing at info: a repair is what matters there.
        logger.log(level: plan.isEmpty ? .debug : .info, "applied", metadata: ["customer": "\(chain.customer)", "actions": "\(plan.actions.count)"])
        return ApplyResult(customer: chain.customer, actions: plan.actions.count, plan: plan)
    }

    /// Remembers that vcpe is about to create a WAN segment bridge, so delete may remove it later.
    private func noteSegment(_ segment: String) throws {
        guard try sockets.route(nil).link(named: segment) == nil else { return }
        var created = store.createdSegments()
        if created.insert(segment).inserted { try store.save(createdSegments: created) }
    }

    /// Gives the customer's VPN a new private key and applies it. The peers need the new
    /// public key (returned) before the tunnel comes back.
    public func rotateKey(customer: String) throws -> (publicKey: String, result: ApplyResult) {
        guard let record = store.record(customer), let chain = ChainDecoder.validate(record.descriptor).chain else {
            throw StateError("customer \(customer) is not applied")
        }
        guard chain.vpn != nil else {
            throw StateError("customer \(customer) has no vpn service")
        }
        let key = WireGuardKey.generate()
        try store.save(wireguardKey: key, for: customer)
        return (key.publicKey.base64, try apply(chain, descriptor: record.descriptor))
    }

    public struct DeleteResult: Sendable, Codable {
        public var customer: String
        public var removed: [String]
    }

    /// Removes everything of these customers and nothing else; deleting what is gone is fine.
    /// The host veth pairs go in one kernel teardown (their ends in the namespaces with them),
    /// then the namespaces. Bridges are emptied, renamed out of the customer's names and left
    /// to `removeRetiredLinks`: the kernel spends an RCU barrier (~16 ms) on each bridge it
    /// deletes, which for many customers would be most of the time of a delete.
    public func delete(customers: [String]) throws -> [DeleteResult] {
        let host = try sockets.route(nil)
        let gone = Set(try host.removeLinks(customers.flatMap { KernelNames.hostVeths(customer: $0) }))
        var results: [DeleteResult] = []
        var bridges: [LinkInfo] = []
        for customer in customers {
            var removed = KernelNames.hostVeths(customer: customer).filter(gone.contains).map { "link \($0)" }
            if let bridge = try host.link(named: KernelNames.lanBridge(customer: customer)), bridge.kind == "bridge" {
                bridges.append(bridge)
                removed.append("link \(bridge.name)")
            }
            results.append(DeleteResult(customer: customer, removed: removed))
        }
        try retire(bridges, host: host)
        // A daemon (or a socket) keeps its namespace alive after the name is gone: they go first.
        let unsteered = try steering.remove(customers: customers)
        for (i, c) in customers.enumerated() where unsteered.contains(c) { results[i].removed.append("steering \(c)") }
        let stopped = Set(try wireguard.removeAll(customers.map { KernelNames.wireguardInterface(customer: $0) }))
        for (i, customer) in customers.enumerated() {
            let wg = KernelNames.wireguardInterface(customer: customer)
            if stopped.contains(wg) { results[i].removed.append("wireguard \(wg)") }
            for n in try sockets.namespaces(prefix: KernelNames.namespace(customer: customer, service: "")) {
                sockets.forget(n)
                try NetworkNamespace.remove(n)
                results[i].removed.insert("namespace \(n)", at: 0)
            }
        }
        var segments: [String: Int] = [:]  // segment -> the last result that used it
        let before = allocator
        for (i, customer) in customers.enumerated() {
            if let segment = store.lastApplied(customer)?.wan.segment { segments[segment] = i }
            allocator.release(customer: customer)
            try store.removeRecord(customer)
            // The key goes with the record, not before: a delete that fails earlier leaves a
            // customer that a later apply (or the agent) brings back with the same key.
            store.removeWireguardKey(customer)
            logger.info("deleted", metadata: ["customer": "\(customer)", "objects": "\(results[i].removed.count)"])
        }
        if allocator != before { try store.save(allocator) }
        for (segment, i) in segments where try removeSegmentIfUnused(segment, host: host) {
            results[i].removed.append("bridge \(segment)")
        }
        try reapRetiredLinks()
        return results
    }

    /// Takes bridges out of service at once: their remaining ports (attached interfaces) are
    /// released, the bridge is set down and renamed, so its name is free for a new apply.
    private func retire(_ bridges: [LinkInfo], host: RouteSocket) throws {
        guard !bridges.isEmpty else { return }
        let indexes = Set(bridges.map(\.index))
        for port in try host.links() where port.masterIndex.map(indexes.contains) == true {
            try host.release(port.name)
        }
        // Recorded before the rename: gc removes what is recorded, and nothing else.
        var retired = store.retiredLinks()
        let names = bridges.map { _ in KernelNames.retiredLink(serial: .random(in: 0...UInt64.max)) }
        retired.formUnion(names)
        try store.save(retiredLinks: retired)
        for (b, name) in zip(bridges, names) {
            try host.setLink(b.name, up: false)
            try host.setLink(b.name, newName: name)
        }
    }

    /// Removes retired links in a detached process when `reapInBackground` is set (the
    /// command line sets it), else here and now.
    public func reapRetiredLinks() throws {
        guard !store.retiredLinks().isEmpty else { return }
        if let reapInBackground { try reapInBackground() } else { _ = try removeRetiredLinks() }
    }

    /// Removes the bridges delete retired (recorded in the state; a link of another owner
    /// that carries the prefix stays), in one kernel teardown; returns their names. The
    /// caller holds the lock.
    public func removeRetiredLinks() throws -> [String] {
        let host = try sockets.route(nil)
        let recorded = store.retiredLinks()
        guard !recorded.isEmpty else { return [] }
        let names = try host.links().filter { recorded.contains($0.name) && $0.kind == "bridge" }.map(\.name)
        try host.removeLinks(names)
        try store.save(retiredLinks: [])
        return names
    }

    /// A WAN segment vcpe created goes when no customer uses it and nothing else is plugged in.
    private func removeSegmentIfUnused(_ segment: String, host: RouteSocket) throws -> Bool {
        var created = store.createdSegments()
        guard created.contains(segment) else { return false }
        // A record today's validation refuses might name this segment: kept, to be safe.
        let records = store.customers()
        let chains = records.compactMap { store.lastApplied($0) }
        guard chains.count == records.count, !chains.contains(where: { $0.wan.segment == segment }),
              let bridge = try host.link(named: segment) else { return false }
        guard !(try host.links()).contains(where: { $0.masterIndex == bridge.index }) else { return false }
        try retire([bridge], host: host)
        created.remove(segment)
        try store.save(createdSegments: created)
        return true
    }
}
