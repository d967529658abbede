import VCPEDescriptor
import VCPENet

/// A bridge on the host: the customer's LAN bridge, or a WAN segment it shares with others
/// (observed, and so removed, only as the customer's own LAN bridge or a segment it wants).
public struct BridgeObject: HostObjectKind {
    public static let kindName = "bridge"
    public static let rank = 1
    public var name: String

    public init(name: String) { self.name = name }

    public var id: String { "bridge \(name)" }
    public var summary: String { "bridge \(name) on the host" }
    public var namespaceName: String? { nil }

    public func create(on host: any HostKernel, _ content: Desired) throws {
        let links = try host.links(in: nil)
        let made = try links.ensureBridge(name) == .created
        try undoing(made, { try links.removeLink(name) }) {
            if made { try host.disableIPv6(on: name) }
            try links.bringUp(name)
        }
    }

    public func remove(from host: any HostKernel, _ content: Desired) throws { try host.links(in: nil).removeLink(name) }

    public static func wants(_ desired: HostState, customer: String, _ wants: inout HostView.Wants) {
        wants.hostLinks.insert(KernelNames.lanBridge(customer: customer))
        for b in desired.all(BridgeObject.self) { wants.hostLinks.insert(b.name) }
    }

    public static func observe(_ view: HostView, into out: inout HostState) throws {
        let lanBridge = KernelNames.lanBridge(customer: view.customer)
        let names = [lanBridge] + view.desired.state.all(BridgeObject.self).map(\.name).filter { $0 != lanBridge }
        for name in names where view.hostLinks[name]?.kind == "bridge" { out.insert(BridgeObject(name: name)) }
    }
}

extension HostObject {
    public static func bridge(name: String) -> HostObject { HostObject(BridgeObject(name: name)) }
}
