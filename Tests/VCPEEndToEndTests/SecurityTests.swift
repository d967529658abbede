import Foundation
import Testing
import VCPENetlink
import VCPETestSupport

/// Each attack tried from where an attacker stands: inside the forwarder's worker (a
/// subverted worker is `runc exec` in its container, with its user, capabilities and
/// seccomp), inside one WireGuard daemon's container, as a customer writing descriptors,
/// as a LAN host forging its source. Each is refused and the host is unchanged, checked
/// with the kernel's own tools.
@Suite(.serialized) struct SecurityTests {
    static let workerUID = 64_512, daemonUID = 64_513

    /// A small attacker's toolkit in Python, given to `python3 -c` inside a container (the
    /// repository is not mounted there). `sys.argv[1]` picks the attack; it prints JSON.
    static let toolkit = #"""
    import ctypes, json, os, socket, sys, threading, time
    what = sys.argv[1]
    def ask(path, request, wait=5):
        s = socket.socket(socket.AF_UNIX); s.settimeout(wait); s.connect(path); s.sendall(request)
        msg, fds, _, _ = socket.recv_fds(s, 65536, 64)
        for fd in fds: os.close(fd)
        return {"reply": msg.decode(errors="replace"), "fds": len(fds)}
    if what == "broker":
        print(json.dumps(ask(sys.argv[2], sys.argv[3].encode() + b"\n")))
    elif what == "flood":
        # An endless line: the broker must stop reading and answer (or close) on its own.
        s = socket.socket(socket.AF_UNIX); s.settimeout(10); s.connect(sys.argv[2])
        sent = 0
        try:
            while sent < int(sys.argv[3]):
                s.sendall(b"x" * 4096); sent += 4096
        except OSError as e:
            pass
        try: got = s.recv(65536).decode(errors="replace")
        except OSError as e: got = "error " + str(e)
        print(json.dumps({"sent": sent, "reply": got}))
    elif what == "hold-then-ask":
        # One client holds a connection open saying nothing; another is still answered.
        idle = socket.socket(socket.AF_UNIX); idle.connect(sys.argv[2])
        t = time.monotonic(); r = ask(sys.argv[2], sys.argv[3].encode() + b"\n"); r["seconds"] = time.monotonic() - t
        print(json.dumps(r))
    elif what == "hoard":
        # Asks again and again, keeping every descriptor, until refused.
        kept, error = 0, None
        for _ in range(int(sys.argv[4])):
            s = socket.socket(socket.AF_UNIX); s.settimeout(5); s.connect(sys.argv[2]); s.sendall(sys.argv[3].encode() + b"\n")
            msg, fds, _, _ = socket.recv_fds(s, 65536, 64)
            reply = json.loads(msg)
            if reply.get("error"): error = reply["error"]; break
            kept += 1
        print(json.dumps({"opened": kept, "error": error}))
    elif what == "connect":
        try:
            s = socket.socket(socket.AF_UNIX); s.settimeout(2); s.connect(sys.argv[2]); print(json.dumps({"connected": True}))
        except OSError as e:
            print(json.dumps({"connected": False, "errno": e.errno}))
    elif what == "syscalls":
        libc = ctypes.CDLL(None, use_errno=True)
        libc.syscall.restype = ctypes.c_long
        def call(n, *args):
            r = libc.syscall(ctypes.c_long(n), *[ctypes.c_long(a) for a in args])
            if r == 0 and n == 56: os._exit(0)  # a clone that went through: the child leaves at once
            if r > 0 and n == 56: os.waitpid(r, 0)
            return 0 if r >= 0 else ctypes.get_errno()
        # With a new user namespace comes every capability in it: that is the escape the
        # filter must stop (x86_64 system call numbers: the tests run there).
        out = {
            "clone-newuser": call(56, 0x10000000 | 17, 0, 0, 0, 0),
            "clone-newuser-newnet": call(56, 0x50000000 | 17, 0, 0, 0, 0),
            "clone-newuser-newns": call(56, 0x10020000 | 17, 0, 0, 0, 0),
            "unshare-newuser": call(272, 0x10000000),
            "clone3": call(435, 0, 0),
            "io_uring_setup": call(425, 1, 0),
        }
        # What a daemon does every day still works: threads and plain children.
        th = threading.Thread(target=lambda: None); th.start(); th.join()
        pid = os.fork()
        if pid == 0: os._exit(7)
        out["fork"] = os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])
        out["thread"] = 0
        print(json.dumps(out))
    """#

    /// Runs the toolkit inside container `id` with the container's own user, capabilities and filter.
    static func inside(_ id: String, user: String? = nil, _ args: [String]) throws -> [String: Any] {
        let r = try run(URL(fileURLWithPath: "/usr/sbin/runc"), ["exec"] + (user.map { ["--user", $0] } ?? []) + [id, "/usr/bin/python3", "-c", toolkit] + args)
        let line = r.stdout.split(separator: "\n").last.map(String.init) ?? ""
        return try #require(try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any], "\(args): \(r.stdout) \(r.stderr)")
    }

    /// A broker request line as an attacker writes it: any request, any name, any field, any version.
    static func brokerRequest(_ request: String, _ customer: String? = nil, version: Int = 1, extra: [String: Int] = [:]) throws -> String {
        var object: [String: Any] = extra
        object["version"] = version
        object["request"] = request
        if let customer { object["customer"] = customer }
        return String(decoding: try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]), as: UTF8.self)
    }

    static func ids(_ pid: Int, _ key: String) throws -> [Int] {
        (try ContainerTests.procStatus(pid)[key] ?? "").split(whereSeparator: { $0 == " " || $0 == "\t" }).compactMap { Int($0) }
    }

    static func residentKiB(_ pid: Int) throws -> Int {
        Int((try ContainerTests.procStatus(pid)["VmRSS"] ?? "").split(separator: " ").first ?? "") ?? -1
    }

    @Test func aSubvertedWorkerCannotMakeRootWriteOrOpenAnything() throws {
        let sc = try Scenario()
        defer { sc.cleanup() }
        let (lan, _, file) = try SteeringTests.appliedWithHost(sc)
        let me = sc.customer(0)
        let pid = try #require(Int(SteeringTests.forwarderPIDs(sc).first ?? ""))
        let id = try #require(try ContainerTests.statusContainer(sc, 0, service: "classifier")["id"] as? String)
        #expect(try Self.ids(pid, "Uid") == [Self.workerUID, Self.workerUID, Self.workerUID, Self.workerUID])
        #expect(try Self.ids(pid, "Gid") == [Self.workerUID, Self.workerUID, Self.workerUID, Self.workerUID])

        // Every file root opens in the forwarder directory: the worker can plant nothing there.
        let directory = sc.stateDir + "/forwarder"
        let planted = sc.stateDir + "-planted"
        defer { try? FileManager.default.removeItem(atPath: planted) }
        for path in ["forwarder.log", "supervisor.json", "settings.json", "chains/\(me).json", "chains/\(sc.customer(5)).json", "new-file"] {
            let r = try ContainerTests.exec(id, ["/usr/bin/ln", "-sf", planted, directory + "/" + path])
            #expect(r.status != 0, "the worker planted a link at \(path)")
        }
        // Its own directory is writable (the control socket lives there), so the refusals above mean something.
        #expect(try ContainerTests.exec(id, ["/usr/bin/touch", directory + "/run/probe"]).status == 0)
        // No bpffs: the pins are root's (they exist on the host).
        #expect(FileManager.default.fileExists(atPath: "/sys/fs/bpf/vcpe/\(me)"))
        #expect(try ContainerTests.exec(id, ["/usr/bin/test", "-e", "/sys/fs/bpf/vcpe"]).status != 0)
        // It cannot raise its own limits.
        let raise = try ContainerTests.exec(id, ["/usr/bin/python3", "-c",
            "import resource as r; s, h = r.getrlimit(r.RLIMIT_NOFILE); r.setrlimit(r.RLIMIT_NOFILE, (h + 1, h + 1))"])
        #expect(raise.status != 0, "raised its open-files limit")

        // The worker points its control socket at root's broker: vcpe does not take an
        // answer from a socket that is not the worker's user's.
        #expect(try ContainerTests.exec(id, ["/usr/bin/ln", "-sf", directory + "/broker.sock", directory + "/run/control.sock"]).status == 0)
        let misled = try run(vcpeBinary, ["apply", file, "--state-dir", sc.stateDir])
        #expect(misled.status == 1 && misled.stderr.contains("is answered by uid 0, not the forwarder's"), "\(misled.stderr)")

        // The supervisor restarts a killed worker and opens its log again: still root's
        // regular file, and nothing appeared where the worker pointed.
        kill(pid_t(pid), SIGKILL)
        var next: Int?
        for _ in 0..<200 {
            if let p = SteeringTests.forwarderPIDs(sc).first.flatMap(Int.init), p != pid { next = p; break }
            usleep(50_000)
        }
        #expect(next != nil, "the supervisor restarted the worker")
        let log = try FileManager.default.attributesOfItem(atPath: directory + "/forwarder.log")
        #expect(log[.type] as? FileAttributeType == .typeRegular && (log[.ownerAccountID] as? Int) == 0, "\(log)")
        #expect(!FileManager.default.fileExists(atPath: planted))
        // The new worker made its own socket again: apply talks to it.
        #expect(try sc.pendingActions(file) == 0)
        #expect(ping(from: lan, to: "203.0.113.1"))
    }

    @Test func theBrokerServesOnlyTheWorkerAndOnlyWhatRootConfigured() throws {
        let sc = try Scenario()
        defer { sc.cleanup() }
        _ = try SteeringTests.appliedWithHost(sc)
        let me = sc.customer(0)
        let broker = sc.stateDir + "/forwarder/broker.sock"
        let id = try #require(try ContainerTests.statusContainer(sc, 0, service: "classifier")["id"] as? String)
        func error(_ r: [String: Any]) -> String? {
            (try? JSONSerialization.jsonObject(with: Data(((r["reply"] as? String) ?? "").utf8)) as? [String: Any])?["error"] as? String
        }

        // From inside the worker: its own chain opens (the positive control), nothing else does.
        let openOwn = try Self.brokerRequest("open", me)
        let opened = try Self.inside(id, ["broker", broker, openOwn])
        #expect(error(opened) == nil && opened["fds"] as? Int == 6, "ring, 4 link sockets, flow map: \(opened)")
        // Names that are not a customer's, sizes the worker picks, requests of another
        // version or of the plain-words protocol before it.
        for request in [try Self.brokerRequest("open", "../../../etc/passwd"), try Self.brokerRequest("open", "../\(me)"),
                        try Self.brokerRequest("open", sc.customer(5)),
                        try Self.brokerRequest("open", me, extra: ["ringFrames": 99_999_999, "flowEntries": 99_999_999]),
                        try Self.brokerRequest("detach", me), try Self.brokerRequest("detach", "vcpe-\(me).fw"), try Self.brokerRequest("open"),
                        try Self.brokerRequest("mount", "/"), try Self.brokerRequest("open", me, version: 2), "open \(me)"] {
            let r = try Self.inside(id, ["broker", broker, request])
            #expect(error(r) != nil && r["fds"] as? Int == 0, "\(request): \(r)")
        }
        // The refused detach left the chain's cache attached (tc, read in its namespace).
        let filters = try sh("/usr/sbin/ip", ["netns", "exec", "vcpe-\(me).classifier", "tc", "-j", "filter", "show", "dev", "lan", "ingress"])
        #expect(filters.contains("\"bpf\"") || filters.contains("bpf"), "\(filters)")

        // A chain file root wrote that names another customer's namespace or links is refused
        // as well (the broker checks what it is asked to open, not only who asks).
        let config = try String(contentsOfFile: sc.stateDir + "/forwarder/chains/\(me).json", encoding: .utf8)
        let forged = sc.stateDir + "/forwarder/chains/\(sc.customer(5)).json"
        try config.replacingOccurrences(of: "\"customer\" : \"\(me)\"", with: "\"customer\" : \"\(sc.customer(5))\"")
            .write(toFile: forged, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: forged) }
        let borrowed = try Self.inside(id, ["broker", broker, try Self.brokerRequest("open", sc.customer(5))])
        #expect(error(borrowed)?.contains("does not describe") == true && borrowed["fds"] as? Int == 0, "\(borrowed)")
        try? FileManager.default.removeItem(atPath: forged)

        // A worker that asks again and again without closing what it got is refused: each
        // open is a ring of the host's memory.
        let hoard = try Self.inside(id, ["hoard", broker, openOwn, "60"])
        #expect((hoard["opened"] as? Int ?? 60) < 60 && (hoard["error"] as? String)?.contains("more sockets") == true, "\(hoard)")

        // An endless line is cut off; root's memory does not grow with it.
        let supervisor = try #require(Int(SteeringTests.forwarderPIDs(sc, "supervise").first ?? ""))
        let before = try Self.residentKiB(supervisor)
        let flood = try Self.inside(id, ["flood", broker, String(64 << 20)])
        #expect((flood["sent"] as? Int ?? Int.max) < 64 << 20, "the broker read 64 MiB of one line: \(flood)")
        #expect(try Self.residentKiB(supervisor) - before < 8 << 10, "the supervisor grew from \(before) KiB")
        // A client that holds its connection saying nothing does not stop the others.
        let held = try Self.inside(id, ["hold-then-ask", broker, openOwn])
        #expect(error(held) == nil && held["fds"] as? Int == 6 && (held["seconds"] as? Double ?? 99) < 2, "\(held)")

        // Another user cannot connect (the socket is root's and the worker's group's), and
        // one in that group but not the worker's user is refused by SO_PEERCRED.
        let stranger = try Self.inside(id, user: "1234:1234", ["connect", broker])
        #expect(stranger["connected"] as? Bool == false && stranger["errno"] as? Int == Int(EACCES), "\(stranger)")
        let grouped = try Self.inside(id, user: "1234:\(Self.workerUID)", ["broker", broker, openOwn])
        #expect(error(grouped)?.contains("refused") == true && grouped["fds"] as? Int == 0, "\(grouped)")
    }

    @Test func aWireGuardDaemonSeesOnlyItsOwnSocket() throws {
        let sc = try Scenario(wireguard: "userspace")
        defer { sc.cleanup() }
        let sites = try VPNTests.twoSites(sc)
        let (wg1, wg2) = ("wg-\(sc.customer(1))", "wg-\(sc.customer(2))")
        let id1 = "vcpe-\(wg1)"
        let pid = try #require(Int(VPNTests.wireguardPIDs(sc, 1).first ?? ""))
        #expect(try Self.ids(pid, "Uid") == [Self.daemonUID, Self.daemonUID, Self.daemonUID, Self.daemonUID])

        // Inside daemon 1: its own socket and nothing else; daemon 2's is nowhere.
        let listing = try run(URL(fileURLWithPath: "/usr/sbin/runc"), ["exec", id1, "/usr/bin/ls", "-A", "/var/run/wireguard"])
        #expect(listing.stdout.split(separator: "\n") == ["\(wg1).sock"], "\(listing)")
        for path in ["/var/run/wireguard/\(wg2).sock", "/var/run/wireguard/vcpe/\(wg2)/\(wg2).sock"] {
            let r = try Self.inside(id1, ["connect", path])
            #expect(r["connected"] as? Bool == false, "daemon 1 reached \(path): \(r)")
        }
        #expect(try Self.inside(id1, ["connect", "/var/run/wireguard/\(wg1).sock"])["connected"] as? Bool == true, "its own socket")
        // On the host `wg` still finds both (root's links to each daemon's socket).
        let shown = try sh("/usr/bin/wg", ["show", "interfaces"])
        #expect(shown.contains(wg1) && shown.contains(wg2), "\(shown)")

        // A process with the daemons' user but not daemon 1 serves daemon 1's socket (as a
        // subverted daemon could serve another's, or a link to it): vcpe does not take its
        // answer as daemon 1's. (wireguard-go itself stops when its socket file is touched,
        // so the impostor takes the place of a daemon killed hard.)
        let socket = "/var/run/wireguard/vcpe/\(wg1)/\(wg1).sock"
        kill(pid_t(pid), SIGKILL)
        for _ in 0..<100 where (try? ContainerTests.procStatus(pid)) != nil { usleep(20_000) }
        let ready = sc.stateDir + "-impostor-ready"
        defer { unlink(ready) }
        let impostor = try spawn("/usr/bin/setpriv", ["--reuid=\(Self.daemonUID)", "--regid=\(Self.daemonUID)", "--clear-groups",
            "/usr/bin/python3", "-c", "import os,socket,sys\ntry: os.unlink(sys.argv[1])\nexcept OSError: pass\ns=socket.socket(socket.AF_UNIX); s.bind(sys.argv[1]); s.listen(4)\nopen(sys.argv[2],'w').close()\nwhile True:\n c,_=s.accept(); c.sendall(b'private_key=0000000000000000000000000000000000000000000000000000000000000000\\nerrno=0\\n\\n')",
            socket, ready])
        defer { kill(impostor, SIGKILL); waitFor(impostor) }
        var listening = false
        for _ in 0..<300 where !listening { listening = FileManager.default.fileExists(atPath: ready); if !listening { usleep(10_000) } }
        #expect(listening, "the impostor listens")
        let r = try run(vcpeBinary, ["status", sc.customer(1), "--state-dir", sc.stateDir])
        #expect((r.stdout + r.stderr).contains("not \(wg1)'s daemon"), "\(r.status) \(r.stdout) \(r.stderr)")
        _ = sites
    }

    @Test func containersCannotMakeNamespacesOrUseIOUring() throws {
        let sc = try Scenario(wireguard: "userspace")
        defer { sc.cleanup() }
        _ = try VPNTests.twoSites(sc)
        let (_, attach0) = try sc.lanHost(0, address: "192.168.20.10/24", gateway: "192.168.20.1")
        _ = try sc.vcpe(["apply", try sc.descriptor(SteeringTests.chain(sc, 0, attach: attach0, lan: "192.168.20", wan: "203.0.113.20"))])
        let worker = try #require(try ContainerTests.statusContainer(sc, 0, service: "classifier")["id"] as? String)
        for id in ["vcpe-wg-\(sc.customer(1))", worker] {
            let r = try Self.inside(id, ["syscalls"])
            for call in ["clone-newuser", "clone-newuser-newnet", "clone-newuser-newns", "unshare-newuser", "io_uring_setup"] {
                #expect(r[call] as? Int == Int(EPERM), "\(id): \(call) \(r)")
            }
            #expect(r["clone3"] as? Int == Int(ENOSYS), "\(id): clone3 \(r)")
            #expect(r["fork"] as? Int == 7 && r["thread"] as? Int == 0, "\(id): plain children and threads still work: \(r)")
        }
    }

    @Test func oneCustomerCannotTakeAnothersLinksAddressesOrTheUplink() throws {
        let sc = try Scenario()
        defer { sc.cleanup() }
        let (lan0, attach0, file0) = try ApplyTests.officeWithHost(sc)
        try sc.vcpe(["apply", file0])
        try sc.plugInternet()
        let (lan1, attach1) = try sc.lanHost(1, address: "192.168.11.10/24", gateway: "192.168.11.1")
        let mine = ApplyTests.office(sc, 1, attach: attach1, lan: "192.168.11", wan: "203.0.113.11")
        let other = sc.customer(0)

        var attempts: [(String, String)] = [
            (mine.replacingOccurrences(of: "\"\(attach1)\"", with: "\"\(attach0)\""), "is on customer \(other)'s LAN"),
            (mine.replacingOccurrences(of: "\"segment\": \"\(sc.segment)\"", with: "\"segment\": \"\(attach0)\""), "attached to customer \(other)'s LAN"),
            (mine.replacingOccurrences(of: "203.0.113.11/24", with: "203.0.113.10/24"), "held by customer \(other) on segment \(sc.segment)"),
        ]
        // vcpe's own per-customer names are refused by validate itself.
        for name in ["vl-\(other)", "vb-\(other)", "vw-\(other)"] {
            attempts.append((mine.replacingOccurrences(of: "\"\(attach1)\"", with: "\"\(name)\""), "/lan/attach"))
        }
        attempts.append((mine.replacingOccurrences(of: "\"segment\": \"\(sc.segment)\"", with: "\"segment\": \"vb-\(other)\""), "/wan/segment"))
        // The host's uplink, where it has one: the interface its default route leaves by.
        if let uplink = (try ip(["route", "show", "default"])).first?["dev"] as? String {
            attempts.append((mine.replacingOccurrences(of: "\"\(attach1)\"", with: "\"\(uplink)\""), "uplink"))
        }
        for (text, expected) in attempts {
            let r = try run(vcpeBinary, ["apply", try sc.descriptor(text), "--state-dir", sc.stateDir])
            #expect(r.status == 1 && r.stderr.contains(expected), "expected \(expected): \(r.stderr)")
            #expect(r.stderr.split(separator: "\n").count <= 2, "\(r.stderr)")
            #expect(!(try sh("/usr/sbin/ip", ["netns", "list"])).contains("vcpe-\(sc.customer(1))."))
            #expect(try RouteSocket().link(named: "vb-\(sc.customer(1))") == nil)
        }
        // The first customer was not disturbed, and the second applies with its own.
        #expect(try sc.pendingActions(file0) == 0)
        #expect(ping(from: lan0, to: "203.0.113.1"))
        try sc.vcpe(["apply", try sc.descriptor(mine)])
        #expect(ping(from: lan1, to: "203.0.113.1"))
    }

    /// Datagrams from `lan` to the internet host, `count` from the host's LAN address (to
    /// UDP port 9) and `count` from a forged one (to port 10); how many of each the internet
    /// host received (nft counters in its namespace, by port: NAT may change the source).
    static func sendForged(_ sc: Scenario, from lan: String, legit: String, count: Int) throws -> (legit: Int, forged: Int) {
        let forged = "10.66.0.5"
        try sh("/usr/sbin/ip", ["-n", lan, "addr", "add", "\(forged)/32", "dev", "eth0"])
        try nftLoad("""
            table inet probe {
              chain in { type filter hook prerouting priority -300; policy accept;
                udp dport 9 counter comment "legit"
                udp dport 10 counter comment "forged"
              }
            }
            """, namespace: sc.internet)
        let send = "import socket,sys\nfor port, src in ((9, sys.argv[1]), (10, sys.argv[2])):\n s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM); s.bind((src,0))\n for i in range(\(count)): s.sendto(b'x',('203.0.113.1',port))"
        try sh("/usr/sbin/ip", ["netns", "exec", lan, "python3", "-c", send, legit, forged])
        var seen = (legit: 0, forged: 0)
        for _ in 0..<40 {
            seen = (try nftCounter("legit", in: sc.internet), try nftCounter("forged", in: sc.internet))
            if seen.legit >= count { break }
            usleep(50_000)
        }
        return seen
    }

    @Test func forgedLANSourcesNeverReachTheWAN() throws {
        let sc = try Scenario()
        defer { sc.cleanup() }
        // Without NAT nothing else would stop them: the router only routes.
        let (lan, attach) = try sc.lanHost(0, address: "192.168.12.10/24", gateway: "192.168.12.1")
        let plain = """
            { "apiVersion": "vcpe/v1", "customer": "\(sc.customer(0))",
              "lan": { "subnet": "192.168.12.0/24", "gateway": "192.168.12.1", "attach": ["\(attach)"] },
              "wan": { "address": "203.0.113.12/24", "gateway": "203.0.113.1", "segment": "\(sc.segment)" },
              "services": { "rt": { "type": "router", "nat": "none" } },
              "paths": { "internet": ["rt"] } }
            """
        try sc.vcpe(["apply", try sc.descriptor(plain)])
        try sc.plugInternet()
        let seen = try Self.sendForged(sc, from: lan, legit: "192.168.12.10", count: 20)
        #expect(seen.legit >= 20, "the same datagrams from the LAN address arrive: \(seen)")
        #expect(seen.forged == 0, "forged sources reached the WAN: \(seen)")
        // The deciding rule is the chain's own, in its first service.
        let dropped = try nftCounter("spoofed", in: "vcpe-\(sc.customer(0)).rt")
        #expect(dropped >= 20, "the chain's spoofed rule dropped \(dropped)")
    }

    @Test func forgedLANSourcesNeverLeaveASteeredChain() throws {
        let sc = try Scenario()
        defer { sc.cleanup() }
        let (lan, _, _) = try SteeringTests.appliedWithHost(sc)
        let seen = try Self.sendForged(sc, from: lan, legit: "192.168.20.10", count: 20)
        #expect(seen.legit >= 20 && seen.forged == 0, "\(seen)")
        let status = try JSONSerialization.jsonObject(with: Data(try sc.vcpe(["status", "--json", sc.customer(0)]).utf8)) as? [[String: Any]]
        let steering = (status?.first?["services"] as? [[String: Any]])?.compactMap { $0["steering"] as? [String: Any] }.first
        #expect((steering?["spoofed"] as? Int ?? 0) >= 20, "the forwarder counted them: \(String(describing: steering))")
    }

    @Test func stateAndKeyFilesAreRootsAlone() throws {
        let sc = try Scenario()
        defer { sc.cleanup() }
        let (_, attach, file) = try ApplyTests.officeWithHost(sc)
        _ = attach
        // A state directory others can write, or one under such a directory, is refused.
        let open = sc.stateDir + "-open"
        try FileManager.default.createDirectory(atPath: open + "/state", withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: open) }
        chmod(open, 0o777)
        for dir in [open, open + "/state"] {
            let r = try run(vcpeBinary, ["apply", file, "--state-dir", dir])
            #expect(r.status == 1 && r.stderr.contains("writable by group or others"), "\(dir): \(r.stderr)")
        }
        #expect(!(try sh("/usr/sbin/ip", ["netns", "list"])).contains("vcpe-\(sc.customer(0))."))

        // A preshared key file that is a FIFO or a device is refused at once, never read.
        let fifo = sc.stateDir + "-psk.fifo"
        mkfifo(fifo, 0o600)
        defer { unlink(fifo) }
        let h = try sc.lanHost(1, address: "192.168.31.10/24", gateway: "192.168.31.1")
        for psk in [fifo, "/dev/zero"] {
            let started = Date()
            let r = try run(URL(fileURLWithPath: "/usr/bin/env"), ["VCPE_WIREGUARD=userspace", vcpeBinary.path, "apply", "--state-dir", sc.stateDir,
                                                                  try sc.descriptor(VPNTests.site(sc, 1, attach: h.attach, peerKey: VPNTests.strangerKey, psk: psk))])
            #expect(r.status == 1 && r.stderr.contains("presharedKeyFile") && r.stderr.contains("not a regular file"), "\(r.stderr)")
            #expect(Date().timeIntervalSince(started) < 10)
        }

        // What vcpe writes in its state is root's alone.
        try sc.vcpe(["apply", file])
        for path in ["transit.json", "customers/\(sc.customer(0)).json"] {
            let a = try FileManager.default.attributesOfItem(atPath: sc.stateDir + "/" + path)
            #expect((a[.posixPermissions] as? Int) == 0o600 && (a[.ownerAccountID] as? Int) == 0, "\(path): \(a)")
        }
    }

    @Test func onlyTrustedProgramsRunInContainers() throws {
        let sc = try Scenario()
        defer { sc.cleanup() }
        let copy = sc.stateDir + "-wireguard-go"
        try FileManager.default.copyItem(atPath: "/usr/bin/wireguard-go", toPath: copy)
        defer { try? FileManager.default.removeItem(atPath: copy) }
        func vcpe(_ args: [String]) throws -> RunResult {
            try run(URL(fileURLWithPath: "/usr/bin/env"), ["VCPE_WIREGUARD=userspace", "VCPE_WIREGUARD_GO=\(copy)", vcpeBinary.path]
                    + args + ["--state-dir", sc.stateDir])
        }
        let h1 = try sc.lanHost(1, address: "192.168.31.10/24", gateway: "192.168.31.1")
        let site1 = try sc.descriptor(VPNTests.site(sc, 1, attach: h1.attach, peerKey: VPNTests.strangerKey))
        // Never recorded: refused, nothing of the customer left.
        let unknown = try vcpe(["apply", site1])
        #expect(unknown.status == 1 && unknown.stderr.contains("\(copy) is not trusted"), "\(unknown.stderr)")
        #expect(!(try sh("/usr/sbin/ip", ["netns", "list"])).contains("vcpe-\(sc.customer(1))."))
        // Recorded (the digest is what sha256sum computes): it runs.
        let trusted = try vcpe(["trust"])
        let sum = try #require(try sh("/usr/bin/sha256sum", [copy]).split(separator: " ").first)
        #expect(trusted.status == 0 && trusted.stdout.contains("\(sum)  \(copy)"), "\(trusted.stdout) \(trusted.stderr)")
        let applied = try vcpe(["apply", site1])
        #expect(applied.status == 0, "\(applied.stderr)")
        #expect(VPNTests.wireguardPIDs(sc, 1).count == 1)
        // Replaced after it was trusted (the same program and one byte more, renamed over
        // it as an upgrade would): the next container is refused.
        try (Data(contentsOf: URL(fileURLWithPath: copy)) + [0]).write(to: URL(fileURLWithPath: copy + ".new"))
        chmod(copy + ".new", 0o755)
        #expect(rename(copy + ".new", copy) == 0)
        let h2 = try sc.lanHost(2, address: "192.168.32.10/24", gateway: "192.168.32.1")
        let site2 = try sc.descriptor(VPNTests.site(sc, 2, attach: h2.attach, peerKey: VPNTests.strangerKey))
        let changed = try vcpe(["apply", site2])
        #expect(changed.status == 1 && changed.stderr.contains("changed since `vcpe trust`"), "\(changed.stderr)")
        #expect(VPNTests.wireguardPIDs(sc, 2).isEmpty)
        #expect(!runcContainers().contains { $0["id"] as? String == "vcpe-wg-\(sc.customer(2))" })
    }

    @Test func gcRemovesOnlyTheBridgesDeleteRetired() throws {
        let sc = try Scenario()
        defer { sc.cleanup() }
        // A bridge someone else named with vcpe's prefix.
        let foreign = "vx-\(sc.fx.tag)"
        try sh("/usr/sbin/ip", ["link", "add", foreign, "type", "bridge"])
        defer { _ = try? sh("/usr/sbin/ip", ["link", "del", foreign]) }
        let (_, _, file) = try ApplyTests.officeWithHost(sc)
        try sc.vcpe(["apply", file])
        let lanBridge = bridgeIndexes([sc.customer(0)])
        #expect(lanBridge.count == 1)
        try sc.vcpe(["delete", sc.customer(0)])
        try sc.vcpe(["gc"])
        #expect(try RouteSocket().link(named: foreign) != nil, "gc removed a link vcpe never retired")
        // What delete did retire is gone (the positive control: gc removed something; the
        // bridge keeps its index when it is renamed).
        #expect(retiredLinksLeft(lanBridge).isEmpty)
    }
}
