import CDatapath
import Testing
import VCPEClassifier
@testable import VCPEDatapath
import VCPENet

/// The forwarder builds the flow cache's keys as the eBPF program does (Sources/BPF): fields
/// as they lie in the frame. Frames built byte by byte here; the end-to-end tests prove the
/// two agree on real traffic (a flow's second packet hits what its first installed).
@Suite struct FlowKeyTests {
    /// An Ethernet + IPv4 frame: `l4` follows `options` 32-bit words of IP options.
    /// Its total length field says what follows, unless `total` says otherwise.
    static func frame(proto: UInt8, tos: UInt8 = 0, fragment: UInt16 = 0, options: Int = 0, l4: [UInt8], total: Int? = nil,
                      version: UInt8 = 4) -> [UInt8] {
        var f = [UInt8](repeating: 0xAA, count: 12) + [0x08, 0x00]
        let length = total ?? 20 + 4 * options + l4.count
        f += [version << 4 | UInt8(5 + options), tos, UInt8(length >> 8), UInt8(length & 0xFF), 0, 1]
            + [UInt8(fragment >> 8), UInt8(fragment & 0xFF)] + [64, proto, 0, 0]
        f += [192, 168, 20, 10, 203, 0, 113, 1] + [UInt8](repeating: 1, count: 4 * options)
        return f + l4
    }

    static func key(_ f: [UInt8], vlan: UInt32? = nil) -> vc_flow_key? {
        f.withUnsafeBytes { HeaderParser.flowKey($0.baseAddress!, length: f.count, ifindex: 7, vlan: vlan) }
    }

    /// A key field as the frame holds it (network order), read back as host order.
    static func host16(_ v: UInt16) -> UInt16 { UInt16(bigEndian: v) }
    static func host32(_ v: UInt32) -> UInt32 { UInt32(bigEndian: v) }

    @Test func transportPortsAddressesAndDSCPAsInTheFrame() throws {
        let k = try #require(Self.key(Self.frame(proto: 6, tos: 46 << 2, l4: [0x30, 0x39, 0x01, 0xBB, 0, 0, 0, 0])))
        #expect(k.ifindex == 7 && k.proto == 6 && k.dscp == 46)
        #expect(Self.host32(k.src) == 0xC0A8_140A && Self.host32(k.dst) == 0xCB00_7101)
        #expect(Self.host16(k.sport) == 12345 && Self.host16(k.dport) == 443)
        #expect(k.vlan_present == 0)
        // IP options: the ports come after them.
        let o = try #require(Self.key(Self.frame(proto: 17, options: 2, l4: [0, 53, 0x13, 0x89, 0, 0, 0, 0])))
        #expect(Self.host16(o.sport) == 53 && Self.host16(o.dport) == 5001)
    }

    @Test func echoFlowsAreTheirIdentifierOtherICMPIsOneFlow() throws {
        let request = try #require(Self.key(Self.frame(proto: 1, l4: [8, 0, 0, 0, 0x12, 0x34, 0, 1])))
        #expect(Self.host16(request.sport) == 0x1234 && request.sport == request.dport)
        let reply = try #require(Self.key(Self.frame(proto: 1, l4: [0, 0, 0, 0, 0x12, 0x34, 0, 1])))
        #expect(reply.sport == request.sport)
        let unreachable = try #require(Self.key(Self.frame(proto: 1, l4: [3, 1, 0, 0, 0x12, 0x34, 0, 1])))
        #expect(unreachable.sport == 0 && unreachable.dport == 0)
    }

