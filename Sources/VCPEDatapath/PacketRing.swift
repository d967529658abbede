import CDatapath
import SystemPackage
import VCPESystem

#if canImport(Glibc)
import Glibc
#endif

/// An AF_PACKET socket on one interface with a TPACKET_V2 receive ring (a status word per
/// frame: low latency, unlike V3's block timer). Frames carry their virtio-net header, so
/// checksum-offloaded and GSO frames pass through intact; frames this socket sends are not
/// seen again (PACKET_IGNORE_OUTGOING). Open it on a thread inside the interface's namespace.
public final class PacketRing: @unchecked Sendable {
    public let fd: Int32
    /// Sends only (protocol 0: it receives nothing). Not the ring's socket: frees of sent
    /// frames would wake the ring's epoll waiters for nothing, one wake-up per frame.
    public let txfd: Int32
    public let interface: String
    public let ifindex: Int32
    public let mac: MAC
    let base: UnsafeMutableRawPointer
    let frameSize: Int
    let frameCount: Int
    var head = 0
    /// What the forwarder sends out of this interface, batched.
    let tx = TxQueue(capacity: Forwarder.batch)

    public static let vnetHeaderSize = MemoryLayout<virtio_net_hdr>.size
    /// Two 64 KiB frames per 128 KiB block: room for a GSO frame of 64 KiB less the headers,
    /// and a power of two, which is what the kernel allocates per block anyway.
    static let frameBytes = 1 << 16
    static let blockBytes = 1 << 17

    /// `frames` is rounded up to a multiple of 2; the ring holds frames × 64 KiB of kernel memory.
    public init(interface: String, frames: Int) throws(SystemError) {
        var index: Int32 = 0
        var hw = (UInt8(0), UInt8(0), UInt8(0), UInt8(0), UInt8(0), UInt8(0))
        let found = withUnsafeMutableBytes(of: &hw) { vc_interface(interface, &index, $0.baseAddress!.assumingMemoryBound(to: UInt8.self)) }
        guard found == 0 else { throw SystemError("look up interface", interface, Errno(rawValue: vc_errno())) }
        ifindex = index
        mac = MAC(hw.0, hw.1, hw.2, hw.3, hw.4, hw.5)
        self.interface = interface
        // Protocol 0 until bound: no frame of another interface lands in the ring meanwhile.
        let fd = try syscall("socket AF_PACKET", interface) { socket(AF_PACKET, Int32(SOCK_RAW.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0) }
        self.fd = fd
        let frameSize = Self.frameBytes
        self.frameSize = frameSize
        let blocks = max(1, (frames + 1) / 2)
        let frameCount = blocks * (Self.blockBytes / Self.frameBytes)
        self.frameCount = frameCount
        do throws(SystemError) {
            try Self.option(fd, interface, PACKET_VNET_HDR, 1)
            try Self.option(fd, interface, PACKET_VERSION, Int32(TPACKET_V2.rawValue))
            try Self.option(fd, interface, PACKET_IGNORE_OUTGOING, 1)
            var req = tpacket_req(tp_block_size: UInt32(Self.blockBytes), tp_block_nr: UInt32(blocks),
                                  tp_frame_size: UInt32(frameSize), tp_frame_nr: UInt32(frameCount))
            try syscall("set PACKET_RX_RING on", interface) {
                setsockopt(fd, SOL_PACKET, PACKET_RX_RING, &req, socklen_t(MemoryLayout<tpacket_req>.size))
            }
            let length = frameCount * frameSize
            guard let p = mmap(nil, length, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0), p != MAP_FAILED else {
                throw SystemError("mmap ring of", interface, Errno(rawValue: vc_errno()))
            }
            var addr = sockaddr_ll()
            addr.sll_family = UInt16(AF_PACKET)
            addr.sll_protocol = UInt16(ETH_P_ALL).bigEndian
            addr.sll_ifindex = index
            let bound = withUnsafePointer(to: &addr) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_ll>.size)) }
            }
            if bound != 0 {
                let e = Errno(rawValue: vc_errno())
                munmap(p, length)
                throw SystemError("bind AF_PACKET to", interface, e)
            }
            base = p
            let tx = try syscall("socket AF_PACKET", interface) { socket(AF_PACKET, Int32(SOCK_RAW.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0) }
            do throws(SystemError) {
                try Self.option(tx, interface, PACKET_VNET_HDR, 1)
                var txAddr = sockaddr_ll()
                txAddr.sll_family = UInt16(AF_PACKET)
                txAddr.sll_ifindex = index
                try syscall("bind AF_PACKET sender to", interface) {
                    withUnsafePointer(to: &txAddr) {
                        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(tx, $0, socklen_t(MemoryLayout<sockaddr_ll>.size)) }
                    }
                }
            } catch {
                Glibc.close(tx)
                munmap(p, length)
                throw error
            }
            txfd = tx
        } catch {
            Glibc.close(fd)
            throw error
        }
    }

    private var closed = false

    deinit { close() }

    /// Gives the ring and sockets back. Closing a bound packet socket waits for an RCU grace
    /// period (tens of ms): closing many, do it from several threads at once.
    func close() {
        guard !closed else { return }
        closed = true
        munmap(base, frameCount * frameSize)
        Glibc.close(fd)
        Glibc.close(txfd)
    }

    private static func option(_ fd: Int32, _ interface: String, _ name: Int32, _ value: Int32) throws(SystemError) {
        var v = value
        try syscall("setsockopt \(name) on", interface) { setsockopt(fd, SOL_PACKET, name, &v, socklen_t(MemoryLayout<Int32>.size)) }
    }

    /// The next frame the kernel has filled, or nil. Hand it back with `release` in order.
    @inline(__always)
    func peek(_ offset: Int = 0) -> UnsafeMutablePointer<tpacket2_hdr>? {
        let h = (base + ((head + offset) % frameCount) * frameSize).assumingMemoryBound(to: tpacket2_hdr.self)
        let status = withUnsafeMutablePointer(to: &h.pointee.tp_status) { vc_load_acquire($0) }
        return status & UInt32(TP_STATUS_USER) != 0 ? h : nil
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

    /// Sends one prepared frame (virtio-net header first) outside any batch: ARP requests.
    func sendNow(_ bytes: UnsafeRawBufferPointer) {
        _ = Glibc.send(txfd, bytes.baseAddress, bytes.count, Int32(MSG_DONTWAIT))
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
