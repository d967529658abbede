import CNftnl
import SystemPackage
import VCPESystem

#if canImport(Glibc)
import Glibc
#endif

/// A NETLINK_NETFILTER socket bound to one namespace, for nftables batches and dumps.
public final class NftSocket {
    let nl: OpaquePointer
    let portID: UInt32
    public let namespace: String?
    private var sequence: UInt32

    public convenience init(namespace: String? = nil) throws {
        let raw: UInt = try NetworkNamespace.perform(in: namespace) { try Self.connect(namespace) }
        self.init(raw: raw, namespace: namespace)
    }

    /// For code already running on a thread inside `namespace` (in `NetworkNamespace.perform`).
    public static func openHere(labeled namespace: String?) throws -> NftSocket {
        NftSocket(raw: try connect(namespace), namespace: namespace)
    }

    private static func connect(_ namespace: String?) throws -> UInt {
        let place = namespace ?? "host"
        guard let s = mnl_socket_open(NETLINK_NETFILTER) else {
            throw KernelError.lastCall("open netfilter socket", "in \(place)")
        }
        if mnl_socket_bind(s, 0, pid_t(MNL_SOCKET_AUTOPID)) < 0 {
            let e = Errno.lastCall
            mnl_socket_close(s)
            throw KernelError("bind netfilter socket", "in \(place)", e)
        }
        return UInt(bitPattern: Int(bitPattern: UnsafeRawPointer(s)))
    }

    private init(raw: UInt, namespace: String?) {
        self.namespace = namespace
        nl = OpaquePointer(bitPattern: raw)!
        portID = mnl_socket_get_portid(nl)
        sequence = UInt32(truncatingIfNeeded: time(nil))
        let fd = mnl_socket_get_fd(nl)
        // Large batches (10,000 rules) exceed the default buffers; FORCE ignores rmem_max as root.
        var size: Int32 = 64 << 20
        if setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &size, 4) != 0 { setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &size, 4) }
        if setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &size, 4) != 0 { setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, 4) }
        // A lost reply must not hang the process.
        var tv = timeval(tv_sec: 10, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        var one: Int32 = 1
        setsockopt(fd, 270 /* SOL_NETLINK */, 11 /* NETLINK_EXT_ACK */, &one, 4)
    }

    deinit { mnl_socket_close(nl) }

    var place: String { namespace.map { "in \($0)" } ?? "on the host" }

    func nextSequence() -> UInt32 {
        sequence &+= 1
        return sequence
    }

    // MARK: - Generation

    /// The ruleset generation: it changes with every committed transaction.
    public func generation() throws(KernelError) -> UInt32 {
        var gen: UInt32 = 0
        try request(type: UInt16(NFT_MSG_GETGEN.rawValue), family: 0, flags: 0, what: "ruleset generation") { nlh in
            let g = nftnl_gen_alloc()!
            defer { nftnl_gen_free(g) }
            if nftnl_gen_nlmsg_parse(nlh, g) >= 0 { gen = nftnl_gen_get_u32(g, UInt16(NFTNL_GEN_ID)) }
        }
        return gen
    }

    // MARK: - Dumps

    /// Sends one GET request (a dump when `flags` has NLM_F_DUMP) and hands each reply to `each`.
    func request(type: UInt16, family: UInt8, flags: UInt16, what: String,
                 build: (UnsafeMutablePointer<nlmsghdr>) -> Void = { _ in },
                 each: (UnsafePointer<nlmsghdr>) -> Void) throws(KernelError) {
        var buf = [UInt8](repeating: 0, count: 1 << 16)
        let seq = nextSequence()
        let failed: Errno? = buf.withUnsafeMutableBytes { b in
            let nlh = nftnl_nlmsg_build_hdr(b.baseAddress!.assumingMemoryBound(to: CChar.self), type, UInt16(family), flags | UInt16(NLM_F_ACK), seq)!
            build(nlh)
            return mnl_socket_sendto(nl, nlh, Int(nlh.pointee.nlmsg_len)) >= 0 ? nil : Errno.lastCall
        }
        if let failed { throw KernelError("send request for", "\(what) \(place)", failed) }
        try receive(expecting: [seq], what: what, each: each)
    }

    /// Reads replies until every sequence number in `expecting` has its ACK or DONE, and
    /// fails with the first error the kernel reported (after draining the rest).
    func receive(expecting: Set<UInt32>, what: String, each: (UnsafePointer<nlmsghdr>) -> Void = { _ in }) throws(KernelError) {
        var pending = expecting
        var firstError: KernelError?
        let bufSize = 1 << 20
        let buf = UnsafeMutableRawPointer.allocate(byteCount: bufSize, alignment: 8)
        defer { buf.deallocate() }
        while !pending.isEmpty {
            let n = mnl_socket_recvfrom(nl, buf, bufSize)
            if n < 0 {
                let e = Errno.lastCall
                if e == .interrupted { continue }
                throw firstError ?? KernelError("receive reply for", "\(what) \(place)", e,
                                                kernelMessage: e == .resourceTemporarilyUnavailable ? "no reply within 10 s" : nil)
            }
            var offset = 0
            while offset + 16 <= n {
                let nlh = (buf + offset).assumingMemoryBound(to: nlmsghdr.self)
                let len = Int(nlh.pointee.nlmsg_len)
                guard len >= 16, offset + len <= n else { break }
                let seq = nlh.pointee.nlmsg_seq
                switch Int32(nlh.pointee.nlmsg_type) {
                case NLMSG_ERROR:
                    let err = UnsafeRawPointer(nlh + 1).load(as: Int32.self)
                    if err != 0, firstError == nil {
                        firstError = KernelError(what, place, Errno(negated: err),
                                                 kernelMessage: NetlinkExtendedAck.text(UnsafeRawPointer(nlh)), failedSequence: seq)
                    }
                    pending.remove(seq)
                case NLMSG_DONE:
                    pending.remove(seq)
                default:
                    each(UnsafePointer(nlh))
                }
                offset += (len + 3) & ~3
            }
            // After an error the kernel has aborted the batch; the rest need not be waited for.
            if firstError != nil { break }
        }
        if let firstError {
            drain()
            throw firstError
        }
    }

    private func drain() {
        let buf = UnsafeMutableRawPointer.allocate(byteCount: 1 << 16, alignment: 8)
        defer { buf.deallocate() }
        while recv(mnl_socket_get_fd(nl), buf, 1 << 16, Int32(MSG_DONTWAIT)) > 0 {}
    }
}
