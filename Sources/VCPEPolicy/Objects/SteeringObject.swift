import VCPEDatapath
import VCPEDescriptor
import VCPEForwarder
import VCPENet

/// A chain in service on the forwarder (its rules and links named by `digest`). The
/// configuration itself is the desired state's (`Desired.steering`, by id).
public struct SteeringObject: HostObjectKind {
    public static let kindName = "steering"
    public static let rank = 10
    public var customer: String
    public var namespace: String
    public var rules: Int
    public var digest: String
    public var drift: Drift?

    public init(customer: String, namespace: String, rules: Int, digest: String, drift: Drift? = nil) {
        self.customer = customer
        self.namespace = namespace
        self.rules = rules
        self.digest = digest
        self.drift = drift
    }

    public var namespaceName: String? { namespace }
    public var id: String { "steering \(customer)" }
    public var summary: String {
        "forwarder steering \(customer) (\(rules) classifier rules) from \(namespace)" + (drift.map { " (\($0.rawValue))" } ?? "")
    }

    public func create(on host: any HostKernel, _ content: Desired) throws {
        guard let config = content.steering[id] else { throw StateError("no forwarder configuration for \(summary)") }
        try host.forwarder.ensure(config)
    }

    public func update(from current: SteeringObject, on host: any HostKernel, _ content: Desired) throws { try create(on: host, content) }

    public func remove(from host: any HostKernel, _ content: Desired) throws { try host.forwarder.remove(customers: [customer]) }

    /// What the forwarder runs for the customer, if it runs it (or has its file). A link
    /// re-created under a name the forwarder holds (another index) shows as stale.
    public static func observe(_ view: HostView, into out: inout HostState) throws {
        let customer = view.customer, forwarder = view.forwarder
        let wanted = !view.desired.state.all(SteeringObject.self).isEmpty
        guard wanted || forwarder.hasChainFile(customer) else { return }
        let links = view.snapshots[KernelNames.classifierNamespace(customer: customer)].map { snap in
            Dictionary(snap.links.map { ($0.name, Int($0.index)) }, uniquingKeysWith: { a, _ in a })
        }
        let seen = forwarder.steering(customer)
        if case .running(let digest, let rules, let interfaces) = seen {
            let stale = interfaces.contains { name, index in links.map { $0[name] != index } ?? true }
            out.insert(SteeringObject(customer: customer, namespace: KernelNames.classifierNamespace(customer: customer), rules: rules - 1,
                                      digest: digest, drift: stale ? .staleLinks : forwarder.runsAnotherBuild ? .otherBuild : nil))
        } else if !wanted, let left = forwarder.chainFile(customer) {
            // A configuration left on disk still needs removing.
            out.insert(SteeringObject(customer: customer, namespace: left.namespace, rules: left.rules.count, digest: "",
                                      drift: seen == .notRunning ? .notRunning : .notLoaded))
        }
    }
}
