import Foundation
import Testing
import VCPENetlink
import VCPETestSupport

/// Service processes as OCI containers, checked from outside: `runc list`, /proc of the
/// process, its cgroup files, `ip netns identify`, and commands run inside with `runc exec`.
@Suite(.serialized) struct ContainerTests {
    static let netAdmin = 12

    /// A capability set as /proc/PID/status prints it.
    static func mask(_ caps: [Int]) -> String {
        String(format: "%016llx", caps.reduce(UInt64(0)) { $0 | (1 << UInt64($1)) })
    }

    /// /proc/PID/status as key -> value.
    static func procStatus(_ pid: Int) throws -> [String: String] {
        var out: [String: String] = [:]
        for line in try String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8).split(separator: "\n") {
            let kv = line.split(separator: ":", maxSplits: 1)
            if kv.count == 2 { out[String(kv[0])] = kv[1].trimmingCharacters(in: .whitespaces) }
        }
        return out
    }

    /// A cgroup controller file of the process, named as cgroup v1 names it, read from the
    /// hierarchy the host has: the controller's own (v1, as this host mounts them) or the
    /// unified one (v2, Debian 12's default), where `memory.limit_in_bytes` is `memory.max`
    /// and `memory.failcnt` is the `max` count of `memory.events` (times the limit was hit).
    static func cgroupValue(_ pid: Int, _ controller: String, _ file: String) throws -> String {
        let lines = try String(contentsOfFile: "/proc/\(pid)/cgroup", encoding: .utf8).split(separator: "\n").map { $0.split(separator: ":", maxSplits: 2, omittingEmptySubsequences: false) }
        func read(_ path: String) throws -> String {
            try String(contentsOfFile: path, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
        }
        if let v1 = lines.first(where: { $0.count == 3 && $0[1].split(separator: ",").contains(Substring(controller)) }) {
            return try read("/sys/fs/cgroup/\(controller)\(v1[2])/\(file)")
        }
        let unified = try #require(lines.first { $0.count == 3 && $0[0] == "0" && $0[1].isEmpty }, "no v1 \(controller) or v2 line: \(lines)")
        let dir = "/sys/fs/cgroup\(unified[2])"
        // The controller must be enabled for the process's cgroup, or its files are absent.
        #expect(try read("/sys/fs/cgroup\(unified[2])/cgroup.controllers").split(separator: " ").contains(Substring(controller)))
        switch file {
        case "memory.limit_in_bytes": return try read("\(dir)/memory.max")
        case "memory.failcnt":
            let events = try read("\(dir)/memory.events").split(separator: "\n").map { $0.split(separator: " ") }
            return String(try #require(events.first { $0.count == 2 && $0[0] == "max" }, "no max in memory.events")[1])
        default: return try read("\(dir)/\(file)")
        }
    }

    static func container(_ id: String) -> [String: Any]? { runcContainers().first { $0["id"] as? String == id } }

    /// A service's `container` object in `status --json`.
    static func statusContainer(_ sc: Scenario, _ n: Int, service: String) throws -> [String: Any] {
        let all = try JSONSerialization.jsonObject(with: Data(try sc.vcpe(["status", "--json", sc.customer(n)]).utf8)) as? [[String: Any]]
        let s = (all?.first?["services"] as? [[String: Any]])?.first { $0["name"] as? String == service }
        return try #require(s?["container"] as? [String: Any], "no container for \(service): \(String(describing: s))")
    }

    static func exec(_ id: String, _ args: [String]) throws -> (status: Int32, stderr: String) {
        let r = try run(URL(fileURLWithPath: "/usr/sbin/runc"), ["exec", id] + args)
        return (r.status, r.stderr)
    }

    /// The common checks of a vcpe container: run by runc from a bundle in the state
    /// directory as `uid` (not root), exactly `caps` (ambient, since it is not root), no
    /// new privileges, seccomp on, a read-only root with a writable /tmp, its own PID,
    /// mount, UTS and IPC namespaces.
    static func expectConfined(_ sc: Scenario, id: String, pid: Int, caps: [Int], uid: Int) throws {
        let c = try #require(container(id), "\(id) not in runc list: \(runcContainers())")
        #expect(c["status"] as? String == "running" && c["pid"] as? Int == pid)
        #expect((c["bundle"] as? String)?.hasPrefix(sc.stateDir + "/containers/") == true, "\(c)")
        let st = try procStatus(pid)
        #expect(st["Uid"]?.split(whereSeparator: \.isWhitespace) == Array(repeating: Substring(String(uid)), count: 4), "\(st["Uid"] ?? "-")")
        for set in ["CapEff", "CapPrm", "CapBnd", "CapInh", "CapAmb"] { #expect(st[set] == mask(caps), "\(set) \(st[set] ?? "-") of \(id)") }
        #expect(st["NoNewPrivs"] == "1" && st["Seccomp"] == "2", "\(st)")
        for ns in ["pid", "mnt", "uts", "ipc"] {
            let inside = try FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(pid)/ns/\(ns)")
            #expect(inside != (try FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/ns/\(ns)")), "\(ns) of \(id)")
        }
        let roRoot = try exec(id, ["/usr/bin/touch", "/probe"])
        #expect(roRoot.status != 0 && roRoot.stderr.contains("Read-only file system"), "\(roRoot)")
        #expect(try exec(id, ["/usr/bin/touch", "/tmp/probe"]).status == 0, "the same command where writing is allowed")
        // Refused by the seccomp filter, whatever the capabilities say.
        let keyctl = try exec(id, ["/usr/bin/python3", "-c", "import ctypes,sys; r=ctypes.CDLL(None,use_errno=True).syscall(250,0,0,0,0,0); sys.exit(ctypes.get_errno())"])
        #expect(keyctl.status == 1, "keyctl should fail with EPERM: \(keyctl)")
    }

    @Test func theVPNDaemonIsAConfinedContainerWithLiveLimits() throws {
        let sc = try Scenario(wireguard: "userspace")
        defer { sc.cleanup() }
        let s = try VPNTests.twoSites(sc)
        let id = "vcpe-wg-\(sc.customer(1))"
        let pids = VPNTests.wireguardPIDs(sc, 1)
        #expect(pids.count == 1)
        let pid = try #require(Int(pids.first ?? ""))
        try Self.expectConfined(sc, id: id, pid: pid, caps: [Self.netAdmin], uid: SecurityTests.daemonUID)
        // Its network namespace is the service's, as iproute2 finds it.
        #expect(try sh("/usr/sbin/ip", ["netns", "identify", "\(pid)"]).trimmingCharacters(in: .whitespacesAndNewlines) == "vcpe-\(sc.customer(1)).vpn")
        // Default limits in the cgroup and in status.
        #expect(try Self.cgroupValue(pid, "memory", "memory.limit_in_bytes") == "\(128 << 20)")
        #expect(try Self.cgroupValue(pid, "pids", "pids.max") == "64")
        let shown = try Self.statusContainer(sc, 1, service: "vpn")
        #expect(shown["runtime"] as? String == "runc" && shown["state"] as? String == "running" && shown["pid"] as? Int == pid, "\(shown)")
        #expect((shown["memoryBytes"] as? Int ?? 0) > 1 << 20, "\(shown)")

        // Limits from the descriptor, changed in place: same daemon, new cgroup values, in sync.
        let peer2 = try VPNTests.vpn(sc, 2)["publicKey"] as! String
        let limited = try sc.descriptor(VPNTests.site(sc, 1, attach: sc.fx.tag + "l1", peerKey: peer2, resources: #"{ "memory": "48MiB", "pids": 32 }"#))
        try sc.vcpe(["apply", limited])
        #expect(VPNTests.wireguardPIDs(sc, 1) == pids)
        #expect(try Self.cgroupValue(pid, "memory", "memory.limit_in_bytes") == "\(48 << 20)")
        #expect(try Self.cgroupValue(pid, "pids", "pids.max") == "32")
        #expect(try sc.pendingActions(limited) == 0)

        // The limit holds: a process inside that allocates past it is killed; below it, not.
        let small = try Self.exec(id, ["/usr/bin/python3", "-c", "b = bytearray(8 << 20)"])
        #expect(small.status == 0, "\(small)")
        let big = try Self.exec(id, ["/usr/bin/python3", "-c", "b = bytearray(96 << 20)"])
        #expect(big.status == 137, "allocating 96 MiB under a 48 MiB limit: \(big)")
        #expect(try Self.cgroupValue(pid, "memory", "memory.failcnt") != "0")
        // The daemon itself lives on and the tunnel still carries traffic.
        #expect(VPNTests.wireguardPIDs(sc, 1) == pids)
        #expect(ping(from: s.lan1, to: "192.168.32.10"))

        // A bundle removed by hand under the running container: delete still takes the container.
        try FileManager.default.removeItem(atPath: sc.stateDir + "/containers/\(id)")
        try sc.vcpe(["delete", sc.customer(1)])
        #expect(Self.container(id) == nil)
        #expect(!FileManager.default.fileExists(atPath: sc.stateDir + "/containers/\(id)"))
        #expect(VPNTests.wireguardPIDs(sc, 1).isEmpty)
        _ = try sc.vcpe(["delete", sc.customer(1)])
    }

    @Test func theForwarderIsAConfinedContainer() throws {
        let sc = try Scenario()
        defer { sc.cleanup() }
        let (lan, _, file) = try SteeringTests.appliedWithHost(sc)
        #expect(ping(from: lan, to: "203.0.113.1"))
        let shown = try Self.statusContainer(sc, 0, service: "classifier")
        let id = try #require(shown["id"] as? String)
        let pid = try #require(Int(SteeringTests.forwarderPIDs(sc).first ?? ""))
        #expect(shown["pid"] as? Int == pid, "status shows the host's pid: \(shown)")
        try Self.expectConfined(sc, id: id, pid: pid, caps: [], uid: SecurityTests.workerUID)
        // A network namespace of its own with nothing in it: it reaches chains by entering theirs.
        let links = try sh("/usr/bin/nsenter", ["-t", "\(pid)", "-n", "/usr/sbin/ip", "-j", "link"])
        let names = ((try JSONSerialization.jsonObject(with: Data(links.utf8))) as? [[String: Any]] ?? []).compactMap { $0["ifname"] as? String }
        #expect(names == ["lo"], "\(names)")
        #expect(try Self.cgroupValue(pid, "memory", "memory.limit_in_bytes") == "\(2 << 30)")

        // New limits restart the worker in a new container that has them; steering goes on.
        let out = try sc.vcpe(["forwarder", "configure", "--memory", "512MiB", "--pids", "128"])
        #expect(out.contains("memory 512 MiB, 128 pids"), "\(out)")
        var next: Int?
        for _ in 0..<200 {
            if let p = SteeringTests.forwarderPIDs(sc).first.flatMap(Int.init), p != pid, Self.container(id)?["status"] as? String == "running" { next = p; break }
            usleep(50_000)
        }
        let restarted = try #require(next, "no new worker")
        #expect(try Self.cgroupValue(restarted, "memory", "memory.limit_in_bytes") == "\(512 << 20)")
        #expect(try Self.cgroupValue(restarted, "pids", "pids.max") == "128")
        #expect(ping(from: lan, to: "203.0.113.1"))
        #expect(try sc.pendingActions(file) == 0)

        // The broker the capability-less worker depends on: it opens a configured chain (the
        // descriptors come with the answer) and nothing else.
        let broker = sc.stateDir + "/forwarder/broker.sock"
        let ask = """
            import json, socket, sys
            s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); s.sendall(sys.argv[2].encode() + b"\\n")
            msg, fds, _, _ = socket.recv_fds(s, 65536, 64)
            while not msg.endswith(b"\\n"):
                more = s.recv(65536)
                if not more: break
                msg += more
            print(json.dumps({"reply": json.loads(msg), "fds": len(fds)}))
            """
        func brokerAnswer(_ request: String) throws -> [String: Any] {
            let out = try sh("/usr/bin/env", ["python3", "-c", ask, broker, request])
            return try #require(try JSONSerialization.jsonObject(with: Data(out.utf8)) as? [String: Any])
        }
        let opened = try brokerAnswer(SecurityTests.brokerRequest("open", sc.customer(0)))
        let ports = ((opened["reply"] as? [String: Any])?["ports"] as? [Any])?.count ?? 0
        #expect(ports == 4 && opened["fds"] as? Int == 1 + ports + 1, "ring, one socket per link, the flow map: \(opened)")
        for request in [try SecurityTests.brokerRequest("open", "nosuchcustomer"), try SecurityTests.brokerRequest("detach", "vcpe-\(sc.customer(0)).fw"),
                        try SecurityTests.brokerRequest("open", sc.customer(0), extra: ["ringFrames": 0, "flowEntries": 16384]),
                        try SecurityTests.brokerRequest("mount", "/")] {
            let refused = try brokerAnswer(request)
            #expect((refused["reply"] as? [String: Any])?["error"] != nil && refused["fds"] as? Int == 0, "\(request): \(refused)")
        }

        try sc.vcpe(["delete", sc.customer(0)])
        #expect(Self.container(id) == nil)
        #expect(SteeringTests.forwarderPIDs(sc).isEmpty)
    }

    /// A runtime that is missing, and one that refuses: apply says which and why, and
    /// leaves nothing of the customer (namespaces, bridges, bundles, containers).
    @Test func aMissingOrFailingRuntimeLeavesNothing() throws {
        let sc = try Scenario(wireguard: "userspace")
        defer { sc.cleanup() }
        let refusing = sc.stateDir + "-runtime"
        try "#!/bin/sh\necho \"refusing-runtime: will not $1\" >&2\nexit 3\n".write(toFile: refusing, atomically: true, encoding: .utf8)
        chmod(refusing, 0o755)
        defer { try? FileManager.default.removeItem(atPath: refusing) }
        let h = try sc.lanHost(1, address: "192.168.31.10/24", gateway: "192.168.31.1")
        let vpnFile = try sc.descriptor(VPNTests.site(sc, 1, attach: h.attach, peerKey: VPNTests.strangerKey))
        let (_, attach0) = try sc.lanHost(0, address: "192.168.20.10/24", gateway: "192.168.20.1")
        let steered = try sc.descriptor(SteeringTests.chain(sc, 0, attach: attach0, lan: "192.168.20", wan: "203.0.113.20"))

        for (runtime, expected) in [("/nonexistent/runc", "OCI runtime /nonexistent/runc is not an executable file"),
                                    (refusing, "refusing-runtime: will not run")] {
            for (n, file) in [(1, vpnFile), (0, steered)] {
                let r = try run(URL(fileURLWithPath: "/usr/bin/env"), ["VCPE_WIREGUARD=userspace", vcpeBinary.path, "apply", file,
                                                                      "--state-dir", sc.stateDir, "--runtime", runtime])
                #expect(r.status == 1)
                #expect(r.stderr.contains(expected) && r.stderr.contains("rolled back"), "\(r.stderr)")
                #expect(r.stderr.split(separator: "\n").count == 1, "one line: \(r.stderr)")
                #expect(!(try sh("/usr/sbin/ip", ["netns", "list"])).contains("vcpe-\(sc.customer(n))"))
                #expect(try RouteSocket().link(named: "vb-\(sc.customer(n))") == nil)
                #expect(((try? FileManager.default.contentsOfDirectory(atPath: sc.stateDir + "/containers")) ?? []).isEmpty)
                #expect(!runcContainers().contains { ($0["bundle"] as? String)?.hasPrefix(sc.stateDir) == true })
            }
        }
        // Another runtime by path (here a wrapper around runc, as crun or runsc would be
        // named): the daemon and the forwarder run under it, and status says which.
        let wrapper = sc.stateDir + "-wrapped-runc"
        try "#!/bin/sh\nexec /usr/sbin/runc \"$@\"\n".write(toFile: wrapper, atomically: true, encoding: .utf8)
        chmod(wrapper, 0o755)
        defer { try? FileManager.default.removeItem(atPath: wrapper) }
        for (n, file, service) in [(1, vpnFile, "vpn"), (0, steered, "classifier")] {
            let r = try run(URL(fileURLWithPath: "/usr/bin/env"), ["VCPE_WIREGUARD=userspace", vcpeBinary.path, "apply", file,
                                                                  "--state-dir", sc.stateDir, "--runtime", wrapper])
            #expect(r.status == 0, "\(r.stderr)")
            let shown = try Self.statusContainer(sc, n, service: service)
            #expect(shown["runtime"] as? String == URL(fileURLWithPath: wrapper).lastPathComponent && shown["state"] as? String == "running", "\(shown)")
        }
        // Delete with the runtime that made them.
        try sc.vcpe(["delete", sc.customer(0), sc.customer(1)])
        #expect(!runcContainers().contains { ($0["bundle"] as? String)?.hasPrefix(sc.stateDir) == true })
    }
}
