import VCPEDescriptor
import VCPENet
import VCPEForwarder
import VCPEPolicy
import VCPENetlink
import VCPENftables
import VCPESystem
import VCPEWireGuard

/// Carries out a plan on the kernel. Each step that succeeded is remembered with its
/// inverse; when a step fails, the inverses run in reverse order, so the customer is back
/// where it was, and the error says which step failed.
public final class Executor {
    /// The content behind objects that carry only a digest (nftables tables, WireGuard
    /// devices): the desired one, and the previously applied one to restore on rollback.
    let desired: Desired
    let previous: Desired
    private let sockets: SocketCache
    private let wireguard: any WireGuardDriver
    private let steering: ForwarderClient

    init(desired: Desired, previous: Desired, sockets: SocketCache, wireguard: any WireGuardDriver, steering: ForwarderClient) {
        self.desired = desired
        self.previous = previous
        self.sockets = sockets
        self.wireguard = wireguard
        self.steering = steering
    }

    public struct Failure: Error, CustomStringConvertible {
        public var action: PlanAction
        public var error: any Error
        /// Errors met while rolling back; empty when the rollback was clean.
        public var rollbackErrors: [String]

        public var description: String {
            "\(action.verb.rawValue) \(action.object.summary) failed: \(error)"
                + (rollbackErrors.isEmpty ? "; rolled back" : "; rollback incomplete (\(rollbackErrors.joined(separator: "; "))), the next apply repairs it")
        }
    }

    /// Runs every action; on failure rolls back and throws `Failure`.
    public func run(_ plan: Plan) throws {
        var done: [PlanAction] = []
        for action in plan.actions {
            do {
                try perform(action, content: desired)
                done.append(action)
            } catch {
                throw Failure(action: action, error: error, rollbackErrors: rollBack(done))
            }
        }
    }

    private func rollBack(_ done: [PlanAction]) -> [String] {
        var errors: [String] = []
        for action in done.reversed() {
            let inverse: PlanAction
            switch action.verb {
            case .create: inverse = PlanAction(verb: .remove, object: action.object)
            case .remove: inverse = PlanAction(verb: .create, object: action.object)
            case .update: inverse = PlanAction(verb: .update, object: action.current!, current: action.object)
            }
            do {
                try perform(inverse, content: previous)
            } catch {
                errors.append("\(inverse.verb.rawValue) \(inverse.object.summary): \(error)")
            }
        }
        return errors
    }

    private func route(_ ns: String?) throws -> RouteSocket { try sockets.route(ns) }
    private func nft(_ ns: String) throws -> NftSocket { try sockets.nft(ns) }

    // MARK: - Actions

