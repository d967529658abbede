import CNetlink
import VCPENet
import VCPENetlink

/// WireGuard's generic netlink messages (linux/wireguard.h): what `KernelDriver` sends and
/// reads. Pure: bytes in, bytes out.
public enum KernelMessages {
    static let version = UInt8(WG_GENL_VERSION)

    /// WG_CMD_GET_DEVICE's request: the device by name.
    public static func get(_ interface: String) -> [UInt8] {
        var w = NetlinkAttributeWriter()
        w.put(UInt16(WGDEVICE_A_IFNAME.rawValue), string: interface)
        return w.bytes
    }

    /// WG_CMD_SET_DEVICE's attributes turning `current` (nil: a fresh device) into
    /// `wanted`; like the UAPI request, only what differs, so unchanged peers keep their
    /// sessions.
    public static func set(_ interface: String, _ wanted: DeviceConfig, over current: DeviceConfig?) -> [UInt8] {
        let c = wanted.change(from: current)
        var w = NetlinkAttributeWriter()
        w.put(UInt16(WGDEVICE_A_IFNAME.rawValue), string: interface)
        if let k = c.privateKey { w.put(UInt16(WGDEVICE_A_PRIVATE_KEY.rawValue), k.raw) }
        if let port = c.listenPort { w.put(UInt16(WGDEVICE_A_LISTEN_PORT.rawValue), port) }
        guard !c.removed.isEmpty || !c.peers.isEmpty else { return w.bytes }
        w.nest(UInt16(WGDEVICE_A_PEERS.rawValue)) { peers in
            for key in c.removed {
                peers.nest(0) { a in
                    a.put(UInt16(WGPEER_A_PUBLIC_KEY.rawValue), key)
                    a.put(UInt16(WGPEER_A_FLAGS.rawValue), UInt32(WGPEER_F_REMOVE_ME.rawValue))
                }
            }
            for p in c.peers {
                peers.nest(0) { a in
                    a.put(UInt16(WGPEER_A_PUBLIC_KEY.rawValue), p.publicKey)
                    a.put(UInt16(WGPEER_A_FLAGS.rawValue), p.allowedIPs != nil ? UInt32(WGPEER_F_REPLACE_ALLOWEDIPS.rawValue) : 0)
                    if let psk = p.presharedKey { a.put(UInt16(WGPEER_A_PRESHARED_KEY.rawValue), psk) }
                    if let e = p.endpoint, let s = sockaddr(e) { a.put(UInt16(WGPEER_A_ENDPOINT.rawValue), s) }
                    if let k = p.keepalive { a.put(UInt16(WGPEER_A_PERSISTENT_KEEPALIVE_INTERVAL.rawValue), k) }
                    guard let ips = p.allowedIPs else { return }
                    a.nest(UInt16(WGPEER_A_ALLOWEDIPS.rawValue)) { list in
                        for prefix in ips.compactMap({ IPPrefix($0) }) {
                            list.nest(0) { ip in
                                ip.put(UInt16(WGALLOWEDIP_A_FAMILY.rawValue), UInt16(prefix.family == .v4 ? AF_INET : AF_INET6))
                                ip.put(UInt16(WGALLOWEDIP_A_IPADDR.rawValue), prefix.network.bytes)
                                ip.put(UInt16(WGALLOWEDIP_A_CIDR_MASK.rawValue), UInt8(prefix.length))
                            }
                        }
                    }
                }
            }
        }
        return w.bytes
    }

