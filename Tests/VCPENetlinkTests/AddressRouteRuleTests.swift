import Foundation
import Testing
import VCPEDescriptor
import VCPENet
import VCPENetlink
import VCPESystem
import VCPETestSupport

@Suite struct AddressRouteRuleTests {
    private func setup(_ fx: KernelFixture) throws -> (String, RouteSocket) {
        let a = try fx.namespace("a"), b = try fx.namespace("b")
        let nl = try RouteSocket(namespace: a)
        try nl.addVeth(VethEnd("n0"), VethEnd("n1", in: b))
        try nl.setLink("n0", up: true)
        return (a, nl)
    }

    @Test func addressesV4AndV6() throws {
        let fx = KernelFixture()
        defer { fx.cleanup() }
        let (a, nl) = try setup(fx)
        let v4 = IPPrefix("192.0.2.1/24")!, v6 = IPPrefix("2001:db8::1/64")!
        #expect(try nl.ensureAddress(v4, on: "n0") == .created)
        #expect(try nl.ensureAddress(v4, on: "n0") == .unchanged)
        try nl.addAddress(v6, on: "n0")
        let j = try #require(try ip(["addr", "show", "n0"], namespace: a).first)
        let infos = (j["addr_info"] as? [[String: Any]] ?? []).map { "\($0["local"]!)/\($0["prefixlen"]!)" }
        #expect(infos.contains("192.0.2.1/24"))
        #expect(infos.contains("2001:db8::1/64"))
        let mine = try nl.addresses(on: "n0")
        #expect(mine.contains(v4) && mine.contains(v6))
        #expect(throws: MismatchError.self) { try nl.ensureAddress(IPPrefix("192.0.2.1/25")!, on: "n0") }
        try nl.removeAddress(v4, on: "n0")
        try nl.removeAddress(v4, on: "n0")
        try nl.removeAddress(v4, on: "gone0")
        #expect(!(try nl.addresses(on: "n0")).contains(v4))
    }

    @Test func routesInAnyTableAddReplaceDelete() throws {
        let fx = KernelFixture()
        defer { fx.cleanup() }
        let (a, nl) = try setup(fx)
        try nl.addAddress(IPPrefix("169.254.0.0/31")!, on: "n0")
        let def = RouteInfo(destination: IPPrefix("0.0.0.0/0")!, gateway: IPAddress("169.254.0.1")!, device: "n0")
        let inTable = RouteInfo(destination: IPPrefix("0.0.0.0/0")!, gateway: IPAddress("169.254.0.1")!, device: "n0", table: 100)
        let onLink = RouteInfo(destination: IPPrefix("198.51.100.0/24")!, device: "n0", table: 100)
        #expect(try nl.ensureRoute(def) == .created)
        #expect(try nl.ensureRoute(def) == .unchanged)
        try nl.addRoute(inTable)
        try nl.addRoute(onLink)
        let j = try ip(["route", "show", "table", "all", "proto", "static"], namespace: a)
        let seen = Set(j.map { "\($0["dst"]!) \($0["gateway"] ?? "-") \($0["dev"]!) \($0["table"] ?? "main")" })
        #expect(seen == ["default 169.254.0.1 n0 main", "default 169.254.0.1 n0 100", "198.51.100.0/24 - n0 100"], "\(seen)")
        let mine = try nl.routes()
        #expect(mine.contains(def) && mine.contains(inTable) && mine.contains(onLink))

        let other = RouteInfo(destination: IPPrefix("198.51.100.0/24")!, gateway: IPAddress("169.254.0.1")!, device: "n0", table: 100)
        #expect(throws: MismatchError.self) { try nl.ensureRoute(other) }
        try nl.addRoute(other, replace: true)
        #expect(try ip(["route", "show", "table", "100", "198.51.100.0/24"], namespace: a).first?["gateway"] as? String == "169.254.0.1")
        try nl.removeRoute(other)
        try nl.removeRoute(other)
        #expect(try ip(["route", "show", "table", "100", "198.51.100.0/24"], namespace: a).isEmpty)
    }

