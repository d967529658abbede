import VCPENet
extension ChainReader {
    mutating func readServices(_ v: Value, lan: LAN?) -> [Service]? {
        guard let entries = v.map() else { return nil }
        if entries.isEmpty { v.error("expected at least one service (a chain needs a router)") }
        if entries.count > Limits.services {
            v.error("at most \(Limits.services) services (got \(entries.count)): each service is a network namespace")
        }
        var services: [Service] = []
        for (name, _, sv) in entries {
            let nameOK = sv.name(name, maxLength: KernelNames.maxServiceName, what: "a service name")
            if nameOK, KernelNames.reservedServiceNames.contains(name) {
                sv.error("\"\(name)\" is reserved for vcpe's own use; choose another service name")
                continue
            }
            guard let o = sv.object(keys: ["type", "default", "rules", "nat", "portForwards", "wireguard", "resources", "description"]) else { continue }
            _ = o["description"]?.string()
            guard let type = o.required("type", "\"firewall\", \"router\" or \"vpn\"")?.string() else { continue }
            let allowed: [String: [String]] = [
                "firewall": ["type", "default", "rules", "description"],
                "router": ["type", "nat", "portForwards", "description"],
                "vpn": ["type", "wireguard", "resources", "description"],
            ]
            guard let keys = allowed[type] else {
                o["type"]!.error("expected \"firewall\", \"router\" or \"vpn\", got \"\(type)\"\(sink.suggestion(for: type, among: ["firewall", "router", "vpn"]))")
                continue
            }
            for m in o.members where !keys.contains(m.key) && allowed.values.contains(where: { $0.contains(m.key) }) {
                sink.add(Diagnostic(.error, sv.pointer / m.key, m.keyLocation, "key \"\(m.key)\" does not belong to a \(type) service; expected \(quotedList(keys))"))
            }
            let kind: Service.Kind?
            switch type {
            case "firewall": kind = readFirewall(o).map { .firewall($0) }
            case "router": kind = readRouter(o, lan: lan).map { .router($0) }
            default: kind = readVPN(o).map { .vpn($0) }
            }
            if nameOK, let kind { services.append(Service(name: name, kind: kind)) }
        }
        let routers = entries.filter { e in e.value.node.isObject(withType: "router") }
        if routers.isEmpty, !entries.isEmpty {
            v.error("expected one service of type \"router\": it owns the WAN address and ends every path")
        }
        for extra in routers.dropFirst() {
            extra.value.error("a chain has exactly one router (it owns the WAN address); \"\(routers[0].key)\" is one already")
        }
        for extra in entries.filter({ $0.value.node.isObject(withType: "vpn") }).dropFirst() {
            extra.value.error("descriptor v1 allows one vpn service per customer; put all peers in one")
        }
        // The router forwards the VPN's listen port to it: the port cannot go to a LAN host too.
        if let entry = entries.first(where: { $0.value.node.isObject(withType: "vpn") }),
           case .vpn(let vpn)? = services.first(where: { $0.name == entry.key })?.kind,
           case .router(let rt)? = services.first(where: { $0.kind.role == .router })?.kind,
           let clash = rt.portForwards.firstIndex(where: { $0.proto == .udp && $0.port.overlaps(PortRange(vpn.listenPort, vpn.listenPort)) }) {
            let at = ObjectReader.member(ObjectReader.member(entry.value, "wireguard") ?? entry.value, "listenPort") ?? entry.value
            at.error("udp port \(vpn.listenPort) is the router's port forward \(clash) already; the vpn service needs it forwarded to itself")
        }
        return services
    }

    // MARK: - Firewall

