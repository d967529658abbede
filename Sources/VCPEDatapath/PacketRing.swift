import CDatapath
import SystemPackage
import VCPESystem

#if canImport(Glibc)
import Glibc
#endif

/// An AF_PACKET receive ring for every interface of one namespace (bound to no interface in
/// particular): TPACKET_V2, a status word per frame (low latency, unlike V3's block timer).
/// Frames carry their virtio-net header, so checksum-offloaded and GSO frames pass through
/// intact, and the index of the interface they arrived on. Frames sent from the namespace
/// are not seen (PACKET_IGNORE_OUTGOING). One ring per namespace rather than per interface:
/// a burst on any interface may use all of it, and the kernel memory is paid once.
/// Open it on a thread inside the namespace.
public final class PacketRing: @unchecked Sendable {
    public let fd: Int32
    let base: UnsafeMutableRawPointer
    let frameSize: Int
    let frameCount: Int
    var head = 0
    private var closed = false

    public static let vnetHeaderSize = MemoryLayout<virtio_net_hdr>.size
    /// Two 64 KiB frames per 128 KiB block: room for a GSO frame of 64 KiB less the headers,
    /// and a power of two, which is what the kernel allocates per block anyway.
    static let frameBytes = 1 << 16
    static let blockBytes = 1 << 17
    /// Where the kernel puts the frame's sockaddr_ll: after the aligned tpacket2_hdr.
    static let addressOffset = (MemoryLayout<tpacket2_hdr>.size + 15) & ~15

    /// Frames in a ring asked for `frames`: whole 128 KiB blocks of two.
    static func frameCount(_ frames: Int) -> Int { max(1, (frames + 1) / 2) * (blockBytes / frameBytes) }

    /// The ring's socket, set up and bound: made inside the namespace (the socket stays of
    /// it), mapped by whoever holds it. `frames` is rounded up to a multiple of 2; the ring
    /// holds frames × 64 KiB of kernel memory. `filter`, an eBPF socket filter program,
    /// decides which frames the ring gets at all.
    static func openSocket(namespace: String, frames: Int, filter: Int32? = nil) throws(KernelError) -> Int32 {
        // Protocol 0 until bound: nothing lands in the ring before it is set up.
        let fd = try syscall("socket AF_PACKET", namespace) { socket(AF_PACKET, Int32(SOCK_RAW.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0) }
        let frameCount = Self.frameCount(frames)
        do throws(KernelError) {
            try packetOption(fd, namespace, PACKET_VNET_HDR, 1)
            try packetOption(fd, namespace, PACKET_VERSION, Int32(TPACKET_V2.rawValue))
            try packetOption(fd, namespace, PACKET_IGNORE_OUTGOING, 1)
            if var program = filter {
                try syscall("attach socket filter to ring in", namespace) {
                    setsockopt(fd, SOL_SOCKET, SO_ATTACH_BPF, &program, socklen_t(MemoryLayout<Int32>.size))
                }
            }
            var req = tpacket_req(tp_block_size: UInt32(Self.blockBytes), tp_block_nr: UInt32(frameCount * frameBytes / blockBytes),
                                  tp_frame_size: UInt32(frameBytes), tp_frame_nr: UInt32(frameCount))
            try syscall("set PACKET_RX_RING in", namespace) {
                setsockopt(fd, SOL_PACKET, PACKET_RX_RING, &req, socklen_t(MemoryLayout<tpacket_req>.size))
            }
            try bindPacketSocket(fd, namespace, ifindex: 0, protocol: UInt16(ETH_P_ALL))
        } catch {
            Glibc.close(fd)
            throw error
        }
        return fd
    }

    /// Maps the ring of a socket `openSocket` made with the same `frames`; takes the socket.
    init(socket fd: Int32, frames: Int, namespace: String) throws(KernelError) {
        self.fd = fd
        frameSize = Self.frameBytes
        frameCount = Self.frameCount(frames)
        guard let p = mmap(nil, frameCount * frameSize, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0), p != MAP_FAILED else {
            let e = Errno.lastCall
            Glibc.close(fd)
            throw KernelError("mmap ring in", namespace, e)
        }
        base = p
    }

    deinit { close() }

    /// Gives the ring and socket back. Closing a bound packet socket waits for an RCU grace
    /// period (tens of ms): closing many, do it from several threads at once.
    func close() {
        guard !closed else { return }
        closed = true
        munmap(base, frameCount * frameSize)
        Glibc.close(fd)
    }

    /// The next frame the kernel has filled, or nil. Hand it back with `release` in order.
    @inline(__always)
    func peek(_ offset: Int = 0) -> UnsafeMutablePointer<tpacket2_hdr>? {
        let h = (base + ((head + offset) % frameCount) * frameSize).assumingMemoryBound(to: tpacket2_hdr.self)
        let status = withUnsafeMutablePointer(to: &h.pointee.tp_status) { vc_load_acquire($0) }
        return status & UInt32(TP_STATUS_USER) != 0 ? h : nil
    }

    /// The interface a frame arrived on.
    @inline(__always)
    static func ifindex(of h: UnsafeMutablePointer<tpacket2_hdr>) -> Int32 {
        (UnsafeRawPointer(h) + addressOffset).assumingMemoryBound(to: sockaddr_ll.self).pointee.sll_ifindex
    }

    /// Returns the oldest `count` frames to the kernel.
    @inline(__always)
    func release(_ count: Int) {
        for i in 0..<count {
            let h = (base + ((head + i) % frameCount) * frameSize).assumingMemoryBound(to: tpacket2_hdr.self)
            withUnsafeMutablePointer(to: &h.pointee.tp_status) { vc_store_release($0, UInt32(TP_STATUS_KERNEL)) }
        }
        head = (head + count) % frameCount
    }
}

/// One interface the forwarder sends on: a send-only packet socket (protocol 0: it receives
/// nothing, and frees of sent frames wake no ring's waiters), the batch waiting to leave,
/// and what the interface is. Open it on a thread inside the interface's namespace.
public final class PacketPort: @unchecked Sendable {
    public let interface: String
    public let ifindex: Int32
    public let mac: MAC
    let fd: Int32
    let tx = TxQueue(capacity: Forwarder.batch)
    private var closed = false

