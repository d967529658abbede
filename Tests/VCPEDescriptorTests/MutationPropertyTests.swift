import Foundation
import Testing
import VCPENet
import VCPEDescriptor
import VCPETestSupport

@Suite struct MutationPropertyTests {
    static let seed = UInt64(ProcessInfo.processInfo.environment["VCPE_FUZZ_SEED"] ?? "") ?? UInt64.random(in: 1...UInt64.max)

    /// Every diagnostic keeps the contract: one line, a pointer, a place inside the file.
    func checkContract(_ bytes: [UInt8], _ r: ValidationResult, _ context: @autoclosure () -> String) {
        let lines = bytes.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false).count
        if r.chain == nil { #expect(!r.errors.isEmpty, "\(context()): invalid without an error") }
        for d in r.diagnostics {
            #expect(!d.description.contains("\n") && !d.description.contains("\r"), "\(context()): \(d)")
            // Bytes, not Characters: "/" followed by a combining mark is one Character.
            #expect(d.pointer.description.utf8.first == UInt8(ascii: "/"), "\(context()): \(d)")
            #expect(d.location.line >= 1 && d.location.line <= lines && d.location.column >= 1, "\(context()): \(d)")
            #expect(!d.message.isEmpty)
        }
    }

    func byteMutation(_ input: [UInt8], _ rng: inout SplitMix64) -> [UInt8] {
        var b = input
        let n = Int.random(in: 1...4, using: &rng)
        for _ in 0..<n where !b.isEmpty {
            let i = Int.random(in: 0..<b.count, using: &rng)
            switch Int.random(in: 0..<7, using: &rng) {
            case 0: b.remove(at: i)
            case 1: b.insert(UInt8.random(in: 0...255, using: &rng), at: i)
            case 2: b.insert(Array("{}[],:\"-0e.\\/#".utf8).randomElement(using: &rng)!, at: i)
            case 3: b = Array(b[..<i])
            case 4:
                let j = min(b.count, i + Int.random(in: 1...40, using: &rng))
                b.insert(contentsOf: b[i..<j], at: j)
            case 5:
                // What fuzz/run found or targets: an escaped line break, combining marks and
                // non-ASCII digits next to numbers, huge numbers, deep nesting.
                let snippets = ["\\\n", "\u{301}", "\u{664}", "\\u0301", "1e999999", "-99999999999999999999", String(repeating: "[", count: 70)]
                b.insert(contentsOf: Array(snippets.randomElement(using: &rng)!.utf8), at: i)
            default: b[i] = UInt8.random(in: 0x20...0x7E, using: &rng)
            }
        }
        return b
    }

    /// Leaves of a JSON document with their RFC pointers.
    func leaves(_ v: Any, _ p: [String] = []) -> [[String]] {
        if let o = v as? [String: Any] { return o.flatMap { leaves($1, p + [$0]) } }
        if let a = v as? [Any] { return a.enumerated().flatMap { leaves($1, p + [String($0)]) } }
        return [p]
    }

    func replacing(_ v: Any, at p: ArraySlice<String>, with new: Any) -> Any {
        guard let k = p.first else { return new }
        if var o = v as? [String: Any] { o[k] = replacing(o[k]!, at: p.dropFirst(), with: new); return o }
        var a = v as! [Any]
        a[Int(k)!] = replacing(a[Int(k)!], at: p.dropFirst(), with: new)
        return a
    }

    @Test func randomByteMutationsNeverCrashAndAlwaysSayWhere() throws {
        var rng = SplitMix64(state: Self.seed)
        let inputs = exampleFiles.map { [UInt8](try! Data(contentsOf: $0)) }
        for i in 0..<3000 {
            let m = byteMutation(inputs[i % inputs.count], &rng)
            checkContract(m, ChainDecoder.validate(m), "seed \(Self.seed) case \(i)")
        }
    }

    /// A leaf replaced by a value of the wrong type is an error at exactly that leaf.
    @Test func wrongTypedLeavesAreReportedAtTheirPointer() throws {
        var rng = SplitMix64(state: Self.seed ^ 0xABCD)
        let docs = try exampleFiles.map { try JSONSerialization.jsonObject(with: Data(contentsOf: $0)) }
        for i in 0..<2000 {
            let doc = docs[i % docs.count]
            let all = leaves(doc).filter { !$0.isEmpty }
            let p = all.randomElement(using: &rng)!
            let mutated = replacing(doc, at: p[...], with: ["zz": [1]])
            let bytes = [UInt8](try JSONSerialization.data(withJSONObject: mutated, options: [.prettyPrinted]))
            let r = ChainDecoder.validate(bytes)
            checkContract(bytes, r, "seed \(Self.seed) tree case \(i)")
            let ptr = JSONPointer(p).description
            #expect(r.errors.contains { $0.pointer.description == ptr }, "seed \(Self.seed): \(ptr) not reported: \(r.errors)")
        }
    }

    /// The binary keeps the contract too: exit 1, one line per problem with its place, no
    /// crash output. Judged against an independent oracle, not vcpe's own decoder: what a
    /// standard JSON parser or the JSON Schema validator (Python's) refuses, the binary must
    /// refuse; what the binary accepts, both must accept.
    @Test func theBinaryRejectsMutantsCleanly() throws {
        var rng = SplitMix64(state: Self.seed ^ 0x5EED)
        let inputs = try exampleFiles.map { [UInt8](try Data(contentsOf: $0)) }
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("vcpe-fuzz-\(getpid())")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let files = try (0..<150).map { i -> URL in
            let f = dir.appendingPathComponent("m\(i).json")
            try Data(byteMutation(inputs[i % inputs.count], &rng)).write(to: f)
            return f
        }
        let oracle = try run(URL(fileURLWithPath: "/usr/bin/env"),
                             ["python3", repoFile("Tests/tools/schema_check.py").path, repoFile("chains/schema/vcpe-chain.schema.json").path] + files.map(\.path))
        #expect(oracle.status == 0, "schema checker failed: \(oracle.stderr)")
        var independent: [String: Bool] = [:]
        for line in oracle.stdout.split(separator: "\n") {
            let v = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
            independent[try #require(v["file"] as? String)] = try #require(v["valid"] as? Bool)
        }
        var rejected = 0
        for (i, f) in files.enumerated() {
            let r = try run(vcpeBinary, ["validate", f.path])
            let oracleValid = try #require(independent[f.path], "no verdict for \(f.path)")
            #expect(r.status == 0 || r.status == 1, "seed \(Self.seed) case \(i): exit \(r.status)")
            if !oracleValid { #expect(r.status == 1, "seed \(Self.seed) case \(i): the schema refuses it, the binary took it") }
            if r.status == 0 { #expect(oracleValid, "seed \(Self.seed) case \(i): accepted by the binary, refused by the oracle") }
            #expect(!r.stderr.contains("Fatal error") && !r.stderr.contains("Stack dump"))
            if r.status == 1 {
                rejected += 1
                let lines = r.stderr.split(separator: "\n")
                #expect(!lines.isEmpty)
                for l in lines { #expect(l.hasPrefix(f.path + ":"), "\(l)") }
            }
        }
        #expect(rejected > 50)
    }
}
