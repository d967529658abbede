import VCPEDescriptor
import VCPENet

/// A network namespace of the customer's (`vcpe-CUSTOMER.SERVICE`), with its loopback up.
public struct NamespaceObject: HostObjectKind {
    public static let kindName = "namespace"
    public static let rank = 0
    public var name: String

    public init(name: String) { self.name = name }

    public var id: String { "netns \(name)" }
    public var summary: String { "namespace \(name)" }
    public var namespaceName: String? { name }

    public func create(on host: any HostKernel, _ content: Desired) throws {
        let made = !host.namespaceExists(name)
        try host.ensureNamespace(name)
        try undoing(made, { try host.removeNamespace(name) }) { try host.links(in: name).bringUp("lo") }
    }

    public func remove(from host: any HostKernel, _ content: Desired) throws { try host.removeNamespace(name) }

    public static func observe(_ view: HostView, into out: inout HostState) throws {
        for n in view.namespaces { out.insert(NamespaceObject(name: n)) }
    }
}

extension HostObject {
    public static func namespace(name: String) -> HostObject { HostObject(NamespaceObject(name: name)) }
}