    func readFirewall(_ o: ObjectReader) -> Firewall? {
        var verdict = Verdict.drop
        if let d = o["default"] {
            guard let v = d.word(Verdict.self) else { return nil }
            verdict = v
        }
        var rules: [FirewallRule] = []
        var ok = true
        if let rv = o["rules"], let items = rv.array() {
            if items.count > Limits.firewallRules {
                rv.error("at most \(Limits.firewallRules) rules per firewall (got \(items.count))")
                ok = false
            }
            var byName: [String: Int] = [:]
            for item in items {
                if let r = readFirewallRule(item) {
                    if let dup = byName[r.name] {
                        item.error("rule name \"\(r.name)\" is used by rule \(dup) already; rule names name their counters")
                        ok = false
                    } else {
                        byName[r.name] = rules.count
                    }
                    rules.append(r)
                } else { ok = false }
            }
        }
        return ok ? Firewall(defaultVerdict: verdict, rules: rules) : nil
    }

    func readFirewallRule(_ v: Value) -> FirewallRule? {
        guard let o = v.object(keys: ["name", "action", "from", "proto", "src", "dst", "sport", "dport", "description"]) else { return nil }
        _ = o["description"]?.string()
        var ok = true
        var name = ""
        if let nv = o.required("name", "the rule's name, which names its counter"), let s = nv.string() {
            if nv.name(s, maxLength: KernelNames.maxRuleName, what: "a rule name") { name = s } else { ok = false }
        } else { ok = false }
        let action = o.required("action", "\"accept\", \"drop\" or \"reject\"")?.word(Verdict.self)
        var from: Zone?
        if let f = o["from"] { from = f.word(Zone.self); if from == nil { ok = false } }
        var proto = IPProtocolMatch.any
        var protoKnown = true
        if let p = o["proto"] { if let w = p.word(IPProtocolMatch.self) { proto = w } else { ok = false; protoKnown = false } }
        let src = o["src"].map { prefixes($0) } ?? []
        let dst = o["dst"].map { prefixes($0) } ?? []
        let sport = o["sport"].map { ports($0) } ?? []
        let dport = o["dport"].map { ports($0) } ?? []
        for key in ["sport", "dport"] where o[key] != nil && !proto.hasPorts && protoKnown {
            o[key]!.error("ports need \"proto\": \"tcp\" or \"udp\" (this rule's proto is \"\(proto.rawValue)\")")
            ok = false
        }
        if let src, let dst, let s = src.first, let d = dst.first,
           src.allSatisfy({ $0.family == s.family }), dst.allSatisfy({ $0.family == d.family }), s.family != d.family {
            o["dst"]!.error("src and dst are of different IP versions; such a rule could never match")
            ok = false
        }
        guard ok, let action, let src, let dst, let sport, let dport else { return nil }
        return FirewallRule(name: name, action: action, from: from, proto: proto, src: src, dst: dst, sport: sport, dport: dport)
    }

    // MARK: - Router

    func readRouter(_ o: ObjectReader, lan: LAN?) -> Router? {
        var nat = NATMode.masquerade
        if let n = o["nat"] { guard let m = n.word(NATMode.self) else { return nil }; nat = m }
        var forwards: [PortForward] = []
        var ok = true
        if let fv = o["portForwards"], let items = fv.array() {
            if items.count > Limits.portForwards {
                fv.error("at most \(Limits.portForwards) port forwards (got \(items.count))")
                ok = false
            }
            var read: [(forward: PortForward, at: Value)] = []
            for item in items {
                guard let f = readPortForward(item, lan: lan) else { ok = false; continue }
                read.append((f, item))
            }
            forwards = read.map(\.forward)
            // Overlaps per protocol, sorted and swept rather than compared pairwise.
            for proto in PortForward.Proto.allCases {
                let mine = read.indices.filter { read[$0].forward.proto == proto }
                for (i, j) in overlappingPortRanges(mine.map { read[$0].forward.port }) {
                    let f = read[mine[i]].forward
                    read[mine[i]].at.error("\(f.proto.rawValue) port \(f.port) overlaps port forward \(mine[j])")
                    ok = false
                }
            }
        }
        return ok ? Router(nat: nat, portForwards: forwards) : nil
    }

