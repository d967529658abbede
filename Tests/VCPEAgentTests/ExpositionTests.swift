import Foundation
import Testing
@testable import VCPEAgent
import VCPETestSupport

/// The text format written for counters read at scrape time, checked by Prometheus' own
/// parser (`promtool check metrics`) as well as by value.
@Suite struct ExpositionTests {
    static func text(_ families: [Exposition.Family]) -> String {
        var out: [UInt8] = []
        Exposition.write(families, into: &out)
        return String(decoding: out, as: UTF8.self)
    }

    @Test func labelValuesAreEscapedAndNumbersWrittenAsPrometheusReadsThem() throws {
        var f = Exposition.Family("vcpe_test_packets_total", .counter, labels: ["customer", "rule"], help: "A test\\family\nover two lines.")
        f.add(["acme", #"quote " back \ newline"#] , UInt64(18_446_744_073_709_551_615))
        f.add(["acme", "line\nfeed"], UInt64(3))
        var g = Exposition.Family("vcpe_test_seconds", .gauge, labels: [], help: "A gauge.")
        g.add([], 0.25)
        let empty = Exposition.Family("vcpe_test_empty_total", .counter, labels: ["customer"], help: "Nothing yet.")
        let t = Self.text([f, g, empty])
        #expect(t.contains(#"# HELP vcpe_test_packets_total A test\\family\nover two lines."#))
        #expect(t.contains(#"vcpe_test_packets_total{customer="acme",rule="quote \" back \\ newline"} 1.8446744073709552e+19"#))
        #expect(t.contains(#"vcpe_test_packets_total{customer="acme",rule="line\nfeed"} 3"#))
        #expect(t.contains("vcpe_test_seconds 0.25\n"))
        #expect(t.contains("# TYPE vcpe_test_empty_total counter\n"))
        #expect(t.split(separator: "\n").allSatisfy { !$0.isEmpty })

        // Prometheus' parser and linter agree.
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("vcpe-exposition-\(getpid()).txt").path
        try t.write(toFile: file, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: file) }
        let lint = try run(URL(fileURLWithPath: "/bin/sh"), ["-c", "\(promtoolBinary) check metrics < \(file)"])
        #expect(lint.status == 0 && lint.stdout.isEmpty && lint.stderr.isEmpty, "promtool: \(lint.stdout)\(lint.stderr)")
        let parsed = parseExposition(t)
        #expect(parsed[#"vcpe_test_packets_total{customer="acme",rule="line\nfeed"}"#] == 3)
    }

    @Test func aSampleWithTheWrongNumberOfLabelsIsAProgrammingError() async {
        await #expect(processExitsWith: .failure) {
            var f = Exposition.Family("vcpe_x_total", .counter, labels: ["customer"], help: "x")
            f.add([], UInt64(1))
        }
    }
}
