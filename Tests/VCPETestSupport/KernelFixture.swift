import Foundation
import Testing
import VCPEDescriptor
import VCPENetlink
import VCPESystem

/// Names with a unique prefix for one test, and teardown that removes what the test made
/// even when it failed: every namespace (their interfaces go with them) and host links.
public final class KernelFixture: @unchecked Sendable {
    nonisolated(unsafe) static var counter = 0
    static let lock = NSLock()

    public let tag: String
    private(set) var namespaces: [String] = []
    private(set) var hostLinks: [String] = []

    public init() {
        Self.lock.lock()
        Self.counter += 1
        let n = Self.counter
        Self.lock.unlock()
        tag = Self.tag(pid: getpid(), counter: n)
    }

    /// "vt" and seven hex digits (16 bits of the process, then the test): short, since
    /// interface names built from it must fit 15 bytes; fixed in width and free of "v" and
    /// "t" after its start, so one tag is never part of another tag or of a name made from
    /// one, and "contains the tag" picks out this test's objects alone (two test processes
    /// on one host share a tag only if their pids agree in 16 bits).
    static func tag(pid: Int32, counter: Int) -> String {
        precondition(counter < 4096, "more fixtures than the tag can tell apart")
        func hex(_ v: Int, _ width: Int) -> String {
            let s = String(v, radix: 16)
            return String(repeating: "0", count: width - s.count) + s
        }
        return "vt" + hex(Int(pid) & 0xFFFF, 4) + hex(counter, 3)
    }

    /// A fresh namespace named after the test.
    public func namespace(_ suffix: String) throws -> String {
        let name = "vcpetest-\(tag)-\(suffix)"
        namespaces.append(name)
        try NetworkNamespace.create(name)
        return name
    }

    public func hostLink(_ suffix: String) -> String {
        let name = "\(tag)\(suffix)"
        precondition(name.utf8.count <= 15)
        hostLinks.append(name)
        return name
    }

    public func cleanup() {
        if let host = try? RouteSocket() {
            for l in hostLinks { try? host.removeLink(l) }
            // And whatever vcpe made for this test's customers, should a test have failed early.
            for l in (try? host.links()) ?? [] where l.name.contains(tag) { try? host.removeLink(l.name) }
        }
        for ns in namespaces { try? NetworkNamespace.remove(ns) }
        for ns in (try? NetworkNamespace.entries()) ?? [] where ns.contains(tag) { try? NetworkNamespace.remove(ns) }
        let left = (try? NetworkNamespace.entries())?.filter { $0.contains(tag) } ?? []
        #expect(left.isEmpty, "namespaces left behind: \(left)")
    }
}

/// The interface indexes of these customers' LAN bridges (a bridge delete retires keeps its
/// index when it is renamed `vx-*`).
public func bridgeIndexes(_ customers: [String]) -> [Int] {
    customers.compactMap { c in ((try? ip(["link", "show", "dev", "vb-\(c)"])) ?? []).first?["ifindex"] as? Int }
}

/// Waits up to 10 s for the links with these indexes to be gone (delete retires bridges and
/// a background `vcpe gc` removes them), and returns the names of those still there, as
/// `ip link` shows them.
public func retiredLinksLeft(_ indexes: [Int]) -> [String] {
    guard !indexes.isEmpty else { return [] }
    var left: [String] = []
    for _ in 0..<200 {
        left = ((try? ip(["link", "show"])) ?? []).filter { indexes.contains($0["ifindex"] as? Int ?? -1) }.compactMap { $0["ifname"] as? String }
        if left.isEmpty { break }
        usleep(50_000)
    }
    return left
}

/// `ip` as the independent oracle: its JSON output, decoded.
public func ip(_ args: [String], namespace: String? = nil) throws -> [[String: Any]] {
    let out = try sh("/usr/sbin/ip", (namespace.map { ["-n", $0] } ?? []) + ["-j"] + args)
    if out.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty { return [] }
    return try JSONSerialization.jsonObject(with: Data(out.utf8)) as? [[String: Any]] ?? []
}

public struct CommandFailed: Error, CustomStringConvertible {
    public var command: String
    public var status: Int32
    public var stderr: String
    public var description: String { "\(command) exited \(status): \(stderr)" }
}

/// What a finished program printed and how it exited.
public struct RunResult: Sendable {
    public var status: Int32
    public var stdout: String
    public var stderr: String
}

/// Runs a program to its end and returns its exit status and output.
public func run(_ executable: URL, _ args: [String]) throws -> RunResult {
    let tmp = FileManager.default.temporaryDirectory
    let out = tmp.appendingPathComponent("vcpe-sh-\(UUID().uuidString)"), err = tmp.appendingPathComponent("vcpe-sh-\(UUID().uuidString)")
    defer { for f in [out, err] { try? FileManager.default.removeItem(at: f) } }
    let status = waitFor(try spawn(executable.path, args, stdout: out.path, stderr: err.path))
    return RunResult(status: status, stdout: String(decoding: (try? Data(contentsOf: out)) ?? Data(), as: UTF8.self),
                     stderr: String(decoding: (try? Data(contentsOf: err)) ?? Data(), as: UTF8.self))
}