    func readPortForward(_ v: Value, lan: LAN?) -> PortForward? {
        guard let o = v.object(keys: ["proto", "port", "to", "description"]) else { return nil }
        _ = o["description"]?.string()
        let proto = o.required("proto", "\"tcp\" or \"udp\"")?.word(PortForward.Proto.self)
        let port = o.required("port", "the WAN port or range")?.oneOrMany()
        let range = port.flatMap { $0.count == 1 ? portRange($0[0]) : nil }
        if let port, port.count != 1, let pv = o["port"] { pv.error("expected one port or one range \"low-high\"") }
        guard let tv = o.required("to", "the LAN host as \"192.168.1.10:80\" or \"192.168.1.10\""), let to = tv.string() else { return nil }
        let parts = to.split(separator: ":", omittingEmptySubsequences: false)
        // The port is ASCII digits only, read without a forced unwrap: "1\u{301}" is refused here.
        let toPort: UInt16? = parts.count == 2 ? asciiDecimal(parts[1], maxDigits: 5).flatMap { $0 <= 65535 ? UInt16($0) : nil } : nil
        guard (1...2).contains(parts.count), let addr = IPAddress(parts[0]), addr.family == .v4,
              parts.count == 1 || toPort != nil else {
            tv.error("expected \"address:port\" or \"address\" of a LAN host, like \"192.168.1.10:80\", got \"\(to)\"")
            return nil
        }
        if let lan, !hostAddress(tv, addr, in: lan.subnet, what: "a LAN host") { return nil }
        if let lan, addr == lan.gateway { tv.error("expected a LAN host; \(addr) is the chain's own gateway"); return nil }
        // NAT to a port range picks any port of it rather than shifting: ranges keep their ports.
        if let range, let toPort, range.lo != range.hi, toPort != range.lo {
            tv.error("a port range is forwarded to the same ports; give \"\(addr)\" without a port, or forward one port")
            return nil
        }
        guard let proto, let range else { return nil }
        return PortForward(proto: proto, port: range, toAddress: addr, toPort: toPort)
    }

    // MARK: - VPN

    mutating func readVPN(_ o: ObjectReader) -> VPN? {
        guard let wv = o.required("wireguard", "the WireGuard settings: address, listenPort, peers"),
              let w = wv.object(keys: ["address", "listenPort", "peers"]) else { return nil }
        let addrV = w.required("address", "the tunnel address with prefix length, like \"10.99.0.2/32\"")
        let addr = addrV.flatMap { interfaceAddress($0, family: .v4) }
        let port = w.required("listenPort", "the UDP port WireGuard listens on")?.integer(in: 1...65535, "a UDP port 1-65535")
        // Each peer with the JSON it came from, so every message points at the right one.
        var peers: [(peer: VPN.Peer, at: Value)] = []
        var ok = true
        if let pv = w.required("peers", "the remote sites"), let items = pv.array() {
            if items.isEmpty { pv.error("expected at least one peer") }
            if items.count > Limits.vpnPeers {
                pv.error("at most \(Limits.vpnPeers) peers (got \(items.count))")
                ok = false
            }
            var names = Set<String>(), keys = Set<[UInt8]>()
            for item in items {
                guard let p = readPeer(item) else { ok = false; continue }
                if !names.insert(p.name).inserted { item.error("peer name \"\(p.name)\" is used twice"); ok = false }
                if !keys.insert(p.publicKey).inserted { item.error("this public key belongs to another peer already"); ok = false }
                peers.append((p, item))
            }
            let total = peers.reduce(0) { $0 + $1.peer.allowedIPs.count }
            if total > Limits.allowedIPsTotal {
                pv.error("at most \(Limits.allowedIPsTotal) allowed IPs for all peers together (got \(total)): each is a route in every path's table")
                ok = false
            }
            // A destination routed to two peers is ambiguous: WireGuard would pick one silently.
            // Sorted and swept, not compared pairwise; each prefix is reported once.
            let all = peers.flatMap { p in p.peer.allowedIPs.map { (prefix: $0, peer: p) } }
            for (i, j) in overlappingPrefixes(all.map { ($0.prefix, false) }) {
                let (a, mine) = all[i], (other, owner) = all[j]
                (ObjectReader.member(mine.at, "allowedIPs") ?? mine.at).error("allowed IPs \(a) overlap \(other) of peer \"\(owner.peer.name)\"")
                ok = false
            }
        }
        if let addr, let addrV { claimed.append((addr.canonical, "the VPN tunnel network", addrV, true)) }
        for (p, item) in peers {
            let at = ObjectReader.member(item, "allowedIPs") ?? item
            for a in p.allowedIPs { claimed.append((a, "peer \"\(p.name)\"'s allowed IPs", at, true)) }
        }
        let resources = o["resources"].map(readResources) ?? Resources.vpnDefault
        guard ok, let addr, let port, let resources else { return nil }
        return VPN(address: addr, listenPort: UInt16(port), peers: peers.map(\.peer), resources: resources)
    }

