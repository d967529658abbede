import Foundation
import Testing
import VCPEClassifier
import VCPENet
import VCPETestSupport

@Suite struct ClassBenchTests {
    @Test func rulesAndTracesRoundTrip() throws {
        let rules = RuleSetGenerator.rules(.acl, count: 300, seed: 5)
        #expect(try ClassBench.parseRules(ClassBench.format(rules)) == rules)
        let trace = RuleSetGenerator.trace(for: rules, count: 500, seed: 5)
        #expect(try ClassBench.parseTrace(ClassBench.format(trace)) == trace)
        let parsed = try ClassBench.parseRules("@10.0.0.0/8\t0.0.0.0/0\t0 : 65535\t80 : 80\t0x06/0xFF\t0x0000/0x0200\n")
        #expect(parsed == [PacketRule(src: IPPrefix("10.0.0.0/8"), proto: 6, dport: PortRange(80))])
    }

    @Test(arguments: [
        ("@10.0.0.0/8 0.0.0.0/0 0 : 65535 80 : 80 0x06/0xFF\n10.0.0.0/8 0.0.0.0/0 0 : 65535 80 : 80 0x06/0xFF\n", 2, "starts with '@'"),
        ("@10.0.0.0/33 0.0.0.0/0 0 : 65535 80 : 80 0x06/0xFF\n", 1, "source"),
        ("\n\n@10.0.0.0/8 0.0.0.0/0 0 : 70000 80 : 80 0x06/0xFF\n", 3, "port"),
        ("@10.0.0.0/8 0.0.0.0/0 9 : 8 80 : 80 0x06/0xFF\n", 1, "low end"),
        ("@10.0.0.0/8 0.0.0.0/0 0 : 65535 80 : 80 0x06/0x0F\n", 1, "protocol"),
        ("@10.0.0.0/8 0.0.0.0/0 0 65535 80 : 80 0x06/0xFF\n", 1, "expected"),
    ])
    func malformedRulesSayWhichLine(_ text: String, _ line: Int, _ says: String) {
        do {
            _ = try ClassBench.parseRules(text)
            Issue.record("accepted: \(text)")
        } catch {
            #expect(error.line == line && error.message.contains(says), "\(error)")
        }
    }

    @Test func malformedTraceSaysWhichLine() {
        do {
            _ = try ClassBench.parseTrace("1 2 3 4 6\n1 2 3 4\n")
            Issue.record("accepted a short line")
        } catch {
            #expect(error.line == 2)
        }
    }

    /// The command: --matches agrees with the oracle engine, a summary is JSON, a bad file
    /// is one line with file and line number and exit status 1.
    @Test func classifyCommand() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("vcpe-cb-\(getpid())")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let rules = dir.appendingPathComponent("r").path, trace = dir.appendingPathComponent("t").path
        try sh(vcpeBinary.path, ["generate-rules", "--kind", "ipc", "--count", "400", "--packets", "3000", "--seed", "3",
                                 "--rules-file", rules, "--trace-file", trace])
        let oracle = try sh(vcpeBinary.path, ["classify", "--rules", rules, "--trace", trace, "--engine", "oracle", "--matches"])
        #expect(oracle.split(separator: "\n").count == 3000)
        for k in ClassifierKernel.allCases where k.isAvailable {
            #expect(try sh(vcpeBinary.path, ["classify", "--rules", rules, "--trace", trace, "--engine", k.rawValue, "--matches"]) == oracle)
        }
        let summary = try JSONSerialization.jsonObject(with: Data(try sh(vcpeBinary.path, ["classify", "--rules", rules, "--trace", trace, "--repeat", "2"]).utf8)) as? [String: Any]
        #expect(summary?["packets"] as? Int == 3000 && summary?["rules"] as? Int == 400 && summary?["engine"] as? String == ClassifierKernel.best.rawValue)
        #expect((summary?["memoryBytes"] as? Int ?? 0) > 0 && (summary?["nsPerPacket"] as? Double ?? 0) > 0)

        try "@1.2.3.4/32 0.0.0.0/0 0 : 65535 0 : 65535 0x00/0x00\n@1.2.3.4/32 0.0.0.0/0 0 : 65535 0 : 65535 0x00/0x00 \n@bad\n".write(toFile: rules, atomically: true, encoding: .utf8)
        do {
            try sh(vcpeBinary.path, ["classify", "--rules", rules, "--trace", trace])
            Issue.record("a bad rule file was accepted")
        } catch let e as CommandFailed {
            #expect(e.status == 1 && e.stderr.contains("\(rules):3:"), "\(e.stderr)")
            #expect(e.stderr.trimmingCharacters(in: .whitespacesAndNewlines).split(separator: "\n").count == 1)
        }
    }
}
