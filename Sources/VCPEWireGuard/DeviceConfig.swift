import Crypto
import Foundation

/// What a WireGuard device is told: the same for the kernel and for wireguard-go.
public struct DeviceConfig: Sendable, Hashable {
    public var privateKey: WireGuardKey
    public var listenPort: UInt16
    /// Sorted by public key, so that two configs compare equal whatever the order.
    public var peers: [Peer]

    public struct Peer: Sendable, Hashable {
        public var publicKey: [UInt8]
        public var presharedKey: [UInt8]?
        /// "address:port" ("[v6]:port"); nil lets the peer reach out first.
        public var endpoint: String?
        /// Seconds; 0 is off.
        public var keepalive: UInt16
        /// Canonical prefixes ("10.0.0.0/8"), sorted.
        public var allowedIPs: [String]

        public init(publicKey: [UInt8], presharedKey: [UInt8]?, endpoint: String?, keepalive: UInt16, allowedIPs: [String]) {
            self.publicKey = publicKey
            self.presharedKey = presharedKey
            self.endpoint = endpoint
            self.keepalive = keepalive
            self.allowedIPs = allowedIPs.sorted()
        }
    }

    public init(privateKey: WireGuardKey, listenPort: UInt16, peers: [Peer]) {
        self.privateKey = privateKey
        self.listenPort = listenPort
        self.peers = peers.sorted { $0.publicKey.lexicographicallyPrecedes($1.publicKey) }
    }

    /// Names the whole configuration, secrets included, without revealing them: the
    /// planner compares what is installed with what is wanted by this alone.
    public var digest: String {
        var text = "\(UAPI.hex(privateKey.raw)) \(listenPort)\n"
        for p in peers {
            text += "\(UAPI.hex(p.publicKey)) \(p.presharedKey.map(UAPI.hex) ?? "-") \(p.endpoint ?? "-") \(p.keepalive) \(p.allowedIPs.joined(separator: ","))\n"
        }
        return UAPI.hex(Array(SHA256.hash(data: Array(text.utf8)).prefix(8)))
    }

    /// Peers whose endpoint is configuration; the others' endpoints are learnt from them.
    public var configuredEndpoints: Set<[UInt8]> { Set(peers.filter { $0.endpoint != nil }.map(\.publicKey)) }

    /// What turns `current` (nil: a fresh device) into this configuration, field by field.
    /// Both protocols send exactly this: an unchanged peer is not touched, so its session
    /// and handshake stay.
    public func change(from current: DeviceConfig?) -> DeviceChange {
        var c = DeviceChange()
        if current?.privateKey != privateKey { c.privateKey = privateKey }
        if current?.listenPort != listenPort { c.listenPort = listenPort }
        let have = Dictionary((current?.peers ?? []).map { ($0.publicKey, $0) }, uniquingKeysWith: { a, _ in a })
        let want = Set(peers.map(\.publicKey))
        c.removed = (current?.peers ?? []).map(\.publicKey).filter { !want.contains($0) }
        for p in peers where have[p.publicKey] != p {
            let old = have[p.publicKey]
            c.peers.append(DeviceChange.Peer(
                publicKey: p.publicKey,
                presharedKey: old?.presharedKey == p.presharedKey ? nil : p.presharedKey ?? [UInt8](repeating: 0, count: 32),
                endpoint: old?.endpoint == p.endpoint ? nil : p.endpoint,
                keepalive: old?.keepalive == p.keepalive ? nil : p.keepalive,
                allowedIPs: old?.allowedIPs == p.allowedIPs ? nil : p.allowedIPs))
        }
        return c
    }
}

/// The difference `DeviceConfig.change(from:)` finds; nil fields stay as they are.
public struct DeviceChange: Sendable, Hashable {
    public var privateKey: WireGuardKey?
    public var listenPort: UInt16?
    /// Public keys of peers to remove.
    public var removed: [[UInt8]] = []
    /// Peers to add or change.
    public var peers: [Peer] = []

    public struct Peer: Sendable, Hashable {
        public var publicKey: [UInt8]
        /// All zeros removes the key.
        public var presharedKey: [UInt8]?
        public var endpoint: String?
        public var keepalive: UInt16?
        /// Replaces the peer's whole list.
        public var allowedIPs: [String]?
    }
}

/// A running device: its configuration and what each peer has done.
public struct DeviceState: Sendable, Hashable {
    public var config: DeviceConfig
    public var peers: [PeerState]

    public struct PeerState: Sendable, Hashable {
        public var publicKey: [UInt8]
        /// Where packets from the peer last came from (WireGuard roams), or the configured one.
        public var endpoint: String?
        /// Seconds since the Unix epoch; nil: never.
        public var latestHandshake: Double?
        public var rxBytes: UInt64
        public var txBytes: UInt64
    }
}
