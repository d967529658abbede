import VCPENet

/// ClassBench's text formats. Rules: `@sip/len dip/len sp_lo : sp_hi dp_lo : dp_hi
/// proto/mask [more]`, one per line, earlier lines win. Traces: `sip dip sport dport proto
/// [more]` in decimal, one packet per line. Fields past these are ignored.
public enum ClassBench {
    public struct FormatError: Error, CustomStringConvertible {
        public let line: Int
        public let message: String
        public var description: String { "line \(line): \(message)" }
    }

    public static func parseRules(_ text: String) throws(FormatError) -> [PacketRule] {
        var rules: [PacketRule] = []
        for (n, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = raw.trimmingWhitespace
            if line.isEmpty { continue }
            let fail = { (m: String) in FormatError(line: n + 1, message: m) }
            guard line.first == "@" else { throw fail("a rule starts with '@', found \"\(line.prefix(20))\"") }
            let f = line.dropFirst().split(whereSeparator: { $0 == " " || $0 == "\t" })
            guard f.count >= 9, f[3] == ":", f[6] == ":" else {
                throw fail("expected \"@sip/len dip/len sp_lo : sp_hi dp_lo : dp_hi proto/mask\"")
            }
            func prefix(_ s: Substring, _ what: String) throws(FormatError) -> IPPrefix? {
                guard let p = IPPrefix(s), p.family == .v4 else { throw fail("\(what) \"\(s)\" is not an IPv4 address/length") }
                return p.length == 0 ? nil : p.canonical
            }
            func port(_ s: Substring, _ what: String) throws(FormatError) -> UInt16 {
                guard let v = UInt16(s) else { throw fail("\(what) \"\(s)\" is not a port (0-65535)") }
                return v
            }
            let src = try prefix(f[0], "source"), dst = try prefix(f[1], "destination")
            let sp = (try port(f[2], "source port low"), try port(f[4], "source port high"))
            let dp = (try port(f[5], "destination port low"), try port(f[7], "destination port high"))
            guard sp.0 <= sp.1, dp.0 <= dp.1 else { throw fail("a port range's low end is above its high end") }
            let pm = f[8].split(separator: "/")
            guard pm.count == 2, let value = hexByte(pm[0]), let mask = hexByte(pm[1]), mask == 0 || mask == 0xFF else {
                throw fail("protocol \"\(f[8])\" is not 0xVV/0xFF or 0xVV/0x00")
            }
            rules.append(PacketRule(src: src, dst: dst, proto: mask == 0 ? nil : value, sport: PortRange(sp.0, sp.1),
                                    dport: PortRange(dp.0, dp.1)))
        }
        return rules
    }

    public static func parseTrace(_ text: String) throws(FormatError) -> [FlowKey] {
        var keys: [FlowKey] = []
        for (n, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = raw.trimmingWhitespace
            if line.isEmpty { continue }
            let f = line.split(whereSeparator: { $0 == " " || $0 == "\t" })
            guard f.count >= 5, let s = UInt32(f[0]), let d = UInt32(f[1]), let sp = UInt16(f[2]), let dp = UInt16(f[3]),
                  let p = UInt8(f[4]) else {
                throw FormatError(line: n + 1, message: "expected \"sip dip sport dport proto\" in decimal (addresses 0-4294967295, ports 0-65535, protocol 0-255)")
            }
            keys.append(FlowKey(src: IPAddress(v4: s), dst: IPAddress(v4: d), proto: p, sport: sp, dport: dp))
        }
        return keys
    }

    public static func format(_ rules: [PacketRule]) -> String {
        rules.map { r in
            let any = IPPrefix(IPAddress(v4: 0), 0)
            let proto = r.proto.map { "0x\(zeroPaddedHex($0, width: 2))/0xFF" } ?? "0x00/0x00"
            return "@\(r.src ?? any)\t\(r.dst ?? any)\t\(r.sport.lo) : \(r.sport.hi)\t\(r.dport.lo) : \(r.dport.hi)\t\(proto)\n"
        }.joined()
    }

    public static func format(_ keys: [FlowKey]) -> String {
        keys.map { "\($0.src.v4Value)\t\($0.dst.v4Value)\t\($0.sport)\t\($0.dport)\t\($0.proto)\n" }.joined()
    }

    private static func hexByte(_ s: Substring) -> UInt8? {
        guard s.hasPrefix("0x") || s.hasPrefix("0X") else { return nil }
        return UInt8(s.dropFirst(2), radix: 16)
    }
}

extension Substring {
    var trimmingWhitespace: Substring {
        var s = self
        while let c = s.first, c == " " || c == "\t" || c == "\r" { s = s.dropFirst() }
        while let c = s.last, c == " " || c == "\t" || c == "\r" { s = s.dropLast() }
        return s
    }
}
