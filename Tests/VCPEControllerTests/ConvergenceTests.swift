import Testing
import VCPEDescriptor
import VCPENet
import VCPEPolicy
@testable import VCPEController

/// Observe, plan, execute, observe again on a host in memory: each kind finds what apply
/// made, drift made behind vcpe's back shows as the drift it is and is repaired, and the
/// host then plans nothing. The end-to-end suites hold the observers to the kernel.
@Suite struct ConvergenceTests {
    static let customer = "acme"

    static func converge(_ host: ModelHost, to want: Desired, previous: Desired) throws -> Plan {
        let observed = try host.observe(customer: customer, desired: want)
        let plan = Plan.difference(customer: customer, desired: want.state, observed: observed)
        try Executor(desired: want, previous: previous, host: host).run(plan)
        return plan
    }

    @Test func whatApplyMadeIsObservedAsIs() throws {
        let want = try ExecutorTests.desired()
        let host = ModelHost()
        let first = try Self.converge(host, to: want, previous: .empty)
        #expect(first.actions.count == want.state.objects.count && first.actions.allSatisfy { $0.verb == .create })
        let observed = try host.observe(customer: Self.customer, desired: want)
        let plan = Plan.difference(customer: Self.customer, desired: want.state, observed: observed)
        #expect(plan.isEmpty, "\(plan.text)")
        #expect(Set(observed.objects.keys) == Set(want.state.objects.keys))
    }

    /// Each change behind vcpe's back is seen as what it is, repaired, and then in sync.
    @Test(arguments: Drifted.allCases)
    func driftIsSeenAndRepaired(_ drift: Drifted) throws {
        let want = try ExecutorTests.desired()
        let host = ModelHost()
        _ = try Self.converge(host, to: want, previous: .empty)
        let made = host.state
        let expected = try drift.make(on: host, want)
        let observed = try host.observe(customer: Self.customer, desired: want)
        let plan = Plan.difference(customer: Self.customer, desired: want.state, observed: observed)
        let named = plan.actions.filter { type(of: $0.object.kind).kindName == expected.kind }
        #expect(!named.isEmpty, "\(drift): \(plan.text)")
        if let d = expected.drift { #expect(named.contains { $0.current?.drift == d || $0.object.drift == d }, "\(drift): \(plan.text)") }
        try Executor(desired: want, previous: want, host: host).run(plan)
        #expect(host.state == made, "\(drift): missing \(Set(made).subtracting(host.state)), extra \(Set(host.state).subtracting(made))")
        let again = Plan.difference(customer: Self.customer, desired: want.state, observed: try host.observe(customer: Self.customer, desired: want))
        #expect(again.isEmpty, "\(drift): \(again.text)")
    }

    /// delete is a plan against nothing, from what is observed.
    @Test func deleteFromWhatIsObservedLeavesNothing() throws {
        let want = try ExecutorTests.desired()
        let host = ModelHost()
        _ = try Self.converge(host, to: want, previous: .empty)
        // The forwarder is not running: its chain file is still seen, as left over, and removed.
        host.modelForwarder.stopped = true
        let leftover = try host.observe(customer: Self.customer, desired: .empty).all(SteeringObject.self)
        #expect(leftover.count == 1 && leftover.first?.drift == .notRunning, "\(leftover)")
        _ = try Self.converge(host, to: .empty, previous: want)
        #expect(!host.modelForwarder.hasChainFile(Self.customer))
        #expect(host.namespaces.isEmpty && host.tables.isEmpty && host.devices.isEmpty && host.chains.isEmpty)
        // Only the shared segment bridge, which the desired state no longer names, is left
        // unobserved (a customer reports a segment only while it wants it).
        #expect(host.links.keys.allSatisfy { $0.namespace.isEmpty && $0.name == "wan0" }, "\(host.links.keys)")
        #expect(try host.observe(customer: Self.customer, desired: .empty).isEmpty)
    }

    enum Drifted: String, CaseIterable, CustomTestStringConvertible {
        case endDown, linkDeleted, strayVeth, tableEdited, addressRemoved, routeRemoved, ruleRemoved, sysctlChanged,
             wireguardGone, wireguardDown, steeringGone, steeringStale, forwarderStopped, forwarderOfAnotherBuild, namespaceGone
        var testDescription: String { rawValue }

        /// Makes the change on `host`; returns the drift (or kind) the plan should name.
        func make(on host: ModelHost, _ want: Desired) throws -> (drift: Drift?, kind: String) {
            let veth = want.state.all(VethObject.self).sorted { $0.id < $1.id }.first { $0.upstream.namespace != nil && $0.downstream.namespace != nil }!
            let end = ModelHost.Place(namespace: veth.downstream.namespace!, name: veth.downstream.interface)
            switch self {
            case .endDown:
                host.links[end]!.up = false
                return (.ends, "veth")
            case .linkDeleted:
                host.dropLink(end)
                return (nil, "veth")
            case .strayVeth:
                host.links[.init(namespace: end.namespace, name: "junk")] = .init(kind: "veth", up: true)
                return (.stray, "veth")
            case .tableEdited:
                let key = host.tableListing.keys.sorted().first!
                host.tableListing[key]!.comment = "edited by hand"
                host.tables[key] = "edited"
                return (nil, "nftTable")
            case .addressRemoved:
                host.addresses.removeValue(forKey: host.addresses.keys.sorted().first!)
                return (nil, "address")
            case .routeRemoved:
                host.routes.removeValue(forKey: host.routes.keys.sorted().first!)
                return (nil, "route")
            case .ruleRemoved:
                host.rules.removeValue(forKey: host.rules.keys.sorted().first!)
                return (nil, "policyRule")
            case .sysctlChanged:
                let key = host.sysctls.keys.sorted().first { $0.contains("ip_forward") }!
                host.sysctls[key] = host.sysctls[key] == "1" ? "0" : "1"
                return (nil, "sysctl")
            case .wireguardGone:
                _ = try host.wireguard.remove(host.devices.keys.first!, in: nil)
                return (nil, "wireguard")
            case .wireguardDown:
                let (interface, device) = host.devices.first!
                host.links[.init(namespace: device.namespace, name: interface)]!.up = false
                return (.down, "wireguard")
            case .steeringGone:
                host.modelForwarder.running = [:]
                return (nil, "steering")
            case .steeringStale:
                // The LAN link of the classifier re-created: the forwarder holds the old index.
                let config = host.modelForwarder.running.values.first!.config
                let lan = ModelHost.Place(namespace: config.namespace, name: config.lan.interface)
                host.links[lan]!.index = ModelHost.newIndex()
                return (.staleLinks, "steering")
            case .forwarderStopped:
                host.modelForwarder.stopped = true
                return (nil, "steering")
            case .forwarderOfAnotherBuild:
                host.modelForwarder.otherBuild = true
                return (.otherBuild, "steering")
            case .namespaceGone:
                try host.removeNamespace(end.namespace)
                return (nil, "namespace")
            }
        }
    }
}
