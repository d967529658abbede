import Foundation
import Testing
import VCPENetlink
import VCPETestSupport

/// What keeps a chain serving through repairs and bad state: stable Ethernet addresses and
/// announcements, one customer's broken file staying that customer's, state that cannot be
/// read refused by name. Checked with `ip`, nft counters and real traffic.
@Suite(.serialized) struct ReliabilityTests {
    static func mac(_ interface: String, in namespace: String?) throws -> String {
        try #require(try ip(["link", "show", "dev", interface], namespace: namespace).first?["address"] as? String)
    }

    static func ifindex(_ interface: String, in namespace: String?) throws -> Int {
        try #require(try ip(["link", "show", "dev", interface], namespace: namespace).first?["ifindex"] as? Int)
    }


    @Test func aRepairedGatewayKeepsItsAddressAndTellsTheLAN() throws {
        let sc = try Scenario(exclusive: true)  // "within a second" is a timing claim
        defer { sc.cleanup() }
        let (lan, _, file) = try ApplyTests.officeWithHost(sc)
        try sc.vcpe(["apply", file])
        try sc.plugInternet()
        let fw = "vcpe-\(sc.customer(0)).fw"
        #expect(ping(from: lan, to: "203.0.113.1"))
        let gateway = try Self.mac("lan", in: fw), hostEnd = try Self.mac("vl-\(sc.customer(0))", in: nil)
        // Locally administered, unicast.
        let first = try #require(UInt8(gateway.prefix(2), radix: 16))
        #expect(first & 0x02 == 0x02 && first & 0x01 == 0, "\(gateway)")
        // The LAN host counts announcements of the gateway (who-has GW tell GW).
        try nftLoad("""
            table arp probe {
              chain in { type filter hook input priority 0; policy accept;
                arp operation request arp saddr ip 192.168.10.1 arp daddr ip 192.168.10.1 counter comment "announce"
              }
            }
            """, namespace: lan)

        // The gateway's interface deleted behind vcpe's back: apply makes it anew, with the
        // same address, announced; the LAN host's traffic passes within a second.
        try sh("/usr/sbin/ip", ["-n", fw, "link", "del", "lan"])
        #expect(!ping(from: lan, to: "203.0.113.1", count: 1))
        try sc.vcpe(["apply", file])
        let repaired = Date()
        var passed: TimeInterval?
        while Date().timeIntervalSince(repaired) < 3 {
            if (try? sh("/usr/sbin/ip", ["netns", "exec", lan, "ping", "-c", "1", "-W", "0.2", "203.0.113.1"])) != nil {
                passed = Date().timeIntervalSince(repaired)
                break
            }
        }
        #expect((passed ?? 99) < 1, "LAN traffic passed \(passed.map { "\($0) s" } ?? "not at all") after the repair")
        #expect(try Self.mac("lan", in: fw) == gateway && Self.mac("vl-\(sc.customer(0))", in: nil) == hostEnd)
        #expect(try nftCounter("announce", in: lan) >= 1, "the gateway was announced")

        // An address changed by hand is drift: plan shows it, apply sets it back on the same
        // interface (not a new pair).
        let index = try Self.ifindex("lan", in: fw)
        try sh("/usr/sbin/ip", ["-n", fw, "link", "set", "dev", "lan", "address", "02:00:5e:00:53:99"])
        #expect(try sc.pendingActions(file) >= 1)
        try sc.vcpe(["apply", file])
        #expect(try Self.mac("lan", in: fw) == gateway && Self.ifindex("lan", in: fw) == index)
        #expect(try sc.pendingActions(file) == 0)

        // The same descriptor on a fresh state gets the same addresses (as another host would).
        try sc.vcpe(["delete", sc.customer(0)])
        try sc.vcpe(["apply", file])
        #expect(try Self.mac("lan", in: fw) == gateway)
    }

