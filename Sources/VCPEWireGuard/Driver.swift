import VCPESystem

#if canImport(Glibc)
import Glibc
#endif

/// What runs WireGuard devices on this host: the kernel module over generic netlink, or
/// wireguard-go over its UAPI socket. One interface; the controller never asks which.
public protocol WireGuardDriver: Sendable {
    /// Shown in `status`.
    var name: String { get }
    /// The device and its state, or nil when there is none (or its daemon is dead).
    func state(of interface: String, configuredEndpoints: Set<[UInt8]>) throws -> DeviceState?
    /// Makes a fresh device in `namespace` (whatever stale one there is goes first).
    func create(_ interface: String, namespace: String) throws
    /// Sends what turns `current` into `wanted`.
    func configure(_ interface: String, _ wanted: DeviceConfig, over current: DeviceConfig?) throws
    /// Removes the device; fine when it is not there. True if there was something to remove.
    @discardableResult
    func remove(_ interface: String) throws -> Bool
    /// The process behind the device, if it has one.
    func processID(of interface: String) -> pid_t?
}

public enum WireGuard {
    /// The kernel module when the kernel has it, wireguard-go otherwise.
    public static func driver() -> any WireGuardDriver {
        UserspaceDriver()
    }

    /// Whether this kernel has WireGuard (built in or loadable).
    public static var kernelHasModule: Bool {
        access("/sys/module/wireguard", F_OK) == 0
    }

    public struct Failure: Error, CustomStringConvertible {
        public var interface: String
        public var message: String
        public var description: String { "wireguard \(interface): \(message)" }
    }
}
