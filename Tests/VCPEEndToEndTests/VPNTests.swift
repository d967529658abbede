import Foundation
import Testing
import VCPENetlink
import VCPETestSupport

/// The vpn service: real WireGuard tunnels between two customers on one host acting as two
/// sites, checked with real traffic, packet captures and `wg`. These tests are about the
/// daemon, so they pin wireguard-go whatever the kernel has (KernelWireGuardTests is the
/// kernel driver's).
@Suite(.serialized) struct VPNTests {
    /// Site n (1 or 2): LAN 192.168.3n.0/24 behind fw -> vpn -> rt, WAN 203.0.113.3n; its
    /// peer is the other site.
    static func site(_ sc: Scenario, _ n: Int, attach: String, peerKey: String, psk: String? = nil, reachOut: Bool = true,
                     resources: String? = nil) -> String {
        let me = 30 + n, other = n == 1 ? 32 : 31
        let reach = reachOut ? "\"endpoint\": \"203.0.113.\(other):51820\", \"keepalive\": 25, " : ""
        return """
        {
          "apiVersion": "vcpe/v1",
          "customer": "\(sc.customer(n))",
          "lan": { "subnet": "192.168.\(me).0/24", "gateway": "192.168.\(me).1", "attach": ["\(attach)"] },
          "wan": { "address": "203.0.113.\(me)/24", "gateway": "203.0.113.1", "segment": "\(sc.segment)" },
          "services": {
            "fw": { "type": "firewall", "default": "drop", "rules": [
              { "name": "lan-out", "action": "accept", "from": "lan" },
              { "name": "site-in", "action": "accept", "from": "wan", "src": "192.168.\(other).0/24" } ] },
            "vpn": { "type": "vpn", \(resources.map { "\"resources\": \($0), " } ?? "")"wireguard": { "address": "10.99.0.\(me)/32", "listenPort": 51820,
              "peers": [ { "name": "site\(3 - n)", "publicKey": "\(peerKey)", \(reach)
                           "allowedIPs": ["192.168.\(other).0/24", "10.99.0.\(other)/32"]\(psk.map { ", \"presharedKeyFile\": \"\($0)\"" } ?? "") } ] } },
            "rt": { "type": "router", "nat": "masquerade" }
          },
          "paths": { "site": ["fw", "vpn", "rt"] }
        }
        """
    }

    /// A public key no site has: a stand-in until the real peer key is known.
    static let strangerKey = "dpdBJobiTzRHV0txjujEHYNCPMe0AMmdl4hiVcrwPFo="

    struct Sites {
        var lan1: String, lan2: String
        var file1: String, file2: String
    }

    /// Both sites applied the way an operator does it: site 1 first (its key is made),
    /// site 2 with site 1's public key, then site 1 again with site 2's.
    static func twoSites(_ sc: Scenario, psk: String? = nil, wrongKeyAtSite1: Bool = false, site1ReachesOut: Bool = true) throws -> Sites {
        let h1 = try sc.lanHost(1, address: "192.168.31.10/24", gateway: "192.168.31.1")
        let h2 = try sc.lanHost(2, address: "192.168.32.10/24", gateway: "192.168.32.1")
        var f1 = try sc.descriptor(site(sc, 1, attach: h1.attach, peerKey: strangerKey, psk: psk, reachOut: site1ReachesOut))
        try sc.vcpe(["apply", f1])
        let f2 = try sc.descriptor(site(sc, 2, attach: h2.attach, peerKey: try vpn(sc, 1)["publicKey"] as! String, psk: psk))
        try sc.vcpe(["apply", f2])
        if !wrongKeyAtSite1 {
            f1 = try sc.descriptor(site(sc, 1, attach: h1.attach, peerKey: try vpn(sc, 2)["publicKey"] as! String, psk: psk,
                                        reachOut: site1ReachesOut))
            try sc.vcpe(["apply", f1])
        }
        try sc.plugInternet()
        return Sites(lan1: h1.namespace, lan2: h2.namespace, file1: f1, file2: f2)
    }

    /// The vpn service's `status --json` object of customer n.
    static func vpn(_ sc: Scenario, _ n: Int) throws -> [String: Any] {
        let all = try JSONSerialization.jsonObject(with: Data(try sc.vcpe(["status", "--json", sc.customer(n)]).utf8)) as? [[String: Any]]
        let services = all?.first?["services"] as? [[String: Any]] ?? []
        return services.compactMap { $0["vpn"] as? [String: Any] }.first ?? [:]
    }

