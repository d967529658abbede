import Synchronization

/// The rule set in service, replaced while other threads keep classifying.
public typealias LiveClassifier = Live<CompiledClassifier>

/// An immutable object in service, replaced while other threads keep using it: readers take
/// no lock, and a replaced object is freed only once no reader can still be using it
/// (epoch-based reclamation). Each reading thread holds its own `Reader`.
public final class Live<Value: AnyObject & Sendable>: @unchecked Sendable {
    /// The object in service, retained once, as a bit pattern.
    private let current: Atomic<UInt>
    private let epoch = Atomic<UInt64>(1)
    /// Per reader: the epoch it entered in, 0 when outside.
    private let slots: UnsafeMutablePointer<Atomic<UInt64>>
    public let capacity: Int
    /// Which reader slots are taken.
    private let registry: Mutex<[Bool]>
    private let writer = Mutex<Void>(())

    public init(_ initial: Value, readers capacity: Int = 64) {
        current = Atomic(UInt(bitPattern: Unmanaged.passRetained(initial).toOpaque()))
        self.capacity = capacity
        slots = .allocate(capacity: capacity)
        for i in 0..<capacity { (slots + i).initialize(to: Atomic(0)) }
        registry = Mutex([Bool](repeating: false, count: capacity))
    }

    deinit {
        Unmanaged<Value>.fromOpaque(UnsafeRawPointer(bitPattern: current.load(ordering: .relaxed))!).release()
        slots.deinitialize(count: capacity)
        slots.deallocate()
    }

    /// A classifying thread's handle; nil when all `capacity` are taken.
    public func reader() -> Reader? {
        let slot = registry.withLock { used -> Int? in
            guard let i = used.firstIndex(of: false) else { return nil }
            used[i] = true
            return i
        }
        return slot.map { Reader(live: self, slot: $0) }
    }

    public final class Reader: @unchecked Sendable {
        let live: Live
        let slot: Int

        init(live: Live, slot: Int) {
            self.live = live
            self.slot = slot
        }

        deinit { live.registry.withLock { $0[slot] = false } }

        /// Runs `body` with the object in service; it stays valid until `body` returns.
        public func withCurrent<T>(_ body: (Value) throws -> T) rethrows -> T {
            let mine = live.slots + slot
            mine.pointee.store(live.epoch.load(ordering: .sequentiallyConsistent), ordering: .sequentiallyConsistent)
            defer { mine.pointee.store(0, ordering: .releasing) }
            let bits = live.current.load(ordering: .sequentiallyConsistent)
            return try body(Unmanaged<Value>.fromOpaque(UnsafeRawPointer(bitPattern: bits)!).takeUnretainedValue())
        }
    }

    /// Puts `next` in service; returns once no reader can still see the one it replaced.
    public func replace(with next: Value) {
        writer.withLock { _ in
            let old = current.exchange(UInt(bitPattern: Unmanaged.passRetained(next).toOpaque()), ordering: .sequentiallyConsistent)
            let now = epoch.add(1, ordering: .sequentiallyConsistent).newValue
            // Readers that entered before the exchange are in an older epoch: wait them out.
            for i in 0..<capacity {
                while true {
                    let e = (slots + i).pointee.load(ordering: .sequentiallyConsistent)
                    if e == 0 || e >= now { break }
                    sched_yield()
                }
            }
            Unmanaged<Value>.fromOpaque(UnsafeRawPointer(bitPattern: old)!).release()
        }
    }
}

#if canImport(Glibc)
import Glibc
#endif