    @Test func oneCustomersBrokenChainFileStopsOnlyThatCustomer() throws {
        let sc = try Scenario()
        defer { sc.cleanup() }
        let a = try sc.lanHost(1, address: "192.168.20.10/24", gateway: "192.168.20.1")
        let b = try sc.lanHost(2, address: "192.168.21.10/24", gateway: "192.168.21.1")
        let fa = try sc.descriptor(SteeringTests.chain(sc, 1, attach: a.attach, lan: "192.168.20", wan: "203.0.113.21"))
        let fb = try sc.descriptor(SteeringTests.chain(sc, 2, attach: b.attach, lan: "192.168.21", wan: "203.0.113.22"))
        try sc.vcpe(["apply", fa, fb])
        try sc.plugInternet()
        try sc.servers.start("udp", port: 53, in: sc.internet)
        #expect(try probe("udp", from: a.namespace, to: "203.0.113.1", port: 53) == "ok peer=203.0.113.21")
        // Customer 2's file goes bad, and the worker restarts (it reads every file anew).
        try "{ not json".write(toFile: sc.stateDir + "/forwarder/chains/\(sc.customer(2)).json", atomically: true, encoding: .utf8)
        let worker = try #require(SteeringTests.forwarderPIDs(sc).first.flatMap { pid_t($0) })
        kill(worker, SIGKILL)
        var restarted = false
        for _ in 0..<200 {
            if let p = SteeringTests.forwarderPIDs(sc).first.flatMap({ pid_t($0) }), p != worker { restarted = true; break }
            usleep(50_000)
        }
        #expect(restarted)
        #expect(!SteeringTests.forwarderPIDs(sc, "supervise").isEmpty, "the supervisor goes on")
        // Customer 1's new flows are still classified (a new UDP socket is a new flow).
        var answered = ""
        for _ in 0..<40 {
            answered = try probe("udp", from: a.namespace, to: "203.0.113.1", port: 53)
            if answered.hasPrefix("ok") { break }
            usleep(100_000)
        }
        #expect(answered == "ok peer=203.0.113.21")
        // Customer 2: not steered, and status says why.
        let status = try sc.vcpe(["status", sc.customer(2)])
        #expect(status.contains("chain not loaded: reading") && status.contains("\(sc.customer(2)).json"), "\(status)")
    }