    private func perform(_ action: PlanAction, content: Desired) throws {
        let remove = action.verb == .remove
        switch action.object {
        case .namespace(let name):
            if remove {
                sockets.forget(name)
                try NetworkNamespace.remove(name)
            } else {
                try NetworkNamespace.ensure(name)
                sockets.noteCreated(name)
                try route(name).setLink("lo", up: true)
            }

        case .bridge(let name):
            if remove { try route(nil).removeLink(name) } else {
                if try route(nil).ensureBridge(name) == .created { try withoutIPv6(name) }
                try route(nil).setLink(name, up: true)
            }

        case .veth(_, let up, let down):
            // Only the ends' addresses or state drifted: set them on the pair as it is.
            if action.verb == .update, case .veth(let key, _, _)? = action.current, key.hasSuffix(HostObject.endsDrift) {
                for end in [up, down] {
                    let socket = try route(end.namespace)
                    try socket.setMAC(end.interface, end.stableMAC)
                    try socket.setLink(end.interface, up: true)
                    if end.namespace == nil { try withoutIPv6(end.interface) }
                    // Its addresses now answer from another Ethernet address: said at once.
                    try announce(try socket.addresses(on: end.interface), on: end, socket)
                }
                return
            }
            // An update or a broken pair: out with whatever is there, then a fresh pair.
            if remove || action.verb == .update {
                // An end whose namespace is gone went with it.
                if NetworkNamespace.existsOrHost(up.namespace) { try route(up.namespace).removeLink(up.interface) }
                if NetworkNamespace.existsOrHost(down.namespace) { try route(down.namespace).removeLink(down.interface) }
                if remove { return }
            }
            // Asked from the namespace of the first end; a host end must be that one, since a
            // peer's nil namespace means "the asking socket's own".
            let (a, b) = down.namespace == nil ? (down, up) : (up, down)
            try route(a.namespace).addVeth(VethEnd(a.interface, mac: a.stableMAC), VethEnd(b.interface, in: b.namespace, mac: b.stableMAC))
            if a.namespace == nil { try withoutIPv6(a.interface) }
            try route(up.namespace).setLink(up.interface, up: true)
            try route(down.namespace).setLink(down.interface, up: true)

        case .bridgePort(let port, let bridge):
            if remove { try route(nil).release(port) } else {
                try route(nil).enslave(port, to: bridge)
                try route(nil).setLink(port, up: true)
            }

        case .address(let at, let prefix):
            if remove { try route(at.namespace).removeAddress(prefix, on: at.interface) } else {
                // A (re)made address is announced, so neighbours that knew another place for
                // it (a gateway moved to a new interface, or host) learn at once.
                let socket = try route(at.namespace)
                if try socket.ensureAddress(prefix, on: at.interface) == .created { try announce([prefix], on: at, socket) }
            }

        case .route(let ns, let dst, let via, let dev, let table):
            let r = RouteInfo(destination: dst, gateway: via, device: dev, table: UInt32(table))
            // Same identity means same destination and table: NLM_F_REPLACE swaps it in place,
            // with no moment without a route.
            if remove { try route(ns).removeRoute(r) } else { try route(ns).addRoute(r, replace: true) }

        case .policyRule(let ns, let iif, let mark, let table, let priority):
            func info(_ iif: String, _ mark: Int, _ table: Int, _ priority: Int) -> RuleInfo {
                RuleInfo(priority: UInt32(priority), table: UInt32(table), inputInterface: iif.isEmpty ? nil : iif,
                         fwmark: mark == 0 ? nil : UInt32(mark))
            }
            if let old = action.current, case .policyRule(_, let oi, let om, let ot, let op) = old {
                try route(ns).removeRule(info(oi, om, ot, op))
            }
            let rule = info(iif, mark, table, priority)
            if remove { try route(ns).removeRule(rule) } else { try route(ns).addRule(rule) }

        case .sysctl(let ns, let key, let value):
            if !remove { try Sysctl.write(key, value, namespace: ns) }

        case .wireguard(let ns, let interface, _, _, _):
            if remove { try wireguard.remove(interface, in: ns); return }
            guard let device = content.wireguard[action.object.id] else {
                throw StateError("no WireGuard configuration for \(action.object.summary)")
            }
            try ensureDevice(interface, in: ns, device)

        case .nftTable(let ns, let family, let name, _, _):
            guard let f = NftFamily(rawValue: family) else { return }
            if remove { try nft(ns).removeTable(family: f, name: name); return }
            guard let table = content.tables[action.object.id] else {
                throw StateError("no table content for \(action.object.summary)")
            }
            try nft(ns).replaceTable(table)

        case .steering(let customer, _, _, _):
            if remove { try steering.remove(customers: [customer]); return }
            guard let config = content.steering[action.object.id] else {
                throw StateError("no forwarder configuration for \(action.object.summary)")
            }
            try steering.ensure(config)
        }
    }
}

extension Executor {
    /// Host-side bridges and ports carry frames, not addresses. With IPv6 on, each would add
    /// routes to the host's one IPv6 table, which the kernel walks whole whenever any
    /// interface comes or goes: with thousands of customers, most of the time of a delete.
    /// A gratuitous ARP for each IPv4 address, from the interface's Ethernet address; best
    /// effort (neighbours would learn it anyway, later).
    private func announce(_ prefixes: [IPPrefix], on end: Topology.Endpoint, _ socket: RouteSocket) throws {
        let v4 = prefixes.filter { $0.family == .v4 }
        guard !v4.isEmpty, let link = try socket.link(named: end.interface) else { return }
        for p in v4 { try? GratuitousARP.announce(p.address.bytes, ifindex: link.index, mac: link.mac, in: end.namespace) }
    }

    private func withoutIPv6(_ interface: String) throws {
        try Sysctl.writeIPv6(interface: interface, "disable_ipv6", "1", namespace: nil)
    }

    /// A running device in `ns` with `config`. A live device is changed in place, only
    /// where it differs, so peers whose settings stay keep their sessions; a dead daemon or
    /// a device outside the namespace is replaced by a fresh one.
    private func ensureDevice(_ interface: String, in ns: String, _ device: WireGuardDevice) throws {
        let config = device.config
        var current = try wireguard.state(of: interface, in: ns, configuredEndpoints: config.configuredEndpoints)?.config
        let inNamespace = try route(ns).link(named: interface) != nil
        if current == nil || !inNamespace {
            try wireguard.create(interface, in: ns, limits: device.limits)
            current = nil
        } else {
            try wireguard.setLimits(interface, device.limits)
        }
        if current != config { try wireguard.configure(interface, in: ns, config, over: current) }
        try route(ns).setLink(interface, up: true)
    }
}

extension NetworkNamespace {
    /// nil is the host, which always exists.
    static func existsOrHost(_ name: String?) -> Bool { name.map(exists) ?? true }
}
