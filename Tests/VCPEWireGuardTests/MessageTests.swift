import Foundation
import Testing
import VCPENetlink
import VCPETestSupport
import VCPEContainer
import VCPEWireGuard

/// The two ways of configuring a device (the kernel's generic netlink messages, wireguard-go's
/// UAPI text) say the same thing, and say only what changed.
@Suite struct MessageTests {
    // linux/wireguard.h
    enum Device: UInt16 { case ifname = 2, privateKey = 3, listenPort = 6, peers = 8 }
    enum Peer: UInt16 { case publicKey = 1, presharedKey = 2, flags = 3, endpoint = 4, keepalive = 5, handshake = 6, rx = 7, tx = 8, allowedIPs = 9 }
    static let removeMe: UInt32 = 1, replaceAllowedIPs: UInt32 = 2

    static func key(_ b: UInt8) -> [UInt8] { [UInt8](repeating: b, count: 32) }

    static let config = DeviceConfig(privateKey: WireGuardKey(raw: key(7))!, listenPort: 51820, peers: [
        .init(publicKey: key(1), presharedKey: key(9), endpoint: "203.0.113.32:51820", keepalive: 25, allowedIPs: ["192.168.32.0/24", "10.99.0.32/32"]),
        .init(publicKey: key(2), presharedKey: nil, endpoint: "[2001:db8::1]:443", keepalive: 0, allowedIPs: ["fd00::/64"]),
    ])

    @Test func aFreshDeviceGetsEverything() throws {
        let a = NetlinkAttribute.parse(KernelMessages.set("wg-x", Self.config, over: nil))
        #expect(a.first(Device.ifname.rawValue)?.string == "wg-x")
        #expect(a.first(Device.privateKey.rawValue)?.payload == Self.key(7))
        #expect(a.first(Device.listenPort.rawValue)?.integer(UInt16.self) == 51820)
        let peers = try #require(a.first(Device.peers.rawValue)?.nested)
        #expect(peers.count == 2)
        let p1 = peers[0].nested
        #expect(p1.first(Peer.publicKey.rawValue)?.payload == Self.key(1))
        #expect(p1.first(Peer.flags.rawValue)?.integer(UInt32.self) == Self.replaceAllowedIPs)
        #expect(p1.first(Peer.presharedKey.rawValue)?.payload == Self.key(9))
        #expect(p1.first(Peer.keepalive.rawValue)?.integer(UInt16.self) == 25)
        // struct sockaddr_in: family (host order), port and address in network order.
        #expect(p1.first(Peer.endpoint.rawValue)?.payload == [2, 0, 0xCA, 0x6C, 203, 0, 113, 32] + [UInt8](repeating: 0, count: 8))
        let ips = try #require(p1.first(Peer.allowedIPs.rawValue)?.nested.map(\.nested))
        #expect(ips.map { $0.first(1)?.integer(UInt16.self) } == [2, 2])
        #expect(ips.map { $0.first(2)?.payload } == [[10, 99, 0, 32], [192, 168, 32, 0]])
        #expect(ips.map { $0.first(3)?.integer(UInt8.self) } == [32, 24])
        let p2 = peers[1].nested
        #expect(p2.first(Peer.endpoint.rawValue)?.payload.count == 28)  // sockaddr_in6
        #expect(p2.first(Peer.endpoint.rawValue)?.payload.prefix(4) == [10, 0, 0x01, 0xBB])
        #expect(p2.first(Peer.presharedKey.rawValue) == nil)  // a fresh device has none to remove
    }

    @Test func onlyWhatChangedIsSent() throws {
        // The same configuration: the device's name and nothing else, in both protocols.
        #expect(NetlinkAttribute.parse(KernelMessages.set("wg-x", Self.config, over: Self.config)).map(\.type) == [Device.ifname.rawValue])
        #expect(UAPI.setRequest(Self.config, over: Self.config) == "set=1\n\n")

        // One peer's keepalive changes, the other peer goes: the unchanged key and port stay
        // out, the changed peer carries only its keepalive, the other is removed.
        var wanted = Self.config
        wanted.peers = [.init(publicKey: Self.key(1), presharedKey: Self.key(9), endpoint: "203.0.113.32:51820", keepalive: 10,
                              allowedIPs: ["192.168.32.0/24", "10.99.0.32/32"])]
        let a = NetlinkAttribute.parse(KernelMessages.set("wg-x", wanted, over: Self.config))
        #expect(a.map(\.type) == [Device.ifname.rawValue, Device.peers.rawValue])
        let peers = try #require(a.first(Device.peers.rawValue)?.nested.map(\.nested))
        #expect(peers.count == 2)
        #expect(peers[0].first(Peer.publicKey.rawValue)?.payload == Self.key(2) && peers[0].first(Peer.flags.rawValue)?.integer(UInt32.self) == Self.removeMe)
        #expect(peers[1].map(\.type) == [Peer.publicKey.rawValue, Peer.flags.rawValue, Peer.keepalive.rawValue])
        #expect(peers[1].first(Peer.flags.rawValue)?.integer(UInt32.self) == 0)

        let text = UAPI.setRequest(wanted, over: Self.config)
        #expect(text == "set=1\npublic_key=\(UAPI.hex(Self.key(2)))\nremove=true\npublic_key=\(UAPI.hex(Self.key(1)))\npersistent_keepalive_interval=10\n\n")
    }

