import Foundation
import VCPESystem

/// The repository root, from this file's place.
public let repositoryRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

/// Servers started in test namespaces; all killed by `stop()` (call it in a defer).
public final class Servers: @unchecked Sendable {
    private var processes: [pid_t] = []
    private var readyFiles: [URL] = []

    public init() {}

    /// Starts a probe server in `namespace` and waits until it listens.
    /// `address`: the one to listen on (serve-udp only), so replies leave from it.
    public func start(_ kind: String, port: Int, in namespace: String, address: String? = nil) throws {
        let ready = FileManager.default.temporaryDirectory.appendingPathComponent("vcpe-ready-\(UUID().uuidString)")
        readyFiles.append(ready)
        processes.append(try spawn("/usr/sbin/ip", probeCommand(in: namespace, ["serve-\(kind)", String(port), ready.path] + (address.map { [$0] } ?? []))))
        for _ in 0..<(200 * testSlowdown) where !FileManager.default.fileExists(atPath: ready.path) { usleep(10_000) }
        guard FileManager.default.fileExists(atPath: ready.path) else {
            throw CommandFailed(command: "probe serve-\(kind) \(port)", status: -1, stderr: "not ready in \(2 * testSlowdown) s")
        }
    }

    public func stop() {
        for pid in processes {
            kill(pid, SIGKILL)
            waitFor(pid)
        }
        processes = []
        for f in readyFiles { try? FileManager.default.removeItem(at: f) }
    }
}

/// `ip` arguments that run Tests/tools/probe.py with these arguments inside `namespace`.
func probeCommand(in namespace: String, _ arguments: String...) -> [String] { probeCommand(in: namespace, arguments) }

func probeCommand(in namespace: String, _ arguments: [String]) -> [String] {
    ["netns", "exec", namespace, "python3", repositoryRoot.appendingPathComponent("Tests/tools/probe.py").path] + arguments
}

/// What a probe client saw: "ok peer=IP", "refused", "timeout".
public func probe(_ kind: String, from namespace: String, to host: String, port: Int, timeout: Double = 1) throws -> String {
    try sh("/usr/sbin/ip", probeCommand(in: namespace, kind, host, String(port), String(timeout))).trimmingCharacters(in: .whitespacesAndNewlines)
}

/// True when `count` pings get answers.
public func ping(from namespace: String, to host: String, count: Int = 2) -> Bool {
    (try? sh("/usr/sbin/ip", ["netns", "exec", namespace, "ping", "-c", String(count), "-i", "0.05", "-W", "1", host])) != nil
}

/// Sends `bytes` through a TCP connection and checks them byte for byte at the far end;
/// `marker`, if given, is written into the data every 4 KiB (to look for in captures).
public func transfer(from namespace: String, to host: String, port: Int, bytes: Int, seed: Int = 1, marker: String? = nil) throws -> String {
    var args = ["send", host, String(port), String(bytes), String(seed)]
    if let marker { args.append(marker) }
    return try sh("/usr/sbin/ip", probeCommand(in: namespace, args)).trimmingCharacters(in: .whitespacesAndNewlines)
}

/// Fetches `bytes` from a serve-source server and checks them byte for byte: "intact".
public func fetch(from namespace: String, to host: String, port: Int, bytes: Int, seed: Int = 1) throws -> String {
    try sh("/usr/sbin/ip", probeCommand(in: namespace, "fetch", host, String(port), String(bytes), String(seed)))
        .trimmingCharacters(in: .whitespacesAndNewlines)
}

/// Starts a paced transfer to a serve-sink server (`seconds` long) in the background; its
/// verdict ("intact") is in the returned file once the pid has ended.
public func startStream(from namespace: String, to host: String, port: Int, bytes: Int, seconds: Double) throws -> (pid: pid_t, output: String) {
    let out = FileManager.default.temporaryDirectory.appendingPathComponent("vcpe-stream-\(UUID().uuidString)").path
    let pid = try spawn("/usr/sbin/ip", probeCommand(in: namespace, "stream", host, String(port), String(bytes), "7", String(seconds)), stdout: out)
    return (pid, out)
}

/// One TCP connection held open across whatever `during` does: an exchange before, one
/// after. Returns the client's verdict, "kept" or "broken ...".
public func holdConnection(from namespace: String, to host: String, port: Int, during: () throws -> Void) throws -> String {
    let go = FileManager.default.temporaryDirectory.appendingPathComponent("vcpe-hold-\(UUID().uuidString)").path
    let out = go + ".out"
    defer { for f in [go, go + ".held", out] { try? FileManager.default.removeItem(atPath: f) } }
    let pid = try spawn("/usr/sbin/ip", probeCommand(in: namespace, "hold", host, String(port), go), stdout: out)
    for _ in 0..<500 where !FileManager.default.fileExists(atPath: go + ".held") && kill(pid, 0) == 0 { usleep(10_000) }
    do {
        try during()
    } catch {
        kill(pid, SIGKILL)
        waitFor(pid)
        throw error
    }
    _ = FileManager.default.createFile(atPath: go, contents: nil)
    waitFor(pid)
    return ((try? String(contentsOfFile: out, encoding: .utf8)) ?? "").trimmingCharacters(in: .whitespacesAndNewlines)
}

/// A ping flow (one ICMP identifier: `count` pings `interval` s apart) running in the
/// background; `finish` waits for it and gives its exit status and summary.
public struct PingFlow {
    public let pid: pid_t
    let output: String

    public func finish() -> (status: Int32, summary: String) {
        let status = waitFor(pid)
        defer { try? FileManager.default.removeItem(atPath: output) }
        return (status, (try? String(contentsOfFile: output, encoding: .utf8)) ?? "")
    }
}

public func startPingFlow(from namespace: String, to host: String, count: Int, interval: String = "0.01") throws -> PingFlow {
    let output = FileManager.default.temporaryDirectory.appendingPathComponent("vcpe-ping-\(UUID().uuidString)").path
    let pid = try spawn("/usr/sbin/ip", ["netns", "exec", namespace, "ping", "-q", "-c", String(count), "-i", interval, "-W", "1", host], stdout: output)
    return PingFlow(pid: pid, output: output)
}

/// How many times slower than this machine the tests run (`VCPE_TEST_SLOWDOWN`, default 1):
/// waits for a program to start are stretched by it. scripts/test-kernel sets it under
/// emulation, where starting python3 alone takes seconds; no check's threshold changes but the agent's reboot budget (10 s, a time claim checked on the host).
public let testSlowdown: Int = max(1, Int(ProcessInfo.processInfo.environment["VCPE_TEST_SLOWDOWN"] ?? "") ?? 1)
