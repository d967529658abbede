import VCPEDescriptor
import VCPENftables

/// The nftables table a service needs, as the planner sees it: identity, size and a digest
/// of its full text, so that any change of a rule changes the object.
enum FirewallTables {
    static func table(for service: Service, in chain: Chain, topology: Topology) -> HostObject? {
        guard let t = ServiceTables.table(for: service, in: chain, topology: topology) else { return nil }
        return .nftTable(namespace: KernelNames.namespace(customer: chain.customer, service: service.name),
                         family: t.family.rawValue, name: t.name, rules: t.ruleCount, digest: digest(t.nftText))
    }

    /// FNV-1a: stable across runs and processes, unlike Hasher.
    static func digest(_ text: String) -> String {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for b in text.utf8 { h = (h ^ UInt64(b)) &* 0x100_0000_01b3 }
        let hex = String(h, radix: 16)
        return String(repeating: "0", count: 16 - hex.count) + hex
    }
}
