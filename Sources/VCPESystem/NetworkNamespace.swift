import CSystemShim
import SystemPackage

#if canImport(Glibc)
import Glibc
#endif

/// Named network namespaces, exactly where `ip netns` keeps them: a bind mount of a
/// namespace file at /run/netns/NAME, on a shared mount so other mount namespaces see it.
public enum NetworkNamespace {
    public static let runDirectory = "/run/netns"

    public static func path(_ name: String) -> String { "\(runDirectory)/\(name)" }

    /// Creates a new namespace. Throws EEXIST if one of that name exists.
    public static func create(_ name: String) throws(KernelError) {
        try validate(name)
        try prepareRunDirectory()
        let target = path(name)
        // O_EXCL: the mount point file is ours or the name is taken. A file there that is not
        // a mounted namespace is what a create killed before its bind mount leaves: reclaim it.
        var fd = Glibc.open(target, O_RDONLY | O_CREAT | O_EXCL, 0o444)
        var failure = fd < 0 ? Errno.lastCall : nil
        if failure == .fileExists, !exists(name) {
            unlink(target)
            fd = Glibc.open(target, O_RDONLY | O_CREAT | O_EXCL, 0o444)
            failure = fd < 0 ? Errno.lastCall : nil
        }
        if let failure { throw KernelError("create", target, failure) }
        close(fd)
        do {
            try runOnFreshThread { () throws(KernelError) in
                try syscall("unshare(CLONE_NEWNET) for", name) { vcpe_unshare(vcpe_clone_newnet()) }
                // /proc/self names the main thread; this thread's new namespace is thread-self.
                try syscall("bind-mount namespace onto", target) {
                    vcpe_mount("/proc/thread-self/ns/net", target, "none", vcpe_ms_bind(), nil)
                }
            }
        } catch {
            unlink(target)
            throw error
        }
    }

    /// Creates the namespace unless it exists; true when it was created.
    @discardableResult
    public static func ensure(_ name: String) throws(KernelError) -> Bool {
        do {
            try create(name)
            return true
        } catch where error.errno == .fileExists && exists(name) {
            return false
        }
    }

    /// Removes a namespace; one that is already gone is success. Its interfaces go with it
    /// (the kernel removes them in the background once the last reference closes).
    public static func remove(_ name: String) throws(KernelError) {
        try validate(name)
        let target = path(name)
        if vcpe_umount2(target, vcpe_mnt_detach()) != 0 {
            let e = Errno.lastCall
            // EINVAL: not a mount point (a stale file); ENOENT: already gone.
            guard e == .invalidArgument || e == .noSuchFileOrDirectory else {
                throw KernelError("unmount namespace", target, e)
            }
        }
        if unlink(target) != 0 {
            let e = Errno.lastCall
            guard e == .noSuchFileOrDirectory else { throw KernelError("remove namespace file", target, e) }
        }
    }

    public static func exists(_ name: String) -> Bool {
        // A mounted namespace file is on nsfs; a stale leftover is a plain file on tmpfs.
        vcpe_is_nsfs(path(name)) == 1
    }

    /// Names of the mounted namespaces, optionally only those starting with `prefix` (checked
    /// before anything is stat-ed: hosts may have thousands).
    public static func list(prefix: String = "") throws(KernelError) -> [String] {
        try entries(prefix: prefix).filter(exists)
    }

    /// Every name under the run directory, mounted or not: a create killed before its bind
    /// mount leaves a plain file, which `remove` clears like a namespace.
    public static func entries(prefix: String = "") throws(KernelError) -> [String] {
        guard let dir = opendir(runDirectory) else {
            let e = Errno.lastCall
            if e == .noSuchFileOrDirectory { return [] }
            throw KernelError("list", runDirectory, e)
        }
        defer { closedir(dir) }
        var names: [String] = []
        while let entry = readdir(dir) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { String(cString: $0.bindMemory(to: CChar.self).baseAddress!) }
            if name != "." && name != ".." && name.hasPrefix(prefix) { names.append(name) }
        }
        return names.sorted()
    }

    /// An open descriptor of the namespace; the caller closes it.
    public static func open(_ name: String) throws(KernelError) -> FileDescriptor {
        try validate(name)
        let p = path(name)
        return FileDescriptor(rawValue: try syscall("open namespace", p) { Glibc.open(p, O_RDONLY | O_CLOEXEC) })
    }

    /// Runs `body` on a fresh thread switched into the namespace (nil: the caller's own).
    /// Use it only to open sockets and files: they stay bound to the namespace afterwards.
    public static func perform<T>(in name: String?, _ body: @escaping () throws -> T) throws -> T {
        guard let name else { return try onFreshThread(body) }
        let fd = try open(name)
        defer { try? fd.close() }
        return try onFreshThread {
            try syscall("setns into", name) { vcpe_setns(fd.rawValue, vcpe_clone_newnet()) }
            return try body()
        }
    }

    private static func runOnFreshThread(_ body: @escaping () throws(KernelError) -> Void) throws(KernelError) {
        do {
            try onFreshThread { try body() }
        } catch let e as KernelError {
            throw e
        } catch {
            throw KernelError("thread", "namespace worker", .ioError)
        }
    }

    static func validate(_ name: String) throws(KernelError) {
        let u = name.utf8
        if u.isEmpty || u.count > 255 || name.contains("/") || name == "." || name == ".." {
            throw KernelError("namespace name", "\"\(name)\"", .invalidArgument)
        }
    }

    /// Like `ip netns`: make /run/netns a shared mount point so namespaces mounted there
    /// propagate into mount namespaces created later.
    static func prepareRunDirectory() throws(KernelError) {
        if mkdir(runDirectory, 0o755) != 0 {
            let e = Errno.lastCall
            if e != .fileExists { throw KernelError("mkdir", runDirectory, e) }
        }
        let flags = vcpe_ms_shared() | vcpe_ms_rec()
        if vcpe_mount("", runDirectory, "none", flags, nil) == 0 { return }
        let e = Errno.lastCall
        guard e == .invalidArgument else { throw KernelError("make shared mount", runDirectory, e) }
        try syscall("bind-mount", runDirectory) { vcpe_mount(runDirectory, runDirectory, "none", vcpe_ms_bind() | vcpe_ms_rec(), nil) }
        try syscall("make shared mount", runDirectory) { vcpe_mount("", runDirectory, "none", flags, nil) }
    }
}
