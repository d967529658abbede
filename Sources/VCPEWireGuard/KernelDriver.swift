import CNetlink
import VCPEContainer
import VCPENetlink
import VCPESystem

#if canImport(Glibc)
import Glibc
#endif

/// The kernel's WireGuard: a `wireguard` link made over rtnetlink, configured over generic
/// netlink (family "wireguard"). No process; the device goes with its namespace.
public struct KernelDriver: WireGuardDriver {
    public var name: String { "kernel (generic netlink)" }
    public init() {}

    /// Whether this kernel has WireGuard.
    public static var isAvailable: Bool { ((try? GenericNetlinkSocket.open(family: WG_GENL_NAME)) ?? nil) != nil }

    func socket(_ namespace: String) throws -> GenericNetlinkSocket {
        guard let s = try GenericNetlinkSocket.open(family: WG_GENL_NAME, namespace: namespace) else {
            throw WireGuard.Failure(interface: "?", message: "the kernel has no WireGuard generic netlink family")
        }
        return s
    }

    public var hasDaemon: Bool { false }

    /// The link's: up (administratively, whatever its carrier), down or missing.
    public func health(of interface: String, in namespace: String, state: DeviceState?) -> DeviceHealth {
        guard NetworkNamespace.exists(namespace), let route = try? RouteSocket(namespace: namespace),
              let link = (try? route.link(named: interface)) ?? nil, link.kind == "wireguard" else { return .missing }
        return link.isUp ? .up : .down
    }

    public func processID(of interface: String) -> pid_t? { nil }
    public func container(of interface: String) -> ContainerInfo? { nil }
    public func limits(of interface: String) -> ContainerLimits? { nil }
    public func setLimits(_ interface: String, _ limits: ContainerLimits) throws {}

    public func state(of interface: String, in namespace: String, configuredEndpoints: Set<[UInt8]>) throws -> DeviceState? {
        guard NetworkNamespace.exists(namespace),
              let link = try RouteSocket(namespace: namespace).link(named: interface), link.kind == "wireguard" else { return nil }
        let replies = try socket(namespace).request("get wireguard \(interface)", command: UInt8(WG_CMD_GET_DEVICE.rawValue),
                                                    version: KernelMessages.version, dump: true, attributes: KernelMessages.get(interface))
        return KernelMessages.parseDevice(replies, configuredEndpoints: configuredEndpoints)
    }

    public func create(_ interface: String, in namespace: String, limits: ContainerLimits) throws {
        let route = try RouteSocket(namespace: namespace)
        try route.removeLink(interface)
        try route.addLink(interface, kind: "wireguard")
    }

    public func configure(_ interface: String, in namespace: String, _ wanted: DeviceConfig, over current: DeviceConfig?) throws {
        _ = try socket(namespace).request("set wireguard \(interface)", command: UInt8(WG_CMD_SET_DEVICE.rawValue),
                                          version: KernelMessages.version, attributes: KernelMessages.set(interface, wanted, over: current))
    }

    /// Kernel devices go with their namespaces.
    public func removeAll(_ interfaces: [String]) throws -> [String] { [] }

    @discardableResult
    public func remove(_ interface: String, in namespace: String?) throws -> Bool {
        guard let namespace, NetworkNamespace.exists(namespace) else { return false }
        let route = try RouteSocket(namespace: namespace)
        guard try route.link(named: interface) != nil else { return false }
        try route.removeLink(interface)
        return true
    }
}
