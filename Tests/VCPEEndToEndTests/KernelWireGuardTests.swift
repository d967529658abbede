import Foundation
import Testing
import VCPENetlink
import VCPETestSupport

/// The kernel WireGuard driver (the default where the kernel has the module, as on Debian
/// 12's own kernel) end to end: two sites through `wireguard` links vcpe configures over
/// generic netlink, checked with real traffic and with `wg` (an independent reader of the
/// same netlink family). This machine's kernel has no module: there the suite is skipped,
/// and scripts/test-kernel runs it on Debian's kernel under QEMU.
@Suite(.serialized, .enabled(if: kernelHasWireGuard, "the kernel has no WireGuard module (run scripts/test-kernel for Debian's kernel)"))
struct KernelWireGuardTests {
    static func device(_ sc: Scenario, _ n: Int) throws -> [String: Any] {
        try #require(try ip(["-d", "link", "show", "wg-\(sc.customer(n))"], namespace: "vcpe-\(sc.customer(n)).vpn").first,
                     "no wg-\(sc.customer(n)) in the vpn namespace")
    }

    /// `wg show IFACE dump` inside the vpn namespace, as rows of fields.
    static func dump(_ sc: Scenario, _ n: Int) throws -> [[Substring]] {
        try sh("/usr/sbin/ip", ["netns", "exec", "vcpe-\(sc.customer(n)).vpn", "wg", "show", "wg-\(sc.customer(n))", "dump"])
            .split(separator: "\n").map { $0.split(separator: "\t", omittingEmptySubsequences: false) }
    }

    @Test func twoSitesThroughKernelDevices() throws {
        let sc = try Scenario(wireguard: "kernel")
        defer { sc.cleanup() }
        let psk = sc.stateDir + "-psk"
        try (try sh("/usr/bin/wg", ["genpsk"])).write(toFile: psk, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: psk) }
        let s = try VPNTests.twoSites(sc, psk: psk)
        let c1 = sc.customer(1)

        // Kernel devices, no daemon.
        let dev = try Self.device(sc, 1)
        #expect((dev["linkinfo"] as? [String: Any])?["info_kind"] as? String == "wireguard", "\(dev)")
        #expect((dev["flags"] as? [String] ?? []).contains("UP"), "\(dev)")
        let ifindex = try #require(dev["ifindex"] as? Int)
        #expect(VPNTests.wireguardPIDs(sc, 1).isEmpty && VPNTests.wireguardPIDs(sc, 2).isEmpty)

        // A transfer between the LANs, byte for byte, and the internet still through NAT.
        try sc.servers.start("sink", port: 5001, in: s.lan2)
        try sc.servers.start("tcp", port: 80, in: sc.internet)
        #expect(ping(from: s.lan1, to: "192.168.32.10"))
        #expect(try transfer(from: s.lan1, to: "192.168.32.10", port: 5001, bytes: 2 << 20, marker: "VCPE-KERNEL-TUNNEL") == "intact")
        #expect(try probe("tcp", from: s.lan1, to: "203.0.113.1", port: 80) == "ok peer=203.0.113.31")

        // What vcpe configured, read back by `wg`: the private key's public key, the
        // listen port, the one peer with its preshared key, endpoint, allowed IPs, keepalive.
        let v1 = try VPNTests.vpn(sc, 1), v2 = try VPNTests.vpn(sc, 2)
        let key1 = try #require(v1["publicKey"] as? String), key2 = try #require(v2["publicKey"] as? String)
        var d = try Self.dump(sc, 1)
        #expect(d.count == 2, "one device line and one peer: \(d)")
        #expect(d[0][1] == Substring(key1) && d[0][2] == "51820", "\(d[0])")
        #expect(d[1][0] == Substring(key2))
        #expect(d[1][1] == Substring(try String(contentsOfFile: psk, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)))
        #expect(d[1][2] == "203.0.113.32:51820" && d[1][3] == "10.99.0.32/32,192.168.32.0/24" && d[1][7] == "25", "\(d[1])")
        #expect(Int(d[1][4]) ?? 0 > 0, "a handshake: \(d[1])")

        // status: the same fields as the daemon driver's, the device's health, no process.
        #expect(v1["driver"] as? String == "kernel (generic netlink)" && v1["interface"] as? String == "wg-\(c1)", "\(v1)")
        #expect(v1["state"] as? String == "up" && v1["pid"] == nil && v1["listenPort"] as? Int == 51820, "\(v1)")
        let p = try #require((v1["peers"] as? [[String: Any]])?.first)
        #expect(p["name"] as? String == "site2" && p["publicKey"] as? String == key2 && p["endpoint"] as? String == "203.0.113.32:51820", "\(p)")
        #expect(p["latestHandshake"] != nil && (p["txBytes"] as? Int ?? 0) > 2 << 20 && (p["rxBytes"] as? Int ?? 0) > 0, "\(p)")
        let text = try sc.vcpe(["status", c1])
        #expect(text.contains("kernel (generic netlink), device wg-\(c1) up, 1 of 1 peer(s) with a handshake") && !text.contains("not running"), "\(text)")
        #expect(try sc.pendingActions(s.file1) == 0)

        // A peer change without a restart: the same device (ifindex), the new keepalive in
        // the kernel, traffic still through.
        let changed = try sc.descriptor(try String(contentsOfFile: s.file1, encoding: .utf8).replacingOccurrences(of: "\"keepalive\": 25", with: "\"keepalive\": 15"))
        try sc.vcpe(["apply", changed])
        #expect(try Self.device(sc, 1)["ifindex"] as? Int == ifindex)
        d = try Self.dump(sc, 1)
        #expect(d.count == 2 && d[1][7] == "15" && d[1][0] == Substring(key2), "\(d)")
        #expect(ping(from: s.lan1, to: "192.168.32.10"))
        #expect(try sc.pendingActions(changed) == 0)

        // Key rotation: the device takes the new key at once; site 2, still configured with
        // the old one, is refused (no tunnel), until it is given the new key.
        let rotated = try sc.vcpe(["rotate-key", c1])
        let newKey = try #require(try VPNTests.vpn(sc, 1)["publicKey"] as? String)
        #expect(newKey != key1 && rotated.contains(newKey))
        #expect(try Self.dump(sc, 1)[0][1] == Substring(newKey))
        #expect(try Self.device(sc, 1)["ifindex"] as? Int == ifindex)
        #expect(try Self.dump(sc, 2)[1][0] == Substring(key1))
        #expect(!ping(from: s.lan2, to: "192.168.31.10", count: 2), "site 2 still knows only the old key")
        let site2 = try sc.descriptor(VPNTests.site(sc, 2, attach: sc.fx.tag + "l2", peerKey: newKey, psk: psk))
        try sc.vcpe(["apply", site2])
        let peers2 = try Self.dump(sc, 2).dropFirst().map { $0[0] }
        #expect(peers2 == [Substring(newKey)], "site 2's peer is the new key alone: \(peers2)")
        #expect(ping(from: s.lan2, to: "192.168.31.10", count: 3))
        #expect(try transfer(from: s.lan1, to: "192.168.32.10", port: 5001, bytes: 256 << 10, seed: 2) == "intact")

        // Delete: no device anywhere, no namespace, no key; twice is fine.
        try sc.vcpe(["delete", c1, sc.customer(2)])
        try sc.vcpe(["delete", c1, sc.customer(2)])
        let namespaces = try sh("/usr/sbin/ip", ["netns", "list"])
        #expect(!namespaces.contains("vcpe-\(c1)") && !namespaces.contains("vcpe-\(sc.customer(2))"))
        let links = (try? sh("/usr/sbin/ip", ["-all", "netns", "exec", "ip", "-o", "link"])) ?? ""
        #expect(!links.contains("wg-\(c1)") && !links.contains("wg-\(sc.customer(2))"))
        #expect(!(try sh("/usr/sbin/ip", ["-o", "link"])).contains("wg-\(c1)"))
        #expect(!FileManager.default.fileExists(atPath: sc.stateDir + "/keys/\(c1).json"))
    }
}