    /// The device from the replies of a WG_CMD_GET_DEVICE dump. The kernel splits a large
    /// device over several messages, repeating a peer's public key where its allowed IPs go on.
    public static func parseDevice(_ replies: [[UInt8]], configuredEndpoints: Set<[UInt8]>) -> DeviceState {
        var privateKey = WireGuardKey(raw: [UInt8](repeating: 0, count: 32))!
        var listenPort: UInt16 = 0
        var peers: [DeviceConfig.Peer] = []
        var states: [DeviceState.PeerState] = []
        for reply in replies {
            let device = NetlinkAttribute.parse(reply)
            if let k = device.first(WGDEVICE_A_PRIVATE_KEY.rawValue), let key = WireGuardKey(raw: k.payload) { privateKey = key }
            if let p = device.first(WGDEVICE_A_LISTEN_PORT.rawValue)?.integer(UInt16.self) { listenPort = p }
            for peer in device.first(WGDEVICE_A_PEERS.rawValue)?.nested ?? [] {
                let a = peer.nested
                guard let key = a.first(WGPEER_A_PUBLIC_KEY.rawValue)?.payload, key.count == 32 else { continue }
                let ips = (a.first(WGPEER_A_ALLOWEDIPS.rawValue)?.nested ?? []).compactMap { allowedIP($0.nested) }
                if peers.last?.publicKey == key {  // continued from the previous message
                    peers[peers.count - 1].allowedIPs += ips
                    continue
                }
                let psk = a.first(WGPEER_A_PRESHARED_KEY.rawValue)?.payload
                let endpoint = a.first(WGPEER_A_ENDPOINT.rawValue).flatMap { endpointString($0.payload) }
                peers.append(DeviceConfig.Peer(publicKey: key, presharedKey: psk?.allSatisfy { $0 == 0 } == false ? psk : nil,
                                               endpoint: configuredEndpoints.contains(key) ? endpoint : nil,
                                               keepalive: a.first(WGPEER_A_PERSISTENT_KEEPALIVE_INTERVAL.rawValue)?.integer(UInt16.self) ?? 0,
                                               allowedIPs: ips))
                // struct __kernel_timespec: seconds, then nanoseconds; zero is never.
                let time = a.first(WGPEER_A_LAST_HANDSHAKE_TIME.rawValue)
                let seconds: Int64 = time?.integer(Int64.self) ?? 0
                let nanos: Int64 = time?.integer(Int64.self, at: 8) ?? 0
                let handshake: Double? = seconds > 0 ? Double(seconds) + Double(nanos) / 1e9 : nil
                states.append(.init(publicKey: key, endpoint: endpoint, latestHandshake: handshake,
                                    rxBytes: a.first(WGPEER_A_RX_BYTES.rawValue)?.integer(UInt64.self) ?? 0,
                                    txBytes: a.first(WGPEER_A_TX_BYTES.rawValue)?.integer(UInt64.self) ?? 0))
            }
        }
        // Re-sorts the allowed IPs that continued across messages.
        peers = peers.map { DeviceConfig.Peer(publicKey: $0.publicKey, presharedKey: $0.presharedKey, endpoint: $0.endpoint,
                                              keepalive: $0.keepalive, allowedIPs: $0.allowedIPs) }
        return DeviceState(config: DeviceConfig(privateKey: privateKey, listenPort: listenPort, peers: peers), peers: states)
    }

    static func allowedIP(_ a: [NetlinkAttribute]) -> String? {
        guard let bytes = a.first(WGALLOWEDIP_A_IPADDR.rawValue)?.payload,
              let length = a.first(WGALLOWEDIP_A_CIDR_MASK.rawValue)?.integer(UInt8.self),
              let address = address(bytes) else { return nil }
        return IPPrefix(address, Int(length)).canonical.description
    }

    static func address(_ bytes: [UInt8]) -> IPAddress? {
        switch bytes.count {
        case 4: return IPAddress(v4: bytes.reduce(0) { $0 << 8 | UInt32($1) })
        case 16:
            let hi = bytes[0..<8].reduce(UInt64(0)) { $0 << 8 | UInt64($1) }, lo = bytes[8..<16].reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
            return IPAddress(v6: hi, lo)
        default: return nil
        }
    }

    /// "192.0.2.1:51820" or "[2001:db8::1]:51820" as struct sockaddr_in / sockaddr_in6.
    static func sockaddr(_ endpoint: String) -> [UInt8]? {
        guard let colon = endpoint.lastIndex(of: ":"), let port = UInt16(endpoint[endpoint.index(after: colon)...]) else { return nil }
        var host = endpoint[..<colon]
        if host.hasPrefix("[") && host.hasSuffix("]") { host = host.dropFirst().dropLast() }
        guard let a = IPAddress(host) else { return nil }
        let portBytes = withUnsafeBytes(of: port.bigEndian, Array.init)
        if a.family == .v4 {
            return withUnsafeBytes(of: UInt16(AF_INET), Array.init) + portBytes + a.bytes + [UInt8](repeating: 0, count: 8)
        }
        return withUnsafeBytes(of: UInt16(AF_INET6), Array.init) + portBytes + [0, 0, 0, 0] + a.bytes + [0, 0, 0, 0]
    }

    static func endpointString(_ s: [UInt8]) -> String? {
        guard s.count >= 8 else { return nil }
        let family = Int32(UInt16(s[0]) | UInt16(s[1]) << 8)
        let port = UInt16(s[2]) << 8 | UInt16(s[3])
        if family == AF_INET, let a = address(Array(s[4..<8])) { return "\(a):\(port)" }
        if family == AF_INET6, s.count >= 24, let a = address(Array(s[8..<24])) { return "[\(a)]:\(port)" }
        return nil
    }
}
