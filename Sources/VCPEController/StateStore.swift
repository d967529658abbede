import Foundation
import VCPEDescriptor
import VCPESystem
import VCPEWireGuard

/// What vcpe remembers between runs, under one directory (default /var/lib/vcpe): transit
/// allocations, the last applied descriptor per customer, the WAN segments vcpe created.
/// The kernel stays the truth for what exists; this only keeps what cannot be read back.
public final class StateStore {
    public static let defaultDirectory = "/var/lib/vcpe"

    public let directory: URL
    private var lockFD: Int32 = -1

    /// Root's directory (made 0700 if missing), refused if anyone else could write it or a
    /// directory above it: root opens, runs and hands out what it finds there.
    public init(directory: String = StateStore.defaultDirectory) throws {
        let path = URL(fileURLWithPath: directory).standardizedFileURL.path
        self.directory = URL(fileURLWithPath: path)
        var st = stat()
        if lstat(path, &st) != 0 { try SafeFile.ensureDirectory(path, mode: 0o700) }
        if let reason = SafeFile.unsafeOwnership(of: path) {
            throw StateError("state directory \(path) is not safe for root to keep state in: \(reason)")
        }
        if lstat(customersDirectory.path, &st) != 0 { try SafeFile.ensureDirectory(customersDirectory.path, mode: 0o700) }
    }

    deinit { unlock() }

    var customersDirectory: URL { directory.appendingPathComponent("customers") }

    // MARK: - Lock

    /// Serialises vcpe processes: waits for any other holder, then holds until `unlock`.
    public func lock(onWait: () -> Void = {}) throws {
        guard lockFD < 0 else { return }
        let fd = open(directory.appendingPathComponent("lock").path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK, 0o600)
        guard fd >= 0 else { throw StateError("cannot open the lock file in \(directory.path): errno \(errno)") }
        if flock(fd, LOCK_EX | LOCK_NB) != 0 {
            onWait()
            while flock(fd, LOCK_EX) != 0 && errno == EINTR {}
        }
        lockFD = fd
    }

    public func unlock() {
        guard lockFD >= 0 else { return }
        flock(lockFD, LOCK_UN)
        close(lockFD)
        lockFD = -1
    }

    // MARK: - Records

    public struct CustomerRecord: Codable, Sendable {
        /// The descriptor as the operator wrote it: re-validated when read back.
        public var descriptor: String
        public var appliedAt: Date
    }

    public func customers() -> [String] {
        let files = (try? FileManager.default.contentsOfDirectory(atPath: customersDirectory.path)) ?? []
        return files.filter { $0.hasSuffix(".json") }.map { String($0.dropLast(5)) }.sorted()
    }

    public func record(_ customer: String) -> CustomerRecord? {
        read(customersDirectory.appendingPathComponent("\(customer).json"))
    }

    /// The chain of the last successful apply, if the record is readable and still valid.
    public func lastApplied(_ customer: String) -> Chain? {
        record(customer).flatMap { ChainDecoder.validate($0.descriptor).chain }
    }

    public func save(_ record: CustomerRecord, for customer: String) throws {
        try write(record, to: customersDirectory.appendingPathComponent("\(customer).json"))
    }

    public func removeRecord(_ customer: String) throws {
        try? FileManager.default.removeItem(at: customersDirectory.appendingPathComponent("\(customer).json"))
    }

    public func transitAllocator() -> TransitAllocator {
        read(directory.appendingPathComponent("transit.json")) ?? TransitAllocator()
    }

    public func save(_ allocator: TransitAllocator) throws {
        try write(allocator, to: directory.appendingPathComponent("transit.json"))
    }

    /// WAN segment bridges vcpe created (and so may remove once no customer uses them).
    public func createdSegments() -> Set<String> {
        read(directory.appendingPathComponent("segments.json")) ?? []
    }

    public func save(createdSegments: Set<String>) throws {
        try write(createdSegments, to: directory.appendingPathComponent("segments.json"))
    }

    /// Bridges delete took out of service (renamed `vx-*`), which `gc` removes: only these,
    /// never another link that happens to carry the prefix.
    public func retiredLinks() -> Set<String> {
        read(directory.appendingPathComponent("retired.json")) ?? []
    }

    public func save(retiredLinks: Set<String>) throws {
        try write(retiredLinks, to: directory.appendingPathComponent("retired.json"))
    }

    // MARK: - Keys

    /// Private keys live apart from the records, readable by root only (directory 0700,
    /// files 0600), and are never printed.
    var keysDirectory: URL { directory.appendingPathComponent("keys") }

    private struct StoredKey: Codable { var privateKey: String }

    public func wireguardKey(_ customer: String) -> WireGuardKey? {
        let stored: StoredKey? = read(keysDirectory.appendingPathComponent("\(customer).json"))
        return stored.flatMap { WireGuardKey(base64: $0.privateKey) }
    }

    public func save(wireguardKey key: WireGuardKey, for customer: String) throws {
        try SafeFile.ensureDirectory(keysDirectory.path, mode: 0o700)
        try write(StoredKey(privateKey: key.base64), to: keysDirectory.appendingPathComponent("\(customer).json"))
    }

    public func removeWireguardKey(_ customer: String) {
        try? FileManager.default.removeItem(at: keysDirectory.appendingPathComponent("\(customer).json"))
    }

    // MARK: - Files

    private func read<T: Decodable>(_ url: URL) -> T? {
        guard let data = try? Data(contentsOf: url) else { return nil }
        let d = JSONDecoder()
        d.dateDecodingStrategy = .iso8601
        return try? d.decode(T.self, from: data)
    }

    /// Write a new file (O_EXCL, from the directory's descriptor, links never followed),
    /// fsync it, rename it over the old one: a crash leaves either the old file or the new
    /// one, never a torn one. Root's alone (0600).
    private func write<T: Encodable>(_ value: T, to url: URL) throws {
        let e = JSONEncoder()
        e.outputFormatting = [.prettyPrinted, .sortedKeys]
        e.dateEncodingStrategy = .iso8601
        do { try SafeFile.writeAtomically(Array(e.encode(value)), to: url.path, mode: 0o600) } catch let error as SystemError {
            throw StateError("cannot write \(url.path): \(error)")
        }
        let dfd = open(url.deletingLastPathComponent().path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW)
        if dfd >= 0 { fsync(dfd); close(dfd) }
    }
}

public struct StateError: Error, CustomStringConvertible {
    public var description: String
    init(_ d: String) { description = d }
}
