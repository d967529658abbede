import Foundation
import Testing
import VCPENet
import VCPETestSupport

/// The `vcpe` binary as an operator runs it.
@Suite struct CLITests {
    @Test func validateExamplesExitsZero() throws {
        let r = try run(vcpeBinary, ["validate"] + exampleFiles.map(\.path))
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.split(separator: "\n").count == exampleFiles.count)
    }

    @Test func invalidFixturesExitOneWithOneLineErrors() throws {
        for f in invalidFixtures {
            let r = try run(vcpeBinary, ["validate", f.path])
            #expect(r.status == 1, "\(f.lastPathComponent)")
            let lines = r.stderr.split(separator: "\n")
            #expect(!lines.isEmpty)
            for l in lines {
                #expect(l.hasPrefix(f.path + ":"), "\(l)")
                #expect(l.wholeMatch(of: #/.+:\d+:\d+: (error|warning): /[^ ]*: .+/#) != nil, "\(l)")
            }
        }
    }

    @Test func jsonOutputIsMachineReadable() throws {
        let r = try run(vcpeBinary, ["validate", "--json", repoFile("chains/invalid/port-out-of-range.json").path,
                                     repoFile("chains/small-office.json").path])
        #expect(r.status == 1)
        let v = try #require(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [[String: Any]])
        #expect(v.map { $0["valid"] as? Bool } == [false, true])
        let d = try #require((v[0]["diagnostics"] as? [[String: Any]])?.first)
        #expect(d["pointer"] as? String == "/services/fw/rules/3/dport")
        #expect((d["location"] as? [String: Int])?["line"] == 48)
    }

    @Test func missingFilesDirectoriesAndHugeFilesFailCleanly() throws {
        let big = FileManager.default.temporaryDirectory.appendingPathComponent("vcpe-test-big-\(getpid()).json")
        try Data(repeating: 0x20, count: 10 << 20).write(to: big)
        defer { try? FileManager.default.removeItem(at: big) }
        for path in ["/nonexistent/chain.json", repoFile("chains").path, big.path] {
            let r = try run(vcpeBinary, ["validate", path])
            #expect(r.status == 1)
            #expect(r.stderr.split(separator: "\n").count == 1, "\(r.stderr)")
        }
    }

    @Test func planJSONListsTheActions() throws {
        let r = try run(vcpeBinary, ["plan", "--json", repoFile("chains/small-office.json").path])
        #expect(r.status == 0, "\(r.stderr)")
        let plan = try #require(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any])
        #expect(plan["customer"] as? String == "smalloffice")
        let actions = try #require(plan["actions"] as? [[String: Any]])
        #expect(actions.count == 20)
        #expect(actions.allSatisfy { $0["verb"] as? String == "create" })
        let bad = try run(vcpeBinary, ["plan", repoFile("chains/invalid/yaml.json").path])
        #expect(bad.status == 1)
        #expect(bad.stdout.isEmpty)
    }
}