    @Test func stateThatCannotBeReadIsAnErrorNamingTheFile() throws {
        let sc = try Scenario()
        defer { sc.cleanup() }
        let (_, _, file) = try ApplyTests.officeWithHost(sc)
        try sc.vcpe(["apply", file])
        let (_, attach1) = try sc.lanHost(1, address: "192.168.11.10/24", gateway: "192.168.11.1")
        let second = try sc.descriptor(ApplyTests.office(sc, 1, attach: attach1, lan: "192.168.11", wan: "203.0.113.11"))
        let customerFile = "customers/\(sc.customer(0)).json"
        // A key file (made here: the office has no VPN) is state like the rest.
        try FileManager.default.createDirectory(atPath: sc.stateDir + "/keys", withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        let keyFile = "keys/\(sc.customer(5)).json"
        try #"{"privateKey": "kHPNpTmmjXq1KrU0/Lgk5Dpeh9dwu6zJZKTi6BAnBm8="}"#.write(toFile: sc.stateDir + "/" + keyFile, atomically: true, encoding: .utf8)
        defer { unlink(sc.stateDir + "/" + keyFile) }
        for name in ["transit.json", customerFile, "segments.json", keyFile] {
            let path = sc.stateDir + "/" + name
            let kept = FileManager.default.contents(atPath: path)
            try "{ truncated".write(toFile: path, atomically: true, encoding: .utf8)
            let r = try run(vcpeBinary, ["apply", second, "--state-dir", sc.stateDir])
            #expect(r.status == 1 && r.stderr.contains(path) && r.stderr.contains("corrupt"), "\(name): \(r.stderr)")
            #expect(!(try sh("/usr/sbin/ip", ["netns", "list"])).contains("vcpe-\(sc.customer(1))."), "nothing changed")
            if let kept { try kept.write(to: URL(fileURLWithPath: path)) } else { unlink(path) }
        }
        // A lost allocation file is not replaced by a fresh one that would hand the /31s out again.
        let transit = try Data(contentsOf: URL(fileURLWithPath: sc.stateDir + "/transit.json"))
        unlink(sc.stateDir + "/transit.json")
        let lost = try run(vcpeBinary, ["apply", second, "--state-dir", sc.stateDir])
        #expect(lost.status == 1 && lost.stderr.contains("transit.json is missing"), "\(lost.stderr)")
        try transit.write(to: URL(fileURLWithPath: sc.stateDir + "/transit.json"))
        // A newer format is not guessed at.
        try #"{"version": 99}"#.write(toFile: sc.stateDir + "/format.json", atomically: true, encoding: .utf8)
        let newer = try run(vcpeBinary, ["status", "--state-dir", sc.stateDir])
        #expect(newer.status == 1 && newer.stderr.contains("format 99"), "\(newer.stderr)")
        // The layout before the format file: moved to the current one (files root's alone).
        unlink(sc.stateDir + "/format.json")
        chmod(sc.stateDir + "/transit.json", 0o644)
        try sc.vcpe(["apply", second])
        let format = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: sc.stateDir + "/format.json"))) as? [String: Any]
        #expect(format?["version"] as? Int == 1)
        #expect((try FileManager.default.attributesOfItem(atPath: sc.stateDir + "/transit.json")[.posixPermissions] as? Int) == 0o600)
        // Transit addresses were kept, not handed out again: the first customer is in sync.
        #expect(try sc.pendingActions(file) == 0)
    }

    @Test func aFragmentedDatagramTakesOnePath() throws {
        let sc = try Scenario()
        defer { sc.cleanup() }
        // UDP to port 5001 takes the guest path by a port rule; its later fragments carry no
        // port and, classified alone, would take main: each path's firewall would then hold
        // half a datagram and neither pass it.
        let (lan, _, _) = try SteeringTests.appliedWithHost(sc)
        let sizes = sc.stateDir + "-sizes"
        defer { try? FileManager.default.removeItem(atPath: sizes) }
        let receiver = try spawn("/usr/sbin/ip", ["netns", "exec", sc.internet, "python3", "-c",
            "import socket,sys\ns=socket.socket(socket.AF_INET,socket.SOCK_DGRAM); s.bind(('0.0.0.0',5001))\nopen(sys.argv[1]+'.ready','w').close()\nwhile True:\n d,_=s.recvfrom(65535)\n open(sys.argv[1],'a').write(str(len(d))+'\\n')",
            sizes])
        defer { kill(receiver, SIGKILL); waitFor(receiver); unlink(sizes + ".ready") }
        for _ in 0..<300 where !FileManager.default.fileExists(atPath: sizes + ".ready") { usleep(10_000) }
        let before = try SteeringTests.linkCounters(sc, 0)["rt/guest-in"]?.rx ?? -1
        try sh("/usr/sbin/ip", ["netns", "exec", lan, "python3", "-c",
            "import socket,time\ns=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\nfor n in (100, 4000, 4000, 4000):\n s.sendto(b'x'*n,('203.0.113.1',5001)); time.sleep(0.05)"])
        var got: [String] = []
        for _ in 0..<40 {
            got = ((try? String(contentsOfFile: sizes, encoding: .utf8)) ?? "").split(separator: "\n").map(String.init)
            if got.count >= 4 { break }
            usleep(50_000)
        }
        #expect(got.filter { $0 == "100" }.count == 1, "the small datagram arrives: \(got)")
        #expect(got.filter { $0 == "4000" }.count == 3, "every fragmented datagram arrives whole: \(got)")
        let after = try SteeringTests.linkCounters(sc, 0)["rt/guest-in"]?.rx ?? -1
        #expect(after - before >= 1 + 3 * 3, "all fragments came down the guest path: \(after - before)")
    }

    /// Sends `count` UDP datagrams 192.168.20.10:40000 -> 203.0.113.1:9 as raw frames to `dstMAC`.
    static func rawUDP(from lan: String, dstMAC: String, count: Int) throws {
        let script = """
            import socket, struct, sys
            def csum(b):
                s = sum(struct.unpack('!%dH' % (len(b) // 2), b)); s = (s >> 16) + (s & 0xffff); return ~(s + (s >> 16)) & 0xffff
            src = bytes.fromhex(open('/sys/class/net/eth0/address').read().strip().replace(':', ''))
            dst = bytes.fromhex(sys.argv[1].replace(':', ''))
            udp = struct.pack('!HHHH', 40000, 9, 8 + 4, 0) + b'raw!'
            ip = struct.pack('!BBHHHBBH4s4s', 0x45, 0, 20 + len(udp), 7, 0, 64, 17, 0, socket.inet_aton('192.168.20.10'), socket.inet_aton('203.0.113.1'))
            ip = ip[:10] + struct.pack('!H', csum(ip)) + ip[12:]
            s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW); s.bind(('eth0', 0))
            for _ in range(int(sys.argv[2])): s.send(dst + src + b'\\x08\\x00' + ip + udp)
            """
        try sh("/usr/sbin/ip", ["netns", "exec", lan, "python3", "-c", script, dstMAC, String(count)])
    }

    @Test func theFlowCacheTakesOnlyFramesAddressedToTheChain() throws {
        let sc = try Scenario(exclusive: true)  // exact counts of frames
        defer { sc.cleanup() }
        let (lan, _, _) = try SteeringTests.appliedWithHost(sc)
        try nftLoad("""
            table inet probe {
              chain in { type filter hook prerouting priority -300; policy accept;
                udp sport 40000 udp dport 9 counter comment "flow"
              }
            }
            """, namespace: sc.internet)
        let gateway = try Self.mac("lan", in: "vcpe-\(sc.customer(0)).classifier")
        func arrived(_ n: Int) -> Int {
            var seen = -1
            for _ in 0..<20 {
                seen = (try? nftCounter("flow", in: sc.internet)) ?? -1
                if seen >= n { break }
                usleep(50_000)
            }
            return seen
        }
        // The flow's first frame is classified and cached; its next ones go by the cache.
        try Self.rawUDP(from: lan, dstMAC: gateway, count: 1)
        #expect(arrived(1) == 1)
        // Cached both ways before the next frames (polled, not slept for).
        var flows = 0
        for _ in 0..<100 { flows = try FlowCacheTests.cacheStatus(sc).flows; if flows >= 2 { break }; usleep(20_000) }
        #expect(flows >= 2, "the flow was cached")
        try Self.rawUDP(from: lan, dstMAC: gateway, count: 2)
        #expect(arrived(3) == 3)
        #expect(try FlowCacheTests.cacheStatus(sc).cached >= 1, "the cache forwarded some of them")
        // The same flow to an address that is not the gateway's (flooded by the LAN bridge):
        // the kernel marks it for another host, and neither the cache nor userspace sends it on.
        try Self.rawUDP(from: lan, dstMAC: "02:00:5e:00:53:01", count: 5)
        usleep(300_000)
        #expect(arrived(8) == 3, "frames for another host were forwarded")
        // And to the gateway again: forwarded (the control).
        try Self.rawUDP(from: lan, dstMAC: gateway, count: 2)
        #expect(arrived(5) == 5)
    }

    @Test func twoFilesOfOneCustomerNameBoth() throws {
        let sc = try Scenario()
        defer { sc.cleanup() }
        let one = try sc.descriptor(ApplyTests.office(sc, 0, attach: "eth9"))
        let two = try sc.descriptor(ApplyTests.office(sc, 0, attach: "eth8", lan: "192.168.11", wan: "203.0.113.11"))
        let r = try run(vcpeBinary, ["validate", one, two])
        #expect(r.status == 1 && r.stderr.contains(two) && r.stderr.contains(one), "\(r.stderr)")
    }

    @Test func forwarderConfigureWaitsForTheLockAndUsesItsRuntime() throws {
        let sc = try Scenario()
        defer { sc.cleanup() }
        _ = try SteeringTests.appliedWithHost(sc)
        // Another vcpe holds the lock: configure waits for it.
        let held = sc.stateDir + "-lock-held"
        defer { unlink(held) }
        let holder = try spawn("/usr/bin/python3", ["-c", "import fcntl,sys,time\nf=open(sys.argv[1],'w')\nfcntl.flock(f,fcntl.LOCK_EX)\nopen(sys.argv[2],'w').close()\ntime.sleep(2)",
                                                    sc.stateDir + "/lock", held])
        for _ in 0..<300 where !FileManager.default.fileExists(atPath: held) { usleep(10_000) }
        let wrapper = sc.stateDir + "-wrapped-runc"
        try "#!/bin/sh\nexec /usr/sbin/runc \"$@\"\n".write(toFile: wrapper, atomically: true, encoding: .utf8)
        chmod(wrapper, 0o755)
        defer { try? FileManager.default.removeItem(atPath: wrapper) }
        let started = Date()
        let r = try run(vcpeBinary, ["forwarder", "configure", "--spin", "40", "--runtime", wrapper, "--state-dir", sc.stateDir])
        waitFor(holder)
        #expect(r.status == 0 && r.stderr.contains("waiting for another vcpe process"), "\(r.stderr)")
        #expect(Date().timeIntervalSince(started) >= 1.5)
        let shown = try ContainerTests.statusContainer(sc, 0, service: "classifier")
        #expect(shown["runtime"] as? String == URL(fileURLWithPath: wrapper).lastPathComponent, "\(shown)")
    }
}

