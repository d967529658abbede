import Foundation
import Testing
import VCPENetlink
import VCPESystem
import VCPEDescriptor

/// An end-to-end setting for `vcpe` itself: unique customer and segment names, a state
/// directory of its own, customer hosts on the LAN and an internet host on the WAN segment.
public final class Scenario: @unchecked Sendable {
    public let fx = KernelFixture()
    public let servers = Servers()
    public let stateDir: String
    /// The WAN segment bridge, unique to this scenario.
    public let segment: String
    public let internet: String
    private var files: [URL] = []
    /// The WireGuard driver every `vcpe` this scenario runs is told to use
    /// (`VCPE_WIREGUARD`): "userspace" (wireguard-go) or "kernel"; nil lets vcpe pick.
    public let wireguard: String?

    public init(wireguard: String? = nil) throws {
        self.wireguard = wireguard
        stateDir = FileManager.default.temporaryDirectory.appendingPathComponent("vcpe-state-\(fx.tag)").path
        segment = "\(fx.tag)wan"
        internet = try fx.namespace("inet")
        let host = try RouteSocket()
        let port = fx.hostLink("i")
        try host.addVeth(VethEnd(port), VethEnd("eth0", in: internet))
        let s = try RouteSocket(namespace: internet)
        try s.addAddress(IPPrefix("203.0.113.1/24")!, on: "eth0")
        try s.setLink("eth0", up: true)
        try s.setLink("lo", up: true)
        // The programs its containers run are trusted, as an operator does after installing vcpe.
        try vcpe(["trust"])
    }

    /// A customer name unique to this scenario.
    public func customer(_ n: Int) -> String { "\(fx.tag)c\(n)" }

    /// A LAN host namespace behind a host veth that a descriptor can `attach`.
    public func lanHost(_ n: Int, address: String, gateway: String) throws -> (namespace: String, attach: String) {
        let ns = try fx.namespace("lan\(n)")
        let port = fx.hostLink("l\(n)")
        try RouteSocket().addVeth(VethEnd(port), VethEnd("eth0", in: ns))
        let s = try RouteSocket(namespace: ns)
        try s.addAddress(IPPrefix(address)!, on: "eth0")
        try s.setLink("eth0", up: true)
        try s.setLink("lo", up: true)
        try s.addRoute(RouteInfo(destination: IPPrefix("0.0.0.0/0")!, gateway: IPAddress(gateway)!))
        return (ns, port)
    }

    /// Puts the internet host on the segment (after the first apply made the bridge).
    public func plugInternet() throws {
        let host = try RouteSocket()
        try host.enslave(fx.tag + "i", to: segment)
        try host.setLink(fx.tag + "i", up: true)
    }

    /// Writes a descriptor file from JSON text.
    public func descriptor(_ text: String) throws -> String {
        let url = URL(fileURLWithPath: stateDir + "-\(files.count).json")
        try text.write(to: url, atomically: true, encoding: .utf8)
        files.append(url)
        return url.path
    }

    /// Runs vcpe with this scenario's state directory; throws on a non-zero exit.
    @discardableResult
    public func vcpe(_ args: [String]) throws -> String {
        guard let wireguard else { return try sh(vcpeBinary.path, args + ["--state-dir", stateDir]) }
        // env execs vcpe itself: the processes it starts keep their usual command lines.
        return try sh("/usr/bin/env", ["VCPE_WIREGUARD=\(wireguard)", vcpeBinary.path] + args + ["--state-dir", stateDir])
    }

    /// The number of actions `vcpe plan` shows for a descriptor.
    public func pendingActions(_ file: String) throws -> Int {
        let out = try vcpe(["plan", "--json", file])
        let j = try JSONSerialization.jsonObject(with: Data(out.utf8)) as? [String: Any]
        return (j?["actions"] as? [Any])?.count ?? -1
    }

    public func cleanup() {
        servers.stop()
        for c in 0..<8 { _ = try? vcpe(["delete", customer(c)]) }
        let retired = retiredLinksLeft(stateDir: stateDir)
        #expect(retired.isEmpty, "retired bridges not removed: \(retired)")
        let daemons = (try? sh("/usr/bin/pgrep", ["-a", "-f", "wireguard-go wg-\(fx.tag)"])) ?? ""
        #expect(daemons.isEmpty, "WireGuard daemons left: \(daemons)")
        let forwarders = (try? sh("/usr/bin/pgrep", ["-a", "-f", "vcpe forwarder .* \(stateDir)$"])) ?? ""
        #expect(forwarders.isEmpty, "forwarder processes left: \(forwarders)")
        let containers = runcContainers().filter { ($0["bundle"] as? String)?.hasPrefix(stateDir + "/") == true }
        #expect(containers.isEmpty, "containers left: \(containers)")
        let pins = ((try? FileManager.default.contentsOfDirectory(atPath: "/sys/fs/bpf/vcpe")) ?? []).filter { $0.hasPrefix(fx.tag) }
        #expect(pins.isEmpty, "flow cache maps left pinned: \(pins)")
        fx.cleanup()
        if let host = try? RouteSocket() { try? host.removeLink(segment) }
        try? FileManager.default.removeItem(atPath: stateDir)
        for f in files { try? FileManager.default.removeItem(at: f) }
    }
}

/// `runc list` as JSON (the runtime's own view of what runs).
public func runcContainers() -> [[String: Any]] {
    guard let out = try? sh("/usr/sbin/runc", ["list", "--format", "json"]) else { return [] }
    return (try? JSONSerialization.jsonObject(with: Data(out.utf8))) as? [[String: Any]] ?? []
}

/// The built `vcpe` binary beside the test bundle.
public var vcpeBinary: URL {
    var dir = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
    for _ in 0..<4 {
        let candidate = dir.appendingPathComponent("vcpe")
        if FileManager.default.isExecutableFile(atPath: candidate.path) { return candidate }
        dir = dir.deletingLastPathComponent()
    }
    return repositoryRoot.appendingPathComponent(".build/debug/vcpe")
}

/// Whether this kernel has WireGuard: its generic netlink family resolves (the kernel
/// loads the module for the lookup if it can), as vcpe's own driver choice asks.
public var kernelHasWireGuard: Bool { ((try? GenericNetlinkSocket.open(family: "wireguard")) ?? nil) != nil }
