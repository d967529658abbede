import VCPEDescriptor
import VCPENet

/// Hands out /31s of the host's transit pool to links, stably: a link keeps its /31 for as
/// long as it exists, so re-applying never renumbers anything.
public struct TransitAllocator: Sendable, Hashable, Codable {
    public let pool: IPPrefix
    /// "customer/linkKey" -> slot number in the pool.
    public private(set) var slots: [String: UInt32] = [:]

    public init(pool: IPPrefix = KernelNames.defaultTransitPool) {
        precondition(pool.family == .v4 && pool.length <= 31)
        self.pool = pool
    }

    public var capacity: UInt32 { UInt32(1) << UInt32(31 - pool.length) }

    public struct Exhausted: Error, CustomStringConvertible {
        public let pool: IPPrefix
        public var description: String { "the transit pool \(pool) has no free /31 left" }
    }

    /// The /31s of `customer`'s transit links; links no longer named are released.
    public mutating func assign(customer: String, links keys: [String]) throws -> [String: IPPrefix] {
        let prefix = customer + "/"
        let wanted = Set(keys.map { prefix + $0 })
        for k in slots.keys where k.hasPrefix(prefix) && !wanted.contains(k) { slots[k] = nil }
        var used = Set(slots.values)
        var next: UInt32 = 0
        var out: [String: IPPrefix] = [:]
        for key in keys {
            let k = prefix + key
            if slots[k] == nil {
                while used.contains(next) { next += 1 }
                guard next < capacity else { throw Exhausted(pool: pool) }
                slots[k] = next
                used.insert(next)
            }
            out[key] = IPPrefix(pool.network.adding(UInt64(slots[k]!) * 2), 31)
        }
        return out
    }

    public mutating func release(customer: String) {
        for k in slots.keys where k.hasPrefix(customer + "/") { slots[k] = nil }
    }
}
