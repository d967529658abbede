import CDatapath
import SystemPackage
import VCPESystem

#if canImport(Glibc)
import Glibc
#endif

/// Frames waiting to leave on one ring, sent with one sendmmsg per batch. Messages point
/// into the receive rings (the kernel copies on send), so a batch is flushed before the
/// frames it points to are released.
final class TxQueue {
    let capacity: Int
    let messages: UnsafeMutablePointer<vc_mmsghdr>
    let vectors: UnsafeMutablePointer<iovec>
    /// Re-inserted 802.1Q tags, one per message.
    let tags: UnsafeMutablePointer<UInt32>
    var count = 0

    init(capacity: Int) {
        self.capacity = capacity
        messages = .allocate(capacity: capacity)
        messages.initialize(repeating: vc_mmsghdr(), count: capacity)
        vectors = .allocate(capacity: capacity * 3)
        vectors.initialize(repeating: iovec(), count: capacity * 3)
        tags = .allocate(capacity: capacity)
        tags.initialize(repeating: 0, count: capacity)
    }

    deinit {
        messages.deallocate()
        vectors.deallocate()
        tags.deallocate()
    }

    /// Queues a frame whose virtio-net header sits right before it; `vlan` (TPID << 16 | TCI)
    /// is put back between the Ethernet addresses and the type, where the kernel took it from.
    @inline(__always)
    func add(vnet: UnsafeMutableRawPointer, frameLength: Int, vlan: UInt32?) {
        let v = vectors + count * 3
        var n = 1
        if let vlan {
            let header = vnet.assumingMemoryBound(to: virtio_net_hdr.self)
            if header.pointee.flags & UInt8(VIRTIO_NET_HDR_F_NEEDS_CSUM) != 0 { header.pointee.csum_start &+= 4 }
            if header.pointee.gso_type != UInt8(VIRTIO_NET_HDR_GSO_NONE) { header.pointee.hdr_len &+= 4 }
            tags[count] = vlan.bigEndian
            let split = PacketRing.vnetHeaderSize + 12
            v[0] = iovec(iov_base: vnet, iov_len: split)
            v[1] = iovec(iov_base: UnsafeMutableRawPointer(tags + count), iov_len: 4)
            v[2] = iovec(iov_base: vnet + split, iov_len: PacketRing.vnetHeaderSize + frameLength - split)
            n = 3
        } else {
            v[0] = iovec(iov_base: vnet, iov_len: PacketRing.vnetHeaderSize + frameLength)
        }
        messages[count].msg_hdr = msghdr(msg_name: nil, msg_namelen: 0, msg_iov: v, msg_iovlen: n,
                                         msg_control: nil, msg_controllen: 0, msg_flags: 0)
        count += 1
    }

    var isFull: Bool { count == capacity }

    /// Sends what is queued; returns how many the kernel refused, and whether it said the
    /// interface is gone.
    @inline(__always)
    func flush(_ fd: Int32) -> (count: Int, gone: Bool) {
        var sent = 0, refused = 0
        var retried = false
        var gone = false
        while sent < count {
            let r = vc_sendmmsg(fd, messages + sent, UInt32(count - sent), Int32(MSG_DONTWAIT))
            if r > 0 { sent += Int(r); continue }
            let e = Errno.lastCall.rawValue
            if e == EINTR { continue }
            if e == EAGAIN || e == ENOBUFS, !retried { retried = true; sched_yield(); continue }
            // The frame at `sent` is refused outright (too large, link down): skip it.
            if r < 0 && e != EAGAIN && e != ENOBUFS {
                if e == ENETDOWN || e == ENXIO || e == ENODEV { gone = true }
                sent += 1; refused += 1; retried = false; continue
            }
            break
        }
        refused += count - sent
        count = 0
        return (refused, gone)
    }
}
