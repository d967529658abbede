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
    /// Read once per run: the lock keeps anyone else from changing it meanwhile.
    private lazy var allocator: TransitAllocator = store.transitAllocator()

    public init(store: StateStore, logger: Logger = Logger(label: "vcpe")) {
        self.store = store
        self.logger = logger
    }

    /// The plan `apply` would run now, touching nothing (allocations are not saved).
    public func plan(_ chain: Chain) throws -> Plan {
        var allocator = self.allocator
        return try planAgainstHost(chain, allocator: &allocator).plan
    }

    /// What the chain needs, and the difference from what the kernel holds of the customer.
    private func planAgainstHost(_ chain: Chain, allocator: inout TransitAllocator) throws -> (desired: Desired, plan: Plan) {
        let desired = try Planner.desired(chain, allocator: &allocator)
        let observed = try KernelObserver(desired: desired.state).observe(customer: chain.customer)
        return (desired, Plan.difference(customer: chain.customer, desired: desired.state, observed: observed))
    }

    public struct ApplyResult: Sendable, Codable {
        public var customer: String
        public var actions: Int
        public var plan: Plan
    }

    /// Makes the host match the chain. On failure the customer is rolled back to what it
    /// was and the error says what failed; a crash half-way is repaired by the next apply.
    public func apply(_ chain: Chain, descriptor: String) throws -> ApplyResult {
        let before = allocator
        var allocator = before
        let (desired, plan) = try planAgainstHost(chain, allocator: &allocator)
        let record = store.record(chain.customer)

        // Allocations first: a crash after this point re-finds the same addresses.
        if allocator != before {
            try store.save(allocator)
            self.allocator = allocator
        }
        if !plan.isEmpty {
            try noteSegment(chain.wan.segment)
            // The tables to restore on rollback are those of the last successful apply.
            let previous = record.flatMap { ChainDecoder.validate($0.descriptor).chain }.map { prev -> [String: NftTable] in
                var a = allocator
                return (try? Planner.desired(prev, allocator: &a).tables) ?? [:]
            } ?? [:]
            do {
                try Executor(tables: desired.tables, previousTables: previous).run(plan)
            } catch {
                if allocator != before, record == nil {
                    try? store.save(before)
                    self.allocator = before
                }
                throw error
            }
        }
        if !plan.isEmpty || record?.descriptor != descriptor {
            try store.save(StateStore.CustomerRecord(descriptor: descriptor, appliedAt: Date()), for: chain.customer)
        }
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

    /// Removes everything of these customers and nothing else; deleting what is gone is fine. Namespaces go first (the kernel then drops their veth
    /// pairs, host ends included, in the background); the host links left are removed in one
    /// request, since each link teardown otherwise waits for its own RCU grace period.
    public func delete(customers: [String]) throws -> [DeleteResult] {
        let host = try RouteSocket()
        var results: [DeleteResult] = []
        var hostLinks: [String] = []
        for customer in customers {
            var removed: [String] = []
            for n in try NetworkNamespace.entries(prefix: KernelNames.namespace(customer: customer, service: "")) {
                try NetworkNamespace.remove(n)
                removed.append("namespace \(n)")
            }
            // The host veth ends die with their peers' namespaces; the bridge must be deleted.
            for name in [KernelNames.lanVethHost(customer: customer), KernelNames.wanVethHost(customer: customer)]
            where try host.link(named: name) != nil {
                removed.append("link \(name)")
            }
            let bridge = KernelNames.lanBridge(customer: customer)
            if try host.link(named: bridge) != nil {
                hostLinks.append(bridge)
                removed.append("link \(bridge)")
            }
            results.append(DeleteResult(customer: customer, removed: removed))
        }
        try host.removeLinks(hostLinks)
        try waitUntilGone(customers.flatMap { [KernelNames.lanVethHost(customer: $0), KernelNames.wanVethHost(customer: $0)] }, host: host)
        var segments: [String: Int] = [:]  // segment -> the last result that used it
        let before = allocator
        for (i, customer) in customers.enumerated() {
            if let segment = store.lastApplied(customer)?.wan.segment { segments[segment] = i }
            allocator.release(customer: customer)
            try store.removeRecord(customer)
            logger.info("deleted", metadata: ["customer": "\(customer)", "objects": "\(results[i].removed.count)"])
        }
        if allocator != before { try store.save(allocator) }
        // Their WAN ends are still being torn down with their namespaces: not users.
        let dying = Set(customers.map { KernelNames.wanVethHost(customer: $0) })
        for (segment, i) in segments where try removeSegmentIfUnused(segment, host: host, ignoring: dying) {
            results[i].removed.append("bridge \(segment)")
        }
        return results
    }

    /// When delete returns nothing of the customers is left, so a re-apply cannot meet EEXIST
    /// from links the kernel was still tearing down. Bounded: 5 s.
    private func waitUntilGone(_ names: [String], host: RouteSocket) throws {
        var left = names
        for _ in 0..<500 {
            left = try left.filter { try host.link(named: $0) != nil }
            if left.isEmpty { return }
            usleep(10_000)
        }
        logger.warning("links still being removed by the kernel", metadata: ["links": "\(left)"])
    }

    /// A WAN segment vcpe created goes when no customer uses it and nothing else is plugged in.
    private func removeSegmentIfUnused(_ segment: String, host: RouteSocket, ignoring dying: Set<String>) throws -> Bool {
        var created = store.createdSegments()
        guard created.contains(segment) else { return false }
        let users = store.customers().compactMap { store.lastApplied($0) }.filter { $0.wan.segment == segment }
        guard users.isEmpty, let bridge = try host.link(named: segment) else { return false }
        guard !(try host.links()).contains(where: { $0.masterIndex == bridge.index && !dying.contains($0.name) }) else { return false }
        try host.removeLink(segment)
        created.remove(segment)
        try store.save(createdSegments: created)
        return true
    }
}
