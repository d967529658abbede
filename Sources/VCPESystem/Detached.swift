import CSystemShim
import SystemPackage

#if canImport(Glibc)
import Glibc
#endif

/// Starts a program that outlives the caller: its own session, no signals blocked,
/// standard streams on /dev/null and no other descriptors, not waited for (init reaps it once the caller is gone).
public func spawnDetached(_ path: String, _ arguments: [String]) throws(SystemError) {
    var attr = posix_spawnattr_t()
    var actions = posix_spawn_file_actions_t()
    posix_spawnattr_init(&attr)
    posix_spawn_file_actions_init(&actions)
    defer {
        posix_spawnattr_destroy(&attr)
        posix_spawn_file_actions_destroy(&actions)
    }
    var none = sigset_t()
    sigemptyset(&none)
    posix_spawnattr_setsigmask(&attr, &none)
    posix_spawnattr_setflags(&attr, vcpe_posix_spawn_setsid() | Int16(POSIX_SPAWN_SETSIGMASK))
    for fd: Int32 in 0...2 {
        posix_spawn_file_actions_addopen(&actions, fd, "/dev/null", fd == 0 ? O_RDONLY : O_WRONLY, 0)
    }
    // Netlink sockets into namespaces being removed must not live on in the child.
    vcpe_spawn_closefrom(&actions, 3)
    let argv = ([path] + arguments).map { strdup($0) } + [nil]
    defer { for p in argv { free(p) } }
    var pid: pid_t = 0
    let r = posix_spawn(&pid, path, &actions, &attr, argv, environ)
    if r != 0 { throw SystemError("spawn", path, Errno(rawValue: r)) }
}
