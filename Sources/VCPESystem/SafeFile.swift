import CSystemShim
import SystemPackage

#if canImport(Glibc)
import Glibc
#endif

/// Files a privileged process opens where someone less privileged might have put a link, a
/// FIFO or a device: never followed, never blocked on, never read past a bound.
public enum SafeFile {
    /// A regular file's bytes, opened without following a link at its last component and
    /// without blocking (a FIFO cannot hang the caller), at most `limit` bytes.
    public static func readRegular(_ path: String, limit: Int) throws(KernelError) -> [UInt8] {
        let fd = try syscall("open", path) { open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC | O_NOCTTY) }
        defer { close(fd) }
        var st = stat()
        try syscall("fstat", path) { fstat(fd, &st) }
        guard st.st_mode & S_IFMT == S_IFREG else { throw KernelError("read (not a regular file)", path, .invalidArgument) }
        guard st.st_size <= limit else { throw KernelError("read (larger than \(limit) bytes)", path, .fileTooLarge) }
        var out: [UInt8] = []
        var buf = [UInt8](repeating: 0, count: 16384)
        while true {
            let n = try syscall("read", path) { buf.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) } }
            if n == 0 { break }
            out += buf[..<n]
            if out.count > limit { throw KernelError("read (larger than \(limit) bytes)", path, .fileTooLarge) }
        }
        return out
    }

    /// The last `bytes` bytes of a regular file (a log), read without following a link at its
    /// last component: never the whole of a file someone else may have grown.
    public static func tail(_ path: String, bytes: Int = 4096) -> [UInt8]? {
        let fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC | O_NOCTTY)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0, st.st_mode & S_IFMT == S_IFREG else { return nil }
        let start = max(0, Int(st.st_size) - bytes)
        var buf = [UInt8](repeating: 0, count: min(bytes, Int(st.st_size)))
        let n = buf.withUnsafeMutableBytes { pread(fd, $0.baseAddress, $0.count, off_t(start)) }
        return n < 0 ? nil : Array(buf[..<n])
    }

    /// Opens `path` for appending, creating it with `mode` if missing; a link there is
    /// refused (ELOOP), as is anything but a regular file.
    public static func openAppend(_ path: String, mode: mode_t = 0o600) throws(KernelError) -> Int32 {
        let fd = try syscall("open", path) { open(path, O_WRONLY | O_CREAT | O_APPEND | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC | O_NOCTTY, mode) }
        var st = stat()
        if fstat(fd, &st) != 0 || st.st_mode & S_IFMT != S_IFREG {
            close(fd)
            throw KernelError("open (not a regular file)", path, .invalidArgument)
        }
        return fd
    }

    /// Replaces `name` in `directory` with `bytes` in one rename: written to a new file made
    /// with O_EXCL in the directory itself (opened without following links), synced first.
    public static func writeAtomically(_ bytes: [UInt8], to path: String, mode: mode_t = 0o600) throws(KernelError) {
        let slash = path.utf8.lastIndex(of: UInt8(ascii: "/"))
        let directory = slash.map { String(path[..<$0]) } ?? "."
        let name = slash.map { String(path[path.index(after: $0)...]) } ?? path
        let dir = try syscall("open directory", directory) { open(directory.isEmpty ? "/" : directory, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC) }
        defer { close(dir) }
        let temporary = ".\(name).\(getpid()).\(vcpe_gettid()).tmp"
        unlinkat(dir, temporary, 0)
        let fd = try syscall("create", directory + "/" + temporary) {
            openat(dir, temporary, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode)
        }
        do throws(KernelError) {
            var offset = 0
            while offset < bytes.count {
                let n = try syscall("write", path) { bytes.withUnsafeBytes { write(fd, $0.baseAddress! + offset, $0.count - offset) } }
                offset += n
            }
            try syscall("fchmod", path) { fchmod(fd, mode) }
            try syscall("fsync", path) { fsync(fd) }
            close(fd)
            try syscall("rename", path) { renameat(dir, temporary, dir, name) }
        } catch {
            close(fd)
            unlinkat(dir, temporary, 0)
            throw error
        }
    }

    /// Makes `path` a directory (and its missing parents, root's and 0755) owned by `owner`
    /// with exactly `mode`; an existing one that is a link, or not a directory, is refused.
    public static func ensureDirectory(_ path: String, mode: mode_t, owner: uid_t = 0, group: gid_t = 0) throws(KernelError) {
        var st = stat()
        if lstat(path, &st) != 0 {
            let e = Errno.lastCall
            guard e == .noSuchFileOrDirectory else { throw KernelError("stat", path, e) }
            if let slash = path.utf8.lastIndex(of: UInt8(ascii: "/")), slash != path.utf8.startIndex {
                let parent = String(path[..<slash])
                var pst = stat()
                if lstat(parent, &pst) != 0 { try ensureDirectory(parent, mode: 0o755) }
            }
            if mkdir(path, 0o700) != 0 {
                let e = Errno.lastCall
                if e != .fileExists { throw KernelError("mkdir", path, e) }
            }
            try syscall("stat", path) { lstat(path, &st) }
        }
        guard st.st_mode & S_IFMT == S_IFDIR else { throw KernelError("use as a directory (a link or a file is there)", path, .notDirectory) }
        if st.st_uid != owner || st.st_gid != group { try syscall("chown", path) { lchown(path, owner, group) } }
        if st.st_mode & 0o7777 != mode { try syscall("chmod", path) { chmod(path, mode) } }
    }

    /// Why a directory privileged state lives in is unsafe, or nil: it and every directory
    /// above it must be root's and writable by nobody else (a sticky /tmp is fine above it,
    /// and as the directory itself with `stickyItself`, for a root-owned file in it), or
    /// someone else could swap what root later opens there.
    public static func unsafeOwnership(of path: String, stickyItself: Bool = false) -> String? {
        // Where a link above it points is what counts: resolved first (the path's own last
        // component must not be a link at all).
        var st = stat()
        if lstat(path, &st) == 0, st.st_mode & S_IFMT == S_IFLNK { return "\(path) is a symbolic link" }
        guard let resolved = realpath(path, nil) else { return "\(path): \(Errno.lastCall)" }
        defer { free(resolved) }
        var current = String(cString: resolved)
        var first = true
        while true {
            var st = stat()
            guard lstat(current, &st) == 0 else { return "\(current): \(Errno.lastCall)" }
            if st.st_mode & S_IFMT == S_IFLNK, first { return "\(current) is a symbolic link" }
            if st.st_mode & S_IFMT == S_IFDIR {
                if st.st_uid != 0 { return "\(current) belongs to uid \(st.st_uid), not root" }
                let sticky = st.st_mode & S_ISVTX != 0
                if st.st_mode & 0o022 != 0 && ((first && !stickyItself) || !sticky) {
                    return "\(current) is writable by group or others (mode \(String(st.st_mode & 0o7777, radix: 8)))"
                }
            }
            first = false
            guard current != "/", let slash = current.utf8.lastIndex(of: UInt8(ascii: "/")) else { return nil }
            current = slash == current.utf8.startIndex ? "/" : String(current[..<slash])
        }
    }
}