/// An upgrade replaces the vcpe binary under a running forwarder, whose messages may be
/// another build's: the next apply restarts it with its own build once that build is
/// trusted, and until then leaves the old one running.
@Suite(.serialized) struct UpgradeTests {
    @Test func anApplyByAnotherBuildRestartsTheForwarderWithIt() throws {
        let sc = try Scenario()
        defer { sc.cleanup() }
        let (lan, _, file) = try SteeringTests.appliedWithHost(sc)
        let before = try #require(SteeringTests.forwarderPIDs(sc, "supervise").first)
        // Another build: the same program at another place is another file to the kernel.
        let dir = sc.stateDir + "-upgrade"
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: false)
        // Copied by cp: a file this process wrote could still be open for writing in a child
        // another test is spawning (ETXTBSY when it is run).
        _ = try sh("/bin/cp", [vcpeBinary.path, dir + "/vcpe"])
        let upgraded = URL(fileURLWithPath: dir + "/vcpe")
        let plan = try run(upgraded, ["plan", file, "--state-dir", sc.stateDir])
        #expect(plan.stdout.contains("~ forwarder steering") && plan.stdout.contains("(now: otherBuild)"), "\(plan.stdout)")

        // Not trusted yet: refused, and the old forwarder goes on forwarding.
        let refused = try run(upgraded, ["apply", file, "--state-dir", sc.stateDir])
        #expect(refused.status == 1 && refused.stderr.contains("not trusted"), "\(refused.stderr)")
        #expect(SteeringTests.forwarderPIDs(sc, "supervise").first == before)
        #expect(ping(from: lan, to: "203.0.113.1"))

        #expect(try run(upgraded, ["trust", "--state-dir", sc.stateDir]).status == 0)
        let r = try run(upgraded, ["apply", file, "--state-dir", sc.stateDir])
        #expect(r.status == 0, "\(r.stderr)")
        let after = try #require(SteeringTests.forwarderPIDs(sc, "supervise").first)
        #expect(after != before, "the forwarder of the old build still runs")
        #expect(try FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(after)/exe") == dir + "/vcpe")
        #expect(ping(from: lan, to: "203.0.113.1"))
        let again = try run(upgraded, ["plan", file, "--state-dir", sc.stateDir])
        #expect(again.stdout.contains("no changes"), "\(again.stdout)")
    }
}
