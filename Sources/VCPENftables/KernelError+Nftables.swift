import VCPESystem

extension KernelError {
    /// The ruleset changed between reading it and committing: someone else was writing.
    public var isConcurrentChange: Bool { errno.rawValue == 85 }  // ERESTART
}
