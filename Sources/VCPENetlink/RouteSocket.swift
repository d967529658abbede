import CNetlink
import SystemPackage
import VCPENet
import VCPESystem

/// A NETLINK_ROUTE socket bound to one network namespace. The socket is opened on a
/// thread inside the namespace and stays bound to it; any thread may then use it, one at
/// a time. Not Sendable: give each task its own.
public final class RouteSocket {
    let sock: OpaquePointer
    /// The namespace this socket programs; nil is the caller's own (the host).
    public let namespace: String?
    private let lastError = KernelErrorState()

    public convenience init(namespace: String? = nil) throws {
        // Opened inside the namespace on a throwaway thread (see VCPESystem.NetworkNamespace.perform).
        let raw: UInt = try NetworkNamespace.perform(in: namespace) { try Self.connect(namespace) }
        self.init(raw: raw, namespace: namespace)
    }

    /// For code already running on a thread inside `namespace` (in `NetworkNamespace.perform`),
    /// so that several sockets of one namespace cost one thread switch.
    public static func openHere(labeled namespace: String?) throws -> RouteSocket {
        RouteSocket(raw: try connect(namespace), namespace: namespace)
    }

    private static func connect(_ namespace: String?) throws -> UInt {
        try connectNetlink(NETLINK_ROUTE, "NETLINK_ROUTE", namespace: namespace)
    }

    private init(raw: UInt, namespace: String?) {
        self.namespace = namespace
        sock = OpaquePointer(bitPattern: raw)!
        lastError.attach(to: sock)
    }

    deinit { nl_socket_free(sock) }

    var place: String { namespace.map { "in \($0)" } ?? "on the host" }

    /// Runs one libnl call; a negative result becomes a KernelError with the kernel's errno.
    @discardableResult
    func call(_ operation: String, _ object: @autoclosure () -> String, _ body: () -> Int32) throws(KernelError) -> Int32 {
        try lastError.call(operation, "\(object()) \(place)", body)
    }

    /// Dumps a cache and hands each object to `body`; the cache is freed afterwards.
    func dump<T>(_ what: String, _ alloc: (UnsafeMutablePointer<OpaquePointer?>) -> Int32,
                 _ body: (OpaquePointer) -> T?) throws(KernelError) -> [T] {
        var cache: OpaquePointer?
        try call("dump", what) { alloc(&cache) }
        defer { nl_cache_free(cache) }
        var out: [T] = []
        var obj = nl_cache_get_first(cache)
        while let o = obj {
            if let v = body(o) { out.append(v) }
            obj = nl_cache_get_next(o)
        }
        return out
    }

    /// The interface index of `name` in this socket's namespace (if_nametoindex would use the
    /// calling thread's namespace instead).
    public func index(of name: String) throws(KernelError) -> Int32 {
        guard let l = try link(named: name) else {
            throw KernelError("find interface", name + " " + place, .operationNotSupportedByDevice)  // ENODEV
        }
        return l.index
    }
}

/// A new libnl socket connected to `protocol` on the calling thread (so in its namespace;
/// `namespace` only labels errors), as a raw pointer value that may cross threads.
func connectNetlink(_ proto: Int32, _ protocolName: String, namespace: String?) throws(KernelError) -> UInt {
    let place = "in \(namespace ?? "host")"
    guard let s = nl_socket_alloc() else {
        throw KernelError("allocate netlink socket", place, .noMemory)
    }
    let rc = nl_connect(s, proto)
    if rc < 0 {
        nl_socket_free(s)
        throw KernelError("connect \(protocolName)", place, libnlToErrno(rc),
                          kernelMessage: String(cString: nl_geterror(rc)))
    }
    return UInt(bitPattern: Int(bitPattern: UnsafeRawPointer(s)))
}

/// The last NLMSG_ERROR the kernel sent on one socket.
final class KernelErrorState {
    var errno: Errno?
    var message: String?

    func reset() {
        errno = nil
        message = nil
    }