    /// What `open` makes inside the namespace: the bound socket and what the interface is.
    package struct Opened {
        package var interface: String
        package var fd: Int32
        package var ifindex: Int32
        package var mac: MAC
    }

    /// The interface's socket, made and bound inside its namespace (the socket stays of it).
    static func open(interface: String) throws(KernelError) -> Opened {
        let fd = try syscall("socket AF_PACKET", interface) { socket(AF_PACKET, Int32(SOCK_RAW.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0) }
        do throws(KernelError) {
            let (index, mac) = try identify(interface, on: fd)
            try packetOption(fd, interface, PACKET_VNET_HDR, 1)
            try bindPacketSocket(fd, interface, ifindex: index, protocol: 0)
            return Opened(interface: interface, fd: fd, ifindex: index, mac: mac)
        } catch {
            Glibc.close(fd)
            throw error
        }
    }

    /// Index and address of the interface of that name in the socket's namespace.
    static func identify(_ interface: String, on fd: Int32) throws(KernelError) -> (Int32, MAC) {
        var index: Int32 = 0
        var hw = (UInt8(0), UInt8(0), UInt8(0), UInt8(0), UInt8(0), UInt8(0))
        let found = withUnsafeMutableBytes(of: &hw) { vc_interface(fd, interface, &index, $0.baseAddress!.assumingMemoryBound(to: UInt8.self)) }
        guard found == 0 else { throw KernelError("look up interface", interface, Errno.lastCall) }
        return (index, MAC(hw.0, hw.1, hw.2, hw.3, hw.4, hw.5))
    }

    /// Takes a socket `open` made.
    init(_ opened: Opened) {
        interface = opened.interface
        ifindex = opened.ifindex
        mac = opened.mac
        fd = opened.fd
    }

    /// Whether the interface that now has the port's name is the one it is bound to (asked
    /// through its own socket, so from any namespace).
    var isCurrent: Bool { (try? Self.identify(interface, on: fd))?.0 == ifindex }

    deinit { close() }

    func close() {
        guard !closed else { return }
        closed = true
        Glibc.close(fd)
    }

    /// Sends one prepared frame (virtio-net header first) outside any batch: ARP requests.
    func sendNow(_ bytes: UnsafeRawBufferPointer) {
        _ = Glibc.send(fd, bytes.baseAddress, bytes.count, Int32(MSG_DONTWAIT))
    }
}

private func packetOption(_ fd: Int32, _ object: String, _ name: Int32, _ value: Int32) throws(KernelError) {
    var v = value
    try syscall("setsockopt \(name) on", object) { setsockopt(fd, SOL_PACKET, name, &v, socklen_t(MemoryLayout<Int32>.size)) }
}

private func bindPacketSocket(_ fd: Int32, _ object: String, ifindex: Int32, protocol: UInt16) throws(KernelError) {
    var addr = sockaddr_ll()
    addr.sll_family = UInt16(AF_PACKET)
    addr.sll_protocol = `protocol`.bigEndian
    addr.sll_ifindex = ifindex
    try syscall("bind AF_PACKET to", object) {
        withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_ll>.size)) } }
    }
}

/// An Ethernet address.
public struct MAC: Sendable, Hashable, CustomStringConvertible {
    public var bytes: (UInt8, UInt8, UInt8, UInt8, UInt8, UInt8)

    public init(_ a: UInt8, _ b: UInt8, _ c: UInt8, _ d: UInt8, _ e: UInt8, _ f: UInt8) { bytes = (a, b, c, d, e, f) }

    @inline(__always)
    init(at p: UnsafeRawPointer) { bytes = (p.load(as: UInt8.self), p.load(fromByteOffset: 1, as: UInt8.self), p.load(fromByteOffset: 2, as: UInt8.self),
                                            p.load(fromByteOffset: 3, as: UInt8.self), p.load(fromByteOffset: 4, as: UInt8.self), p.load(fromByteOffset: 5, as: UInt8.self)) }

    @inline(__always)
    func store(at p: UnsafeMutableRawPointer) { withUnsafeBytes(of: bytes) { p.copyMemory(from: $0.baseAddress!, byteCount: 6) } }

    public static let zero = MAC(0, 0, 0, 0, 0, 0)
    public static let broadcast = MAC(255, 255, 255, 255, 255, 255)

    public static func == (a: MAC, b: MAC) -> Bool { a.bytes == b.bytes }
    public func hash(into h: inout Hasher) { withUnsafeBytes(of: bytes) { h.combine(bytes: $0) } }

    public var description: String {
        withUnsafeBytes(of: bytes) { $0.map { b in (b < 16 ? "0" : "") + String(b, radix: 16) }.joined(separator: ":") }
    }
}