    @Test func whatTheCacheLeavesToUserspace() {
        #expect(Self.key(Self.frame(proto: 17, fragment: 0x2000, l4: [0, 1, 0, 2, 0, 0, 0, 0])) == nil, "first fragment (MF)")
        #expect(Self.key(Self.frame(proto: 17, fragment: 0x0010, l4: [0, 1, 0, 2, 0, 0, 0, 0])) == nil, "later fragment")
        #expect(Self.key(Self.frame(proto: 17, l4: [0, 1, 0, 2])) == nil, "cut short")
        #expect(Self.key(Self.frame(proto: 17, l4: [0, 1, 0, 2, 0, 0, 0, 0], version: 6)) == nil, "not version 4")
        #expect(Self.key(Self.frame(proto: 17, l4: [0, 1, 0, 2, 0, 0, 0, 0], total: 1500)) == nil, "longer than the frame")
        #expect(Self.key(Self.frame(proto: 17, l4: [0, 1, 0, 2, 0, 0, 0, 0], total: 12)) == nil, "shorter than its header")
        #expect(Self.key(Self.frame(proto: 17, l4: [0, 1, 0, 2, 0, 0, 0, 0] + [UInt8](repeating: 0, count: 18), total: 28)) != nil,
                "Ethernet padding after the datagram is fine")
        #expect(Self.key(Self.frame(proto: 6, l4: [0, 1, 0, 2, 0, 0, 0, 0]), vlan: 0x88A8_0064) == nil, "802.1ad")
        var arp = Self.frame(proto: 6, l4: [0, 1, 0, 2, 0, 0, 0, 0])
        arp[12] = 0x08; arp[13] = 0x06
        #expect(Self.key(arp) == nil)
        let tagged = Self.key(Self.frame(proto: 6, l4: [0, 1, 0, 2, 0, 0, 0, 0]), vlan: 0x8100_2064)
        #expect(tagged?.vlan_present == 1 && tagged?.vlan_tci == 0x2064)
    }

    /// The LAN side builds the key from the header it parsed for the classifier: each key,
    /// both ways, is the one written out here field by field (ports read from the frame even
    /// where the total length leaves them out, as the program reads them).
    @Test func aKeyFromTheParsedHeaderIsTheFramesKey() {
        let frames = [
            Self.frame(proto: 6, tos: 46 << 2, l4: [0x30, 0x39, 0x01, 0xBB, 0, 0, 0, 0]),
            Self.frame(proto: 17, options: 2, l4: [0, 53, 0x13, 0x89, 0, 0, 0, 0]),
            Self.frame(proto: 1, l4: [8, 0, 0, 0, 0x12, 0x34, 0, 1]),
            Self.frame(proto: 6, l4: [0x30, 0x39, 0x01, 0xBB, 0, 0, 0, 0], total: 20),
            Self.frame(proto: 17, fragment: 0x2000, l4: [0, 1, 0, 2, 0, 0, 0, 0]),
            Self.frame(proto: 17, l4: [0, 1, 0, 2]),
        ]
        // (proto, dscp, sport, dport) of each frame's key; nil: none (a fragment, cut short).
        let fields: [(UInt8, UInt8, UInt16, UInt16)?] = [(6, 46, 12345, 443), (17, 0, 53, 5001), (1, 0, 0x1234, 0x1234), (6, 0, 12345, 443), nil, nil]
        func expected(_ i: Int, _ vlan: UInt32?) -> vc_flow_key? {
            guard let (proto, dscp, sport, dport) = fields[i], vlan.map({ $0 >> 16 == 0x8100 }) ?? true else { return nil }
            var k = vc_flow_key()
            k.ifindex = 7
            k.src = UInt32(0xC0A8_140A).bigEndian
            k.dst = UInt32(0xCB00_7101).bigEndian
            (k.proto, k.dscp, k.sport, k.dport) = (proto, dscp, sport.bigEndian, dport.bigEndian)
            if let vlan { (k.vlan_present, k.vlan_tci) = (1, UInt16(truncatingIfNeeded: vlan)) }
            return k
        }
        // The key has no implicit padding (the map compares it byte by byte too).
        let bytes = { (k: vc_flow_key?) in k.map { withUnsafeBytes(of: $0, Array.init) } }
        for (i, f) in frames.enumerated() {
            for vlan: UInt32? in [nil, 0x8100_2064, 0x88A8_0064] {
                let parsed = f.withUnsafeBytes { b -> vc_flow_key? in
                    guard let ip = HeaderParser.ipv4(b.baseAddress!, length: f.count) else { return nil }
                    return HeaderParser.flowKey(b.baseAddress!, ip: ip, length: f.count, ifindex: 7, vlan: vlan)
                }
                #expect(bytes(parsed) == bytes(expected(i, vlan)), "frame \(i), vlan \(String(describing: vlan)), from the parsed header")
                #expect(bytes(Self.key(f, vlan: vlan)) == bytes(expected(i, vlan)), "frame \(i), vlan \(String(describing: vlan)), from the frame")
            }
        }
    }

    @Test func theReturnDirectionSwapsEndsOnTheOtherInterface() throws {
        let k = try #require(Self.key(Self.frame(proto: 6, tos: 8, l4: [0x30, 0x39, 0x01, 0xBB, 0, 0, 0, 0]), vlan: 0x8100_0064))
        let r = HeaderParser.reversed(k, ifindex: 9)
        #expect(r.ifindex == 9 && r.src == k.dst && r.dst == k.src && r.sport == k.dport && r.dport == k.sport)
        #expect(r.dscp == 0 && r.proto == 6 && r.vlan_present == 1 && r.vlan_tci == 0x64)
    }

    /// Revalidation decides cached keys (as the map holds them, network order) with `decide`:
    /// each must be the descriptor's first matching rule, by the oracle that reads the rules
    /// themselves (not the compiled classifier both data-path functions share).
    @Test(arguments: [1, 2, 3])
    func revalidationDecidesAsTheDataPath(seed: Int) throws {
        var r = SteeringTableTests.Rng(state: UInt64(seed))
        let rules = (0..<(20 + r.next(100))).map { SteeringTableTests.randomRule(&r, $0) }
        let table = try SteeringTable(SteeringTableTests.config(rules))
        let flows = (0..<2000).map { _ in
            FlowKey(src: IPAddress(v4: 0x0A00_0000 | UInt32(r.next(4)) << 16 | UInt32(r.next(8)) << 8 | UInt32(r.next(8))),
                    dst: IPAddress(v4: 0x0A00_0000 | UInt32(r.next(4)) << 16 | UInt32(r.next(8)) << 8 | UInt32(r.next(8))),
                    proto: [6, 17][r.next(2)], sport: UInt16(r.next(64)), dport: UInt16(r.next(64)), dscp: UInt8(r.next(4)))
        }
        let keys = flows.map { f in
            var k = vc_flow_key()
            k.src = f.src.v4Value.bigEndian
            k.dst = f.dst.v4Value.bigEndian
            k.sport = f.sport.bigEndian
            k.dport = f.dport.bigEndian
            k.proto = f.proto
            k.dscp = f.dscp
            return k
        }
        let decided = table.decide(keys).map(\.action)
        let expected = flows.map { SteeringTableTests.oracle(rules, $0) }
        #expect(decided == expected, "\(zip(decided, expected).filter { $0 != $1 }.count) of \(flows.count) keys decided otherwise")
    }
}
