import Synchronization

/// Counters the forwarding thread adds to and the control thread reads: relaxed loads and
/// stores, no atomic read-modify-write, since only one thread ever writes them.
final class Counters: @unchecked Sendable {
    let count: Int
    private let cells: UnsafeMutablePointer<Atomic<UInt64>>

    init(count: Int) {
        self.count = count
        cells = .allocate(capacity: max(1, count))
        for i in 0..<count { (cells + i).initialize(to: Atomic(0)) }
    }

    deinit {
        cells.deinitialize(count: count)
        cells.deallocate()
    }

    /// Forwarding thread only.
    @inline(__always)
    func add(_ i: Int, _ n: UInt64 = 1) {
        let c = cells + i
        c.pointee.store(c.pointee.load(ordering: .relaxed) &+ n, ordering: .relaxed)
    }

    func value(_ i: Int) -> UInt64 { cells[i].load(ordering: .relaxed) }
}
