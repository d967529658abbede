import Foundation
import Testing
import VCPESystem
import VCPETestSupport

/// Chains with several paths: the classifier's forwarder steers each packet down the path
/// its rule names, and replies come back up the same path, through every shared service.
@Suite(.serialized) struct SteeringTests {
    /// Three paths over three services, two of them shared: main [fw, rt] (the default),
    /// guest [guard, rt], secure [fw, guard, rt]. Internet addresses .2 and .3 are steered to
    /// guest and secure, UDP 5001 to guest, .99 is dropped, the rest (.1) takes main.
    static func chain(_ sc: Scenario, _ n: Int, attach: String, lan: String, wan: String, extraRules: String = "") -> String {
        """
        {
          "apiVersion": "vcpe/v1",
          "customer": "\(sc.customer(n))",
          "lan": { "subnet": "\(lan).0/24", "gateway": "\(lan).1", "attach": ["\(attach)"] },
          "wan": { "address": "\(wan)/24", "gateway": "203.0.113.1", "segment": "\(sc.segment)" },
          "services": {
            "fw": { "type": "firewall", "default": "accept", "rules": [] },
            "guard": { "type": "firewall", "default": "accept", "rules": [] },
            "rt": { "type": "router", "nat": "masquerade", "portForwards": [ { "proto": "tcp", "port": 8080, "to": "\(lan).10:80" } ] }
          },
          "paths": { "main": ["fw", "rt"], "guest": ["guard", "rt"], "secure": ["fw", "guard", "rt"] },
          "classifier": { "default": "main", "rules": [
            \(extraRules)
            { "name": "guest-host", "priority": 10, "match": { "dst": "203.0.113.2/32" }, "path": "guest" },
            { "name": "secure-host", "priority": 20, "match": { "dst": "203.0.113.3/32" }, "path": "secure" },
            { "name": "bulk-udp", "priority": 30, "match": { "proto": "udp", "dport": "5001" }, "path": "guest" },
            { "name": "blocked", "priority": 40, "match": { "dst": "203.0.113.99/32" }, "action": "drop" } ] }
        }
        """
    }

    /// Customer 0's LAN host (192.168.20.10), its chain applied and the internet plugged in.
    static func appliedWithHost(_ sc: Scenario) throws -> (lan: String, attach: String, file: String) {
        let (lan, attach) = try sc.lanHost(0, address: "192.168.20.10/24", gateway: "192.168.20.1")
        let file = try sc.descriptor(chain(sc, 0, attach: attach, lan: "192.168.20", wan: "203.0.113.20"))
        _ = try sc.vcpe(["apply", file])
        try sc.plugInternet()
        return (lan, attach, file)
    }

    /// The pids of the scenario's forwarder processes in `role` (supervise or run).
    static func forwarderPIDs(_ sc: Scenario, _ role: String = "run") -> [String] {
        ((try? sh("/usr/bin/pgrep", ["-f", "vcpe forwarder \(role) \(sc.stateDir)$"])) ?? "").split(separator: "\n").map(String.init)
    }

    static let pathTargets = ["main": "203.0.113.1", "guest": "203.0.113.2", "secure": "203.0.113.3"]
    /// The links each path crosses, as (service, interface on its downstream end).
    static let pathLinks = [
        "main": [("fw", "main-in"), ("rt", "main-in")],
        "guest": [("guard", "guest-in"), ("rt", "guest-in")],
        "secure": [("fw", "secure-in"), ("guard", "secure-in"), ("rt", "secure-in")],
    ]

