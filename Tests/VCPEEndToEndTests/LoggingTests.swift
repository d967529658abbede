import Foundation
import Testing
import VCPETestSupport

/// Every executed plan step is one log line with the customer, the verb, the kind and the
/// object, in logfmt or JSON as asked (`VCPE_LOG_FORMAT`); a format or level that is neither
/// is refused before anything changes.
@Suite(.serialized) struct LoggingTests {
    static func vcpe(_ env: [String], _ args: [String], _ sc: Scenario) throws -> RunResult {
        try run(URL(fileURLWithPath: "/usr/bin/env"), env + [vcpeBinary.path] + args + ["--state-dir", sc.stateDir])
    }

    @Test func everyStepIsOneLineInTheFormatAsked() throws {
        let sc = try Scenario()
        defer { sc.cleanup() }
        let (_, _, file) = try ApplyTests.officeWithHost(sc)
        let me = sc.customer(0)

        // Refused before anything is made.
        for env in [["VCPE_LOG_FORMAT=yaml"], ["VCPE_LOG=loud"]] {
            let bad = try Self.vcpe(env, ["apply", file], sc)
            #expect(bad.status == 1 && bad.stderr.contains(env[0].split(separator: "=")[0]), "\(bad.stderr)")
        }
        #expect(try sh("/usr/sbin/ip", ["netns", "list"]).contains("vcpe-\(me).") == false)

        let planned = try sc.vcpe(["plan", file])
        let actions = try #require(planned.firstMatch(of: #/: (\d+) actions?/#).flatMap { Int($0.1) }, "\(planned)")
        let r = try Self.vcpe(["VCPE_LOG=info", "VCPE_LOG_FORMAT=json"], ["apply", file], sc)
        #expect(r.status == 0, "\(r.stderr)")
        let lines = r.stderr.split(separator: "\n")
        let events = lines.compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: String] }
        #expect(events.count == lines.count, "every line is one JSON object: \(r.stderr)")
        let steps = events.filter { $0["msg"] == "step" }
        #expect(steps.count == actions, "\(steps.count) step lines for \(actions) actions")
        #expect(steps.allSatisfy { $0["customer"] == me && $0["verb"] == "create" && $0["kind"] != nil && $0["object"] != nil
                    && $0["level"] == "info" && $0["time"] != nil }, "\(steps.prefix(3))")
        #expect(Set(steps.compactMap { $0["kind"] }).isSuperset(of: ["namespace", "veth", "address", "route", "nftTable"]))
        #expect(events.contains { $0["msg"] == "applied" && $0["customer"] == me })

        // logfmt: key=value, values with spaces or quotes quoted.
        let d = try Self.vcpe(["VCPE_LOG=info"], ["delete", me], sc)
        #expect(d.status == 0, "\(d.stderr)")
        let logfmt = #/^time=\S+ level=[a-z]+ msg=("(?:[^"\\]|\\.)*"|\S+)(?: [a-z]+=("(?:[^"\\]|\\.)*"|[^\s"=]+))*$/#
        let dl = d.stderr.split(separator: "\n")
        #expect(!dl.isEmpty && dl.allSatisfy { $0.wholeMatch(of: logfmt) != nil }, "\(d.stderr)")
        #expect(dl.contains { $0.contains("msg=deleted") && $0.contains("customer=\(me)") }, "\(d.stderr)")
    }
}
