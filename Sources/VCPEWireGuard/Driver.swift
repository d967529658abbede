import VCPEContainer
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
    func state(of interface: String, in namespace: String, configuredEndpoints: Set<[UInt8]>) throws -> DeviceState?
    /// Makes a fresh device in `namespace` (whatever stale one there is goes first); a
    /// daemon behind it runs in a container held to `limits`.
    func create(_ interface: String, in namespace: String, limits: ContainerLimits) throws
    /// Sends what turns `current` into `wanted`.
    func configure(_ interface: String, in namespace: String, _ wanted: DeviceConfig, over current: DeviceConfig?) throws
    /// Removes the device; fine when it is not there. nil `namespace`: wherever it runs (a
    /// kernel device goes with its namespace). True if there was something to remove.
    @discardableResult
    func remove(_ interface: String, in namespace: String?) throws -> Bool
    /// Removes these devices wherever they run, in one pass; returns those that were there.
    func removeAll(_ interfaces: [String]) throws -> [String]
    /// The process behind the device, if it has one.
    func processID(of interface: String) -> pid_t?
    /// The container the device's process runs in; nil for a kernel device.
    func container(of interface: String) -> ContainerInfo?
    /// The limits in force on the device's process; nil for a kernel device.
    func limits(of interface: String) -> ContainerLimits?
    /// Sets a running daemon's container limits (nothing for a kernel device).
    func setLimits(_ interface: String, _ limits: ContainerLimits) throws
    /// Whether a process runs the device (wireguard-go) or the kernel does.
    var hasDaemon: Bool { get }
    /// The device's health, for `status`.
    func health(of interface: String, in namespace: String, state: DeviceState?) -> DeviceHealth
}

/// A device's health in a word: a daemon's device is running or not (the next apply
/// restarts it); a kernel device is up, down or missing (its link's state).
public enum DeviceHealth: String, Sendable, Hashable, Codable {
    case running
    case notRunning = "not running"
    case up, down, missing
}

public enum WireGuard {
    /// The kernel module when the kernel has it (asked through generic netlink, which
    /// loads the module if it can), wireguard-go in containers of `containers` otherwise.
    /// `VCPE_WIREGUARD=userspace` forces wireguard-go (told to run even where the kernel
    /// has WireGuard), `VCPE_WIREGUARD=kernel` the kernel module (whose absence is then an
    /// error on the first device).
    public static func driver(containers: ContainerRuntime) -> any WireGuardDriver {
        switch getenv("VCPE_WIREGUARD").map({ String(cString: $0) }) {
        case "userspace": return UserspaceDriver(containers: containers, forced: true)
        case "kernel": return KernelDriver()
        default: return KernelDriver.isAvailable ? KernelDriver() : UserspaceDriver(containers: containers)
        }
    }

    public struct Failure: Error, CustomStringConvertible {
        public var interface: String
        public var message: String
        public var description: String { "wireguard \(interface): \(message)" }
    }
}
