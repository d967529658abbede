import Foundation
import Logging
import Synchronization
import Testing
import VCPEDescriptor
import VCPENet
import VCPEPolicy
import VCPETestSupport
import VCPEWireGuard
@testable import VCPEController

/// Plan execution, rollback, delete and drift repair on a host in memory (ModelHost):
/// milliseconds, no root. The end-to-end suites hold the same behaviour to the kernel.
@Suite struct ExecutorTests {
    /// A chain with every kind of object: namespaces, bridges, veths, ports, sysctls,
    /// a WireGuard device, addresses, routes, policy rules, tables and steering.
    static func desired(_ file: String = "multipath.json", edit: (inout Chain) -> Void = { _ in }) throws -> Desired {
        var chain = try #require(validate(repoFile("chains/\(file)")).chain)
        edit(&chain)
        var alloc = TransitAllocator()
        return try Planner.desired(chain, allocator: &alloc, secrets: VPNSecrets(privateKey: key))
    }

    static let key = WireGuardKey.generate()

    static func apply(_ want: Desired, over have: Desired, on host: ModelHost) throws {
        let plan = Plan.difference(customer: "t", desired: want.state, observed: have.state)
        try Executor(desired: want, previous: have, host: host).run(plan)
    }

    static func kinds(_ d: Desired) -> Set<String> { Set(d.state.objects.values.map { type(of: $0.kind).kindName }) }

    @Test func applyOnAnEmptyHostMakesEveryObject() throws {
        let want = try Self.desired()
        #expect(Self.kinds(want) == Set(HostObject.kinds.map { $0.kindName }), "the chain should hold every kind")
        let host = ModelHost()
        try Self.apply(want, over: .empty, on: host)
        for ns in want.state.all(NamespaceObject.self) { #expect(host.namespaces.contains(ns.name)) }
        for a in want.state.all(AddressObject.self) { #expect(host.addresses["\(ModelHost.Place(namespace: a.at.namespace ?? "", name: a.at.interface)) \(a.prefix)"] != nil) }
        for v in want.state.all(VethObject.self) {
            for end in [v.upstream, v.downstream] {
                let l = host.links[.init(namespace: end.namespace ?? "", name: end.interface)]
                #expect(l?.kind == "veth" && l?.up == true && l?.mac == KernelNames.stableMAC(namespace: end.namespace, interface: end.interface), "\(end)")
            }
        }
        #expect(host.routes.count == want.state.all(RouteObject.self).count)
        #expect(host.rules.count == want.state.all(PolicyRuleObject.self).count)
        #expect(host.tables.count == want.tables.count)
        #expect(host.devices.count == 1 && host.devices.values.first?.config == want.wireguard.values.first?.config)
        #expect(host.chains.count == 1)
        #expect(!host.announced.isEmpty, "made addresses are announced")
    }

    /// A failure at any change of an apply leaves the host as it was before the apply.
    @Test func aFailureAtAnyStepRollsBackToTheHostBefore() throws {
        let want = try Self.desired()
        let probe = ModelHost()
        try Self.apply(want, over: .empty, on: probe)
        let changes = probe.journal.count
        #expect(changes > 50)
        for k in 0..<changes {
            let host = ModelHost()
            host.failWhen = { n, _ in n == k }
            #expect {
                try Self.apply(want, over: .empty, on: host)
            } throws: { error in
                (error as? Executor.Failure)?.rollbackErrors.isEmpty == true
            }
            #expect(host.state.filter { !($0.hasPrefix("sysctl ") && $0.contains("disable_ipv6")) } == [], "step \(k): \(host.journal[k])")
        }
    }

    /// An update (rules, transit, VPN peers and paths changed) that fails at any change
    /// leaves the host exactly as the previous apply made it.
    @Test func aFailedUpdateRestoresThePreviousState() throws {
        let before = try Self.desired()
        let after = try Self.desired { chain in
            chain.paths.removeLast()
            if let i = chain.services.firstIndex(where: { if case .firewall = $0.kind { true } else { false } }),
               case .firewall(var fw) = chain.services[i].kind {
                fw.rules.removeFirst()
                chain.services[i].kind = .firewall(fw)
            }
            chain.classifier?.rules.removeLast()
        }
        let host = ModelHost()
        try Self.apply(before, over: .empty, on: host)
        let applied = host.state
        let plan = Plan.difference(customer: "t", desired: after.state, observed: before.state)
        #expect(plan.actions.contains { $0.verb == .update } && plan.actions.contains { $0.verb == .remove })

        let probe = ModelHost()
        try Self.apply(before, over: .empty, on: probe)
        let start = probe.journal.count
        try Executor(desired: after, previous: before, host: probe).run(plan)
        let updated = probe.state
        #expect(updated != applied)
        for k in start..<probe.journal.count {
            let h = ModelHost()
            try Self.apply(before, over: .empty, on: h)
            h.failWhen = { n, _ in n == k }
            #expect {
                try Executor(desired: after, previous: before, host: h).run(plan)
            } throws: { error in
                (error as? Executor.Failure)?.rollbackErrors.isEmpty == true
            }
            #expect(h.state == applied, "failing at \(probe.journal[k]): missing \(Set(applied).subtracting(h.state)), extra \(Set(h.state).subtracting(applied))")
        }
    }