    /// A device as the kernel reports it, over two messages (it splits a peer's allowed IPs).
    @Test func aSplitDumpIsOneDevice() throws {
        func peer(_ w: inout NetlinkAttributeWriter, _ ips: [([UInt8], UInt8)], stats: Bool) {
            w.nest(0) { p in
                p.put(Peer.publicKey.rawValue, Self.key(1))
                if stats {
                    p.put(Peer.presharedKey.rawValue, [UInt8](repeating: 0, count: 32))
                    p.put(Peer.endpoint.rawValue, [2, 0, 0xCA, 0x6C, 203, 0, 113, 32] + [UInt8](repeating: 0, count: 8))
                    p.put(Peer.keepalive.rawValue, UInt16(25))
                    p.put(Peer.handshake.rawValue, withUnsafeBytes(of: Int64(1_700_000_000), Array.init) + withUnsafeBytes(of: Int64(500_000_000), Array.init))
                    p.put(Peer.rx.rawValue, UInt64(1234))
                    p.put(Peer.tx.rawValue, UInt64(5678))
                }
                p.nest(Peer.allowedIPs.rawValue) { a in
                    for (addr, len) in ips {
                        a.nest(0) { ip in
                            ip.put(1, UInt16(2))
                            ip.put(2, addr)
                            ip.put(3, len)
                        }
                    }
                }
            }
        }
        var first = NetlinkAttributeWriter()
        first.put(Device.ifname.rawValue, string: "wg-x")
        first.put(Device.privateKey.rawValue, Self.key(7))
        first.put(Device.listenPort.rawValue, UInt16(51820))
        first.nest(Device.peers.rawValue) { peer(&$0, [([192, 168, 32, 0], 24)], stats: true) }
        var second = NetlinkAttributeWriter()
        second.put(Device.ifname.rawValue, string: "wg-x")
        second.nest(Device.peers.rawValue) { peer(&$0, [([10, 99, 0, 32], 32)], stats: false) }

        let s = KernelMessages.parseDevice([first.bytes, second.bytes], configuredEndpoints: [Self.key(1)])
        #expect(s.config.privateKey.raw == Self.key(7) && s.config.listenPort == 51820)
        #expect(s.config.peers.count == 1)
        #expect(s.config.peers[0].allowedIPs == ["10.99.0.32/32", "192.168.32.0/24"])
        #expect(s.config.peers[0].endpoint == "203.0.113.32:51820" && s.config.peers[0].presharedKey == nil && s.config.peers[0].keepalive == 25)
        #expect(s.peers[0].latestHandshake == 1_700_000_000.5 && s.peers[0].rxBytes == 1234 && s.peers[0].txBytes == 5678)
        // What the kernel reports equals what vcpe asked for: no perpetual drift.
        let asked = DeviceConfig(privateKey: WireGuardKey(raw: Self.key(7))!, listenPort: 51820, peers: [
            .init(publicKey: Self.key(1), presharedKey: nil, endpoint: "203.0.113.32:51820", keepalive: 25, allowedIPs: ["192.168.32.0/24", "10.99.0.32/32"])])
        #expect(s.config == asked && s.config.digest == asked.digest)
    }

    /// On this host the driver is chosen by whether the kernel has the family, which
    /// iproute2's `genl` tells independently.
    @Test func theDriverFollowsTheKernel() throws {
        let kernelHasIt = try sh("/usr/sbin/genl", ["ctrl", "list"]).contains("Name: wireguard")
        #expect(KernelDriver.isAvailable == kernelHasIt)
        #expect(WireGuard.driver(containers: ContainerRuntime(bundles: "/nonexistent")).name == (kernelHasIt ? "kernel (generic netlink)" : "wireguard-go (userspace)"))
    }
}
