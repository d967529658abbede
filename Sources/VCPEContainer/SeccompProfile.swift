/// The seccomp filter of every vcpe container: everything a network daemon uses is allowed;
/// what changes the host or escapes the container (modules, mounts, namespaces, keys,
/// tracing, clocks, swap, reboot) fails with EPERM. A service that needs one of them (the
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

    static func config(allowing allowed: Set<String>) -> OCIConfig.Seccomp {
        OCIConfig.Seccomp(defaultAction: "SCMP_ACT_ALLOW", architectures: architectures,
                          syscalls: [.init(names: refused.filter { !allowed.contains($0) }, action: "SCMP_ACT_ERRNO", errnoRet: 1)])
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
