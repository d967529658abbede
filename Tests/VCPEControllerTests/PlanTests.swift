import Testing
import VCPEPolicy
import VCPETestSupport
import VCPEController
import VCPEDescriptor
import VCPENet

@Suite struct PlanTests {
    private func chain(_ file: String) throws -> Chain {
        try #require(validate(repoFile("chains/\(file)")).chain)
    }

    @Test func emptyHostPlanCreatesEverythingInDependencyOrder() throws {
        let c = try chain("small-office.json")
        var alloc = TransitAllocator()
        let plan = try Planner.plan(c, observer: EmptyHost(), allocator: &alloc)
        #expect(plan.actions.allSatisfy { $0.verb == .create })
        let ranks = plan.actions.map(\.object.rank)
        #expect(ranks == ranks.sorted())
        let summaries = plan.actions.map(\.object.summary)
        #expect(summaries.contains("namespace vcpe-smalloffice.fw"))
        #expect(summaries.contains("address 192.168.10.1/24 on vcpe-smalloffice.fw/lan"))
        #expect(summaries.contains("address 203.0.113.10/24 on vcpe-smalloffice.rt/wan"))
        #expect(summaries.contains("route default via 203.0.113.1 dev wan in vcpe-smalloffice.rt"))
        #expect(summaries.contains("host interface vw-smalloffice into bridge wan0"))
    }

    /// A host that already matches the descriptor gets an empty plan; drift shows up.
    @Test func observedStateEqualToDesiredPlansNothingAndDriftIsRepaired() throws {
        let c = try chain("multipath.json")
        var alloc = TransitAllocator()
        let first = try Planner.plan(c, observer: EmptyHost(), allocator: &alloc)
        var host = HostState(first.actions.map(\.object))
        struct Fixed: HostObserver { let s: HostState; func observe(customer: String) -> HostState { s } }

        #expect(try Planner.plan(c, observer: Fixed(s: host), allocator: &alloc).isEmpty)

        let victim = first.actions.first { $0.object.as(VethObject.self) != nil }!.object
        host.objects[victim.id] = nil
        host.insert(.namespace(name: "vcpe-acme.stale"))
        let repair = try Planner.plan(c, observer: Fixed(s: host), allocator: &alloc)
        #expect(repair.actions.first?.verb == .remove)
        #expect(repair.actions.first?.object == .namespace(name: "vcpe-acme.stale"))
        #expect(repair.actions.dropFirst().first?.object == victim)
        // What lived on the pair's ends is put back with it, and nothing else is touched.
        let (up, down) = (victim.as(VethObject.self)!.upstream, victim.as(VethObject.self)!.downstream)
        #expect(repair.actions.dropFirst(2).allSatisfy { $0.verb == .create && $0.object.hangs(on: [up, down]) })
    }

    /// A broken veth pair is made anew: what lived on its ends goes with the old pair, so the
    /// plan puts it back even though it was observed in place.
    @Test func aVethMadeAnewBringsBackWhatHungOnItsEnds() throws {
        let c = try chain("multipath.json")
        var alloc = TransitAllocator()
        var host = HostState(try Planner.plan(c, observer: EmptyHost(), allocator: &alloc).actions.map(\.object))
        let veth = host.objects.values.first { $0.as(VethObject.self)?.upstream.namespace?.hasSuffix(".classifier") == true }!
        var broken = try #require(veth.as(VethObject.self))
        let (up, down) = (broken.upstream, broken.downstream)
        broken.drift = .broken
        host.objects[veth.id] = HostObject(broken)
        struct Fixed: HostObserver { let s: HostState; func observe(customer: String) -> HostState { s } }
        let plan = try Planner.plan(c, observer: Fixed(s: host), allocator: &alloc)
        #expect(plan.actions.first?.verb == .update && plan.actions.first?.object == veth)
        let redone = plan.actions.dropFirst().map(\.object)
        #expect(!redone.isEmpty && redone.allSatisfy { $0.hangs(on: [up, down]) }, "\(redone.map(\.summary))")
        #expect(redone.contains { $0.as(AddressObject.self)?.at == down }, "the far end's address")
        let ranks = plan.actions.map(\.object.rank)
        #expect(ranks == ranks.sorted())
    }

    @Test func changingOneFirewallRuleTouchesOnlyThatTable() throws {
        var c = try chain("small-office.json")
        var alloc = TransitAllocator()
        let before = HostState(try Planner.plan(c, observer: EmptyHost(), allocator: &alloc).actions.map(\.object))
        guard case .firewall(var fw) = c.services[0].kind else { Issue.record("fw"); return }
        fw.rules[0].dport = [PortRange(8443)]
        c.services[0].kind = .firewall(fw)
        struct Fixed: HostObserver { let s: HostState; func observe(customer: String) -> HostState { s } }
        let plan = try Planner.plan(c, observer: Fixed(s: before), allocator: &alloc)
        #expect(plan.actions.count == 1)
        #expect(plan.actions.first?.verb == .update)
        #expect(plan.actions.first?.object.id == "table inet vcpe in vcpe-smalloffice.fw")
    }

    @Test func transitAllocationIsStableAndReleased() throws {
        var alloc = TransitAllocator()
        let a1 = try alloc.assign(customer: "a", links: ["p:x>y", "p:y>z"])
        let b1 = try alloc.assign(customer: "b", links: ["p:x>y"])
        #expect(Set(a1.values).isDisjoint(with: b1.values))
        #expect(try alloc.assign(customer: "a", links: ["p:x>y", "p:y>z"]) == a1)
        // Removing a link frees its /31 and keeps the other.
        let a2 = try alloc.assign(customer: "a", links: ["p:y>z"])
        #expect(a2["p:y>z"] == a1["p:y>z"])
        let c1 = try alloc.assign(customer: "c", links: ["q"])
        #expect(c1["q"] == a1["p:x>y"])
        alloc.release(customer: "a")
        #expect(alloc.slots.keys.allSatisfy { !$0.hasPrefix("a/") })
        var tiny = TransitAllocator(pool: IPPrefix("10.0.0.0/30")!)
        #expect(throws: TransitAllocator.Exhausted.self) { try tiny.assign(customer: "x", links: ["1", "2", "3"]) }
    }

    @Test func twoCustomersWithTheSameSubnetShareNoKernelName() throws {
        var alloc = TransitAllocator()
        let a = try Planner.plan(try chain("tenant-a.json"), observer: EmptyHost(), allocator: &alloc)
        let b = try Planner.plan(try chain("tenant-b.json"), observer: EmptyHost(), allocator: &alloc)
        let shared = Set(a.actions.map(\.object.id)).intersection(b.actions.map(\.object.id))
        // Only the provider-side bridge is shared, by design.
        #expect(shared == ["bridge wan0"])
    }
}
