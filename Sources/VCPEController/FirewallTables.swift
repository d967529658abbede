import VCPEDescriptor

/// The nftables table a service needs, as the planner sees it: identity and a digest of
/// its content. The rules themselves are rendered by the nftables layer.
enum FirewallTables {
    static let tableName = "vcpe"

    static func table(for service: Service, namespace: String) -> HostObject? {
        switch service.kind {
        case .firewall(let fw):
            // forward chain: established/related, invalid drop, the operator's rules, the default.
            return .nftTable(namespace: namespace, family: "inet", name: tableName,
                             rules: fw.rules.count + 3, digest: digest(of: service))
        case .router(let rt) where rt.nat == .masquerade || !rt.portForwards.isEmpty:
            return .nftTable(namespace: namespace, family: "ip", name: tableName,
                             rules: (rt.nat == .masquerade ? 1 : 0) + 2 * rt.portForwards.count,
                             digest: digest(of: service))
        default:
            return nil
        }
    }

    /// FNV-1a over the service's canonical description: stable across runs and processes.
    static func digest(of service: Service) -> String {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for b in String(describing: service).utf8 {
            h = (h ^ UInt64(b)) &* 0x100_0000_01b3
        }
        return String(h, radix: 16).leftPadded(16)
    }
}

extension String {
    func leftPadded(_ width: Int) -> String {
        count >= width ? self : String(repeating: "0", count: width - count) + self
    }
}
