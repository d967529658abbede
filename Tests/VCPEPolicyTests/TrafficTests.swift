import Foundation
import Testing
import VCPEDescriptor
import VCPENet
import VCPENetlink
import VCPENftables
import VCPEPolicy
import VCPESystem
import VCPETestSupport

/// Real packets through the translated tables of chains/small-office.json: a LAN host,
/// the firewall and router namespaces, and an "internet" host, wired by hand with the
/// netlink layer (apply does this for real; here only nftables is under test).
@Suite(.serialized) struct TrafficTests {
    struct MiniChain {
        let lan, fw, rt, inet: String
    }

    static func build(_ fx: KernelFixture) throws -> (MiniChain, Chain) {
        let m = MiniChain(lan: try fx.namespace("lan"), fw: try fx.namespace("fw"), rt: try fx.namespace("rt"), inet: try fx.namespace("inet"))
        let f = try RouteSocket(namespace: m.fw), r = try RouteSocket(namespace: m.rt)
        try f.addVeth(VethEnd("lan"), VethEnd("eth0", in: m.lan))
        try f.addVeth(VethEnd("internet-out"), VethEnd("internet-in", in: m.rt))
        try r.addVeth(VethEnd("wan"), VethEnd("eth0", in: m.inet))
        let plan: [(String, String, String)] = [
            (m.lan, "eth0", "192.168.10.10/24"), (m.fw, "lan", "192.168.10.1/24"), (m.fw, "internet-out", "169.254.0.0/31"),
            (m.rt, "internet-in", "169.254.0.1/31"), (m.rt, "wan", "203.0.113.10/24"), (m.inet, "eth0", "203.0.113.1/24"),
        ]
        for (ns, dev, a) in plan {
            let s = try RouteSocket(namespace: ns)
            try s.addAddress(IPPrefix(a)!, on: dev)
            try s.setLink(dev, up: true)
            try s.setLink("lo", up: true)
        }
        let any = IPPrefix("0.0.0.0/0")!
        try RouteSocket(namespace: m.lan).addRoute(RouteInfo(destination: any, gateway: IPAddress("192.168.10.1")))
        try f.addRoute(RouteInfo(destination: any, gateway: IPAddress("169.254.0.1"), device: "internet-out"))
        try r.addRoute(RouteInfo(destination: any, gateway: IPAddress("203.0.113.1"), device: "wan"))
        try r.addRoute(RouteInfo(destination: IPPrefix("192.168.10.0/24")!, gateway: IPAddress("169.254.0.0"), device: "internet-in"))
        for ns in [m.fw, m.rt] { try Sysctl.write("net.ipv4.ip_forward", "1", namespace: ns) }

        let file = repositoryRoot.appendingPathComponent("chains/small-office.json")
        let chain = try #require(ChainDecoder.validate([UInt8](try Data(contentsOf: file))).chain)
        let topo = Topology.resolve(chain)
        try NftSocket(namespace: m.fw).replaceTable(try #require(ServiceTables.table(for: chain.service(named: "fw")!, in: chain, topology: topo)))
        try NftSocket(namespace: m.rt).replaceTable(try #require(ServiceTables.table(for: chain.service(named: "rt")!, in: chain, topology: topo)))
        return (m, chain)
    }

    @Test func allowedPassesDeniedIsDroppedOrRejectedAndCountersCount() throws {
        let fx = KernelFixture()
        let servers = Servers()
        defer {
            servers.stop()
            fx.cleanup()
        }
        let (m, _) = try Self.build(fx)
        for (kind, port) in [("tcp", 80), ("tcp", 8081), ("tcp", 138), ("udp", 53), ("udp", 54)] {
            try servers.start(kind, port: port, in: m.inet)
        }
        try servers.start("tcp", port: 80, in: m.lan)

        #expect(ping(from: m.lan, to: "203.0.113.1"))
        // Allowed, and masqueraded: the internet host sees the WAN address.
        #expect(try probe("tcp", from: m.lan, to: "203.0.113.1", port: 80) == "ok peer=203.0.113.10")
        #expect(try probe("udp", from: m.lan, to: "203.0.113.1", port: 53) == "ok peer=203.0.113.10")
        // Not allowed: the default policy drops silently. (A counting rule put first in the
        // firewall's chain shows the probes reached it: the route works, the policy decided.)
        try sh("/usr/sbin/ip", ["netns", "exec", m.fw, "nft", "insert", "rule", "inet", "vcpe", "forward",
                                "meta", "l4proto", "{ tcp, udp }", "th", "dport", "{ 8081, 54, 80 }", "ip", "daddr", "{ 203.0.113.1, 192.168.10.10 }",
                                "counter", "comment", "\"reached\""])
        func reachedFirewall() throws -> Int { try nftCounter("reached", in: m.fw) }
        let seen = try reachedFirewall()
        #expect(try probe("tcp", from: m.lan, to: "203.0.113.1", port: 8081, timeout: 0.5) == "timeout")
        #expect(try probe("udp", from: m.lan, to: "203.0.113.1", port: 54, timeout: 0.5) == "timeout")
        #expect(try reachedFirewall() >= seen + 2, "the dropped probes reached the firewall")
        // Rejected with a TCP reset.
        #expect(try probe("tcp", from: m.lan, to: "203.0.113.1", port: 138) == "refused")
        // The port forward reaches the LAN host, which sees the real client.
        #expect(try probe("tcp", from: m.inet, to: "203.0.113.10", port: 8080) == "ok peer=203.0.113.1")
        // Nothing else from the internet gets in: routed straight at the LAN host, the
        // router's rule for what it did not forward drops it (its counter moves).
        try RouteSocket(namespace: m.inet).addRoute(RouteInfo(destination: IPPrefix("192.168.10.0/24")!, gateway: IPAddress("203.0.113.10")))
        func notForwarded() throws -> Int { try nftCounter("not-forwarded", in: m.rt) }
        let before = try notForwarded()
        let direct = try probe("tcp", from: m.inet, to: "192.168.10.10", port: 80, timeout: 0.5)
        #expect(direct == "timeout", "\(direct)")
        #expect(try notForwarded() >= before + 1, "the router's rule dropped the direct probe")

        let counters = try NftSocket(namespace: m.fw).counterValues(family: .inet, table: "vcpe")
        #expect((counters["web"]?.packets ?? 0) >= 1, "\(counters)")  // first packets only: the rest are established
        #expect((counters["dns"]?.packets ?? 0) >= 1)
        #expect((counters["no-smb"]?.packets ?? 0) >= 1)
        #expect((counters["ping"]?.packets ?? 0) >= 1)
        #expect(counters["ssh-in"]?.packets == 0)
    }
}