    /// `{"memory": "64MiB", "pids": 32}`: either may be left out (the default stays).
    func readResources(_ v: Value) -> Resources? {
        guard let o = v.object(keys: ["memory", "pids"]) else { return nil }
        var r = Resources.vpnDefault
        var ok = true
        if let mv = o["memory"] {
            if let text = mv.string("a size like \"64MiB\" or \"1GiB\"") {
                if let bytes = Resources.parseMemory(text) {
                    r.memoryBytes = bytes
                    if !Resources.memoryRange.contains(bytes) {
                        mv.error("expected a memory limit from 16MiB to 64GiB, got \"\(text)\"")
                        ok = false
                    }
                } else {
                    mv.error("expected a size like \"64MiB\" or \"1GiB\" (a whole number, then MiB or GiB), got \"\(text)\"")
                    ok = false
                }
            } else { ok = false }
        }
        if let pv = o["pids"] {
            if let n = pv.integer(in: Int(Resources.pidsRange.lowerBound)...Int(Resources.pidsRange.upperBound), "a process and thread limit") {
                r.pids = Int64(n)
            } else { ok = false }
        }
        return ok ? r : nil
    }

    func readPeer(_ v: Value) -> VPN.Peer? {
        guard let o = v.object(keys: ["name", "publicKey", "endpoint", "allowedIPs", "keepalive", "presharedKeyFile"]) else { return nil }
        var ok = true
        var name = ""
        if let nv = o.required("name", "the peer's name"), let s = nv.string() {
            if nv.name(s, maxLength: KernelNames.maxRuleName, what: "a peer name") { name = s } else { ok = false }
        } else { ok = false }
        var key: [UInt8]?
        if let kv = o.required("publicKey", "the peer's WireGuard public key in base64"), let s = kv.string() {
            key = Base64.decode(s)
            if key?.count != 32 {
                kv.error("expected a WireGuard public key: 44 characters of base64 for 32 bytes, got \"\(s)\"")
                key = nil
            }
        }
        var endpoint: Endpoint?
        if let ev = o["endpoint"], let s = ev.string() {
            endpoint = Endpoint(parsing: s)
            if endpoint == nil { ev.error("expected \"address:port\" or \"[v6address]:port\", got \"\(s)\""); ok = false }
        }
        var allowed: [IPPrefix] = []
        if let av = o.required("allowedIPs", "the networks reached through this peer") {
            if let p = prefixes(av) { allowed = p } else { ok = false }
            if case .array(let items) = av.node.kind, items.count > Limits.allowedIPsPerPeer {
                av.error("at most \(Limits.allowedIPsPerPeer) allowed IPs per peer (got \(items.count))")
                ok = false
            }
        }
        var keepalive: UInt16?
        if let kv = o["keepalive"] {
            if let n = kv.integer(in: 0...65535, "seconds between keepalives, 0-65535") { keepalive = UInt16(n) } else { ok = false }
        }
        var psk: String?
        if let pv = o["presharedKeyFile"], let s = pv.string() {
            if s.hasPrefix("/") { psk = s } else { pv.error("expected an absolute file path, got \"\(s)\""); ok = false }
        }
        guard ok, let key else { return nil }
        return VPN.Peer(name: name, publicKey: key, endpoint: endpoint, allowedIPs: allowed, keepalive: keepalive, presharedKeyFile: psk)
    }
}

