import VCPEPolicy
import VCPEForwarder
import Foundation
import SystemPackage
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

    public var customersDirectory: URL { directory.appendingPathComponent("customers") }

    // MARK: - Lock

    /// Serialises vcpe processes: waits for any other holder, then holds until `unlock`.
    /// The state is read once the lock is held, all of it: a file that cannot be read is an
    /// error that names it here, before anything changes, never an empty state in its place.
    ///
    /// `isolatingCustomers` (the agent): a customer's own record or key that cannot be read
    /// is that customer's error, in `unreadable`, not the whole state's; every other file
    /// still has to read. A command reads the state whole: it may act on any customer.
    public func lock(isolatingCustomers: Bool = false, onWait: () -> Void = {}) throws {
        guard lockFD < 0 else { return }
        let fd = open(directory.appendingPathComponent("lock").path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK, 0o600)
        guard fd >= 0 else { throw StateError("cannot open the lock file in \(directory.path): errno \(Errno.lastCall.rawValue)") }
        if flock(fd, LOCK_EX | LOCK_NB) != 0 {
            onWait()
            while flock(fd, LOCK_EX) != 0 && Errno.lastCall == .interrupted {}
        }
        lockFD = fd
        do { try load(isolatingCustomers: isolatingCustomers) } catch {
            unlock()
            throw error
        }
    }

    public func unlock() {
        guard lockFD >= 0 else { return }
        flock(lockFD, LOCK_UN)
        close(lockFD)
        lockFD = -1
    }

    // MARK: - Format

    /// The layout of the state directory this vcpe reads and writes (`format.json`).
    /// 0 is the layout before the file existed; `load` moves it to 1.
    public static let formatVersion = 1
    private struct Format: Codable { var version: Int }
    private var formatFile: URL { directory.appendingPathComponent("format.json") }

    /// Customers whose record or key could not be read, with why (only when the lock was
    /// taken isolating customers).
    public private(set) var unreadable: [String: String] = [:]

    /// Checks the format (migrating an older layout) and reads every state file.
    private func load(isolatingCustomers: Bool) throws {
        unreadable = [:]
        let version: Int
        if let f: Format = try read(formatFile) {
            version = f.version
        } else {
            version = 0
        }
        guard version <= Self.formatVersion else {
            throw StateError("state directory \(directory.path) has format \(version), written by a newer vcpe; this one reads format \(Self.formatVersion)")
        }
        if version < Self.formatVersion { try migrate(from: version) }
        var records: [String: CustomerRecord] = [:]
        for f in try list(customersDirectory) where f.hasSuffix(".json") {
            let customer = String(f.dropLast(5))
            do { records[customer] = try read(customersDirectory.appendingPathComponent(f)) } catch where isolatingCustomers {
                unreadable[customer] = "\(error)"
            }
        }
        let transitFile = directory.appendingPathComponent("transit.json")
        let transit: TransitAllocator? = try read(transitFile)
        // Customers with no allocations on record: a fresh allocator would hand out their /31s again.
        guard transit != nil || (records.isEmpty && unreadable.isEmpty) else {
            throw StateError("state file \(transitFile.path) is missing while \(records.count) customer(s) are recorded; vcpe will not allocate transit addresses afresh: restore it")
        }
        cache = Cache(records: records,
                      transit: transit ?? TransitAllocator(),
                      segments: try read(directory.appendingPathComponent("segments.json")) ?? [],
                      retired: try read(directory.appendingPathComponent("retired.json")) ?? [])
        for f in try list(keysDirectory) where f.hasSuffix(".json") {
            let customer = String(f.dropLast(5))
            do {
                guard let stored: StoredKey = try read(keysDirectory.appendingPathComponent(f)) else { continue }  // gone meanwhile
                guard let key = WireGuardKey(base64: stored.privateKey) else {
                    throw StateError("state file \(keysDirectory.path)/\(f) does not hold a WireGuard key; restore it (the peers know its public key) or delete the customer")
                }
                cache.keys[customer] = key
            } catch where isolatingCustomers {
                unreadable[customer] = "\(error)"
            }
        }
    }

    /// A state directory's entries; one that does not exist has none, one that cannot be
    /// read is an error (not an empty directory).
    private func list(_ dir: URL) throws -> [String] {
        var st = stat()
        guard lstat(dir.path, &st) == 0 else { return [] }
        do { return try FileManager.default.contentsOfDirectory(atPath: dir.path) } catch {
            throw StateError("state directory \(dir.path) cannot be read: \(error)")
        }
    }

    /// Format 0 (no format file) to 1: the same files; what changed is who may read what.
    /// State files become root's alone, the forwarder's directory its new shape (the
    /// worker's own `run/`, chain files readable by it).
    private func migrate(from version: Int) throws {
        for sub in ["", "customers", "keys"] {
            let dir = sub.isEmpty ? directory.path : directory.appendingPathComponent(sub).path
            for f in (try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? [] where f.hasSuffix(".json") {
                var st = stat()
                if lstat(dir + "/" + f, &st) == 0, st.st_mode & S_IFMT == S_IFREG { chmod(dir + "/" + f, 0o600) }
            }
        }
        // Format 0 wrote no allocations for chains without transit links; one with such
        // links and no file lost it.
        let transit = directory.appendingPathComponent("transit.json")
        if access(transit.path, F_OK) != 0 {
            for f in try list(customersDirectory) where f.hasSuffix(".json") {
                let record: CustomerRecord? = try read(customersDirectory.appendingPathComponent(f))
                if let chain = record.flatMap({ ChainDecoder.validate($0.descriptor).chain }),
                   Topology.resolve(chain).links.contains(where: { $0.role == .transit }) {
                    throw StateError("state file \(transit.path) is missing while customer \(chain.customer) has transit links; vcpe will not allocate them afresh: restore it")
                }
            }
            try write(TransitAllocator(), to: transit)
        }
        if FileManager.default.fileExists(atPath: directory.appendingPathComponent("forwarder").path) {
            let paths = ForwarderPaths(state: directory.path)
            try paths.prepare()
            // Format 0's worker could write here: only regular files are kept (and made
            // readable by the new worker), anything else it may have planted goes.
            for f in (try? FileManager.default.contentsOfDirectory(atPath: paths.chains)) ?? [] {
                let path = paths.chains + "/" + f
                var st = stat()
                guard lstat(path, &st) == 0 else { continue }
                if st.st_mode & S_IFMT == S_IFREG && st.st_nlink == 1 { lchown(path, 0, 0); chmod(path, 0o644) } else { unlink(path) }
            }
            unlink(paths.directory + "/control.sock")  // format 0's place; a running worker answers on run/ once restarted
        }
        try write(Format(version: Self.formatVersion), to: formatFile)
    }

    // MARK: - Records

    public struct CustomerRecord: Codable, Sendable {
        /// The descriptor as the operator wrote it: re-validated when read back.
        public var descriptor: String
        public var appliedAt: Date
    }

    /// What `load` read, kept current by every save.
    private struct Cache {
        var records: [String: CustomerRecord] = [:]
        var transit = TransitAllocator()
        var segments: Set<String> = []
        var retired: Set<String> = []
        var keys: [String: WireGuardKey] = [:]
        var chains: [String: Chain?] = [:]
    }
    private var cache = Cache()

    public func customers() -> [String] { cache.records.keys.sorted() }

    public func record(_ customer: String) -> CustomerRecord? { cache.records[customer] }

    /// The chain of the last successful apply, if its record is still valid (a descriptor
    /// today's validation refuses reads as none: apply with a valid one, or delete).
    public func lastApplied(_ customer: String) -> Chain? {
        if let known = cache.chains[customer] { return known }
        let chain = record(customer).flatMap { ChainDecoder.validate($0.descriptor).chain }
        cache.chains[customer] = .some(chain)
        return chain
    }

    public func save(_ record: CustomerRecord, for customer: String) throws {
        // The allocations are on record whenever a customer is, even with none to keep
        // (a chain of one service): a missing file then means a lost one.
        if access(directory.appendingPathComponent("transit.json").path, F_OK) != 0 { try save(cache.transit) }
        try write(record, to: customersDirectory.appendingPathComponent("\(customer).json"))
        cache.records[customer] = record
        cache.chains[customer] = nil
    }

    public func removeRecord(_ customer: String) throws {
        let path = customersDirectory.appendingPathComponent("\(customer).json").path
        if unlink(path) != 0 {
            let e = Errno.lastCall
            if e != .noSuchFileOrDirectory { throw StateError("cannot remove \(path): errno \(e.rawValue)") }
        }
        cache.records[customer] = nil
        cache.chains[customer] = nil
    }

    public func transitAllocator() -> TransitAllocator { cache.transit }

    public func save(_ allocator: TransitAllocator) throws {
        try write(allocator, to: directory.appendingPathComponent("transit.json"))
        cache.transit = allocator
    }

    /// WAN segment bridges vcpe created (and so may remove once no customer uses them).
    public func createdSegments() -> Set<String> { cache.segments }

    public func save(createdSegments: Set<String>) throws {
        try write(createdSegments, to: directory.appendingPathComponent("segments.json"))
        cache.segments = createdSegments
    }

    /// Bridges delete took out of service (renamed `vx-*`), which `gc` removes: only these,
    /// never another link that happens to carry the prefix.
    public func retiredLinks() -> Set<String> { cache.retired }

    public func save(retiredLinks: Set<String>) throws {
        try write(retiredLinks, to: directory.appendingPathComponent("retired.json"))
        cache.retired = retiredLinks
    }

    // MARK: - Keys

    /// Private keys live apart from the records, readable by root only (directory 0700,
    /// files 0600), and are never printed.
    var keysDirectory: URL { directory.appendingPathComponent("keys") }

    private struct StoredKey: Codable { var privateKey: String }

    public func wireguardKey(_ customer: String) -> WireGuardKey? { cache.keys[customer] }

    public func save(wireguardKey key: WireGuardKey, for customer: String) throws {
        try SafeFile.ensureDirectory(keysDirectory.path, mode: 0o700)
        try write(StoredKey(privateKey: key.base64), to: keysDirectory.appendingPathComponent("\(customer).json"))
        cache.keys[customer] = key
    }

    public func removeWireguardKey(_ customer: String) {
        try? FileManager.default.removeItem(at: keysDirectory.appendingPathComponent("\(customer).json"))
        cache.keys[customer] = nil
    }

    // MARK: - Files

    /// A state file's value; nil only when the file does not exist. One that exists and
    /// cannot be read or decoded is an error naming it.
    private func read<T: Decodable>(_ url: URL) throws -> T? {
        let bytes: [UInt8]
        do { bytes = try SafeFile.readRegular(url.path, limit: 64 << 20) } catch {
            if error.errno == .noSuchFileOrDirectory { return nil }
            throw StateError("state file \(url.path) cannot be read: \(error)")
        }
        let d = JSONDecoder()
        d.dateDecodingStrategy = .iso8601
        do { return try d.decode(T.self, from: Data(bytes)) } catch {
            throw StateError("state file \(url.path) is corrupt (\(Self.reason(error))); vcpe will not start over from an empty state: restore the file, or move it away to start over knowingly")
        }
    }

    private static func reason(_ error: any Error) -> String {
        switch error {
        case DecodingError.dataCorrupted(let c): c.debugDescription
        case DecodingError.keyNotFound(let k, _): "no \(k.stringValue)"
        case DecodingError.typeMismatch(_, let c), DecodingError.valueNotFound(_, let c): "\(c.codingPath.map(\.stringValue).joined(separator: ".")): \(c.debugDescription)"
        default: "\(error)"
        }
    }

    /// Write a new file (O_EXCL, from the directory's descriptor, links never followed),
    /// fsync it, rename it over the old one: a crash leaves either the old file or the new
    /// one, never a torn one. Root's alone (0600).
    private func write<T: Encodable>(_ value: T, to url: URL) throws {
        let e = JSONEncoder()
        e.outputFormatting = [.prettyPrinted, .sortedKeys]
        e.dateEncodingStrategy = .iso8601
        do { try SafeFile.writeAtomically(Array(e.encode(value)), to: url.path, mode: 0o600) } catch let error as KernelError {
            throw StateError("cannot write \(url.path): \(error)")
        }
        let dfd = open(url.deletingLastPathComponent().path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW)
        if dfd >= 0 { fsync(dfd); close(dfd) }
    }
}
