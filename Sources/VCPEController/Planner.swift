import VCPEDescriptor
import VCPENet
import VCPEPolicy

/// What the host holds of one customer: `KernelObserver` reads the kernel, `EmptyHost`
/// stands for a fresh machine (`vcpe plan --empty-host`).
public protocol HostObserver {
    func observe(customer: String) throws -> HostState
}

public struct EmptyHost: HostObserver {
    public init() {}
    public func observe(customer: String) throws -> HostState { HostState() }
}

public enum Planner {
    /// What the chain needs on the host; `allocator` keeps transit addresses stable.
    public static func desired(_ chain: Chain, allocator: inout TransitAllocator, secrets: VPNSecrets? = nil) throws -> Desired {
        let topology = Topology.resolve(chain)
        return DesiredState.compile(chain, topology, transit: try allocateTransit(topology, customer: chain.customer, allocator: &allocator),
                                    secrets: secrets)
    }

    /// The /31s of the chain's transit links, allocated if new.
    @discardableResult
    static func allocateTransit(_ topology: Topology, customer: String, allocator: inout TransitAllocator) throws -> [String: IPPrefix] {
        try allocator.assign(customer: customer, links: topology.links.filter { $0.role == .transit }.map(\.key))
    }

    /// Observe, then plan the difference.
    public static func plan(_ chain: Chain, observer: some HostObserver, allocator: inout TransitAllocator) throws -> Plan {
        let desired = try desired(chain, allocator: &allocator)
        let observed = try observer.observe(customer: chain.customer)
        return Plan.difference(customer: chain.customer, desired: desired.state, observed: observed)
    }
}