extension JSONNode {
    /// The `type` member of a service object, read before the service is validated.
    var typeField: String? {
        guard case .object(let members) = kind, let t = members.first(where: { $0.key == "type" }),
              case .string(let s) = t.value.kind else { return nil }
        return s
    }

    func isObject(withType type: String) -> Bool { typeField == type }
}

extension Endpoint {
    /// `192.0.2.1:51820` or `[2001:db8::1]:51820`.
    public init?(parsing s: String) {
        let host: Substring, port: Substring
        if s.hasPrefix("[") {
            guard let close = s.firstIndex(of: "]"), s[s.index(after: close)...].hasPrefix(":") else { return nil }
            host = s[s.index(after: s.startIndex)..<close]
            port = s[s.index(close, offsetBy: 2)...]
        } else {
            let parts = s.split(separator: ":", omittingEmptySubsequences: false)
            guard parts.count == 2 else { return nil }
            host = parts[0]
            port = parts[1]
        }
        guard let a = IPAddress(host), let p = asciiDecimal(port, maxDigits: 5), (1...65535).contains(p) else { return nil }
        self.init(address: a, port: UInt16(p))
    }
}

/// RFC 4648 base64 with padding, strict: WireGuard keys are exactly this form.
public enum Base64 {
    static let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8)

    public static func decode(_ s: String) -> [UInt8]? {
        let chars = Array(s.utf8)
        guard chars.count % 4 == 0 else { return nil }
        var out: [UInt8] = []
        var i = 0
        while i < chars.count {
            var quad: [UInt32] = []
            var pad = 0
            for c in chars[i..<i + 4] {
                if c == UInt8(ascii: "=") { pad += 1; quad.append(0); continue }
                guard pad == 0, let v = alphabet.firstIndex(of: c) else { return nil }
                quad.append(UInt32(v))
            }
            guard pad <= 2, pad == 0 || i + 4 == chars.count else { return nil }
            let n = quad[0] << 18 | quad[1] << 12 | quad[2] << 6 | quad[3]
            // Canonical form only: bits below the last whole byte must be zero.
            if pad == 1, n & 0xFF != 0 { return nil }
            if pad == 2, n & 0xFFFF != 0 { return nil }
            out.append(UInt8(n >> 16))
            if pad < 2 { out.append(UInt8(n >> 8 & 0xFF)) }
            if pad < 1 { out.append(UInt8(n & 0xFF)) }
            i += 4
        }
        return out
    }

    public static func encode(_ bytes: [UInt8]) -> String {
        var out: [UInt8] = []
        var i = 0
        while i < bytes.count {
            let n = bytes.count - i
            let b0 = UInt32(bytes[i]), b1 = n > 1 ? UInt32(bytes[i + 1]) : 0, b2 = n > 2 ? UInt32(bytes[i + 2]) : 0
            let v = b0 << 16 | b1 << 8 | b2
            out.append(alphabet[Int(v >> 18 & 63)])
            out.append(alphabet[Int(v >> 12 & 63)])
            out.append(n > 1 ? alphabet[Int(v >> 6 & 63)] : UInt8(ascii: "="))
            out.append(n > 2 ? alphabet[Int(v & 63)] : UInt8(ascii: "="))
            i += 3
        }
        return String(decoding: out, as: UTF8.self)
    }
}
