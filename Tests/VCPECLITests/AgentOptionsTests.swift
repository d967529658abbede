import Foundation
import Testing
import VCPETestSupport

/// `vcpe agent`'s options: a bad one is refused in one line before anything starts.
@Suite struct AgentOptionsTests {
    @Test(arguments: [
        (["--metrics-address", "127.0.0.1"], "--metrics-address"),
        (["--metrics-address", "127.0.0.1:70000"], "--metrics-address"),
        (["--metrics-address", ":9469"], "--metrics-address"),
        (["--metrics-address", "[::1:9469"], "--metrics-address"),
        (["--reconcile-interval", "0"], "--reconcile-interval"),
        (["--reconcile-interval", "86401"], "--reconcile-interval"),
        (["--log-format", "yaml"], "--log-format"),
    ])
    func aBadOptionIsRefusedInOneLine(args: [String], named: String) throws {
        let state = FileManager.default.temporaryDirectory.appendingPathComponent("vcpe-agent-opts-\(getpid())").path
        defer { try? FileManager.default.removeItem(atPath: state) }
        let r = try run(vcpeBinary, ["agent", "--state-dir", state] + args)
        #expect(r.status != 0)
        let first = r.stderr.split(separator: "\n").first.map(String.init) ?? ""
        #expect(first.contains(named), "\(r.stderr)")
        // Refused before the state directory was made or anything started.
        #expect(!FileManager.default.fileExists(atPath: state))
    }

    @Test(.enabled(if: geteuid() == 0, "needs root")) func aSecondAgentForTheSameStateIsRefused() throws {
        let state = FileManager.default.temporaryDirectory.appendingPathComponent("vcpe-agent-two-\(getpid())").path
        defer { try? FileManager.default.removeItem(atPath: state) }
        let log = state + ".log"
        defer { try? FileManager.default.removeItem(atPath: log) }
        let first = try spawn(vcpeBinary.path, ["agent", "--state-dir", state, "--metrics-address", "127.0.0.1:0"], stderr: log)
        defer { kill(first, SIGTERM); waitFor(first) }
        var started = false
        for _ in 0..<100 where !started {
            started = ((try? String(contentsOfFile: log, encoding: .utf8)) ?? "").contains("agent started")
            usleep(50_000)
        }
        #expect(started)
        let second = try run(vcpeBinary, ["agent", "--state-dir", state, "--metrics-address", "127.0.0.1:0"])
        #expect(second.status == 1)
        #expect(second.stderr.contains("another vcpe agent runs for this state directory"), "\(second.stderr)")
    }
}