    /// Asks the kernel to explain refusals on `sock`, and keeps its errno (libnl would map
    /// it to its own codes). The socket must not outlive this state.
    func attach(to sock: OpaquePointer) {
        var one: Int32 = 1
        setsockopt(nl_socket_get_fd(sock), 270 /* SOL_NETLINK */, 11 /* NETLINK_EXT_ACK */, &one, 4)
        nl_socket_modify_err_cb(sock, NL_CB_CUSTOM, kernelErrorCallback, Unmanaged.passUnretained(self).toOpaque())
    }

    /// Runs one libnl call; a negative result becomes a KernelError with the kernel's errno.
    @discardableResult
    func call(_ operation: String, _ object: String, _ body: () -> Int32) throws(KernelError) -> Int32 {
        reset()
        let rc = body()
        guard rc < 0 else { return rc }
        throw KernelError(operation, object, errno ?? libnlToErrno(rc),
                          kernelMessage: message ?? (errno != nil ? nil : String(cString: nl_geterror(rc))))
    }
}

/// libnl's error callback: keep the errno and the extended-ack text, then stop.
private let kernelErrorCallback: nl_recvmsg_err_cb_t = { _, err, arg in
    guard let err, let arg else { return Int32(NL_STOP.rawValue) }
    let state = Unmanaged<KernelErrorState>.fromOpaque(arg).takeUnretainedValue()
    state.errno = err.pointee.error != 0 ? Errno(negated: err.pointee.error) : nil  // 0 is an ack, not an error
    state.message = NetlinkExtendedAck.text(UnsafeRawPointer(err) - 16)  // from the message header
    return Int32(NL_STOP.rawValue)
}

/// For failures libnl detects itself (no kernel error): its codes to the nearest errno.
private func libnlToErrno(_ rc: Int32) -> Errno {
    switch -rc {
    case Int32(NLE_NOMEM): .noMemory
    case Int32(NLE_EXIST): .fileExists
    case Int32(NLE_OBJ_NOTFOUND), Int32(NLE_NODEV): .operationNotSupportedByDevice  // ENODEV
    case Int32(NLE_INVAL), Int32(NLE_MISSING_ATTR): .invalidArgument
    case Int32(NLE_PERM): .notPermitted
    case Int32(NLE_BUSY): .resourceBusy
    case Int32(NLE_RANGE): .outOfRange
    case Int32(NLE_NOADDR): .addressNotAvailable
    case Int32(NLE_OPNOTSUPP): .notSupportedOnSocket
    default: .ioError
    }
}

// MARK: - Addresses between libnl and vcpe

extension IPPrefix {
    /// A libnl address object; the caller puts it (nl_addr_put).
    func nlAddress() -> OpaquePointer {
        let bytes = address.bytes
        let a = bytes.withUnsafeBytes { nl_addr_build(address.family == .v4 ? AF_INET : AF_INET6, $0.baseAddress, $0.count) }!
        nl_addr_set_prefixlen(a, Int32(length))
        return a
    }

    init?(nlAddress a: OpaquePointer?) {
        guard let a, let ip = IPAddress(nlAddress: a) else { return nil }
        self.init(ip, Int(nl_addr_get_prefixlen(a)))
    }
}

extension IPAddress {
    init?(nlAddress a: OpaquePointer) {
        let len = Int(nl_addr_get_len(a))
        guard let p = nl_addr_get_binary_addr(a) else { return nil }
        let b = UnsafeRawBufferPointer(start: p, count: len)
        switch (nl_addr_get_family(a), len) {
        case (AF_INET, 4): self.init(v4: b.reduce(0) { $0 << 8 | UInt32($1) })
        case (AF_INET6, 16):
            self.init(v6: b[0..<8].reduce(0) { $0 << 8 | UInt64($1) }, b[8..<16].reduce(0) { $0 << 8 | UInt64($1) })
        default: return nil
        }
    }

    func nlAddress() -> OpaquePointer { IPPrefix(self, bitWidth).nlAddress() }
}

func withNLAddress<T>(_ p: IPPrefix, _ body: (OpaquePointer) throws -> T) rethrows -> T {
    let a = p.nlAddress()
    defer { nl_addr_put(a) }
    return try body(a)
}
