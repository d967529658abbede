import Foundation
import Logging
import VCPEDescriptor
import VCPENetlink
import VCPENftables
import VCPESystem

/// Observe the host, plan the difference to the descriptor, execute it: per customer,
/// all or nothing.
public final class Reconciler {
    public let store: StateStore
    let logger: Logger

    public init(store: StateStore, logger: Logger = Logger(label: "vcpe")) {
        self.store = store
        self.logger = logger
    }

    /// The plan `apply` would run now, touching nothing (allocations are not saved).
    public func plan(_ chain: Chain) throws -> Plan {
        var allocator = store.transitAllocator()
        let desired = try Planner.desired(chain, allocator: &allocator)
        let observed = try KernelObserver(desired: desired.state).observe(customer: chain.customer)
        return Plan.difference(customer: chain.customer, desired: desired.state, observed: observed)
    }

    public struct ApplyResult: Sendable, Codable {
        public var customer: String
        public var actions: Int
        public var plan: Plan
    }

    /// Makes the host match the chain. On failure the customer is rolled back to what it
    /// was and the error says what failed; a crash half-way is repaired by the next apply.
    public func apply(_ chain: Chain, descriptor: String) throws -> ApplyResult {
        var allocator = store.transitAllocator()
        let before = allocator
        let desired = try Planner.desired(chain, allocator: &allocator)
        let observed = try KernelObserver(desired: desired.state).observe(customer: chain.customer)
        let plan = Plan.difference(customer: chain.customer, desired: desired.state, observed: observed)

        // Allocations first: a crash after this point re-finds the same addresses.
        if allocator != before { try store.save(allocator) }
        try noteSegment(chain.wan.segment)
        let previous = store.lastApplied(chain.customer).map { prev -> [String: NftTable] in
            var a = allocator
            return (try? Planner.desired(prev, allocator: &a).tables) ?? [:]
        } ?? [:]
        do {
            try Executor(tables: desired.tables, previousTables: previous).run(plan)
        } catch {
            if allocator != before, store.record(chain.customer) == nil { try? store.save(before) }
            throw error
        }
        try store.save(StateStore.CustomerRecord(descriptor: descriptor, appliedAt: Date()), for: chain.customer)
        logger.info("applied", metadata: ["customer": "\(chain.customer)", "actions": "\(plan.actions.count)"])
        return ApplyResult(customer: chain.customer, actions: plan.actions.count, plan: plan)
    }

    /// Remembers that vcpe is about to create a WAN segment bridge, so delete may remove it later.
    private func noteSegment(_ segment: String) throws {
        guard try RouteSocket().link(named: segment) == nil else { return }
        var created = store.createdSegments()
        if created.insert(segment).inserted { try store.save(createdSegments: created) }
    }

    public struct DeleteResult: Sendable, Codable {
        public var customer: String
        public var removed: [String]
    }

    /// Removes everything of the customer and nothing else; deleting what is gone is fine.
    public func delete(customer: String) throws -> DeleteResult {
        var removed: [String] = []
        let host = try RouteSocket()
        let namespaces = try NetworkNamespace.list().filter { KernelNames.parseNamespace($0)?.customer == customer }
        // Host ends first: the kernel drops a veth pair with either end, but this way none
        // lingers while the namespaces are torn down in the background.
        for name in [KernelNames.lanVethHost(customer: customer), KernelNames.wanVethHost(customer: customer),
                     KernelNames.lanBridge(customer: customer)] where try host.link(named: name) != nil {
            try host.removeLink(name)
            removed.append("link \(name)")
        }
        for n in namespaces {
            try NetworkNamespace.remove(n)
            removed.append("namespace \(n)")
        }
        let segment = store.lastApplied(customer)?.wan.segment
        var allocator = store.transitAllocator()
        allocator.release(customer: customer)
        try store.save(allocator)
        try store.removeRecord(customer)
        if let segment, try removeSegmentIfUnused(segment, host: host) { removed.append("bridge \(segment)") }
        logger.info("deleted", metadata: ["customer": "\(customer)", "objects": "\(removed.count)"])
        return DeleteResult(customer: customer, removed: removed)
    }

    /// A WAN segment vcpe created goes when no customer uses it and nothing else is plugged in.
    private func removeSegmentIfUnused(_ segment: String, host: RouteSocket) throws -> Bool {
        var created = store.createdSegments()
        guard created.contains(segment) else { return false }
        let users = store.customers().compactMap { store.lastApplied($0) }.filter { $0.wan.segment == segment }
        guard users.isEmpty, let bridge = try host.link(named: segment) else { return false }
        guard !(try host.links()).contains(where: { $0.masterIndex == bridge.index }) else { return false }
        try host.removeLink(segment)
        created.remove(segment)
        try store.save(createdSegments: created)
        return true
    }
}
