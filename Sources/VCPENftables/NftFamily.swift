/// nftables address families vcpe uses (NFPROTO_* values).
public enum NftFamily: String, Sendable, Hashable, Codable, CaseIterable {
    case inet, ip, ip6, netdev

    public var protocolValue: UInt8 {
        switch self {
        case .inet: 1
        case .ip: 2
        case .ip6: 10
        case .netdev: 5
        }
    }
}
