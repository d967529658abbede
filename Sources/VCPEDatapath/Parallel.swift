import Dispatch

/// Runs `body` for 0..<count on as many threads at once: for calls that mostly wait in the
/// kernel (each open or close of a packet ring waits for an RCU grace period), not for CPU
/// work. A custom concurrent queue is overcommitting: blocked items do not hold others back.
func inParallel<T: Sendable>(_ count: Int, _ body: @escaping @Sendable (Int) throws -> T) throws -> [T] {
    let results = ParallelResults<T>(count)
    let queue = DispatchQueue(label: "vcpe.parallel", attributes: .concurrent)
    let group = DispatchGroup()
    for i in 0..<count {
        queue.async(group: group) {
            let r = Result { try body(i) }
            queue.async(group: group, flags: .barrier) { results.values[i] = r }
        }
    }
    group.wait()
    return try results.values.map { try $0!.get() }
}

/// Written under the queue's barrier, read after the group is done.
private final class ParallelResults<T>: @unchecked Sendable {
    var values: [Result<T, any Error>?]
    init(_ n: Int) { values = Array(repeating: nil, count: n) }
}
