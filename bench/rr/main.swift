// Request/response latency between two namespaces, recorded with HdrHistogram.
//   vcpe-bench-rr serve udp|tcp PORT
//   vcpe-bench-rr client udp|tcp HOST PORT SAMPLES [WARMUP] [SIZE]
// The client sends SIZE bytes (64), waits for them back, SAMPLES times after WARMUP
// round trips, and prints one JSON object: percentiles in microseconds and the CDF.
import Foundation
import Histogram

#if canImport(Glibc)
import Glibc
#endif

func fail(_ message: String) -> Never {
    FileHandle.standardError.write(Data("vcpe-bench-rr: \(message): \(String(cString: strerror(errno)))\n".utf8))
    exit(1)
}

func address(_ host: String, _ port: UInt16) -> sockaddr_in {
    var a = sockaddr_in()
    a.sin_family = sa_family_t(AF_INET)
    a.sin_port = port.bigEndian
    guard inet_pton(AF_INET, host, &a.sin_addr) == 1 else { fail("bad address \(host)") }
    return a
}

func withSockaddr<T>(_ a: inout sockaddr_in, _ body: (UnsafePointer<sockaddr>, socklen_t) -> T) -> T {
    withUnsafePointer(to: &a) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { body($0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
}

/// Reads exactly `count` bytes (a TCP message may arrive in pieces).
func readFull(_ fd: Int32, _ buf: UnsafeMutableRawPointer, _ count: Int) -> Bool {
    var got = 0
    while got < count {
        let n = read(fd, buf + got, count - got)
        if n <= 0 { if n < 0 && errno == EINTR { continue }; return false }
        got += n
    }
    return true
}

func serve(_ proto: String, _ port: UInt16) -> Never {
    let tcp = proto == "tcp"
    let s = socket(AF_INET, Int32(tcp ? SOCK_STREAM.rawValue : SOCK_DGRAM.rawValue), 0)
    var one: Int32 = 1
    setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, 4)
    var a = address("0.0.0.0", port)
    guard withSockaddr(&a, { bind(s, $0, $1) }) == 0 else { fail("bind") }
    var buf = [UInt8](repeating: 0, count: 65536)
    if !tcp {
        while true {
            var peer = sockaddr_storage()
            var len = socklen_t(MemoryLayout<sockaddr_storage>.size)
            let n = withUnsafeMutablePointer(to: &peer) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { recvfrom(s, &buf, buf.count, 0, $0, &len) } }
            if n > 0 { _ = withUnsafePointer(to: &peer) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { sendto(s, buf, n, 0, $0, len) } } }
        }
    }
    listen(s, 16)
    while true {
        let c = accept(s, nil, nil)
        if c < 0 { continue }
        setsockopt(c, Int32(IPPROTO_TCP), TCP_NODELAY, &one, 4)
        Thread.detachNewThread {
            var b = [UInt8](repeating: 0, count: 65536)
            while true {
                let n = read(c, &b, b.count)
                if n <= 0 { break }
                _ = b.withUnsafeBytes { write(c, $0.baseAddress, n) }
            }
            close(c)
        }
    }
}

func client(_ proto: String, _ host: String, _ port: UInt16, samples: Int, warmup: Int, size: Int) {
    let tcp = proto == "tcp"
    let s = socket(AF_INET, Int32(tcp ? SOCK_STREAM.rawValue : SOCK_DGRAM.rawValue), 0)
    var a = address(host, port)
    guard withSockaddr(&a, { connect(s, $0, $1) }) == 0 else { fail("connect \(host):\(port)") }
    var one: Int32 = 1
    if tcp { setsockopt(s, Int32(IPPROTO_TCP), TCP_NODELAY, &one, 4) }
    // A lost UDP datagram would stall the run: give up on it after 1 s and count it.
    var timeout = timeval(tv_sec: 1, tv_usec: 0)
    setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
    var request = [UInt8](repeating: 0x5A, count: size), reply = [UInt8](repeating: 0, count: size)
    var histogram = Histogram<UInt64>(highestTrackableValue: 60_000_000_000, numberOfSignificantValueDigits: .three)  // ns
    var lost = 0
    func now() -> UInt64 {
        var t = timespec()
        clock_gettime(CLOCK_MONOTONIC, &t)
        return UInt64(t.tv_sec) * 1_000_000_000 + UInt64(t.tv_nsec)
    }
    let started = now()
    for i in 0..<(warmup + samples) {
        request[0] = UInt8(truncatingIfNeeded: i)
        let t0 = now()
        guard request.withUnsafeBytes({ write(s, $0.baseAddress, size) }) == size else { fail("send") }
        let ok = reply.withUnsafeMutableBytes { tcp ? readFull(s, $0.baseAddress!, size) : read(s, $0.baseAddress, size) == size }
        let t1 = now()
        if !ok { if tcp { fail("receive") }; lost += 1; continue }
        if i >= warmup { histogram.record(t1 - t0) }
    }
    let seconds = Double(now() - started) / 1e9
    func us(_ ns: UInt64) -> Double { (Double(ns) / 10).rounded() / 100 }
    var cdf: [[Double]] = []
    for pv in histogram.percentiles(ticksPerHalfDistance: 5) {
        cdf.append([us(pv.value), (pv.percentile * 1000).rounded() / 1000])
        if pv.percentile >= 100 { break }
    }
    let result: [String: Any] = [
        "proto": proto, "samples": Int(histogram.totalCount), "warmup": warmup, "size": size, "lost": lost,
        "seconds": (seconds * 1000).rounded() / 1000,
        "us": ["p50": us(histogram.valueAtPercentile(50)), "p90": us(histogram.valueAtPercentile(90)),
               "p99": us(histogram.valueAtPercentile(99)), "p99_9": us(histogram.valueAtPercentile(99.9)),
               "max": us(histogram.max), "mean": (histogram.mean / 10).rounded() / 100],
        "cdf": cdf,
    ]
    let data = try! JSONSerialization.data(withJSONObject: result, options: [.sortedKeys])
    print(String(decoding: data, as: UTF8.self))
}

let args = CommandLine.arguments
guard args.count >= 4, ["udp", "tcp"].contains(args[2]) else {
    print("usage: vcpe-bench-rr serve udp|tcp PORT | client udp|tcp HOST PORT SAMPLES [WARMUP] [SIZE]")
    exit(2)
}
if args[1] == "serve" { serve(args[2], UInt16(args[3])!) }
guard args[1] == "client", args.count >= 6 else { exit(2) }
client(args[2], args[3], UInt16(args[4])!, samples: Int(args[5])!, warmup: args.count > 6 ? Int(args[6])! : 1000,
       size: args.count > 7 ? Int(args[7])! : 64)
