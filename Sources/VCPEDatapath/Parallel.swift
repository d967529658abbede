import Foundation

/// Runs `body` for 0..<count on up to `width` threads of its own at once: for calls that
/// mostly wait in the kernel (each open or close of a packet ring waits for an RCU grace
/// period), not for CPU work. Dispatch's pools are sized by CPUs and would run them 2 at a
/// time here.
package func inParallel<T: Sendable>(_ count: Int, width: Int = 64, _ body: @escaping @Sendable (Int) throws -> T) throws -> [T] {
    let results = ParallelResults<T>(count)
    var start = 0
    while start < count {
        let wave = start..<min(count, start + width)
        let group = DispatchGroup()
        for i in wave {
            group.enter()
            let thread = Thread {
                let r = Result { try body(i) }
                results.lock.withLock { results.values[i] = r }
                group.leave()
            }
            thread.start()
        }
        group.wait()
        start = wave.upperBound
    }
    return try results.values.map { try $0!.get() }
}

private final class ParallelResults<T>: @unchecked Sendable {
    let lock = NSLock()
    var values: [Result<T, any Error>?]
    init(_ n: Int) { values = Array(repeating: nil, count: n) }
}
