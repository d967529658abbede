import VCPEDescriptor

/// The cross-platform WireGuard configuration protocol (the text wireguard-go reads on its
/// UAPI socket): `set=1`, then key=value lines, keys in hex, an empty line to end.
public enum UAPIConfig {
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

    /// A full replacement of the device's configuration: peers not named are removed.
    public static func set(privateKey: [UInt8], vpn: VPN, presharedKeys: [String: [UInt8]] = [:]) -> String {
        precondition(privateKey.count == 32)
        var lines = ["set=1", "private_key=\(hex(privateKey))", "listen_port=\(vpn.listenPort)", "replace_peers=true"]
        for p in vpn.peers {
            lines.append("public_key=\(hex(p.publicKey))")
            if let psk = presharedKeys[p.name] { lines.append("preshared_key=\(hex(psk))") }
            if let e = p.endpoint { lines.append("endpoint=\(e)") }
            if let k = p.keepalive { lines.append("persistent_keepalive_interval=\(k)") }
            lines.append("replace_allowed_ips=true")
            for a in p.allowedIPs { lines.append("allowed_ip=\(a)") }
        }
        return lines.joined(separator: "\n") + "\n\n"
    }
}
