import Foundation
import Testing
@testable import VCPEClassifier
import VCPETestSupport

/// The NEON kernel on real NEON instructions: the C kernels are cross-compiled for arm64
/// and run under qemu-aarch64-static on the same engines and keys, against the oracle.
@Suite struct NeonTests {
    static let work = FileManager.default.temporaryDirectory.appendingPathComponent("vcpe-neon-\(getpid())")

    static func buildDriver() throws -> String {
        try FileManager.default.createDirectory(at: work, withIntermediateDirectories: true)
        let src = repositoryRoot.appendingPathComponent("Sources/CClassifier")
        let files = try FileManager.default.contentsOfDirectory(atPath: src.path).filter { $0.hasSuffix(".c") }.map { src.appendingPathComponent($0).path }
        let exe = work.appendingPathComponent("driver").path
        try sh("/usr/bin/aarch64-linux-gnu-gcc", ["-O2", "-static", "-Wall", "-Werror", "-I", src.appendingPathComponent("include").path,
                                                "-o", exe, repositoryRoot.appendingPathComponent("Tests/tools/neon/driver.c").path] + files)
        return exe
    }

    @Test func neonKernelAgreesWithTheOracleUnderQemu() throws {
        defer { try? FileManager.default.removeItem(at: Self.work) }
        let driver = try Self.buildDriver()
        let seed = EquivalenceTests.seed
        var r = RandomRules(seed: seed ^ 0x4E45_4F4E)
        var sets: [([PacketRule], [FlowKey])] = []
        for size in [0, 1, 5, 9, 40, 300] { sets.append(((0..<size).map { _ in r.rule() }, (0..<4000).map { _ in r.key() })) }
        for kind in RuleSetGenerator.Kind.allCases {
            let rules = RuleSetGenerator.rules(kind, count: 2000, seed: seed)
            sets.append((rules, RuleSetGenerator.trace(for: rules, count: 10_000, seed: seed)))
        }
        var total = 0
        for (i, (rules, keys)) in sets.enumerated() {
            let oracle = LinearClassifier(rules: rules)
            let words = try CompiledClassifier(rules).dump(keys: keys, expected: keys.map(oracle.classify))
            let file = Self.work.appendingPathComponent("set\(i)")
            try words.withUnsafeBytes { try Data($0).write(to: file) }
            let out = try sh("/usr/bin/qemu-aarch64-static", [driver, file.path]).trimmingCharacters(in: .whitespacesAndNewlines)
            #expect(out == "ok \(2 * keys.count)", "set \(i) (\(rules.count) rules), seed \(seed): \(out)")
            total += 2 * keys.count
        }
        print("NEON and scalar under qemu: \(total) classifications")
    }
}