    /// Updates that replace what is there (a port moved to another bridge, a rule pointed
    /// at another table) put it back when they fail at any change.
    @Test func aFailedUpdatePutsBackWhatItReplaced() throws {
        let want = try Self.desired()
        var moved = want
        let port = try #require(want.state.all(BridgePortObject.self).first { $0.interface.hasPrefix("vl-") })
        moved.state.insert(BridgePortObject(interface: port.interface, bridge: "wan0"))
        var rule = try #require(want.state.all(PolicyRuleObject.self).sorted { $0.id < $1.id }.first)
        rule.table += 50
        moved.state.insert(rule)
        let plan = Plan.difference(customer: "t", desired: moved.state, observed: want.state)
        #expect(plan.actions.count == 2 && plan.actions.allSatisfy { $0.verb == .update })

        let probe = ModelHost()
        try Self.apply(want, over: .empty, on: probe)
        let before = probe.state, start = probe.journal.count
        try Executor(desired: moved, previous: want, host: probe).run(plan)
        #expect(probe.links[.init(namespace: "", name: port.interface)]?.master == "wan0")
        for k in start..<probe.journal.count {
            let h = ModelHost()
            try Self.apply(want, over: .empty, on: h)
            h.failWhen = { n, _ in n == k }
            #expect {
                try Executor(desired: moved, previous: want, host: h).run(plan)
            } throws: { error in
                (error as? Executor.Failure)?.rollbackErrors.isEmpty == true
            }
            #expect(h.state == before, "failing at \(probe.journal[k]): missing \(Set(before).subtracting(h.state)), extra \(Set(h.state).subtracting(before))")
        }
    }

    /// A failed step and every undo of its rollback are one log line each, in order.
    @Test func aFailureAndItsRollbackAreLogged() throws {
        final class Lines: Sendable { let all = Mutex<[String]>([]) }
        let lines = Lines()
        let logger = Logger(label: "test") { label in
            var handler = LineLogHandler(label: label, format: .json) { line in lines.all.withLock { $0.append(line) } }
            handler.logLevel = .info
            return handler
        }
        let want = try Self.desired("small-office.json")
        let host = ModelHost()
        host.failWhen = { _, what in what.hasPrefix("replace table") }
        let plan = Plan.difference(customer: "t", desired: want.state, observed: HostState())
        #expect(throws: Executor.Failure.self) { try Executor(desired: want, previous: .empty, host: host, logger: logger).run(plan) }
        let events = lines.all.withLock { $0 }.compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: String] }
        let steps = events.filter { $0["msg"] == "step" }, undos = events.filter { $0["msg"] == "undo" }
        #expect(!steps.isEmpty && undos.count == steps.count, "\(steps.count) steps, \(undos.count) undone")
        #expect(zip(steps, undos.reversed()).allSatisfy { $0["object"] == $1["object"] }, "undone in reverse order")
        #expect(events.contains { $0["msg"] == "step failed" && $0["kind"] == "nftTable" && $0["level"] == "notice"
                    && $0["error"]?.contains("model failure") == true })
        #expect(events.last?["msg"] == "rolled back" && events.last?["customer"] == "t")
    }

    /// What a rollback cannot undo is reported, not hidden.
    @Test func aRollbackThatFailsSaysWhat() throws {
        let want = try Self.desired("small-office.json")
        let host = ModelHost()
        host.failWhen = { _, what in what.hasPrefix("replace table") || what.hasPrefix("remove netns") }
        #expect {
            try Self.apply(want, over: .empty, on: host)
        } throws: { error in
            guard let f = error as? Executor.Failure else { return false }
            return !f.rollbackErrors.isEmpty && f.description.contains("rollback incomplete")
        }
    }

    /// delete is a plan against an empty descriptor: nothing of the customer stays.
    @Test func deleteIsAPlanAgainstNothing() throws {
        let want = try Self.desired()
        let host = ModelHost()
        try Self.apply(want, over: .empty, on: host)
        let delete = Plan.difference(customer: "t", desired: HostState(), observed: want.state)
        try Executor(desired: .empty, previous: want, host: host).run(delete)
        #expect(host.namespaces.isEmpty && host.tables.isEmpty && host.devices.isEmpty && host.chains.isEmpty && host.routes.isEmpty)
        #expect(host.links.isEmpty, "\(host.links.keys)")
    }

    /// Drift, as the observer reports it, is repaired to what a fresh apply makes.
    @Test func driftIsRepairedToWhatAFreshApplyMakes() throws {
        let want = try Self.desired()
        let fresh = ModelHost()
        try Self.apply(want, over: .empty, on: fresh)

        let host = ModelHost()
        try Self.apply(want, over: .empty, on: host)
        var observed = want.state
        // An end down and its Ethernet address changed by hand: fixed in place.
        let veth = try #require(want.state.all(VethObject.self).first { $0.upstream.namespace != nil && $0.downstream.namespace != nil })
        let end = ModelHost.Place(namespace: veth.downstream.namespace!, name: veth.downstream.interface)
        host.links[end]!.up = false
        host.links[end]!.mac = [2, 0, 0, 0, 0, 1]
        var drifted = veth
        drifted.drift = .ends
        observed.insert(drifted)
        // A table edited by hand, an address and a route removed.
        let table = try #require(want.state.all(NftTableObject.self).first)
        host.tables["\(table.namespace) \(table.family.rawValue) \(table.name)"] = "edited"
        var edited = table
        edited.digest = "edited"
        observed.insert(edited)
        let address = try #require(want.state.all(AddressObject.self).first { $0.at != veth.downstream && $0.at != veth.upstream })
        host.addresses["\(ModelHost.Place(namespace: address.at.namespace ?? "", name: address.at.interface)) \(address.prefix)"] = nil
        observed.objects[HostObject(address).id] = nil
        // A stray veth someone left in a namespace of the customer's.
        let stray = ModelHost.Place(namespace: veth.upstream.namespace!, name: "junk")
        host.links[stray] = .init(kind: "veth", up: true)
        observed.insert(VethObject(key: "stray \(stray)", upstream: .init(namespace: stray.namespace, interface: "junk"),
                                   downstream: .init(namespace: stray.namespace, interface: "junk"), drift: .stray))

        let plan = Plan.difference(customer: "t", desired: want.state, observed: observed)
        #expect(plan.actions.count >= 4)
        let before = host.journal.count
        try Executor(desired: want, previous: want, host: host).run(plan)
        #expect(host.state == fresh.state)
        // The pair was fixed in place, not made anew.
        #expect(!host.journal[before...].contains { $0.hasPrefix("add veth") })
    }
}