    /// The first peer's `status --json` object; a status without one is a failure.
    static func peer(_ sc: Scenario, _ n: Int) throws -> [String: Any] {
        try #require((try vpn(sc, n)["peers"] as? [[String: Any]])?.first, "no peer in customer \(n)'s status")
    }

    static func wireguardPIDs(_ sc: Scenario, _ n: Int) -> [String] {
        ((try? sh("/usr/bin/pgrep", ["-f", "wireguard-go wg-\(sc.customer(n))$"])) ?? "").split(separator: "\n").map(String.init)
    }

    @Test func twoSitesReachEachOtherThroughTheTunnelOnly() throws {
        let sc = try Scenario(wireguard: "userspace")
        defer { sc.cleanup() }
        let psk = sc.stateDir + "-psk"
        try (try sh("/usr/bin/wg", ["genpsk"])).write(toFile: psk, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: psk) }
        let s = try Self.twoSites(sc, psk: psk)
        try sc.servers.start("sink", port: 5001, in: s.lan2)
        try sc.servers.start("tcp", port: 80, in: s.lan2)
        try sc.servers.start("tcp", port: 80, in: sc.internet)
        try sc.servers.start("sink", port: 5002, in: sc.internet)

        // LAN to LAN keeps its addresses (no NAT in a tunnel); the internet sees the WAN address.
        #expect(ping(from: s.lan1, to: "192.168.32.10"))
        #expect(try probe("tcp", from: s.lan1, to: "192.168.32.10", port: 80) == "ok peer=192.168.31.10")
        #expect(try probe("tcp", from: s.lan1, to: "203.0.113.1", port: 80) == "ok peer=203.0.113.31")

        // On the WAN segment: the tunnel's payload is never in clear, the internet's is.
        let cap = try Capture(interface: sc.segment)
        #expect(try transfer(from: s.lan1, to: "192.168.32.10", port: 5001, bytes: 4 << 20, marker: "VCPE-TUNNEL-SECRET") == "intact")
        #expect(try transfer(from: s.lan1, to: "203.0.113.1", port: 5002, bytes: 256 << 10, marker: "VCPE-IN-CLEAR") == "intact")
        try cap.stop()
        #expect(!cap.contains("VCPE-TUNNEL-SECRET"))
        #expect(cap.contains("VCPE-IN-CLEAR"), "the capture must see clear payload, or it proves nothing")
        let sites: Set = ["203.0.113.31", "203.0.113.32"]
        let between = cap.packets.filter { sites.contains($0.source) && sites.contains($0.destination) }
        #expect(between.count > 2000, "4 MiB through the tunnel took \(between.count) packets on the segment")
        let other = between.filter { !($0.proto == 17 && $0.sourcePort == 51820 && $0.destinationPort == 51820) }
        #expect(other.isEmpty, "not WireGuard between the sites: \(other.prefix(3))")
        #expect(!cap.packets.contains { $0.source.hasPrefix("192.168.3") || $0.destination.hasPrefix("192.168.3") })

