/// The kernel's explanation of a refused netlink request (NLMSGERR_ATTR_MSG), shared by
/// every netlink family vcpe speaks.
public enum NetlinkExtendedAck {
    /// The message text of an NLMSG_ERROR at `message` (its netlink header), if it has one.
    public static func text(_ message: UnsafeRawPointer) -> String? {
        let headerSize = 16  // NLMSG_HDRLEN
        let length = Int(message.loadUnaligned(fromByteOffset: 0, as: UInt32.self))
        let flags = message.loadUnaligned(fromByteOffset: 6, as: UInt16.self)
        guard flags & 0x200 != 0 else { return nil }  // NLM_F_ACK_TLVS
        // The error code, the echoed request header, and unless NLM_F_CAPPED its payload.
        var offset = headerSize + 4 + headerSize
        if flags & 0x100 == 0 {
            offset += Int(message.loadUnaligned(fromByteOffset: headerSize + 4, as: UInt32.self)) - headerSize
        }
        offset = (offset + 3) & ~3
        while offset + 4 <= length {
            let len = Int(message.loadUnaligned(fromByteOffset: offset, as: UInt16.self))
            let type = message.loadUnaligned(fromByteOffset: offset + 2, as: UInt16.self) & 0x3FFF
            guard len >= 4, offset + len <= length else { return nil }
            if type == 1 {  // NLMSGERR_ATTR_MSG
                let bytes = UnsafeRawBufferPointer(start: message + offset + 4, count: len - 4)
                return String(decoding: bytes.prefix { $0 != 0 }, as: UTF8.self)
            }
            offset += (len + 3) & ~3
        }
        return nil
    }
}
