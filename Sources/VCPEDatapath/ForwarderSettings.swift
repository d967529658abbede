/// How the forwarding thread waits for frames.
public struct ForwarderSettings: Sendable, Hashable, Codable {
    /// Spin on every ring without sleeping (lowest latency, one core always busy).
    public var busyPoll = false
    /// Pin the forwarding thread to this CPU.
    public var cpu: Int?
    /// Frames per ring (64 KiB each, kernel memory): one ring per steered chain.
    public var ringFrames = 128
    /// When not busy-polling, how long to keep polling after the last frame before sleeping.
    public var spinMicroseconds = 50
    /// Flows each chain's kernel cache holds (the least recently used go first when full).
    public var flowEntries = 16384
    /// Cached flows idle this long are removed.
    public var flowIdleSeconds = 60
    /// The worker container's memory limit (its heap, rings' bookkeeping, the flow maps it creates).
    public var memoryBytes: Int64 = 2 << 30
    /// The worker container's limit on processes and threads.
    public var pids: Int64 = 256

    /// What `forwarder configure` accepts and the broker serves: a ring is 64 KiB a frame of
    /// kernel memory (4096 frames: 256 MiB); the kernel's hash maps take up to 2^28 buckets,
    /// and past that it refuses the map itself.
    public static let ringFramesRange = 2...4096
    public static let flowEntriesRange = 16...(1 << 30)

    public init() {}

    /// A settings file may name only what it changes.
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        busyPoll = try c.decodeIfPresent(Bool.self, forKey: .busyPoll) ?? busyPoll
        cpu = try c.decodeIfPresent(Int.self, forKey: .cpu)
        ringFrames = try c.decodeIfPresent(Int.self, forKey: .ringFrames) ?? ringFrames
        spinMicroseconds = try c.decodeIfPresent(Int.self, forKey: .spinMicroseconds) ?? spinMicroseconds
        flowEntries = try c.decodeIfPresent(Int.self, forKey: .flowEntries) ?? flowEntries
        flowIdleSeconds = try c.decodeIfPresent(Int.self, forKey: .flowIdleSeconds) ?? flowIdleSeconds
        memoryBytes = try c.decodeIfPresent(Int64.self, forKey: .memoryBytes) ?? memoryBytes
        pids = try c.decodeIfPresent(Int64.self, forKey: .pids) ?? pids
    }
}
