import Foundation
import Testing
import VCPENet
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
    public private(set) var internet = ""
    private var files: [URL] = []
    /// The WireGuard driver every `vcpe` this scenario runs is told to use
    /// (`VCPE_WIREGUARD`): "userspace" (wireguard-go) or "kernel"; nil lets vcpe pick.
    public let wireguard: String?

    /// Whether this scenario runs alone (see `TestLoad`), and whether it let go of its turn.
    private let exclusive: Bool
    private var released = false

    private func release() {
        guard !released else { return }
        released = true
        exclusive ? TestLoad.shared.leaveExclusive() : TestLoad.shared.leaveShared()
    }

    deinit { release() }

    /// `exclusive`: for tests whose claims are about timing or loss (a flood, 0 % loss while
    /// something restarts), no other scenario runs beside them on this 2-core machine.
    public init(wireguard: String? = nil, exclusive: Bool = false) throws {
        self.wireguard = wireguard
        self.exclusive = exclusive
        exclusive ? TestLoad.shared.enterExclusive() : TestLoad.shared.enterShared()
        stateDir = FileManager.default.temporaryDirectory.appendingPathComponent("vcpe-state-\(fx.tag)").path
        segment = "\(fx.tag)wan"
        // What a failed set-up made is removed before the error goes up: no test owns it yet.
        do {
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
        } catch {
            fx.cleanup()
            try? FileManager.default.removeItem(atPath: stateDir)
            release()
            throw error
        }
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
        let bridges = bridgeIndexes((0..<8).map(customer))
        for c in 0..<8 { _ = try? vcpe(["delete", customer(c)]) }
        let retired = retiredLinksLeft(bridges)
        #expect(retired.isEmpty, "retired bridges not removed: \(retired)")
        // pgrep exits 1 for "none", anything else is a failure to look, not an answer.
        for (pattern, what) in [("wireguard-go wg-\(fx.tag)", "WireGuard daemons"), ("vcpe forwarder .* \(stateDir)$", "forwarder processes")] {
            let r = try? run(URL(fileURLWithPath: "/usr/bin/pgrep"), ["-a", "-f", pattern])
            #expect(r?.status == 1, "\(what) left, or pgrep failed: \(r.map { "\($0.status) \($0.stdout) \($0.stderr)" } ?? "could not run")")
        }
        do {
            let containers = try runcList().filter { ($0["bundle"] as? String)?.hasPrefix(stateDir + "/") == true }
            #expect(containers.isEmpty, "containers left: \(containers)")
        } catch {
            Issue.record("runc list failed: \(error)")
        }
        let pins = ((try? FileManager.default.contentsOfDirectory(atPath: "/sys/fs/bpf/vcpe")) ?? []).filter { $0.hasPrefix(fx.tag) }
        #expect(pins.isEmpty, "flow cache maps left pinned: \(pins)")
        fx.cleanup()
        if let host = try? RouteSocket() { try? host.removeLink(segment) }
        try? FileManager.default.removeItem(atPath: stateDir)
        for f in files { try? FileManager.default.removeItem(at: f) }
        release()
    }
}

/// Scenarios run side by side (shared), except those that claim something about timing or
/// loss, which run alone (exclusive): a waiting exclusive one holds back new shared ones, so
/// it is not starved. Every scenario holds its share from set-up to cleanup.
public final class TestLoad: @unchecked Sendable {
    public static let shared = TestLoad()
    private let condition = NSCondition()
    private var running = 0, alone = false, waiting = 0

    public func enterShared() {
        condition.lock()
        while alone || waiting > 0 { condition.wait() }
        running += 1
        condition.unlock()
    }

    public func leaveShared() {
        condition.lock()
        running -= 1
        condition.broadcast()
        condition.unlock()
    }

    public func enterExclusive() {
        condition.lock()
        waiting += 1
        while alone || running > 0 { condition.wait() }
        waiting -= 1
        alone = true
        condition.unlock()
    }

    public func leaveExclusive() {
        condition.lock()
        alone = false
        condition.broadcast()
        condition.unlock()
    }
}

/// `runc list` as JSON (the runtime's own view of what runs); a runtime that fails, or
/// prints what is not a list, is an error, not "nothing runs".
public func runcList() throws -> [[String: Any]] {
    let out = try sh("/usr/sbin/runc", ["list", "--format", "json"])
    // runc prints "null" when it has no container.
    if out.trimmingCharacters(in: .whitespacesAndNewlines) == "null" { return [] }
    guard let list = try JSONSerialization.jsonObject(with: Data(out.utf8)) as? [[String: Any]] else {
        throw CommandFailed(command: "runc list", status: 0, stderr: "not a list: \(out)")
    }
    return list
}

/// `runc list` where a test looks for a container it expects to find (a failure reads as none).
public func runcContainers() -> [[String: Any]] { (try? runcList()) ?? [] }

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