/// Runs a program; a non-zero exit throws with its stderr.
@discardableResult
public func sh(_ exe: String, _ args: [String]) throws -> String {
    let r = try run(URL(fileURLWithPath: exe), args)
    guard r.status == 0 else { throw CommandFailed(command: ([exe] + args).joined(separator: " "), status: r.status, stderr: r.stderr) }
    return r.stdout
}

/// posix_spawn with stdin from /dev/null and stdout/stderr to files. Foundation's Process
/// can miss a child's exit when other children run long; waitpid cannot.
public func spawn(_ exe: String, _ args: [String], stdout: String = "/dev/null", stderr: String = "/dev/null") throws -> pid_t {
    var actions = posix_spawn_file_actions_t()
    posix_spawn_file_actions_init(&actions)
    defer { posix_spawn_file_actions_destroy(&actions) }
    posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
    posix_spawn_file_actions_addopen(&actions, 1, stdout, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
    posix_spawn_file_actions_addopen(&actions, 2, stderr, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
    let argv = ([exe] + args).map { strdup($0) } + [nil]
    defer { for a in argv { free(a) } }
    // Test threads block signals; a child must not inherit that, or it ignores SIGTERM.
    var attr = posix_spawnattr_t()
    posix_spawnattr_init(&attr)
    defer { posix_spawnattr_destroy(&attr) }
    var none = sigset_t(), all = sigset_t()
    sigemptyset(&none)
    sigfillset(&all)
    posix_spawnattr_setsigmask(&attr, &none)
    posix_spawnattr_setsigdefault(&attr, &all)
    posix_spawnattr_setflags(&attr, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))
    var pid: pid_t = 0
    let rc = posix_spawn(&pid, exe, &actions, &attr, argv, environ)
    guard rc == 0 else { throw CommandFailed(command: exe, status: -1, stderr: "posix_spawn: errno \(rc)") }
    return pid
}

/// The exit status (or 128 + signal) of a child.
@discardableResult
public func waitFor(_ pid: pid_t) -> Int32 {
    var status: Int32 = 0
    while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
    let signal = status & 0x7F
    return signal == 0 ? (status >> 8) & 0xFF : 128 + signal
}

/// `nft -j list ruleset` of a namespace, with what differs between two equal rulesets
/// (handles, the tool's metainfo) taken out.
public func nftRuleset(namespace: String) throws -> [[String: Any]] {
    let out = try sh("/usr/sbin/ip", ["netns", "exec", namespace, "nft", "-j", "list", "ruleset"])
    let j = try JSONSerialization.jsonObject(with: Data(out.utf8)) as? [String: Any]
    let items = (j?["nftables"] as? [[String: Any]] ?? []).filter { $0["metainfo"] == nil }
    func strip(_ v: Any) -> Any {
        if let d = v as? [String: Any] {
            return d.filter { $0.key != "handle" }.mapValues(strip)
        }
        if let a = v as? [Any] { return a.map(strip) }
        return v
    }
    return items.map { strip($0) as! [String: Any] }
}

/// Runs `nft -f` on text inside a namespace.
public func nftLoad(_ text: String, namespace: String) throws {
    let path = FileManager.default.temporaryDirectory.appendingPathComponent("vcpe-nft-\(UUID().uuidString).nft")
    try text.write(to: path, atomically: true, encoding: .utf8)
    defer { try? FileManager.default.removeItem(at: path) }
    try sh("/usr/sbin/ip", ["netns", "exec", namespace, "nft", "-f", path.path])
}

/// The packets of the counter on the rule commented `comment` in a namespace's ruleset
/// (`nft -j`): a rule or counter that is not there fails the test, it is not zero.
public func nftCounter(_ comment: String, in namespace: String) throws -> Int {
    let rule = try #require(try nftRuleset(namespace: namespace).compactMap { $0["rule"] as? [String: Any] }.first { $0["comment"] as? String == comment },
                            "no rule \(comment) in \(namespace)")
    return try #require((rule["expr"] as? [[String: Any]])?.compactMap { $0["counter"] as? [String: Any] }.first?["packets"] as? Int,
                        "no counter on \(comment) in \(namespace)")
}

/// A vcpe table as `nft list table` shows it in a namespace, its counters' values left out
/// (traffic moves them; the rules are what a comparison is about).
public func nftTableRules(_ namespace: String, family: String, name: String = "vcpe") throws -> String {
    try sh("/usr/sbin/ip", ["netns", "exec", namespace, "nft", "list", "table", family, name]).replacing(#/packets \d+ bytes \d+/#, with: "packets - bytes -")
}
