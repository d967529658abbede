import Foundation

/// Monotonic seconds.
public func now() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
}

public func median(_ xs: [Double]) -> Double { xs.sorted()[xs.count / 2] }

public struct BaselineFailed: Error, CustomStringConvertible {
    public var command: [String]
    public var description: String { "baseline command failed: \(command.joined(separator: " "))" }
}

/// Writes `text` to a temporary file, runs `command + [file]` and returns its wall time:
/// the way the benchmarks time their `ip` and `nft -f` baselines as whole processes.
public func timeProcess(_ command: [String], input text: String, suffix: String) throws -> Double {
    let path = "/tmp/vcpe-bench-\(getpid())\(suffix)"
    try text.write(toFile: path, atomically: true, encoding: .utf8)
    defer { unlink(path) }
    let p = Process()
    p.executableURL = URL(fileURLWithPath: command[0])
    p.arguments = Array(command.dropFirst()) + [path]
    let t0 = now()
    try p.run()
    p.waitUntilExit()
    let t = now() - t0
    guard p.terminationStatus == 0 else { throw BaselineFailed(command: command) }
    return t
}
