import VCPEPolicy
import ArgumentParser
import Foundation
import VCPEClassifier
import VCPEDescriptor

struct Classify: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Classify a ClassBench trace against a ClassBench rule set.",
        discussion: "Prints a JSON summary (packets, rules, engine, build time, memory, ns per packet), or with --matches the index of the first matching rule for each packet (-1 for none)."
    )

    @Option(help: "Rule file (ClassBench format).") var rules: String
    @Option(help: "Trace file (ClassBench format).") var trace: String
    @Option(help: "oracle (linear, Swift), scalar, sse42, avx2, neon, or best.") var engine = "best"
    @Option(help: "Classify the trace this many times for the timing.") var `repeat` = 1
    @Flag(help: "Print each packet's matching rule index instead of the summary.") var matches = false
    @Flag(help: "Add to the summary what a search costs, counted: tables probed and rule rows compared per packet.") var cost = false

    func run() throws {
        let ruleSet = try read(rules) { text throws(ClassBench.FormatError) in try ClassBench.parseRules(text) }
        let keys = try read(trace) { text throws(ClassBench.FormatError) in try ClassBench.parseTrace(text) }
        guard `repeat` >= 1 else { throw ValidationError("--repeat must be at least 1") }

        var result: [Int?] = []
        var buildSeconds = 0.0, seconds = 0.0, memory = 0, tables = 0
        var counted: [String: Double] = [:]
        let used: String
        if engine == "oracle" {
            used = engine
            let oracle = LinearClassifier(rules: ruleSet)
            seconds = timed { for _ in 0..<`repeat` { result = keys.map(oracle.classify) } }
        } else {
            guard let kernel = engine == "best" ? ClassifierKernel.best : ClassifierKernel(rawValue: engine) else {
                throw ValidationError("unknown engine \"\(engine)\": oracle, scalar, sse42, avx2, neon or best")
            }
            guard kernel.isAvailable else { throw ValidationError("the \(engine) kernel does not run on this machine") }
            used = kernel.rawValue
            var compiled: CompiledClassifier?
            buildSeconds = try timed { compiled = try CompiledClassifier(ruleSet) }
            memory = compiled!.memoryBytes
            tables = compiled!.tableCount
            if cost {
                let c = compiled!.searchCost(keys)
                counted = ["tablesProbedPerPacket": c.tablesProbed, "rowsComparedPerPacket": c.rowsCompared]
            }
            let rows = CompiledClassifier.encode(keys, family: .v4)
            var out = [UInt32](repeating: 0, count: keys.count)
            seconds = timed {
                for _ in 0..<`repeat` { compiled!.classify(rows: rows, count: keys.count, family: .v4, kernel: kernel, into: &out) }
            }
            result = out.map { $0 == UInt32.max ? nil : Int($0) }
        }
        if matches {
            print(result.map { String($0 ?? -1) }.joined(separator: "\n"))
            return
        }
        var summary: [String: Any] = [
            "packets": keys.count, "rules": ruleSet.count, "engine": used, "buildSeconds": buildSeconds,
            "memoryBytes": memory, "tables": tables, "repeat": `repeat`,
            "nsPerPacket": keys.isEmpty ? 0 : seconds * 1e9 / Double(keys.count * `repeat`),
            "matched": result.filter { $0 != nil }.count,
        ]
        summary.merge(counted) { a, _ in a }
        print(String(decoding: try JSONSerialization.data(withJSONObject: summary, options: [.sortedKeys]), as: UTF8.self))
    }

    private func read<T>(_ path: String, _ parse: (String) throws(ClassBench.FormatError) -> T) throws -> T {
        guard let data = FileManager.default.contents(atPath: path) else {
            printError("vcpe: cannot read \(path)")
            throw ExitCode(1)
        }
        do {
            return try parse(String(decoding: data, as: UTF8.self))
        } catch {
            printError("vcpe: \(path):\(error.line): \(error.message)")
            throw ExitCode(1)
        }
    }
}

struct GenerateRules: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "generate-rules",
        abstract: "Write a ClassBench-like rule set and a trace for it (acl, fw or ipc shaped)."
    )

    @Option(help: "acl, fw or ipc.") var kind: String
    @Option(help: "How many rules.") var count: Int
    @Option(help: "How many packets in the trace.") var packets = 100_000
    @Option(help: "Seed: the same seed gives the same files.") var seed: UInt64 = 1
    @Option(help: "Where the rules go.") var rulesFile: String
    @Option(help: "Where the trace goes.") var traceFile: String

    func run() throws {
        guard let k = RuleSetGenerator.Kind(rawValue: kind) else { throw ValidationError("--kind is acl, fw or ipc") }
        let rules = RuleSetGenerator.rules(k, count: count, seed: seed)
        try ClassBench.format(rules).write(toFile: rulesFile, atomically: true, encoding: .utf8)
        try ClassBench.format(RuleSetGenerator.trace(for: rules, count: packets, seed: seed)).write(toFile: traceFile, atomically: true, encoding: .utf8)
    }
}

/// Wall time of `body` in seconds.
func timed(_ body: () throws -> Void) rethrows -> Double {
    let start = ContinuousClock.now
    try body()
    let d = ContinuousClock.now - start
    return Double(d.components.seconds) + Double(d.components.attoseconds) * 1e-18
}
