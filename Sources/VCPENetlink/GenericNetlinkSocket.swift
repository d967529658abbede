import CNetlink
import SystemPackage
import VCPESystem

/// A NETLINK_GENERIC socket speaking one family (WireGuard's, for one), bound to one
/// network namespace like `RouteSocket`. Messages carry attributes built in Swift
/// (`NetlinkAttributeWriter`); replies come back as attribute bytes.
public final class GenericNetlinkSocket {
    let sock: OpaquePointer
    public let namespace: String?
    public let familyName: String
    let family: Int32
    private let lastError = KernelErrorState()

    /// nil when this kernel has no such family (for WireGuard: no module, built in or loadable;
    /// asking for a family loads its module if there is one).
    public static func open(family name: String, namespace: String? = nil) throws -> GenericNetlinkSocket? {
        let raw: UInt = try NetworkNamespace.perform(in: namespace) {
            try connectNetlink(NETLINK_GENERIC, "NETLINK_GENERIC", namespace: namespace)
        }
        let sock = OpaquePointer(bitPattern: raw)!
        let family = genl_ctrl_resolve(sock, name)
        guard family >= 0 else {
            nl_socket_free(sock)
            if -family == NLE_OBJ_NOTFOUND { return nil }
            throw KernelError("resolve generic netlink family", name, .ioError,
                               kernelMessage: String(cString: nl_geterror(family)))
        }
        return GenericNetlinkSocket(sock: sock, family: family, name: name, namespace: namespace)
    }

    private init(sock: OpaquePointer, family: Int32, name: String, namespace: String?) {
        self.sock = sock
        self.family = family
        self.familyName = name
        self.namespace = namespace
        lastError.attach(to: sock)
    }

    deinit { nl_socket_free(sock) }

    /// Sends one request and waits for its answer: the attributes of each reply message (a
    /// dump may answer in several), or nothing but the kernel's acknowledgement.
    public func request(_ what: String, command: UInt8, version: UInt8, dump: Bool = false,
                        attributes: [UInt8]) throws(KernelError) -> [[UInt8]] {
        let place = "\(what) in \(namespace ?? "host")"
        guard let msg = nlmsg_alloc_size(attributes.count + 64) else {
            throw KernelError("allocate netlink message", place, .noMemory)
        }
        defer { nlmsg_free(msg) }
        guard genlmsg_put(msg, UInt32(bitPattern: NL_AUTO_PORT), UInt32(bitPattern: NL_AUTO_SEQ), family, 0,
                          dump ? NLM_F_DUMP : 0, command, version) != nil else {
            throw KernelError("build \(familyName) message", place, .noMemory)
        }
        var payload = attributes
        try lastError.call("build \(familyName) message", place) {
            payload.withUnsafeMutableBytes { nlmsg_append(msg, $0.baseAddress, $0.count, Int32(NLMSG_ALIGNTO)) }
        }
        let replies = ReplyCollector()
        nl_socket_modify_cb(sock, NL_CB_VALID, NL_CB_CUSTOM, collectReply, Unmanaged.passUnretained(replies).toOpaque())
        defer { nl_socket_modify_cb(sock, NL_CB_VALID, NL_CB_DEFAULT, nil, nil) }
        try lastError.call("send \(familyName) request", place) { nl_send_auto(sock, msg) }
        try lastError.call(familyName, place) { dump ? nl_recvmsgs_default(sock) : nl_wait_for_ack(sock) }
        return replies.messages
    }
}

/// The attribute bytes of each reply, in order.
private final class ReplyCollector {
    var messages: [[UInt8]] = []
}

private let collectReply: nl_recvmsg_msg_cb_t = { msg, arg in
    guard let msg, let arg else { return Int32(NL_SKIP.rawValue) }
    let replies = Unmanaged<ReplyCollector>.fromOpaque(arg).takeUnretainedValue()
    let header = nlmsg_hdr(msg)!
    let genl = nlmsg_data(header)!.assumingMemoryBound(to: genlmsghdr.self)
    let length = Int(genlmsg_attrlen(genl, 0))
    if let start = genlmsg_attrdata(genl, 0), length > 0 {
        replies.messages.append(Array(UnsafeRawBufferPointer(start: UnsafeRawPointer(start), count: length)))
    } else {
        replies.messages.append([])
    }
    return Int32(NL_OK.rawValue)
}