    @Test func policyRules() throws {
        let fx = KernelFixture()
        defer { fx.cleanup() }
        let (a, nl) = try setup(fx)
        let byIif = RuleInfo(priority: 1000, table: 100, inputInterface: "n0")
        let byMark = RuleInfo(priority: 1001, table: 101, fwmark: 0x10, fwmask: 0xF0)
        let bySource = RuleInfo(priority: 1002, table: 102, source: IPPrefix("192.0.2.0/24")!)
        #expect(try nl.ensureRule(byIif) == .created)
        #expect(try nl.ensureRule(byIif) == .unchanged)
        try nl.addRule(byMark)
        try nl.addRule(bySource)
        let j = try ip(["rule", "show"], namespace: a)
        let r1000 = try #require(j.first { $0["priority"] as? Int == 1000 })
        #expect(r1000["iif"] as? String == "n0" && r1000["table"] as? String == "100")
        let r1001 = try #require(j.first { $0["priority"] as? Int == 1001 })
        #expect(r1001["fwmark"] as? String == "0x10" && r1001["fwmask"] as? String == "0xf0")
        let r1002 = try #require(j.first { $0["priority"] as? Int == 1002 })
        #expect(r1002["src"] as? String == "192.0.2.0" && r1002["srclen"] as? Int == 24)
        let mine = try nl.rules()
        #expect(mine.contains(byIif) && mine.contains(byMark) && mine.contains(bySource), "\(mine)")
        #expect(throws: MismatchError.self) { try nl.ensureRule(RuleInfo(priority: 1000, table: 200, inputInterface: "n0")) }
        try nl.removeRule(byIif)
        try nl.removeRule(byIif)
        #expect(!(try ip(["rule", "show"], namespace: a)).contains { $0["priority"] as? Int == 1000 })
    }

    @Test func permanentNeighbours() throws {
        let fx = KernelFixture()
        defer { fx.cleanup() }
        let (a, nl) = try setup(fx)
        let mac: [UInt8] = [0x02, 0, 0, 0, 0, 0x42]
        try nl.setPermanentNeighbour(IPAddress("192.0.2.9")!, mac: mac, on: "n0")
        let j = try #require(try ip(["neigh", "show", "dev", "n0"], namespace: a).first)
        #expect(j["lladdr"] as? String == "02:00:00:00:00:42")
        #expect((j["state"] as? [String])?.contains("PERMANENT") == true)
        #expect(try nl.neighbour(IPAddress("192.0.2.9")!, on: "n0")?.permanent == true)
        try nl.removeNeighbour(IPAddress("192.0.2.9")!, on: "n0")
        try nl.removeNeighbour(IPAddress("192.0.2.9")!, on: "n0")
        #expect(try nl.neighbour(IPAddress("192.0.2.9")!, on: "n0") == nil)
    }

    @Test func snapshotGivesTheTypedPictureOfANamespace() throws {
        let fx = KernelFixture()
        defer { fx.cleanup() }
        let (_, nl) = try setup(fx)
        try nl.addAddress(IPPrefix("169.254.0.0/31")!, on: "n0")
        try nl.addRoute(RouteInfo(destination: IPPrefix("0.0.0.0/0")!, gateway: IPAddress("169.254.0.1")!, device: "n0"))
        try nl.addRule(RuleInfo(priority: 1000, table: 100, inputInterface: "n0"))
        let s = try nl.snapshot()
        #expect(s.link(named: "n0")?.kind == "veth")
        #expect(s.addresses["n0"]?.map(\.prefix).contains(IPPrefix("169.254.0.0/31")!) == true)
        #expect(s.routes.contains { $0.destination.length == 0 && $0.gateway == IPAddress("169.254.0.1") })
        #expect(s.rules.contains { $0.priority == 1000 && $0.inputInterface == "n0" })
    }
}
