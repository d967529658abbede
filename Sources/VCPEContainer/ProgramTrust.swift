import Crypto
import Foundation
import SystemPackage
import VCPESystem

/// The digests of the programs vcpe runs in containers, recorded by `vcpe trust` when vcpe
/// is installed or a program upgraded: a container starts only a program whose SHA-256
/// matches its record, so a replaced wireguard-go never runs with NET_ADMIN. (swift-crypto
/// hashes with the CPU's SHA extensions where BoringSSL finds them: SHA-NI on x86_64, the
/// ARMv8 SHA2 instructions on arm64.) The record is root's (0600) in the state directory.
public struct ProgramTrust: Sendable {
    public let file: String

    public init(file: String) { self.file = file }

    /// What the record holds: program path -> lowercase hex SHA-256.
    struct Record: Codable { var programs: [String: String] }

    /// Programs are read whole; none vcpe runs comes near this.
    static let programLimit = 1 << 30

    /// The SHA-256 of a program file, in lowercase hex, read in 1 MiB pieces.
    public static func digest(of path: String) throws(KernelError) -> String {
        let fd = try syscall("open", path) { open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK) }
        defer { close(fd) }
        var st = stat()
        try syscall("fstat", path) { fstat(fd, &st) }
        guard st.st_mode & S_IFMT == S_IFREG else { throw KernelError("hash (not a regular file)", path, .invalidArgument) }
        let size = 1 << 20
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: size, alignment: 16)
        defer { buffer.deallocate() }
        var hasher = SHA256()
        var total = 0
        while true {
            let n = read(fd, buffer.baseAddress, size)
            if n < 0 {
                let e = Errno.lastCall
                if e == .interrupted { continue }
                throw KernelError("read", path, e)
            }
            if n == 0 { break }
            total += n
            guard total <= programLimit else { throw KernelError("hash (larger than 1 GiB)", path, .fileTooLarge) }
            hasher.update(bufferPointer: UnsafeRawBufferPointer(rebasing: buffer[..<n]))
        }
        return hasher.finalize().map { String($0, radix: 16).leftPadded(to: 2) }.joined()
    }

    func load() throws -> Record {
        guard access(file, F_OK) == 0 else { return Record(programs: [:]) }
        let bytes = try SafeFile.readRegular(file, limit: 1 << 20)
        do { return try JSONDecoder().decode(Record.self, from: Data(bytes)) } catch {
            throw ContainerError("trust", "\(file) cannot be read: \(error)")
        }
    }

    /// Records the digests of `programs` (added to, or replacing, what was recorded for them).
    @discardableResult
    public func record(_ programs: [String]) throws -> [(path: String, digest: String)] {
        var r = try load()
        var out: [(String, String)] = []
        for p in programs {
            let d = try Self.digest(of: p)
            r.programs[p] = d
            out.append((p, d))
        }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        try SafeFile.writeAtomically(Array(encoder.encode(r)), to: file, mode: 0o600)
        return out
    }

    /// Refuses a program that has no record, or whose file no longer has the recorded digest.
    public func verify(_ program: String, for id: String) throws {
        // A file someone else could replace between this check and its start proves nothing.
        var st = stat()
        guard stat(program, &st) == 0 else { throw ContainerError(id, "\(program) cannot be checked: \(Errno.lastCall)") }
        if st.st_uid != 0 || st.st_mode & 0o022 != 0 {
            throw ContainerError(id, "\(program) is not root's alone (uid \(st.st_uid), mode \(String(st.st_mode & 0o7777, radix: 8))); refusing to run it")
        }
        if let parent = Optional(URL(fileURLWithPath: program).deletingLastPathComponent().path), let why = SafeFile.unsafeOwnership(of: parent, stickyItself: true) {
            throw ContainerError(id, "\(program) lies where someone else could replace it: \(why)")
        }
        guard let trusted = try load().programs[program] else {
            throw ContainerError(id, "\(program) is not trusted: no digest of it in \(file) (run `vcpe trust` after installing or upgrading it)")
        }
        let now: String
        do { now = try Self.digest(of: program) } catch { throw ContainerError(id, "\(program) cannot be checked: \(error)") }
        guard now == trusted else {
            throw ContainerError(id, "\(program) has SHA-256 \(now.prefix(16))…, not the trusted \(trusted.prefix(16))…: it changed since `vcpe trust`; refusing to run it")
        }
    }
}

extension String {
    func leftPadded(to width: Int) -> String { count >= width ? self : String(repeating: "0", count: width - count) + self }
}
