import Foundation
import Testing
import VCPEClassifier
import VCPENet

/// Rule sets replaced while threads classify: every batch a reader classifies is answered
/// wholly by the old rules or wholly by the new ones, never a mix, and nothing crashes
/// when a replaced set is freed.
@Suite struct LiveClassifierTests {
    @Test func replacingWhileClassifyingNeverTearsAResult() throws {
        var r = RandomRules(seed: 99)
        let setA = (0..<300).map { _ in r.rule(v6Share: 1_000_000) }
        let setB = (0..<300).map { _ in r.rule(v6Share: 1_000_000) }
        let keys = (0..<64).map { _ in r.key() }.filter { $0.src.family == .v4 }
        let rows = CompiledClassifier.encode(keys, family: .v4)
        let answers = try [setA, setB].map { set in try CompiledClassifier(set).classify(keys).map { $0.map(UInt32.init) ?? .max } }
        #expect(answers[0] != answers[1], "the two sets must tell apart")

        let live = LiveClassifier(try CompiledClassifier(setA), readers: 4)
        let stop = ManagedAtomicFlag()
        let torn = ManagedAtomicFlag()
        let counts = (0..<2).map { _ in Counter() }
        let sawA = ManagedAtomicFlag(), sawB = ManagedAtomicFlag()
        let threads = (0..<2).map { t in
            Thread {
                let reader = live.reader()!
                var out = [UInt32](repeating: 0, count: keys.count)
                while !stop.isSet {
                    reader.withCurrent { $0.classify(rows: rows, count: keys.count, family: .v4, kernel: .best, into: &out) }
                    if out == answers[0] { sawA.set() } else if out == answers[1] { sawB.set() } else { torn.set() }
                    counts[t].add()
                }
            }
        }
        threads.forEach { $0.start() }
        // The first two swaps wait (up to 5 s, not a guess at thread timing) until a reader
        // has classified under the set just put in service; the rest swap as fast as they can.
        func waitUntil(_ flag: ManagedAtomicFlag) {
            let end = Date().addingTimeInterval(5)
            while !flag.isSet && Date() < end { usleep(100) }
        }
        waitUntil(sawA)
        for i in 0..<200 {
            live.replace(with: try CompiledClassifier(i % 2 == 0 ? setB : setA))
            if i == 0 { waitUntil(sawB) }
        }
        stop.set()
        while threads.contains(where: { !$0.isFinished }) { usleep(1000) }
        #expect(!torn.isSet)
        #expect(sawA.isSet && sawB.isSet, "readers saw both rule sets in service")
        #expect(counts.allSatisfy { $0.value > 0 }, "both readers classified")
    }

    @Test func readersAreBounded() throws {
        let live = LiveClassifier(try CompiledClassifier([]), readers: 2)
        let a = live.reader(), b = live.reader()
        #expect(a != nil && b != nil && live.reader() == nil)
        _ = (a, b)
    }
}

final class ManagedAtomicFlag: @unchecked Sendable {
    private let lock = NSLock()
    private var value = false
    var isSet: Bool { lock.withLock { value } }
    func set() { lock.withLock { value = true } }
}

final class Counter: @unchecked Sendable {
    private let lock = NSLock()
    private var n = 0
    var value: Int { lock.withLock { n } }
    func add() { lock.withLock { n += 1 } }
}
