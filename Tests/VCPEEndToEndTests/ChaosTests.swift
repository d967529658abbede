import Foundation
import Testing
import VCPEDescriptor
import VCPENetlink
import VCPESystem
import VCPETestSupport

/// Five customers (two firewall + router offices, two VPN sites, a steered chain) through
/// rounds of a random step: a changed descriptor applied, an apply killed with SIGKILL at a
/// random moment, the forwarder or a WireGuard daemon killed, a customer deleted, a plain
/// re-apply. After each round one apply of every descriptor; then the host must match the
/// plan of every customer and traffic must pass on each. At the end, after delete, nothing
/// of vcpe is left. Seeded: `VCPE_CHAOS_SEED` replays a run, `VCPE_CHAOS_ROUNDS` sets its
/// length (default 100).
@Suite(.serialized) struct ChaosTests {
    /// A random source that can be replayed from its seed.
    struct Random: RandomNumberGenerator {
        var state: UInt64
        mutating func next() -> UInt64 {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
    }

    enum Step: String, CaseIterable { case change, killApply, killForwarder, killDaemon, delete, reapply }

    @Test func randomStepsAlwaysConvergeAndLeaveNothing() throws {
        let env = ProcessInfo.processInfo.environment
        let seed = env["VCPE_CHAOS_SEED"].flatMap { UInt64($0) } ?? UInt64.random(in: 0...UInt64(UInt32.max))
        let rounds = env["VCPE_CHAOS_ROUNDS"].flatMap { Int($0) } ?? 100
        print("chaos: seed \(seed), \(rounds) rounds (VCPE_CHAOS_SEED=\(seed) replays it)")
        var rng = Random(state: seed)

        let sc = try Scenario(wireguard: "userspace")
        defer { sc.cleanup() }
        let office0 = try sc.lanHost(0, address: "192.168.10.10/24", gateway: "192.168.10.1")
        let site1 = try sc.lanHost(1, address: "192.168.31.10/24", gateway: "192.168.31.1")
        let site2 = try sc.lanHost(2, address: "192.168.32.10/24", gateway: "192.168.32.1")
        let office3 = try sc.lanHost(3, address: "192.168.13.10/24", gateway: "192.168.13.1")
        let steered4 = try sc.lanHost(4, address: "192.168.20.10/24", gateway: "192.168.20.1")
        // Each customer's descriptor, by variant (a change picks another variant).
        var variant = [0, 0, 0, 0, 0]
        func text(_ n: Int) throws -> String {
            switch n {
            case 0: return ApplyTests.office(sc, 0, attach: office0.attach, webPorts: variant[0] % 2 == 0 ? "[80, 443]" : "[80, 443, 8443]")
            case 3: return ApplyTests.office(sc, 3, attach: office3.attach, lan: "192.168.13", wan: "203.0.113.13",
                                             webPorts: variant[3] % 2 == 0 ? "[80]" : "[80, 8080]")
            case 4:
                let extra = variant[4] % 2 == 0 ? "" : #"{ "name": "dns", "priority": 5, "match": { "proto": "udp", "dport": "53" }, "path": "secure" },"#
                return SteeringTests.chain(sc, 4, attach: steered4.attach, lan: "192.168.20", wan: "203.0.113.20", extraRules: extra)
            default:
                // The VPN sites name each other's current public key (made on a site's first apply).
                let other = n == 1 ? 2 : 1
                let key = (try? VPNTests.vpn(sc, other)["publicKey"] as? String) ?? nil
                return VPNTests.site(sc, n, attach: (n == 1 ? site1 : site2).attach, peerKey: key ?? VPNTests.strangerKey,
                                     resources: variant[n] % 2 == 0 ? nil : #"{ "memory": "96MiB", "pids": 48 }"#)
            }
        }
        func file(_ n: Int) throws -> String { try sc.descriptor(try text(n)) }
        /// One apply of every descriptor; the VPN sites again only if that apply gave a site a
        /// new key (made anew after a delete), which its peer's descriptor must name.
        func converge() throws {
            let sites = [try text(1), try text(2)]
            try sc.vcpe(["apply"] + (0..<5).map { try file($0) })
            if [try text(1), try text(2)] != sites { try sc.vcpe(["apply", try file(1), try file(2)]) }
        }
        func within(_ seconds: Double, _ check: () -> Bool) -> Bool {
            let end = Date().addingTimeInterval(seconds)
            while Date() < end { if check() { return true }; usleep(100_000) }
            return check()
        }

        try converge()
        try sc.plugInternet()
        for round in 1...rounds {
            let step = Step.allCases.randomElement(using: &rng)!
            let n = Int.random(in: 0..<5, using: &rng)
            switch step {
            case .change:
                variant[n] += 1
                try sc.vcpe(["apply", try file(n)])
            case .killApply:
                variant[n] += 1
                let pid = try spawn(vcpeBinary.path, ["apply", try file(n), "--state-dir", sc.stateDir])
                usleep(UInt32.random(in: 0...250_000, using: &rng))
                kill(pid, SIGKILL)
                waitFor(pid)
            case .killForwarder:
                for p in SteeringTests.forwarderPIDs(sc).compactMap({ pid_t($0) }) { kill(p, SIGKILL) }
            case .killDaemon:
                for p in VPNTests.wireguardPIDs(sc, n % 2 == 0 ? 1 : 2).compactMap({ pid_t($0) }) { kill(p, SIGKILL) }
            case .delete:
                try sc.vcpe(["delete", sc.customer(n)])
            case .reapply:
                try sc.vcpe(["apply", try file(n)])
            }
            try converge()
            for c in 0..<5 {
                let pending = try sc.pendingActions(try file(c))
                #expect(pending == 0, "round \(round) (\(step) \(c == n ? "this customer" : "customer \(n)")), seed \(seed): customer \(c) has \(pending) pending actions")
            }
            for (name, lan, target) in [("office 0", office0.namespace, "203.0.113.1"), ("office 3", office3.namespace, "203.0.113.1"),
                                        ("steered 4", steered4.namespace, "203.0.113.1"), ("site 1 to 2", site1.namespace, "192.168.32.10"),
                                        ("site 2 to 1", site2.namespace, "192.168.31.10")] {
                #expect(within(8) { ping(from: lan, to: target, count: 1) }, "round \(round) (\(step) customer \(n)), seed \(seed): \(name) passes no traffic")
            }
        }

        // Delete: nothing of vcpe is left (the scenario's cleanup checks containers, daemons,
        // forwarders, pins and retired links too).
        try sc.vcpe(["delete"] + (0..<5).map(sc.customer))
        #expect(try NetworkNamespace.list().filter { $0.hasPrefix("vcpe-\(sc.fx.tag)") }.isEmpty)
        #expect(try RouteSocket().links().filter { $0.name.contains(sc.fx.tag) && !$0.name.hasPrefix(sc.fx.tag) }.isEmpty)
        let sockets = ((try? FileManager.default.contentsOfDirectory(atPath: "/var/run/wireguard/vcpe")) ?? []).filter { $0.contains(sc.fx.tag) }
        #expect(sockets.isEmpty, "WireGuard socket directories left: \(sockets)")
        let links = ((try? FileManager.default.contentsOfDirectory(atPath: "/var/run/wireguard")) ?? []).filter { $0.contains(sc.fx.tag) }
        #expect(links.isEmpty, "WireGuard socket links left: \(links)")
        #expect(SteeringTests.forwarderPIDs(sc, ".*").isEmpty, "a forwarder process left")
        for socket in ["broker.sock", "run/control.sock"] {
            #expect(!FileManager.default.fileExists(atPath: sc.stateDir + "/forwarder/" + socket), "\(socket) left")
        }
        // No nftables table of vcpe's on the host (its tables live in the namespaces that went).
        #expect(!(try sh("/usr/sbin/nft", ["list", "tables"])).contains("vcpe"))
    }
}
