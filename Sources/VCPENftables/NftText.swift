import VCPENet

/// The model in `nft` syntax: what an operator reads, and what the differential tests feed
/// to `nft -f` to check that this layer installs the same thing.
extension NftTable {
    public var nftText: String {
        var out = "table \(family.rawValue) \(name) {\n"
        if let comment { out += "\tcomment \"\(comment)\"\n" }
        for c in counters { out += "\tcounter \(c) {\n\t}\n" }
        for s in sets {
            out += "\tset \(s.name) {\n\t\ttype \(s.keyType.rawValue)\n"
            if s.interval { out += "\t\tflags interval\n" }
            if !s.elements.isEmpty { out += "\t\telements = { " + s.elements.map(\.nftText).joined(separator: ", ") + " }\n" }
            out += "\t}\n"
        }
        for c in chains {
            out += "\tchain \(c.name) {\n"
            if let b = c.base {
                out += "\t\ttype \(b.type.rawValue) hook \(b.hook.rawValue)"
                if let d = b.device { out += " device \"\(d)\"" }
                out += " priority \(b.priority);"
                if let p = b.policy { out += " policy \(p.rawValue);" }
                out += "\n"
            }
            for r in c.rules { out += "\t\t" + r.nftText(family: family) + "\n" }
            out += "\t}\n"
        }
        return out + "}\n"
    }
}

extension SetElement {
    var nftText: String {
        switch self {
        case .prefix(let p): p.length == p.address.bitWidth ? p.address.description : p.description
        case .ports(let r): r.description
        case .interface(let n): "\"\(n)\""
        }
    }
}

extension NftRule {
    public func nftText(family: NftFamily) -> String {
        var parts = matches.map { m in
            // netdev hooks match the ethertype, as nft writes it.
            if family == .netdev, case .nfproto(let f) = m { return "meta protocol \(f == .v4 ? "ip" : "ip6")" }
            return m.nftText
        }
        parts += statements.map { $0.nftText(family: family) }
        if let comment { parts.append("comment \"\(comment)\"") }
        return parts.joined(separator: " ")
    }
}

extension Match {
    var nftText: String {
        switch self {
        case .iifname(let n): return "iifname \"\(n)\""
        case .oifname(let n): return "oifname \"\(n)\""
        case .iifnameIn(let ns): return "iifname { " + ns.map { "\"\($0)\"" }.joined(separator: ", ") + " }"
        case .oifnameIn(let ns): return "oifname { " + ns.map { "\"\($0)\"" }.joined(separator: ", ") + " }"
        case .nfproto(let f): return "meta nfproto \(f == .v4 ? "ipv4" : "ipv6")"
        case .l4proto(let p): return "meta l4proto \(protocolName(p))"
        case .source(let v): return v.nftText(field: "saddr")
        case .destination(let v): return v.nftText(field: "daddr")
        case .sourcePort(let p, let v): return "\(p.rawValue) sport \(v.nftText)"
        case .destinationPort(let p, let v): return "\(p.rawValue) dport \(v.nftText)"
        case .icmpType(let t): return "icmp type \(t)"
        case .icmpv6Type(let t): return "icmpv6 type \(t)"
        case .ctState(let s): return "ct state " + s.sorted().map(\.rawValue).joined(separator: ",")
        case .ctStatus(let s): return "ct status " + s.sorted().map(\.rawValue).joined(separator: ",")
        case .ctMark(let m): return "ct mark 0x" + String(m, radix: 16)
        case .mark(let m): return "meta mark 0x" + String(m, radix: 16)
        }
    }

    func protocolName(_ p: UInt8) -> String {
        switch p {
        case 1: "icmp"
        case 6: "tcp"
        case 17: "udp"
        case 58: "ipv6-icmp"
        default: String(p)
        }
    }
}

extension Match.AddressValue {
    var family: IPAddress.Family {
        switch self {
        case .prefix(let p): p.family
        case .anyOf(let ps): ps.first?.family ?? .v4
        case .set(_, let f): f
        }
    }

    func nftText(field: String) -> String {
        let header = family == .v4 ? "ip" : "ip6"
        switch self {
        case .prefix(let p): return "\(header) \(field) \(SetElement.prefix(p).nftText)"
        case .anyOf(let ps): return "\(header) \(field) { " + ps.map { SetElement.prefix($0).nftText }.joined(separator: ", ") + " }"
        case .set(let n, _): return "\(header) \(field) @\(n)"
        }
    }
}

extension Match.PortValue {
    var nftText: String {
        switch self {
        case .range(let r): r.description
        case .anyOf(let rs): "{ " + rs.map(\.description).joined(separator: ", ") + " }"
        case .set(let n): "@\(n)"
        }
    }
}

extension Statement {
    func nftText(family: NftFamily) -> String {
        switch self {
        case .counter: return "counter"
        case .namedCounter(let n): return "counter name \"\(n)\""
        case .log(let p): return "log" + (p.map { " prefix \"\($0)\"" } ?? "")
        case .limit(let rate, let per, let burst): return "limit rate \(rate)/\(per.rawValue) burst \(burst) packets"
        case .setMark(let m): return "meta mark set 0x" + String(m, radix: 16)
        case .setCtMark(let m): return "ct mark set 0x" + String(m, radix: 16)
        case .masquerade: return "masquerade"
        case .snat(let a, let p): return "snat \(family == .inet ? (a.family == .v4 ? "ip " : "ip6 ") : "")to \(endpoint(a, p))"
        case .dnat(let a, let p): return "dnat \(family == .inet ? (a.family == .v4 ? "ip " : "ip6 ") : "")to \(endpoint(a, p))"
        case .accept: return "accept"
        case .drop: return "drop"
        case .reject(.tcpReset): return "reject with tcp reset"
        case .reject(.portUnreachable): return "reject"
        case .jump(let c): return "jump \(c)"
        case .goto(let c): return "goto \(c)"
        case .return: return "return"
        }
    }

    private func endpoint(_ a: IPAddress, _ p: UInt16?) -> String {
        guard let p else { return a.description }
        return a.family == .v4 ? "\(a):\(p)" : "[\(a)]:\(p)"
    }
}