        // The device as `wg` (an independent implementation) reads it.
        let dump = try sh("/usr/bin/wg", ["show", "wg-\(sc.customer(1))", "dump"]).split(separator: "\n").map { $0.split(separator: "\t") }
        let site2Key = try Self.vpn(sc, 2)["publicKey"] as! String
        #expect(dump[0][1] == Substring(try Self.vpn(sc, 1)["publicKey"] as! String) && dump[0][2] == "51820")
        #expect(dump[1][0] == Substring(site2Key))
        #expect(dump[1][1] == Substring(try String(contentsOfFile: psk, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)))
        #expect(dump[1][2] == "203.0.113.32:51820" && dump[1][3] == "10.99.0.32/32,192.168.32.0/24" && dump[1][7] == "25")
        let p = try Self.peer(sc, 1)
        // The transfer went out through this peer: a handshake, and its 4 MiB counted.
        #expect(p["latestHandshake"] != nil && ((p["rxBytes"] as? Int ?? 0) > 4 << 20 || (p["txBytes"] as? Int ?? 0) > 4 << 20), "\(p)")
    }

    /// Site 1 knows no endpoint of site 2 and sends no keepalives: only a handshake site 2
    /// starts, through site 1's router and its forward of the listen port, opens the tunnel.
    @Test func aHandshakeThePeerStartsComesIn() throws {
        let sc = try Scenario(wireguard: "userspace")
        defer { sc.cleanup() }
        let s = try Self.twoSites(sc, site1ReachesOut: false)
        try sc.servers.start("tcp", port: 80, in: s.lan1)
        // Site 2's earlier initiations met the stranger key; WireGuard retries every 5 s.
        #expect(try probe("tcp", from: s.lan2, to: "192.168.31.10", port: 80, timeout: 12) == "ok peer=192.168.32.10")
        let p = try Self.peer(sc, 1)
        #expect(p["latestHandshake"] != nil)
        #expect(p["endpoint"] as? String == "203.0.113.32:51820", "learnt from the handshake: \(p)")
        #expect(ping(from: s.lan1, to: "192.168.32.10"))
        // A learnt endpoint is not configuration: the host still matches the descriptor.
        #expect(try sc.pendingActions(s.file1) == 0)
    }

    /// No wireguard-go: apply says why and leaves nothing of the customer behind.
    @Test func aMissingDaemonFailsCleanly() throws {
        let sc = try Scenario(wireguard: "userspace")
        defer { sc.cleanup() }
        let h = try sc.lanHost(1, address: "192.168.31.10/24", gateway: "192.168.31.1")
        let f = try sc.descriptor(Self.site(sc, 1, attach: h.attach, peerKey: Self.strangerKey))
        let r = try run(URL(fileURLWithPath: "/usr/bin/env"), ["VCPE_WIREGUARD=userspace", "VCPE_WIREGUARD_GO=/nonexistent/wireguard-go",
                                                              vcpeBinary.path, "apply", f, "--state-dir", sc.stateDir])
        #expect(r.status == 1)
        #expect(r.stderr.contains("wireguard wg-\(sc.customer(1)): /nonexistent/wireguard-go not found") && r.stderr.contains("rolled back"), "\(r.stderr)")
        #expect(!(try sh("/usr/sbin/ip", ["netns", "list"])).contains("vcpe-\(sc.customer(1))"))
        #expect(try RouteSocket().link(named: "vb-\(sc.customer(1))") == nil)
    }

    @Test func aWrongPeerKeyPassesNothing() throws {
        let sc = try Scenario(wireguard: "userspace")
        defer { sc.cleanup() }
        let s = try Self.twoSites(sc, wrongKeyAtSite1: true)
        try sc.servers.start("tcp", port: 80, in: s.lan2)
        #expect(!ping(from: s.lan1, to: "192.168.32.10", count: 2))
        #expect(try probe("tcp", from: s.lan1, to: "192.168.32.10", port: 80, timeout: 0.5) == "timeout")
        #expect(try probe("tcp", from: s.lan2, to: "192.168.31.10", port: 80, timeout: 0.5) == "timeout")
        // The pings were routed into site 1's tunnel (its device's kernel counters: the route
        // works, the key is what stops them), and the peers are there and have never
        // completed a handshake.
        let wg = try ip(["-s", "link", "show", "dev", "wg-\(sc.customer(1))"], namespace: "vcpe-\(sc.customer(1)).vpn").first
        let sentIn = ((wg?["stats64"] as? [String: Any])?["tx"] as? [String: Any])?["packets"] as? Int ?? -1
        #expect(sentIn >= 2, "nothing was routed into the tunnel: \(String(describing: wg))")
        #expect(try Self.peer(sc, 1)["publicKey"] as? String != nil && Self.peer(sc, 1)["latestHandshake"] == nil)
        #expect(try Self.peer(sc, 2)["publicKey"] as? String != nil && Self.peer(sc, 2)["latestHandshake"] == nil)
        #expect(try Self.vpn(sc, 1)["state"] as? String == "running")
    }

    @Test func theDaemonIsSupervisedKeptAndRemoved() throws {
        let sc = try Scenario(wireguard: "userspace")
        defer { sc.cleanup() }
        let s = try Self.twoSites(sc)
        #expect(ping(from: s.lan1, to: "192.168.32.10"))
        let pid = Self.wireguardPIDs(sc, 1)
        let handshake = try Self.peer(sc, 1)["latestHandshake"] as? String
        #expect(pid.count == 1 && handshake != nil)

        // Unchanged re-apply: nothing to do, same process, no new handshake.
        #expect(try sc.vcpe(["apply", s.file1]).contains("no changes"))
        sleep(1)
        #expect(Self.wireguardPIDs(sc, 1) == pid)
        #expect(try Self.peer(sc, 1)["latestHandshake"] as? String == handshake)

        // The key stays with root; it is never printed.
        let keyFile = sc.stateDir + "/keys/\(sc.customer(1)).json"
        let attrs = try FileManager.default.attributesOfItem(atPath: keyFile)
        #expect((attrs[.posixPermissions] as? Int) == 0o600)
        #expect((try FileManager.default.attributesOfItem(atPath: sc.stateDir + "/keys")[.posixPermissions] as? Int) == 0o700)
        let privateKey = try #require((try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: keyFile))) as? [String: String])?["privateKey"])
        for out in [try sc.vcpe(["status", sc.customer(1)]), try sc.vcpe(["status", "--json", sc.customer(1)]), try sc.vcpe(["plan", "--json", s.file1])] {
            #expect(!out.contains(privateKey))
        }

        // The daemon dies: status says so, apply brings it back and the tunnel works again.
        kill(pid_t(pid[0])!, SIGKILL)
        for _ in 0..<100 where !Self.wireguardPIDs(sc, 1).isEmpty { usleep(20_000) }
        #expect(try Self.vpn(sc, 1)["state"] as? String == "not running")
        #expect(try sc.pendingActions(s.file1) > 0)
        #expect(!ping(from: s.lan1, to: "192.168.32.10", count: 1))
        try sc.vcpe(["apply", s.file1])
        let restarted = Self.wireguardPIDs(sc, 1)
        #expect(restarted.count == 1 && restarted != pid)
        #expect(ping(from: s.lan1, to: "192.168.32.10"))
        #expect(try sc.pendingActions(s.file1) == 0)

        // A new key: the old peer config no longer matches, until site 2 learns the new key.
        let rotated = try sc.vcpe(["rotate-key", sc.customer(1)])
        let newKey = try Self.vpn(sc, 1)["publicKey"] as! String
        #expect(rotated.contains(newKey) && !rotated.contains(privateKey))
        #expect(try sh("/usr/bin/wg", ["show", "wg-\(sc.customer(1))", "public-key"]).trimmingCharacters(in: .whitespacesAndNewlines) == newKey)
        let stale = try #require(Self.peer(sc, 2)["publicKey"] as? String)
        #expect(stale != newKey)
        // Site 2 still expects the old key: the tunnel passes nothing (the old key is refused)...
        #expect(!ping(from: s.lan1, to: "192.168.32.10", count: 2))
        // ...until site 2 is given the new one.
        let updated = try sc.descriptor(Self.site(sc, 2, attach: sc.fx.tag + "l2", peerKey: newKey))
        try sc.vcpe(["apply", updated])
        var through = false
        for _ in 0..<20 where !through { through = ping(from: s.lan1, to: "192.168.32.10", count: 1) }
        #expect(through, "the tunnel with the new key")
        // The new key is root's alone, as the first was, and in no command line, container
        // configuration or log.
        #expect((try FileManager.default.attributesOfItem(atPath: keyFile)[.posixPermissions] as? Int) == 0o600)
        let rotatedKey = try #require((try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: keyFile))) as? [String: String])?["privateKey"])
        #expect(rotatedKey != privateKey)
        let daemon = try #require(Self.wireguardPIDs(sc, 1).first)
        let cmdline = try String(contentsOfFile: "/proc/\(daemon)/cmdline", encoding: .utf8)
        let environ = (try? String(contentsOfFile: "/proc/\(daemon)/environ", encoding: .utf8)) ?? ""
        let bundle = sc.stateDir + "/containers/vcpe-wg-\(sc.customer(1))"
        let config = try String(contentsOfFile: bundle + "/config.json", encoding: .utf8)
        let log = (try? String(contentsOfFile: bundle + "/container.log", encoding: .utf8)) ?? ""
        for (place, text) in [("command line", cmdline), ("environment", environ), ("config.json", config), ("container log", log)] {
            for key in [privateKey, rotatedKey] { #expect(!text.contains(key), "a private key in the daemon's \(place)") }
        }

        // Delete: no process, socket, interface or namespace; twice is fine.
        try sc.vcpe(["delete", sc.customer(1), sc.customer(2)])
        try sc.vcpe(["delete", sc.customer(1), sc.customer(2)])
        #expect(Self.wireguardPIDs(sc, 1).isEmpty && Self.wireguardPIDs(sc, 2).isEmpty)
        for n in 1...2 {
            #expect(!FileManager.default.fileExists(atPath: "/var/run/wireguard/wg-\(sc.customer(n)).sock"))
            #expect(!FileManager.default.fileExists(atPath: sc.stateDir + "/keys/\(sc.customer(n)).json"))
        }
        let namespaces = try sh("/usr/sbin/ip", ["netns", "list"])
        #expect(!namespaces.contains("vcpe-\(sc.customer(1))") && !namespaces.contains("vcpe-\(sc.customer(2))"))
        #expect(!(try sh("/usr/sbin/ip", ["-all", "netns", "exec", "ip", "-o", "link"])).contains("wg-\(sc.customer(1))"))
    }
}
