#if canImport(Glibc)
import Glibc
#endif

/// Runs `body` on a new OS thread and waits for it. The thread ends with the call, so a
/// namespace switch made there can never leak into a pool thread that other work reuses.
public func onFreshThread<T>(_ body: @escaping () throws -> T) throws -> T {
    var result: Result<T, any Error>?
    try runOnNewThread { result = Result { try body() } }
    return try result!.get()
}

/// The job handed to the new thread; the caller waits, so only one thread touches it at a time.
private final class ThreadJob: @unchecked Sendable {
    let run: () -> Void
    init(_ run: @escaping () -> Void) { self.run = run }
}

private func runOnNewThread(_ job: @escaping () -> Void) throws(KernelError) {
    let arg = Unmanaged.passRetained(ThreadJob(job)).toOpaque()
    var thread = pthread_t()
    let rc = pthread_create(&thread, nil, { raw in
        Unmanaged<ThreadJob>.fromOpaque(raw!).takeRetainedValue().run()
        return nil
    }, arg)
    guard rc == 0 else {
        Unmanaged<ThreadJob>.fromOpaque(arg).release()
        throw KernelError("pthread_create", "namespace worker", .init(rawValue: rc))
    }
    pthread_join(thread, nil)
}
