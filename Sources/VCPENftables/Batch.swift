import CNftnl
import SystemPackage
import VCPESystem

#if canImport(Glibc)
import Glibc
#endif

/// One nftables transaction being built: messages appended to one buffer between
/// BATCH_BEGIN and BATCH_END, each with its own sequence number and a description of the
/// object it carries, so that an error names what failed.
struct Batch {
    private(set) var bytes: [UInt8] = []
    private(set) var objects: [UInt32: String] = [:]
    private let socket: NftSocket
    private var scratch = [UInt8](repeating: 0, count: 1 << 20)

    init(socket: NftSocket, expectedGeneration: UInt32?) {
        self.socket = socket
        control(type: UInt16(NFNL_MSG_BATCH_BEGIN), generation: expectedGeneration)
    }

    /// BATCH_BEGIN may carry the generation the batch was planned against: the kernel
    /// refuses the whole batch (ERESTART) if anything was committed since.
    private mutating func control(type: UInt16, generation: UInt32?) {
        let seq = socket.nextSequence()
        scratch.withUnsafeMutableBytes { b in
            let nlh = mnl_nlmsg_put_header(b.baseAddress)!
            nlh.pointee.nlmsg_type = type
            nlh.pointee.nlmsg_flags = UInt16(NLM_F_REQUEST)
            nlh.pointee.nlmsg_seq = seq
            let nfg = mnl_nlmsg_put_extra_header(nlh, 4)!.assumingMemoryBound(to: UInt8.self)
            nfg[0] = 0  // AF_UNSPEC
            nfg[1] = UInt8(NFNETLINK_V0)
            let res = UInt16(NFNL_SUBSYS_NFTABLES).bigEndian
            withUnsafeBytes(of: res) { nfg[2] = $0[0]; nfg[3] = $0[1] }
            if let generation { mnl_attr_put_u32(nlh, UInt16(NFNL_BATCH_GENID.rawValue), generation.bigEndian) }
            bytes.append(contentsOf: UnsafeRawBufferPointer(start: b.baseAddress, count: Int(nlh.pointee.nlmsg_len)))
        }
    }

    /// Appends one message, built by `payload` into a header of `type`.
    mutating func add(_ type: nf_tables_msg_types, family: UInt8, flags: Int32, object: String,
                      _ payload: (UnsafeMutablePointer<nlmsghdr>) -> Void) {
        let seq = socket.nextSequence()
        objects[seq] = object
        scratch.withUnsafeMutableBytes { b in
            let nlh = nftnl_nlmsg_build_hdr(b.baseAddress!.assumingMemoryBound(to: CChar.self), UInt16(type.rawValue),
                                            UInt16(family), UInt16(flags | NLM_F_ACK), seq)!
            payload(nlh)
            bytes.append(contentsOf: UnsafeRawBufferPointer(start: b.baseAddress, count: Int(nlh.pointee.nlmsg_len)))
        }
    }

    /// Sends the batch as one transaction and waits for every reply.
    mutating func commit(what: String) throws(KernelError) {
        control(type: UInt16(NFNL_MSG_BATCH_END), generation: nil)
        let sent = bytes.withUnsafeBytes { mnl_socket_sendto(socket.nl, $0.baseAddress, $0.count) }
        if sent < 0 { throw KernelError.lastCall("send", "\(what) \(socket.place)") }
        let objects = self.objects
        do {
            try socket.receive(expecting: Set(objects.keys), what: what)
        } catch {
            var e = error
            if let seq = error.failedSequence, let obj = objects[seq] { e.object = "\(obj) \(socket.place)" }
            if e.isConcurrentChange { e.kernelMessage = "the ruleset changed since it was read; nothing was applied" }
            throw e
        }
    }
}
