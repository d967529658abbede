import CDatapath
import Testing
@testable import VCPEDatapath

/// The eBPF program itself (BPF_PROG_TEST_RUN), against the forwarder's flow keys: on
/// hand-made frames of every shape, the program takes a frame from the cache exactly when
/// the forwarder would key it, under the same key. (Needs root, as the kernel tests do.)
@Suite struct FlowCacheProgramTests {
    static let drop: Int32 = 2, pass: Int32 = 0

    /// `FlowKeyTests.frame`, addressed to the test run's device (all-zero destination).
    static func frame(_ f: [UInt8], to mac: [UInt8] = [0, 0, 0, 0, 0, 0]) -> [UInt8] { mac + f.dropFirst(6) }

    /// The key at the places the program reads, with none of its checks: what a cache entry
    /// for this frame would be if it were taken.
    static func naiveKey(_ f: [UInt8]) -> vc_flow_key? {
        guard f.count >= 34 else { return nil }
        let ihl = Int(f[14] & 0x0F) * 4
        guard f.count >= 14 + ihl + 8 else { return nil }
        var k = vc_flow_key()
        k.ifindex = 1
        f.withUnsafeBytes { b in
            k.src = b.loadUnaligned(fromByteOffset: 26, as: UInt32.self)
            k.dst = b.loadUnaligned(fromByteOffset: 30, as: UInt32.self)
            let l4 = 14 + ihl
            switch f[23] {
            case 6, 17:
                k.sport = b.loadUnaligned(fromByteOffset: l4, as: UInt16.self)
                k.dport = b.loadUnaligned(fromByteOffset: l4 + 2, as: UInt16.self)
            case 1 where f[l4] == 0 || f[l4] == 8:
                k.sport = b.loadUnaligned(fromByteOffset: l4 + 4, as: UInt16.self)
                k.dport = k.sport
            default: break
            }
        }
        k.proto = f[23]
        k.dscp = f[15] >> 2
        return k
    }

    static func same(_ a: vc_flow_key, _ b: vc_flow_key) -> Bool {
        a.ifindex == b.ifindex && a.src == b.src && a.dst == b.dst && a.sport == b.sport && a.dport == b.dport
            && a.proto == b.proto && a.dscp == b.dscp && a.vlan_present == b.vlan_present && a.vlan_tci == b.vlan_tci
    }

    static var corpus: [[UInt8]] {
        var out: [[UInt8]] = []
        let l4s: [(UInt8, [UInt8])] = [(6, [0x30, 0x39, 0x01, 0xBB, 0, 0, 0, 0]), (17, [0, 53, 0x13, 0x89, 0, 0, 0, 0]),
                                       (1, [8, 0, 0, 0, 0x12, 0x34, 0, 1]), (1, [0, 0, 0, 0, 0x12, 0x34, 0, 1]),
                                       (1, [3, 1, 0, 0, 0x12, 0x34, 0, 1]), (47, [0, 0, 8, 0, 1, 2, 3, 4])]
        for (proto, l4) in l4s {
            for fragment: UInt16 in [0, 0x4000, 0x2000, 0x0010, 0x2010] {
                for options in [0, 1, 3] {
                    for tos: UInt8 in [0, 46 << 2] {
                        out.append(FlowKeyTests.frame(proto: proto, tos: tos, fragment: fragment, options: options, l4: l4))
                    }
                }
            }
            out.append(FlowKeyTests.frame(proto: proto, l4: l4, version: 6))
            out.append(FlowKeyTests.frame(proto: proto, l4: l4, total: 1500))
            out.append(FlowKeyTests.frame(proto: proto, l4: l4, total: 10))
            out.append(FlowKeyTests.frame(proto: proto, l4: l4 + [UInt8](repeating: 0, count: 20), total: 28))
            out.append(FlowKeyTests.frame(proto: proto, l4: Array(l4.prefix(4))))
        }
        return out.map { frame($0) }
    }

    @Test func theProgramTakesExactlyWhatTheForwarderKeysUnderTheSameKey() throws {
        let cache = try FlowCacheTestRun()
        var taken = 0
        for (i, f) in Self.corpus.enumerated() {
            let forwarder = f.withUnsafeBytes { HeaderParser.flowKey($0.baseAddress!, length: f.count, ifindex: 1, vlan: nil) }
            // An entry for the frame as the program would key it (a drop: the verdict says it was found).
            if let naive = Self.naiveKey(f) { cache.insert(naive, vc_flow_value()) }
            let verdict = try cache.run(f)
            if let forwarder {
                let naive = try #require(Self.naiveKey(f))
                #expect(Self.same(forwarder, naive), "frame \(i): the forwarder keys it otherwise")
                #expect(verdict == Self.drop, "frame \(i): keyed by the forwarder, passed over by the program (\(verdict))")
                taken += 1
            } else {
                #expect(verdict == Self.pass, "frame \(i): left to userspace by the forwarder, taken by the program (\(verdict))")
            }
        }
        #expect(taken >= 20 && taken < Self.corpus.count - 20, "both kinds in the corpus: \(taken) of \(Self.corpus.count)")
    }

    @Test func aFrameForAnotherAddressIsNotTaken() throws {
        let cache = try FlowCacheTestRun()
        let mine = Self.frame(FlowKeyTests.frame(proto: 17, l4: [0, 53, 0x13, 0x89, 0, 0, 0, 0]))
        cache.insert(try #require(Self.naiveKey(mine)), vc_flow_value())
        #expect(try cache.run(mine) == Self.drop)
        #expect(try cache.run(Self.frame(mine, to: [0x02, 0, 0x5E, 0, 0x53, 0x01])) == Self.pass, "another host's frame")
    }
}
