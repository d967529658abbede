import Foundation
import VCPEForwarder
import VCPENetlink
import VCPENftables
import VCPEPolicy
import VCPEWireGuard

/// Reads what the kernel, the forwarder and the WireGuard daemons count for the applied
/// customers, as Prometheus families. Reads only: never the lock, never a plan. One dump
/// of links per namespace, one of counters per firewall, one report from the forwarder.
/// Used from one queue at a time (the scrape queue).
final class CounterReader {
    private let sockets = NamespaceSockets()
    private let forwarder: ForwarderProcess
    private let wireguard: any WireGuardDriver

    /// Past this (from the scrape's start) no further daemon is asked; the forwarder's report
    /// takes at most 500 ms of it, and the last daemon asked its own 2 s.
    static let daemonBudget = Duration.seconds(5)

    init(forwarder: ForwarderProcess, wireguard: any WireGuardDriver) {
        self.forwarder = forwarder
        self.wireguard = wireguard
    }

    /// Closes what the customers gone no longer need (their namespaces would live on).
    func forget(allBut catalog: [CatalogEntry]) {
        sockets.keepOnly(Set(catalog.flatMap(\.namespaces)))
    }

    /// The families, and how many reads failed (a namespace gone between the catalog and
    /// the read is not a failure: it has nothing to count).
    func read(_ catalog: [CatalogEntry]) -> (families: [Exposition.Family], errors: Int) {
        var errors = 0
        var ruleP = Exposition.Family("vcpe_firewall_rule_packets_total", .counter, labels: ["customer", "service", "rule"],
                                      help: "Packets that matched a firewall rule (its nftables counter).")
        var ruleB = Exposition.Family("vcpe_firewall_rule_bytes_total", .counter, labels: ["customer", "service", "rule"],
                                      help: "Bytes that matched a firewall rule (its nftables counter).")
        var rx = Exposition.Family("vcpe_link_receive_bytes_total", .counter, labels: ["customer", "link"],
                                   help: "Bytes received at a chain link's end nearer the LAN.")
        var tx = Exposition.Family("vcpe_link_transmit_bytes_total", .counter, labels: ["customer", "link"],
                                   help: "Bytes sent from a chain link's end nearer the LAN.")
        var drops = Exposition.Family("vcpe_link_drops_total", .counter, labels: ["customer", "link"],
                                      help: "Packets dropped at a chain link's end nearer the LAN, received and sent.")
        var hits = Exposition.Family("vcpe_classifier_rule_hits_total", .counter, labels: ["customer", "rule"],
                                     help: "Packets the classifier matched to a rule (the default included), in the forwarder.")
        var pathPackets = Exposition.Family("vcpe_path_packets_total", .counter, labels: ["customer", "path", "direction"],
                                            help: "Packets the forwarder sent down a path: direction out (LAN to WAN) or back.")
        var flows = Exposition.Family("vcpe_flow_cache_flows", .gauge, labels: ["customer"],
                                      help: "Flows in a steered chain's kernel flow cache now.")
        var handshake = Exposition.Family("vcpe_wireguard_peer_last_handshake_seconds", .gauge, labels: ["customer", "peer"],
                                          help: "Unix time of a VPN peer's latest handshake; 0 if none yet.")
        var wgRx = Exposition.Family("vcpe_wireguard_peer_receive_bytes_total", .counter, labels: ["customer", "peer"],
                                     help: "Bytes received from a VPN peer through the tunnel.")
        var wgTx = Exposition.Family("vcpe_wireguard_peer_transmit_bytes_total", .counter, labels: ["customer", "peer"],
                                     help: "Bytes sent to a VPN peer through the tunnel.")

        // Links: one dump per namespace, the host's once for all customers.
        var dumps: [String: [String: LinkStats]] = [:]
        func stats(_ namespace: String?) -> [String: LinkStats] {
            let key = namespace ?? ""
            if let known = dumps[key] { return known }
            var out: [String: LinkStats] = [:]
            do {
                if let s = try sockets.route(namespace) {
                    for l in try s.links() { out[l.name] = l.stats }
                }
            } catch { errors += 1 }
            dumps[key] = out
            return out
        }
        let budget = ContinuousClock.now + Self.daemonBudget
        let steered = catalog.contains(where: \.steered)
        let report = steered ? forwarder.report() : nil
        let chains = Dictionary((report?.chains ?? []).map { ($0.customer, $0) }, uniquingKeysWith: { a, _ in a })

        for c in catalog {
            for fw in c.firewalls {
                do {
                    guard let nft = try sockets.nft(fw.namespace) else { continue }
                    let values = try nft.counterValues(family: .inet, table: ServiceTables.tableName)
                    for rule in fw.rules {
                        guard let v = values[rule] else { continue }
                        ruleP.add([c.customer, fw.service, rule], v.packets)
                        ruleB.add([c.customer, fw.service, rule], v.bytes)
                    }
                } catch { errors += 1 }
            }
            for l in c.links {
                guard let st = stats(l.namespace)[l.interface] else { continue }
                rx.add([c.customer, l.key], st.rxBytes)
                tx.add([c.customer, l.key], st.txBytes)
                drops.add([c.customer, l.key], st.rxDropped + st.txDropped)
            }
            if c.steered, let chain = chains[c.customer] {
                // Each name once, and only the descriptor's: a duplicate would fail the whole scrape.
                var named = Set<String>()
                for r in chain.rules where c.classifierRules.contains(r.name) && named.insert(r.name).inserted {
                    hits.add([c.customer, r.name], r.hits)
                }
                named = []
                for p in chain.paths where c.paths.contains(p.name) && named.insert(p.name).inserted {
                    pathPackets.add([c.customer, p.name, Direction.out.rawValue], p.packets)
                    pathPackets.add([c.customer, p.name, Direction.back.rawValue], p.returnPackets)
                }
                flows.add([c.customer], Double(chain.flows))
            }
            if let vpn = c.vpn {
                // Daemons answer one after another, each within its own bound (2 s): past
                // the scrape's budget the rest are skipped (and counted), so slow daemons
                // cannot make every scrape late.
                guard ContinuousClock.now < budget else { errors += 1; continue }
                do {
                    let state = try wireguard.state(of: vpn.interface, in: vpn.namespace, configuredEndpoints: [])
                    let seen = Dictionary((state?.peers ?? []).map { ($0.publicKey, $0) }, uniquingKeysWith: { a, _ in a })
                    for p in vpn.peers {
                        guard let s = seen[p.publicKey] else { continue }
                        handshake.add([c.customer, p.name], s.latestHandshake ?? 0)
                        wgRx.add([c.customer, p.name], s.rxBytes)
                        wgTx.add([c.customer, p.name], s.txBytes)
                    }
                } catch { errors += 1 }
            }
        }
        return ([ruleP, ruleB, rx, tx, drops, hits, pathPackets, flows, handshake, wgRx, wgTx], errors)
    }
}

/// The `direction` label of `vcpe_path_packets_total`.
enum Direction: String {
    /// LAN to WAN, down the path.
    case out
    /// Back up the path toward the LAN.
    case back
}
