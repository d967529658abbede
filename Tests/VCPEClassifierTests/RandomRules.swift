import VCPEClassifier
import VCPENet

/// Rule sets built to overlap: a handful of addresses, prefixes from /0 to /32 (or /128)
/// around them, ports from a few values with full, single-port and odd ranges,
/// wildcards everywhere, DSCP and ingress on some rules, IPv6 rules among IPv4 ones.
struct RandomRules {
    var g: SplitMix64
    let v4Pool: [UInt32]
    let v6Pool: [(UInt64, UInt64)]
    let ports: [UInt16] = [0, 1, 22, 53, 80, 443, 1023, 1024, 8080, 65534, 65535]

    init(seed: UInt64) {
        g = SplitMix64(state: seed)
        var h = SplitMix64(state: seed ^ 0xABCD)
        v4Pool = (0..<6).map { _ in UInt32.random(in: 0...UInt32.max, using: &h) } + [0, .max]
        v6Pool = (0..<4).map { _ in (UInt64.random(in: 0...UInt64.max, using: &h), UInt64.random(in: 0...UInt64.max, using: &h)) }
    }

    mutating func address(_ f: IPAddress.Family) -> IPAddress {
        if f == .v4 {
            var a = v4Pool.randomElement(using: &g)!
            if Bool.random(using: &g) { a ^= UInt32(1) << UInt32.random(in: 0...31, using: &g) }  // a near neighbour
            return IPAddress(v4: a)
        }
        var (hi, lo) = v6Pool.randomElement(using: &g)!
        if Bool.random(using: &g) { lo ^= UInt64(1) << UInt64.random(in: 0...63, using: &g) }
        if Int.random(in: 0..<4, using: &g) == 0 { hi ^= UInt64(1) << UInt64.random(in: 0...63, using: &g) }
        return IPAddress(v6: hi, lo)
    }

    mutating func prefix(_ f: IPAddress.Family) -> IPPrefix? {
        let width = f == .v4 ? 32 : 128
        switch Int.random(in: 0..<6, using: &g) {
        case 0: return nil
        case 1: return IPPrefix(address(f), width)
        case 2: return IPPrefix(address(f), 0).canonical
        default: return IPPrefix(address(f), Int.random(in: 1...width, using: &g)).canonical
        }
    }

    mutating func portRange() -> PortRange {
        switch Int.random(in: 0..<5, using: &g) {
        case 0, 1: return .all
        case 2: return PortRange(ports.randomElement(using: &g)!)
        default:
            let a = ports.randomElement(using: &g)!, b = ports.randomElement(using: &g)!
            return PortRange(min(a, b), max(a, b))
        }
    }

    mutating func rule(v6Share: Int = 4) -> PacketRule {
        let f: IPAddress.Family = Int.random(in: 0..<v6Share, using: &g) == 0 ? .v6 : .v4
        let protos: [UInt8?] = [nil, nil, 6, 17, 1]
        return PacketRule(src: prefix(f), dst: prefix(f), proto: protos.randomElement(using: &g)!, sport: portRange(), dport: portRange(),
                          dscp: Int.random(in: 0..<5, using: &g) == 0 ? UInt8.random(in: 0...3, using: &g) : nil,
                          ingress: Int.random(in: 0..<3, using: &g) == 0 ? UInt32.random(in: 0...2, using: &g) : nil)
    }

    /// A packet near the rules: addresses and ports from the same pools.
    mutating func key() -> FlowKey {
        let f: IPAddress.Family = Int.random(in: 0..<4, using: &g) == 0 ? .v6 : .v4
        return FlowKey(src: address(f), dst: address(f), proto: [6, 17, 1, 47].randomElement(using: &g)!,
                       sport: Bool.random(using: &g) ? ports.randomElement(using: &g)! : .random(in: 0...65535, using: &g),
                       dport: Bool.random(using: &g) ? ports.randomElement(using: &g)! : .random(in: 0...65535, using: &g),
                       dscp: UInt8.random(in: 0...3, using: &g), ingress: UInt32.random(in: 0...2, using: &g))
    }
}