    /// rx (toward the WAN) and tx (back toward the LAN) packets of every path link, read with `ip -j -s`.
    static func linkCounters(_ sc: Scenario, _ n: Int) throws -> [String: (rx: Int, tx: Int)] {
        var out: [String: (Int, Int)] = [:]
        for (service, interface) in pathLinks.values.joined() {
            let ns = "vcpe-\(sc.customer(n)).\(service)"
            let link = try ip(["-s", "link", "show", "dev", interface], namespace: ns).first
            let stats = link?["stats64"] as? [String: Any]
            let rx = (stats?["rx"] as? [String: Any])?["packets"] as? Int ?? -1
            let tx = (stats?["tx"] as? [String: Any])?["packets"] as? Int ?? -1
            out["\(service)/\(interface)"] = (rx, tx)
        }
        return out
    }

    /// Sends `count` pings and returns how many packets each path link carried meanwhile.
    static func burst(_ sc: Scenario, _ n: Int, from lan: String, to target: String, count: Int) throws -> (answered: Bool, deltas: [String: (rx: Int, tx: Int)]) {
        let before = try linkCounters(sc, n)
        let answered = (try? sh("/usr/sbin/ip", ["netns", "exec", lan, "ping", "-q", "-c", String(count), "-i", "0.002", "-W", "1", target])) != nil
        let after = try linkCounters(sc, n)
        return (answered, after.reduce(into: [:]) { d, e in d[e.key] = (e.value.rx - before[e.key]!.rx, e.value.tx - before[e.key]!.tx) })
    }

    static func steeringStatus(_ sc: Scenario, _ n: Int) throws -> (runtime: String, rules: [String: Int], paths: [String: [String: Int]], pending: Int) {
        let status = try JSONSerialization.jsonObject(with: Data(try sc.vcpe(["status", "--json", sc.customer(n)]).utf8)) as? [[String: Any]]
        let cls = (status?.first?["services"] as? [[String: Any]])?.first { $0["type"] as? String == "classifier" }
        let steering = cls?["steering"] as? [String: Any]
        let rules = Dictionary(uniqueKeysWithValues: ((steering?["rules"] as? [[String: Any]]) ?? []).map { ($0["name"] as! String, $0["hits"] as! Int) })
        let paths = Dictionary(uniqueKeysWithValues: ((steering?["paths"] as? [[String: Any]]) ?? []).map {
            ($0["name"] as! String, ($0 as [String: Any]).compactMapValues { $0 as? Int })
        })
        return (cls?["runtime"] as? String ?? "", rules, paths, status?.first?["pendingActions"] as? Int ?? -1)
    }

    /// Every path carries a ping burst on its own links and on no other path's, both ways.
    static func expectEachPathUsesOnlyItsLinks(_ sc: Scenario, _ n: Int, lan: String) throws {
        let count = 100
        for (path, target) in pathTargets.sorted(by: { $0.key < $1.key }) {
            let (answered, deltas) = try burst(sc, n, from: lan, to: target, count: count)
            #expect(answered, "pings to \(target) over \(path)")
            let mine = Set(pathLinks[path]!.map { "\($0.0)/\($0.1)" })
            for (link, d) in deltas {
                if mine.contains(link) {
                    #expect(d.rx >= count && d.tx >= count, "\(path): \(link) carried \(d.rx) out, \(d.tx) back")
                } else {
                    #expect(d.rx < count / 5 && d.tx < count / 5, "\(path): \(link) of another path carried \(d.rx) out, \(d.tx) back")
                }
            }
        }
    }

