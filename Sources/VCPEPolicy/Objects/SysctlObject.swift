import VCPEDescriptor
import VCPENet

/// A sysctl in a namespace. Removal leaves it: it goes with its namespace or interface.
public struct SysctlObject: HostObjectKind {
    public static let kindName = "sysctl"
    public static let rank = 4
    public var namespace: String
    public var key: String
    public var value: String

    public init(namespace: String, key: String, value: String) {
        self.namespace = namespace
        self.key = key
        self.value = value
    }

    public var namespaceName: String? { namespace }
    public var id: String { "sysctl \(key) in \(namespace)" }
    public var summary: String { "sysctl \(key)=\(value) in \(namespace)" }

    /// A per-interface key names its interface as one of its components.
    public func hangs(on ends: Set<Topology.Endpoint>) -> Bool {
        ends.contains { $0.namespace == namespace && key.split(whereSeparator: { $0 == "." || $0 == "/" }).contains(Substring($0.interface)) }
    }

    public func create(on host: any HostKernel, _ content: Desired) throws { try host.writeSysctl(key, value, namespace: namespace) }
    public func remove(from host: any HostKernel, _ content: Desired) throws {}

    public static func wants(_ desired: HostState, customer: String, _ wants: inout HostView.Wants) {
        for s in desired.all(SysctlObject.self) { wants.sysctls[s.namespace, default: []].append(s.key) }
    }

    public static func observe(_ view: HostView, into out: inout HostState) throws {
        for (ns, values) in view.sysctls {
            for (key, value) in values { out.insert(SysctlObject(namespace: ns, key: key, value: value)) }
        }
    }
}

extension HostObject {
    public static func sysctl(namespace: String, key: String, value: String) -> HostObject {
        HostObject(SysctlObject(namespace: namespace, key: key, value: value))
    }
}
