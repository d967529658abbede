import VCPEPolicy
import VCPEDescriptor

/// One step of a plan. `apply` executes exactly these, in order.
public struct PlanAction: Sendable, Hashable, Codable {
    public enum Verb: String, Sendable, Codable { case create, update, remove }
    public var verb: Verb
    public var object: HostObject
    /// For updates: what is there now.
    public var current: HostObject?

    public init(verb: Verb, object: HostObject, current: HostObject? = nil) {
        self.verb = verb
        self.object = object
        self.current = current
    }

    /// What undoes this action.
    public var inverse: PlanAction {
        switch verb {
        case .create: PlanAction(verb: .remove, object: object)
        case .remove: PlanAction(verb: .create, object: object)
        case .update: PlanAction(verb: .update, object: current ?? object, current: object)
        }
    }
}

public struct Plan: Sendable, Codable {
    public var customer: String
    public var actions: [PlanAction]

    public var isEmpty: Bool { actions.isEmpty }

    /// The difference from `observed` to `desired`: removals first (deepest objects first),
    /// then creations and updates in dependency order. Observed objects the desired state
    /// does not name are removed, so `observed` must hold only this customer's objects.
    public static func difference(customer: String, desired: HostState, observed: HostState) -> Plan {
        var removes: [PlanAction] = []
        var changes: [PlanAction] = []
        for (id, o) in observed.objects where desired.objects[id] == nil {
            removes.append(PlanAction(verb: .remove, object: o))
        }
        for (id, want) in desired.objects {
            switch observed.objects[id] {
            case nil: changes.append(PlanAction(verb: .create, object: want))
            case let have? where have != want: changes.append(PlanAction(verb: .update, object: want, current: have))
            default: break
            }
        }
        // A veth made anew (created or updated) takes with it what hung on its old ends. The
        // observer may have seen those still there (on the surviving end of a pair whose other
        // namespace the kernel was still tearing down), so they are done again: every such
        // create is idempotent.
        let ends = Set(changes.flatMap(\.object.remadeEnds))
        if !ends.isEmpty {
            let planned = Set(changes.map(\.object.id))
            for (id, want) in desired.objects where !planned.contains(id) && want.hangs(on: ends) {
                changes.append(PlanAction(verb: .create, object: want))
            }
        }
        // Deterministic order: rank, then id. Within a rank order does not matter to the kernel.
        removes.sort { ($0.object.rank, $0.object.id) > ($1.object.rank, $1.object.id) }
        changes.sort { ($0.object.rank, $0.object.id) < ($1.object.rank, $1.object.id) }
        return Plan(customer: customer, actions: removes + changes)
    }

    /// Human form: one line per action with + (create), ~ (update), - (remove).
    public var text: String {
        if actions.isEmpty { return "customer \(customer): no changes; the host matches the descriptor\n" }
        var out = "customer \(customer): \(actions.count) action\(actions.count == 1 ? "" : "s")\n"
        for a in actions {
            let mark = switch a.verb { case .create: "+"; case .update: "~"; case .remove: "-" }
            // An update says what it repairs, when what is there drifted.
            out += "  \(mark) \(a.object.summary)\(a.current?.drift.map { " (now: \($0.rawValue))" } ?? "")\n"
        }
        return out
    }
}
