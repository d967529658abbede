import Foundation
import Testing
import VCPENetlink
import VCPESystem

/// Names with a unique prefix for one test, and teardown that removes what the test made
/// even when it failed: every namespace (their interfaces go with them) and host links.
final class KernelFixture: @unchecked Sendable {
    nonisolated(unsafe) static var counter = 0
    static let lock = NSLock()

    let tag: String
    private(set) var namespaces: [String] = []
    private(set) var hostLinks: [String] = []

    init() {
        Self.lock.lock()
        Self.counter += 1
        let n = Self.counter
        Self.lock.unlock()
        // Short: interface names built from it must fit 15 bytes.
        tag = "vt\(String(getpid() % 46656, radix: 36))\(String(n, radix: 36))"
    }

    /// A fresh namespace named after the test.
    func namespace(_ suffix: String) throws -> String {
        let name = "vcpetest-\(tag)-\(suffix)"
        namespaces.append(name)
        try NetworkNamespace.create(name)
        return name
    }

    func hostLink(_ suffix: String) -> String {
        let name = "\(tag)\(suffix)"
        precondition(name.utf8.count <= 15)
        hostLinks.append(name)
        return name
    }

    func cleanup() {
        if let host = try? RouteSocket() { for l in hostLinks { try? host.removeLink(l) } }
        for ns in namespaces { try? NetworkNamespace.remove(ns) }
        let left = (try? NetworkNamespace.list())?.filter { $0.contains(tag) } ?? []
        #expect(left.isEmpty, "namespaces left behind: \(left)")
    }
}

/// `ip` as the independent oracle: its JSON output, decoded.
func ip(_ args: [String], namespace: String? = nil) throws -> [[String: Any]] {
    let out = try sh("/usr/sbin/ip", (namespace.map { ["-n", $0] } ?? []) + ["-j"] + args)
    if out.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty { return [] }
    return try JSONSerialization.jsonObject(with: Data(out.utf8)) as? [[String: Any]] ?? []
}

@discardableResult
func sh(_ exe: String, _ args: [String]) throws -> String {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: exe)
    p.arguments = args
    let out = FileManager.default.temporaryDirectory.appendingPathComponent("vcpe-nl-\(UUID().uuidString)")
    FileManager.default.createFile(atPath: out.path, contents: nil)
    defer { try? FileManager.default.removeItem(at: out) }
    p.standardOutput = try FileHandle(forWritingTo: out)
    p.standardError = FileHandle.nullDevice
    try p.run()
    p.waitUntilExit()
    let text = String(decoding: try Data(contentsOf: out), as: UTF8.self)
    guard p.terminationStatus == 0 else { throw CocoaError(.executableLoad, userInfo: ["cmd": "\(exe) \(args)", "out": text]) }
    return text
}
