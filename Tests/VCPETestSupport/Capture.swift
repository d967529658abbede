import Foundation

/// A packet capture with tcpdump (an independent tool) on one interface, read back as
/// IPv4 packets for the test to judge.
public final class Capture: @unchecked Sendable {
    public struct Packet: Sendable {
        public var source: String, destination: String
        public var proto: UInt8
        public var sourcePort: UInt16, destinationPort: UInt16
    }

    let file: String
    let pid: pid_t
    public private(set) var packets: [Packet] = []
    /// Every captured byte, for looking for payload in clear.
    public private(set) var raw = Data()

    /// Starts capturing on `interface` (host side) and waits until tcpdump listens.
    public init(interface: String) throws {
        file = FileManager.default.temporaryDirectory.appendingPathComponent("vcpe-cap-\(UUID().uuidString).pcap").path
        let log = file + ".log"
        pid = try spawn("/usr/bin/tcpdump", ["-i", interface, "-n", "-U", "-s", "0", "-w", file], stderr: log)
        for _ in 0..<300 {
            if let text = try? String(contentsOfFile: log, encoding: .utf8), text.contains("listening on") { return }
            usleep(10_000)
        }
        kill(pid, SIGKILL)
        waitFor(pid)
        throw CommandFailed(command: "tcpdump -i \(interface)", status: -1, stderr: (try? String(contentsOfFile: log, encoding: .utf8)) ?? "not listening in 3 s")
    }

    /// Stops the capture and parses what it holds.
    public func stop() throws {
        kill(pid, SIGINT)
        waitFor(pid)
        defer { for f in [file, file + ".log"] { try? FileManager.default.removeItem(atPath: f) } }
        raw = try Data(contentsOf: URL(fileURLWithPath: file))
        packets = Self.parse([UInt8](raw))
    }

    public func contains(_ text: String) -> Bool { raw.range(of: Data(text.utf8)) != nil }

    /// Ethernet/IPv4 packets of a classic pcap file (tcpdump -w writes microsecond pcap).
    static func parse(_ b: [UInt8]) -> [Packet] {
        func u16(_ i: Int) -> Int { Int(b[i]) << 8 | Int(b[i + 1]) }
        func u32le(_ i: Int) -> Int { Int(b[i]) | Int(b[i + 1]) << 8 | Int(b[i + 2]) << 16 | Int(b[i + 3]) << 24 }
        var out: [Packet] = []
        var at = 24
        while at + 16 <= b.count {
            let len = u32le(at + 8)
            let frame = at + 16
            at = frame + len
            guard at <= b.count, len >= 34, u16(frame + 12) == 0x0800 else { continue }
            let ip = frame + 14
            let ihl = Int(b[ip] & 0x0F) * 4
            let proto = b[ip + 9]
            let src = (0..<4).map { String(b[ip + 12 + $0]) }.joined(separator: ".")
            let dst = (0..<4).map { String(b[ip + 16 + $0]) }.joined(separator: ".")
            var sp: UInt16 = 0, dp: UInt16 = 0
            if (proto == 6 || proto == 17), ip + ihl + 4 <= frame + len {
                sp = UInt16(u16(ip + ihl))
                dp = UInt16(u16(ip + ihl + 2))
            }
            out.append(Packet(source: src, destination: dst, proto: proto, sourcePort: sp, destinationPort: dp))
        }
        return out
    }
}