    @Test func eachRuleSteersItsTrafficDownItsPathAndBack() throws {
        let sc = try Scenario()
        defer { sc.cleanup() }
        let (lan, attach) = try sc.lanHost(0, address: "192.168.20.10/24", gateway: "192.168.20.1")
        let file = try sc.descriptor(Self.chain(sc, 0, attach: attach, lan: "192.168.20", wan: "203.0.113.20"))
        #expect(try sc.vcpe(["apply", file]).contains("applied"))
        try sc.plugInternet()
        for a in ["203.0.113.2/24", "203.0.113.3/24", "203.0.113.99/24"] {
            _ = try sh("/usr/sbin/ip", ["-n", sc.internet, "addr", "add", a, "dev", "eth0"])
        }
        try sc.servers.start("sink", port: 443, in: sc.internet)
        try sc.servers.start("source", port: 444, in: sc.internet)
        for target in Self.pathTargets.values { try sc.servers.start("udp", port: 53, in: sc.internet, address: target) }
        try sc.servers.start("udp", port: 5001, in: sc.internet)
        try sc.servers.start("sink", port: 80, in: lan)

        try Self.expectEachPathUsesOnlyItsLinks(sc, 0, lan: lan)
        for (path, target) in Self.pathTargets {
            // Through NAT both ways: the far end sees the WAN address; bytes checked both ways.
            #expect(try probe("udp", from: lan, to: target, port: 53) == "ok peer=203.0.113.20", "udp over \(path)")
            #expect(try transfer(from: lan, to: target, port: 443, bytes: 3 << 20) == "intact", "upload over \(path)")
            #expect(try fetch(from: lan, to: target, port: 444, bytes: 3 << 20) == "intact", "download over \(path)")
        }
        // Into the LAN through the port forward: unmarked, so it takes the default path.
        #expect(try transfer(from: sc.internet, to: "203.0.113.20", port: 8080, bytes: 2 << 20) == "intact")

        // A port rule: UDP 5001 to .1 goes to guest, where .1 would otherwise take main.
        let guestBefore = try Self.linkCounters(sc, 0)["guard/guest-in"]!.rx
        for _ in 0..<20 { #expect(try probe("udp", from: lan, to: "203.0.113.1", port: 5001) == "ok peer=203.0.113.20") }
        #expect(try Self.linkCounters(sc, 0)["guard/guest-in"]!.rx - guestBefore >= 20)

        // The drop rule: nothing answers, nothing reaches any path.
        let (answered, deltas) = try Self.burst(sc, 0, from: lan, to: "203.0.113.99", count: 50)
        #expect(!answered)
        #expect(deltas.values.allSatisfy { $0.rx < 10 }, "dropped traffic reached a path: \(deltas)")

        let st = try Self.steeringStatus(sc, 0)
        #expect(st.runtime.hasPrefix("forwarder pid"))
        #expect(st.rules["guest-host"]! >= 100 && st.rules["secure-host"]! >= 100 && st.rules["bulk-udp"]! >= 20, "\(st.rules)")
        #expect(st.rules["blocked"]! >= 50 && st.rules["default"]! >= 100, "\(st.rules)")
        for path in Self.pathTargets.keys {
            let p = st.paths[path] ?? [:]
            #expect((p["packets"] ?? 0) >= 100 && (p["returnPackets"] ?? 0) >= 100 && (p["returnBytes"] ?? 0) > 3 << 20, "\(path): \(p)")
        }
        #expect(st.pending == 0)
        #expect(try sc.vcpe(["apply", file]).contains("no changes"))

        // The classifier's kernel forwards nothing itself, and its ingress drop keeps transit
        // frames from its stack (the forwarder has read them from its tap by then).
        let cls = "vcpe-\(sc.customer(0)).classifier"
        #expect(try sh("/usr/sbin/ip", ["netns", "exec", cls, "sysctl", "-n", "net.ipv4.ip_forward"]).trimmingCharacters(in: .whitespacesAndNewlines) == "0")
        let ruleset = try nftRuleset(namespace: cls)
        let drops = ruleset.compactMap { ($0["rule"] as? [String: Any]) }.filter { $0["comment"] as? String == "forwarded-by-vcpe" }
        #expect(drops.count == 4, "one ingress drop per interface the forwarder reads")
    }

    @Test func twoSteeredCustomersShareOneForwarder() throws {
        let sc = try Scenario()
        defer { sc.cleanup() }
        // The same LAN subnet behind both: nothing of one may reach the other.
        let a = try sc.lanHost(1, address: "192.168.20.10/24", gateway: "192.168.20.1")
        let b = try sc.lanHost(2, address: "192.168.20.10/24", gateway: "192.168.20.1")
        let fa = try sc.descriptor(Self.chain(sc, 1, attach: a.attach, lan: "192.168.20", wan: "203.0.113.21"))
        let fb = try sc.descriptor(Self.chain(sc, 2, attach: b.attach, lan: "192.168.20", wan: "203.0.113.22"))
        _ = try sc.vcpe(["apply", fa, fb])
        try sc.plugInternet()
        for a in ["203.0.113.2/24", "203.0.113.3/24"] { _ = try sh("/usr/sbin/ip", ["-n", sc.internet, "addr", "add", a, "dev", "eth0"]) }
        for target in Self.pathTargets.values { try sc.servers.start("udp", port: 53, in: sc.internet, address: target) }
        try sc.servers.start("sink", port: 443, in: sc.internet)
        let workers = Self.forwarderPIDs(sc)
        #expect(workers.count == 1, "one forwarder process for both customers")
        for (n, host, wan) in [(1, a.namespace, "203.0.113.21"), (2, b.namespace, "203.0.113.22")] {
            // While one customer's bursts run, the other's path links stay flat: the one
            // forwarder keeps same-subnet LANs apart.
            let other = 3 - n
            let before = try Self.linkCounters(sc, other)
            try Self.expectEachPathUsesOnlyItsLinks(sc, n, lan: host)
            for (link, c) in try Self.linkCounters(sc, other) {
                let d = (rx: c.rx - before[link]!.rx, tx: c.tx - before[link]!.tx)
                // A leak would carry the bursts (100 pings per path); an idle chain's own ARP
                // refreshes are a few frames.
                #expect(d.rx <= 8 && d.tx <= 8, "customer \(other)'s \(link) carried \(d) during customer \(n)'s bursts")
            }
            for target in Self.pathTargets.values {
                #expect(try probe("udp", from: host, to: target, port: 53) == "ok peer=\(wan)")
                #expect(try transfer(from: host, to: target, port: 443, bytes: 1 << 20) == "intact")
            }
        }
        // Deleting one leaves the other steered.
        _ = try sc.vcpe(["delete", sc.customer(1)])
        #expect(!ping(from: a.namespace, to: "203.0.113.1"))
        #expect(ping(from: b.namespace, to: "203.0.113.2"))
        #expect(Self.forwarderPIDs(sc) == workers)
    }

    @Test func changingRulesLiveKeepsRunningTransfersIntact() throws {
        let sc = try Scenario(exclusive: true)
        defer { sc.cleanup() }
        let (lan, attach, _) = try Self.appliedWithHost(sc)
        _ = try sh("/usr/sbin/ip", ["-n", sc.internet, "addr", "add", "203.0.113.2/24", "dev", "eth0"])
        try sc.servers.start("sink", port: 443, in: sc.internet)
        let worker = Self.forwarderPIDs(sc)

        // A 4-second transfer on main and a ping flood on guest while the rules change three times.
        let stream = try startStream(from: lan, to: "203.0.113.1", port: 443, bytes: 24 << 20, seconds: 4)
        defer { try? FileManager.default.removeItem(atPath: stream.output) }
        let pinger = try startPingFlow(from: lan, to: "203.0.113.2", count: 300)
        let variants = [
            #"{ "name": "web-secure", "priority": 5, "match": { "proto": "tcp", "dport": "8443" }, "path": "secure" },"#,
            #"{ "name": "web-secure", "priority": 5, "match": { "proto": "tcp", "dport": "8443" }, "path": "guest" }, { "name": "dns", "priority": 6, "match": { "proto": "udp", "dport": "53" }, "path": "secure" },"#,
            "",
        ]
        for (i, extra) in variants.enumerated() {
            usleep(700_000)
            let changed = try sc.descriptor(Self.chain(sc, 0, attach: attach, lan: "192.168.20", wan: "203.0.113.20", extraRules: extra))
            #expect(try sc.vcpe(["apply", changed]).contains("applied 1 action"), "only the forwarder's rules change")
            // The change happened while both flows ran (or it proves nothing about them).
            #expect(ProcessTable.isAlive(stream.pid) && ProcessTable.isAlive(pinger.pid), "change \(i + 1) came after a flow had ended")
        }
        #expect(waitFor(stream.pid) == 0)
        #expect(try String(contentsOfFile: stream.output, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines) == "intact")
        let (pingStatus, pingSummary) = pinger.finish()
        #expect(pingStatus == 0)
        #expect(pingSummary.contains(" 0% packet loss"), "pings on an unchanged path lost nothing: \(pingSummary)")
        #expect(Self.forwarderPIDs(sc) == worker, "the rules were swapped, not the process")
        // Counters live on across the swaps: the guest rule counted every ping, old rules or new.
        let hits = try Self.steeringStatus(sc, 0).rules
        #expect((hits["guest-host"] ?? 0) >= 300, "\(hits)")
    }

    @Test func aDeadForwarderLetsNothingPastAndIsBroughtBack() throws {
        let sc = try Scenario()
        defer { sc.cleanup() }
        let (lan, _, file) = try Self.appliedWithHost(sc)
        #expect(ping(from: lan, to: "203.0.113.1"))

        // The worker dies: the supervisor starts a new one.
        let worker = Self.forwarderPIDs(sc)
        #expect(worker.count == 1)
        kill(pid_t(worker[0])!, SIGKILL)
        var back = false
        for _ in 0..<50 where !back { back = ping(from: lan, to: "203.0.113.1", count: 1) }
        #expect(back, "the supervisor restored the data path")
        #expect(try Self.steeringStatus(sc, 0).runtime.contains("1 restart"))

        // Supervisor and worker both gone: nothing passes around the classifier.
        for role in ["supervise", "run"] {
            for p in Self.forwarderPIDs(sc, role) { kill(pid_t(p)!, SIGKILL) }
        }
        for _ in 0..<100 { if Self.forwarderPIDs(sc, ".*").isEmpty { break }; usleep(20_000) }
        #expect(Self.forwarderPIDs(sc, ".*").isEmpty, "both are gone")
        // Oracle on the internet host: an nft counter of the echo requests that arrive.
        try nftLoad("""
            table inet probe {
              chain seen {
                type filter hook prerouting priority 0;
                icmp type echo-request counter
              }
            }
            """, namespace: sc.internet)
        let (answered, deltas) = try Self.burst(sc, 0, from: lan, to: "203.0.113.1", count: 50)
        #expect(!answered)
        #expect(deltas.values.allSatisfy { $0.rx < 5 }, "frames passed the dead classifier: \(deltas)")
        let counter = try nftRuleset(namespace: sc.internet).compactMap { $0["rule"] as? [String: Any] }
            .flatMap { ($0["expr"] as? [[String: Any]]) ?? [] }.compactMap { $0["counter"] as? [String: Any] }.first
        #expect(counter?["packets"] as? Int == 0, "echo requests reached the internet: \(String(describing: counter))")
        let st = try Self.steeringStatus(sc, 0)
        #expect(st.runtime.contains("not running") && st.pending >= 1, "\(st.runtime), \(st.pending) pending")

        // The next apply starts it again.
        #expect(try sc.vcpe(["apply", file]).contains("applied"))
        #expect(ping(from: lan, to: "203.0.113.1"))
    }

    @Test func aLinkRemovedUnderTheForwarderIsRepairedByTheNextApply() throws {
        let sc = try Scenario()
        defer { sc.cleanup() }
        let (lan, _, file) = try Self.appliedWithHost(sc)
        _ = try sh("/usr/sbin/ip", ["-n", sc.internet, "addr", "add", "203.0.113.2/24", "dev", "eth0"])
        #expect(ping(from: lan, to: "203.0.113.2"))
        // Someone deletes the guest path's first link (both ends go with it).
        _ = try sh("/usr/sbin/ip", ["-n", "vcpe-\(sc.customer(0)).classifier", "link", "del", "guest-out"])
        #expect(!ping(from: lan, to: "203.0.113.2", count: 1))
        #expect(try Self.steeringStatus(sc, 0).pending >= 1)
        // The apply re-creates it under the same names; the forwarder must bind the new one.
        #expect(try sc.vcpe(["apply", file]).contains("applied"))
        #expect(ping(from: lan, to: "203.0.113.2"))
        #expect(ping(from: lan, to: "203.0.113.1"))
        #expect(try Self.steeringStatus(sc, 0).pending == 0)
    }

    @Test func an8021QTagTheKernelMovedIntoMetadataLeavesWithTheFrame() throws {
        let sc = try Scenario()
        defer { sc.cleanup() }
        let (host, attach) = try sc.lanHost(0, address: "192.168.21.99/24", gateway: "192.168.21.1")
        let file = try sc.descriptor(Self.chain(sc, 0, attach: attach, lan: "192.168.20", wan: "203.0.113.20"))
        _ = try sc.vcpe(["apply", file])
        // The LAN host sends ICMP echo requests tagged with VLAN 100 (a raw socket: this kernel
        // has no VLAN devices); the classifier's kernel moves the tag into the frame's metadata.
        let cls = "vcpe-\(sc.customer(0)).classifier"
        let gatewayMAC = try ip(["link", "show", "dev", "lan"], namespace: cls).first?["address"] as? String ?? ""
        let sender = """
            import socket, struct, time
            def csum(b):
                s = sum(struct.unpack("!%dH" % (len(b) // 2), b))
                s = (s >> 16) + (s & 0xFFFF); s += s >> 16
                return ~s & 0xFFFF
            icmp = struct.pack("!BBHHH", 8, 0, 0, 7, 1) + b"vlan-probe"
            icmp = icmp[:2] + struct.pack("!H", csum(icmp)) + icmp[4:]
            ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(icmp), 1, 0, 64, 1, 0,
                             socket.inet_aton("192.168.20.11"), socket.inet_aton("203.0.113.1"))
            ip = ip[:10] + struct.pack("!H", csum(ip)) + ip[12:]
            s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
            s.bind(("eth0", 0))
            src = open("/sys/class/net/eth0/address").read().strip()
            eth = bytes.fromhex("\(gatewayMAC.replacingOccurrences(of: ":", with: ""))") + bytes.fromhex(src.replace(":", ""))
            for _ in range(4):
                s.send(eth + struct.pack("!HH", 0x8100, 100) + struct.pack("!H", 0x0800) + ip + icmp)
                time.sleep(0.2)
            """
        // The forwarder sends it down the default path: seen on the firewall's side of the link.
        let out = FileManager.default.temporaryDirectory.appendingPathComponent("vcpe-vlan-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: out) }
        let dump = try spawn("/usr/sbin/ip", ["netns", "exec", "vcpe-\(sc.customer(0)).fw", "timeout", "8", "tcpdump", "-c", "4", "-e", "-nn", "-l",
                                              "-i", "main-in", "icmp or (vlan and icmp)"], stdout: out, stderr: out + ".log")
        defer { try? FileManager.default.removeItem(atPath: out + ".log") }
        // Sent once tcpdump says it listens, not after a guess at how long that takes.
        for _ in 0..<500 where !(((try? String(contentsOfFile: out + ".log", encoding: .utf8)) ?? "").contains("listening on")) { usleep(10_000) }
        _ = try sh("/usr/sbin/ip", ["netns", "exec", host, "python3", "-c", sender])
        _ = waitFor(dump)
        let seen = (try? String(contentsOfFile: out, encoding: .utf8)) ?? ""
        // All four: the first forwarded by the forwarder (which re-inserts the tag), the others
        // by the flow cache (the tag stays in the frame's metadata through the redirect).
        let tagged = seen.split(separator: "\n").filter { $0.contains("vlan 100") && $0.contains("192.168.20.11 > 203.0.113.1") }
        #expect(tagged.count == 4, "captured on main-in: \(seen)")
        let cached = try FlowCacheTests.cacheStatus(sc).cached
        #expect(cached >= 3, "the cache forwarded \(cached) of the tagged frames")
    }

    @Test func aForwarderThatCannotSteerFailsTheApplyAndLeavesNothing() throws {
        let sc = try Scenario()
        defer { sc.cleanup() }
        let (_, attach) = try sc.lanHost(0, address: "192.168.20.10/24", gateway: "192.168.20.1")
        let file = try sc.descriptor(Self.chain(sc, 0, attach: attach, lan: "192.168.20", wan: "203.0.113.20"))
        // Rings of 4 million frames of 64 KiB: the broker refuses to make them (a ring that
        // size would take the supervisor's host down before the kernel said no).
        try FileManager.default.createDirectory(atPath: sc.stateDir + "/forwarder", withIntermediateDirectories: true)
        try #"{"busyPoll": false, "ringFrames": 4000000, "spinMicroseconds": 50}"#.write(toFile: sc.stateDir + "/forwarder/settings.json", atomically: true, encoding: .utf8)
        let r = try run(vcpeBinary, ["apply", file, "--state-dir", sc.stateDir])
        #expect(r.status == 1)
        #expect(r.stderr.contains("the forwarder could not steer \(sc.customer(0))") && r.stderr.contains("settings out of range: 4000000 frames")
                && r.stderr.contains("rolled back"), "\(r.stderr)")
        #expect(!(try sh("/usr/sbin/ip", ["netns", "list"])).contains("vcpe-\(sc.customer(0))"))
        #expect(!FileManager.default.fileExists(atPath: sc.stateDir + "/forwarder/chains/\(sc.customer(0)).json"))
        #expect(Self.forwarderPIDs(sc, ".*").isEmpty, "no forwarder left running for nothing")
    }

    @Test func busyPollingIsASettingThatRestartsTheForwarderPinned() throws {
        let sc = try Scenario()
        defer { sc.cleanup() }
        let (lan, _, _) = try Self.appliedWithHost(sc)
        let before = Self.forwarderPIDs(sc).first ?? ""
        let cpu = ProcessInfo.processInfo.activeProcessorCount - 1
        #expect(try sc.vcpe(["forwarder", "configure", "--busy-poll", String(cpu)]).contains("busy-polling on CPU \(cpu)"))
        var after = ""
        for _ in 0..<100 { after = Self.forwarderPIDs(sc).first ?? ""; if !after.isEmpty && after != before { break }; usleep(50_000) }
        #expect(!after.isEmpty && after != before, "the supervisor started a new forwarder with the setting")
        #expect(ping(from: lan, to: "203.0.113.1"))
        // The forwarding thread (the one using the CPU) is pinned; the others are not.
        let tasks = try FileManager.default.contentsOfDirectory(atPath: "/proc/\(after)/task")
        let pinned = tasks.filter { t in
            let status = (try? String(contentsOfFile: "/proc/\(after)/task/\(t)/status", encoding: .utf8)) ?? ""
            return status.split(separator: "\n").contains { $0.hasPrefix("Cpus_allowed_list:") && $0.hasSuffix("\t\(cpu)") }
        }
        #expect(pinned.count == 1, "one thread pinned to CPU \(cpu)")
        #expect(try sc.vcpe(["forwarder", "configure", "--sleep-when-idle"]).contains("sleeping when idle"))
        let bad = try run(vcpeBinary, ["forwarder", "configure", "--ring-frames", "1", "--state-dir", sc.stateDir])
        #expect(bad.status != 0 && bad.stderr.contains("--ring-frames is 2-4096"))
    }
}
