import Foundation
import Testing

/// `vcpe agent` run by a test as systemd would run it: a child process with its log in a
/// file, its HTTP endpoint on a port the kernel chose (read from its "agent started" line).
public final class AgentProcess: @unchecked Sendable {
    public private(set) var pid: pid_t
    public let log: String
    public private(set) var port = 0
    private let scenario: Scenario
    private let interval: Int

    public init(_ sc: Scenario, interval: Int = 30) throws {
        scenario = sc
        self.interval = interval
        log = sc.stateDir + "-agent.log"
        pid = 0
        try start()
    }

    deinit { stop(signal: SIGKILL) }

    /// Starts it (again) and waits for its endpoint; the log is appended to.
    public func start() throws {
        let args = ["agent", "--state-dir", scenario.stateDir, "--metrics-address", "127.0.0.1:0", "--reconcile-interval", "\(interval)"]
        let env = ["VCPE_LOG=info"] + (scenario.wireguard.map { ["VCPE_WIREGUARD=\($0)"] } ?? [])
        let before = (try? String(contentsOfFile: log, encoding: .utf8))?.count ?? 0
        // env execs vcpe itself: the pid is the agent's, and its command line is vcpe's.
        pid = try spawn("/bin/sh", ["-c", "exec /usr/bin/env \(env.joined(separator: " ")) \(vcpeBinary.path) \(args.joined(separator: " ")) 2>>\(log)"])
        let deadline = Date().addingTimeInterval(20)
        while Date() < deadline {
            let text = String(((try? String(contentsOfFile: log, encoding: .utf8)) ?? "").dropFirst(before))
            if let line = text.split(separator: "\n").first(where: { $0.contains("msg=\"agent started\"") }),
               let r = line.range(of: "address=127.0.0.1:"), let p = Int(line[r.upperBound...].prefix { $0.isNumber }) {
                port = p
                return
            }
            var status: Int32 = 0
            if waitpid(pid, &status, WNOHANG) == pid { throw CommandFailed(command: "vcpe agent", status: status, stderr: text) }
            usleep(50_000)
        }
        throw CommandFailed(command: "vcpe agent", status: -1, stderr: "no \"agent started\" line within 20 s")
    }

    /// Stops it (SIGTERM: as systemd stops it; SIGKILL: a crash) and reaps it; its exit status.
    @discardableResult
    public func stop(signal: Int32 = SIGTERM) -> Int32? {
        guard pid > 0 else { return nil }
        kill(pid, signal)
        let status = waitFor(pid)
        pid = 0
        return status
    }

    /// The log written since the agent was first started.
    public var logText: String { (try? String(contentsOfFile: log, encoding: .utf8)) ?? "" }

    /// An HTTP GET on loopback: status code and body.
    public func get(_ path: String) throws -> (status: Int, body: String) {
        try httpGet(port: port, path: path)
    }

    /// /metrics as samples: "name{labels}" -> value.
    public func metrics() throws -> [String: Double] {
        let r = try get("/metrics")
        guard r.status == 200 else { throw CommandFailed(command: "GET /metrics", status: Int32(r.status), stderr: r.body) }
        return parseExposition(r.body)
    }

    /// One series' value now, nil when it is not exported (or the scrape failed).
    public func metric(_ series: String) -> Double? { (try? metrics())?[series] }

    /// Waits until `condition` holds or `seconds` pass; whether it held.
    public func waitUntil(seconds: Double, _ condition: () throws -> Bool) rethrows -> Bool {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            if try condition() { return true }
            usleep(100_000)
        }
        return try condition()
    }
}

/// The Prometheus text format's samples, keyed by the series as written.
public func parseExposition(_ text: String) -> [String: Double] {
    var out: [String: Double] = [:]
    for line in text.split(separator: "\n") where !line.hasPrefix("#") {
        guard let space = line.lastIndex(of: " "), let v = Double(line[line.index(after: space)...]) else { continue }
        out[String(line[..<space])] = v
    }
    return out
}

/// A TCP connection to 127.0.0.1:port (the caller closes it).
public func connectLoopback(port: Int, timeout: Int = 10) throws -> Int32 {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard fd >= 0 else { throw CommandFailed(command: "socket", status: errno, stderr: "") }
    var tv = timeval(tv_sec: timeout, tv_usec: 0)
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
    var addr = sockaddr_in()
    addr.sin_family = sa_family_t(AF_INET)
    addr.sin_port = in_port_t(UInt16(port).bigEndian)
    addr.sin_addr.s_addr = inet_addr("127.0.0.1")
    let rc = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
    guard rc == 0 else {
        close(fd)
        throw CommandFailed(command: "connect 127.0.0.1:\(port)", status: errno, stderr: "")
    }
    return fd
}

/// Sends `request` as is and reads the answer to the end (the server closes the connection).
public func rawHTTP(port: Int, _ request: String) throws -> String {
    let fd = try connectLoopback(port: port)
    defer { close(fd) }
    let bytes = Array(request.utf8)
    var sent = 0
    while sent < bytes.count {
        let n = bytes[sent...].withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
        if n <= 0 { break }  // the server may answer and close before reading it all
        sent += n
    }
    var data = [UInt8](), buf = [UInt8](repeating: 0, count: 65536)
    while true {
        let n = recv(fd, &buf, buf.count, 0)
        if n <= 0 { break }
        data += buf[..<n]
    }
    return String(decoding: data, as: UTF8.self)
}

/// GET over a plain TCP socket on 127.0.0.1 (no HTTP client library: the server closes
/// the connection after its answer).
public func httpGet(port: Int, path: String) throws -> (status: Int, body: String) {
    let text = try rawHTTP(port: port, "GET \(path) HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
    guard let headEnd = text.range(of: "\r\n\r\n"), let status = Int(text.split(separator: " ").dropFirst().first ?? "") else {
        throw CommandFailed(command: "GET \(path)", status: -1, stderr: "not an HTTP answer: \(text.prefix(200))")
    }
    return (status, String(text[headEnd.upperBound...]))
}

/// Prometheus' server and promtool, unpacked by scripts/setup (not installed: no service).
public let prometheusBinary = "/opt/vcpe-test/prometheus/usr/bin/prometheus"
public let promtoolBinary = "/opt/vcpe-test/prometheus/usr/bin/promtool"
