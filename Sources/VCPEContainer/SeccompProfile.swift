/// The seccomp filter of every vcpe container: everything a network daemon uses is allowed;
/// what changes the host or escapes the container (modules, mounts, namespaces, including
/// clone's namespace flags, clone3 and io_uring, keys, tracing, clocks, swap, reboot) fails
/// with EPERM (clone3 with ENOSYS). A service that needs one of them (the
/// forwarder updates its eBPF flow map) names it and gets only that one back.
enum SeccompProfile {
    static let refused: [String] = [
        "acct", "add_key", "bpf", "clock_adjtime", "clock_settime", "create_module", "delete_module", "finit_module",
        "fsconfig", "fsmount", "fsopen", "fspick", "get_kernel_syms", "get_mempolicy", "init_module", "ioperm", "iopl",
        "kcmp", "kexec_file_load", "kexec_load", "keyctl", "lookup_dcookie", "mbind", "mount", "mount_setattr",
        "move_mount", "move_pages", "name_to_handle_at", "nfsservctl", "open_by_handle_at", "open_tree",
        "perf_event_open", "personality", "pivot_root", "process_vm_readv", "process_vm_writev", "ptrace",
        "query_module", "quotactl", "reboot", "request_key", "set_mempolicy", "setns", "settimeofday", "stime",
        "swapoff", "swapon", "sysfs", "_sysctl", "umount", "umount2", "unshare", "uselib", "userfaultfd", "ustat", "vm86", "vm86old",
    ]

    /// io_uring runs system calls the filter never sees.
    static let refusedIOUring = ["io_uring_setup", "io_uring_enter", "io_uring_register"]

    /// clone's namespace flags (its first argument): a process may start threads and
    /// children, never new namespaces. (CLONE_NEWTIME lies in clone's signal byte: only
    /// unshare and clone3 can ask for it, and both are refused.)
    static let namespaceFlags: [UInt64] = [
        0x0002_0000,  // CLONE_NEWNS
        0x0200_0000,  // CLONE_NEWCGROUP
        0x0400_0000,  // CLONE_NEWUTS
        0x0800_0000,  // CLONE_NEWIPC
        0x1000_0000,  // CLONE_NEWUSER
        0x2000_0000,  // CLONE_NEWPID
        0x4000_0000,  // CLONE_NEWNET
    ]

    static func config(allowing allowed: Set<String>) -> OCIConfig.Seccomp {
        let names = (refused + refusedIOUring).filter { !allowed.contains($0) }
        var rules: [OCIConfig.Seccomp.Rule] = [.init(names: names, action: "SCMP_ACT_ERRNO", errnoRet: 1)]
        // clone3 passes its flags in memory, where a filter cannot look: ENOSYS makes libc
        // and Go fall back to clone, whose flags it can.
        rules.append(.init(names: ["clone3"], action: "SCMP_ACT_ERRNO", errnoRet: 38))
        for flag in namespaceFlags {
            rules.append(.init(names: ["clone"], action: "SCMP_ACT_ERRNO", errnoRet: 1,
                               args: [.init(index: 0, value: flag, valueTwo: flag, op: "SCMP_CMP_MASKED_EQ")]))
        }
        return OCIConfig.Seccomp(defaultAction: "SCMP_ACT_ALLOW", architectures: architectures, syscalls: rules)
    }

    /// The native ABI and its 32-bit sibling, so the filter cannot be sidestepped through it.
    static var architectures: [String] {
        #if arch(x86_64)
        ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"]
        #elseif arch(arm64)
        ["SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM"]
        #else
        []
        #endif
    }
}
