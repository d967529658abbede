import Synchronization
import VCPEDescriptor
import VCPENet

/// What a scrape needs to know of one applied customer, worked out from its descriptor at
/// each of its reconciles, never per scrape: where its counters are and what to call them.
struct CatalogEntry: Sendable {
    struct Firewall: Sendable {
        let service: String
        let namespace: String
        /// Rule names, in the descriptor's order (each has a named nftables counter).
        let rules: [String]
    }

    struct LinkEnd: Sendable {
        /// The topology link's key, the `link` label (as `vcpe status` shows it).
        let key: String
        /// nil: the host's namespace.
        let namespace: String?
        let interface: String
    }

    struct VPN: Sendable {
        let namespace: String
        let interface: String
        let peers: [(name: String, publicKey: [UInt8])]
    }

    let customer: String
    let firewalls: [Firewall]
    /// Counters of a link are read at its upstream end (the one nearer the LAN).
    let links: [LinkEnd]
    let vpn: VPN?
    let steered: Bool
    /// The names the forwarder's counters may carry for this customer: only these become
    /// label values (the worker is not root, and its report is not trusted to name series).
    let classifierRules: Set<String>
    let paths: Set<String>
    /// Every namespace the scrape enters for this customer.
    var namespaces: Set<String> {
        Set(firewalls.map(\.namespace) + links.compactMap(\.namespace))
    }

    init(_ chain: Chain) {
        let topo = Topology.resolve(chain)
        customer = chain.customer
        firewalls = chain.services.compactMap { s in
            guard case .firewall(let fw) = s.kind else { return nil }
            return Firewall(service: s.name, namespace: KernelNames.namespace(customer: chain.customer, service: s.name), rules: fw.rules.map(\.name))
        }
        links = topo.links.map { LinkEnd(key: $0.key, namespace: $0.upstream.namespace, interface: $0.upstream.interface) }
        vpn = chain.vpn.map { v in
            VPN(namespace: KernelNames.namespace(customer: chain.customer, service: v.service.name),
                interface: KernelNames.wireguardInterface(customer: chain.customer),
                peers: v.settings.peers.map { ($0.name, $0.publicKey) })
        }
        steered = topo.namespaces.contains { $0.role == .classifier }
        classifierRules = Set((chain.classifier?.rules.map(\.name) ?? []) + ["default"])
        paths = Set(chain.paths.map(\.name))
    }
}

/// The applied customers as the scrape sees them: written by the reconcile loop, read by
/// scrapes.
final class Catalog: Sendable {
    private let entries = Mutex<[String: CatalogEntry]>([:])

    func set(_ entry: CatalogEntry) { entries.withLock { $0[entry.customer] = entry } }
    func remove(_ customer: String) { entries.withLock { _ = $0.removeValue(forKey: customer) } }
    /// Sorted by customer, so the exposition's order is stable.
    var snapshot: [CatalogEntry] { entries.withLock { $0.values.sorted { $0.customer < $1.customer } } }
}
