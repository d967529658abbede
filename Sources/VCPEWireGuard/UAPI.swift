/// The cross-platform WireGuard configuration protocol: what wireguard-go reads and writes
/// on its unix socket. Requests are `get=1` or `set=1` then key=value lines and an empty
/// line; answers end with `errno=N` and an empty line. Keys travel in hex.
public enum UAPI {
    public static func hex(_ bytes: [UInt8]) -> String {
        let digits = Array("0123456789abcdef".utf8)
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count * 2)
        for b in bytes {
            out.append(digits[Int(b >> 4)])
            out.append(digits[Int(b & 0xF)])
        }
        return String(decoding: out, as: UTF8.self)
    }

    static func bytes(hex: Substring) -> [UInt8]? {
        let u = Array(hex.utf8)
        guard u.count % 2 == 0 else { return nil }
        func nibble(_ c: UInt8) -> UInt8? {
            switch c {
            case 48...57: c - 48
            case 97...102: c - 87
            case 65...70: c - 55
            default: nil
            }
        }
        var out: [UInt8] = []
        for i in stride(from: 0, to: u.count, by: 2) {
            guard let h = nibble(u[i]), let l = nibble(u[i + 1]) else { return nil }
            out.append(h << 4 | l)
        }
        return out
    }

    public static let getRequest = "get=1\n\n"

    /// The request that turns `current` (nil: a fresh device) into `wanted`.
    public static func setRequest(_ wanted: DeviceConfig, over current: DeviceConfig?) -> String {
        let c = wanted.change(from: current)
        var lines = ["set=1"]
        if let k = c.privateKey { lines.append("private_key=\(hex(k.raw))") }
        if let port = c.listenPort { lines.append("listen_port=\(port)") }
        for key in c.removed { lines += ["public_key=\(hex(key))", "remove=true"] }
        for p in c.peers {
            lines.append("public_key=\(hex(p.publicKey))")
            if let psk = p.presharedKey { lines.append("preshared_key=\(hex(psk))") }
            if let e = p.endpoint { lines.append("endpoint=\(e)") }
            if let k = p.keepalive { lines.append("persistent_keepalive_interval=\(k)") }
            if let ips = p.allowedIPs { lines += ["replace_allowed_ips=true"] + ips.map { "allowed_ip=\($0)" } }
        }
        return lines.joined(separator: "\n") + "\n\n"
    }

    public struct ProtocolError: Error, CustomStringConvertible {
        public var description: String
    }

    /// The errno of an answer to `set`; 0 is success.
    public static func errno(ofAnswer text: String) throws -> Int32 {
        guard let line = text.split(separator: "\n").last(where: { $0.hasPrefix("errno=") }),
              let n = Int32(line.dropFirst(6)) else { throw ProtocolError(description: "no errno in the answer (\(text.utf8.count) bytes)") }  // never echoed: a get answer starts with the private key
        return n
    }

    /// Parses the answer to `get=1`. `configuredEndpoints` decides which endpoints count
    /// as configuration: the device reports where a peer was last seen, which for a peer
    /// given no endpoint is learnt, not configured.
    public static func parseGet(_ text: String, configuredEndpoints: Set<[UInt8]>) throws -> DeviceState {
        guard try errno(ofAnswer: text) == 0 else { throw ProtocolError(description: "get failed: \(text.split(separator: "\n").last ?? "")") }
        var privateKey: WireGuardKey?
        var listenPort: UInt16 = 0
        var peers: [DeviceConfig.Peer] = []
        var states: [DeviceState.PeerState] = []
        var seconds: Double?
        func bad(_ line: Substring) -> ProtocolError { ProtocolError(description: "unexpected UAPI line \"\(line.prefix(40))\"") }
        for line in text.split(separator: "\n") {
            guard let eq = line.firstIndex(of: "=") else { throw bad(line) }
            let key = line[..<eq], value = line[line.index(after: eq)...]
            switch key {
            case "private_key": privateKey = bytes(hex: value).flatMap(WireGuardKey.init(raw:))
            case "listen_port": listenPort = UInt16(value) ?? 0
            case "public_key":
                guard let k = bytes(hex: value), k.count == 32 else { throw bad(line) }
                peers.append(.init(publicKey: k, presharedKey: nil, endpoint: nil, keepalive: 0, allowedIPs: []))
                states.append(.init(publicKey: k, endpoint: nil, latestHandshake: nil, rxBytes: 0, txBytes: 0))
                seconds = nil
            case _ where peers.isEmpty: continue  // device-wide keys vcpe does not set (fwmark)
            case "preshared_key":
                let k = bytes(hex: value)
                peers[peers.count - 1].presharedKey = k?.allSatisfy { $0 == 0 } == true ? nil : k
            case "endpoint":
                states[states.count - 1].endpoint = String(value)
                if configuredEndpoints.contains(peers[peers.count - 1].publicKey) { peers[peers.count - 1].endpoint = String(value) }
            case "persistent_keepalive_interval": peers[peers.count - 1].keepalive = UInt16(value) ?? 0
            case "allowed_ip": peers[peers.count - 1].allowedIPs.append(String(value))
            case "last_handshake_time_sec":
                seconds = Double(value)
            case "last_handshake_time_nsec":
                if let s = seconds, s > 0 { states[states.count - 1].latestHandshake = s + (Double(value) ?? 0) / 1e9 }
            case "rx_bytes": states[states.count - 1].rxBytes = UInt64(value) ?? 0
            case "tx_bytes": states[states.count - 1].txBytes = UInt64(value) ?? 0
            default: continue  // protocol_version, errno, and keys of later versions
            }
        }
        // A device not configured yet has no key: the zero key stands for it (never a real one).
        let key = privateKey ?? WireGuardKey(raw: [UInt8](repeating: 0, count: 32))!
        peers = peers.map { .init(publicKey: $0.publicKey, presharedKey: $0.presharedKey, endpoint: $0.endpoint,
                                  keepalive: $0.keepalive, allowedIPs: $0.allowedIPs) }
        return DeviceState(config: DeviceConfig(privateKey: key, listenPort: listenPort, peers: peers), peers: states)
    }
}
