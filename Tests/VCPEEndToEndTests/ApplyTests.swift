import Foundation
import Testing
import VCPEDescriptor
import VCPENet
import VCPENetlink
import VCPESystem
import VCPETestSupport

/// `vcpe apply` and friends, run as an operator runs them, with real traffic.
@Suite(.serialized) struct ApplyTests {
    /// A firewall + NAT router chain like chains/small-office.json, for one customer.
    static func office(_ sc: Scenario, _ n: Int, attach: String, lan: String = "192.168.10", wan: String = "203.0.113.10",
                       webPorts: String = "[80, 443]") -> String {
        """
        {
          "apiVersion": "vcpe/v1",
          "customer": "\(sc.customer(n))",
          "lan": { "subnet": "\(lan).0/24", "gateway": "\(lan).1", "attach": ["\(attach)"] },
          "wan": { "address": "\(wan)/24", "gateway": "203.0.113.1", "segment": "\(sc.segment)" },
          "services": {
            "fw": { "type": "firewall", "default": "drop", "rules": [
              { "name": "web", "action": "accept", "from": "lan", "proto": "tcp", "dport": \(webPorts) },
              { "name": "dns", "action": "accept", "from": "lan", "proto": "udp", "dport": 53 },
              { "name": "ping", "action": "accept", "from": "lan", "proto": "icmp" },
              { "name": "no-smb", "action": "reject", "proto": "tcp", "dport": "137-139" } ] },
            "rt": { "type": "router", "nat": "masquerade",
                    "portForwards": [ { "proto": "tcp", "port": 8080, "to": "\(lan).10:80" } ] }
          },
          "paths": { "internet": ["fw", "rt"] }
        }
        """
    }

    /// Customer 0's LAN host on 192.168.10.10 and its office descriptor file.
    static func officeWithHost(_ sc: Scenario) throws -> (lan: String, attach: String, file: String) {
        let (lan, attach) = try sc.lanHost(0, address: "192.168.10.10/24", gateway: "192.168.10.1")
        return (lan, attach, try sc.descriptor(office(sc, 0, attach: attach)))
    }

    @Test func trafficCrossesTheChainBothWays() throws {
        let sc = try Scenario()
        defer { sc.cleanup() }
        let (lan, _, file) = try Self.officeWithHost(sc)
        #expect(try sc.vcpe(["apply", file]).contains("applied"))
        try sc.plugInternet()
        for (kind, port) in [("tcp", 80), ("udp", 53), ("tcp", 8081), ("tcp", 138)] { try sc.servers.start(kind, port: port, in: sc.internet) }
        try sc.servers.start("sink", port: 443, in: sc.internet)  // serve-sink: checks bytes
        try sc.servers.start("tcp", port: 80, in: lan)

        #expect(ping(from: lan, to: "203.0.113.1"))
        #expect(try probe("tcp", from: lan, to: "203.0.113.1", port: 80) == "ok peer=203.0.113.10")  // masqueraded
        #expect(try probe("udp", from: lan, to: "203.0.113.1", port: 53) == "ok peer=203.0.113.10")
        #expect(try transfer(from: lan, to: "203.0.113.1", port: 443, bytes: 4 << 20) == "intact")
        #expect(try probe("tcp", from: lan, to: "203.0.113.1", port: 8081, timeout: 0.5) == "timeout")
        #expect(try probe("tcp", from: lan, to: "203.0.113.1", port: 138) == "refused")
        #expect(try probe("tcp", from: sc.internet, to: "203.0.113.10", port: 8080) == "ok peer=203.0.113.1")
        // Routed straight at the LAN host instead of through the port forward: not let in,
        // by the router's rule for what was not forwarded (its counter moves).
        try RouteSocket(namespace: sc.internet).addRoute(RouteInfo(destination: IPPrefix("192.168.10.0/24")!, gateway: IPAddress("203.0.113.10")))
        let notForwarded = { try nftCounter("not-forwarded", in: "vcpe-\(sc.customer(0)).rt") }
        let refused = try notForwarded()
        #expect(try probe("tcp", from: sc.internet, to: "192.168.10.10", port: 80, timeout: 0.5) == "timeout")
        #expect(try notForwarded() >= refused + 1, "the router's rule dropped it")

        let status = try JSONSerialization.jsonObject(with: Data(try sc.vcpe(["status", "--json", sc.customer(0)]).utf8)) as? [[String: Any]]
        let fw = (status?.first?["services"] as? [[String: Any]])?.first { $0["name"] as? String == "fw" }
        let rules = Dictionary(uniqueKeysWithValues: ((fw?["rules"] as? [[String: Any]]) ?? []).map { ($0["name"] as! String, $0["packets"] as! Int) })
        #expect(rules["web"]! >= 2 && rules["dns"]! >= 1 && rules["no-smb"]! >= 1 && rules["ping"]! >= 1, "\(rules)")
        #expect(status?.first?["pendingActions"] as? Int == 0)
        let links = status?.first?["links"] as? [[String: Any]] ?? []
        #expect(links.count == 3 && links.allSatisfy { $0["state"] as? String == "up" })
        #expect(links.reduce(0) { $0 + ($1["txBytes"] as? Int ?? 0) } > 4 << 20)

        // Host-side bridges and ports carry no IPv6 (it would grow the host's IPv6 table).
        for i in ["vl-", "vw-", "vb-"].map({ $0 + sc.customer(0) }) + [sc.segment] {
            let v = try String(contentsOfFile: "/proc/sys/net/ipv6/conf/\(i)/disable_ipv6", encoding: .utf8)
            #expect(v.trimmingCharacters(in: .whitespacesAndNewlines) == "1", "\(i)")
        }
    }

    @Test func twoCustomersWithTheSameSubnetStayApart() throws {
        let sc = try Scenario()
        defer { sc.cleanup() }
        let a = try sc.lanHost(1, address: "192.168.1.10/24", gateway: "192.168.1.1")
        let b = try sc.lanHost(2, address: "192.168.1.20/24", gateway: "192.168.1.1")
        let fa = try sc.descriptor(Self.office(sc, 1, attach: a.attach, lan: "192.168.1", wan: "203.0.113.41"))
        let fb = try sc.descriptor(Self.office(sc, 2, attach: b.attach, lan: "192.168.1", wan: "203.0.113.42"))
        try sc.vcpe(["apply", fa, fb])
        try sc.plugInternet()
        try sc.servers.start("tcp", port: 80, in: sc.internet)
        try sc.servers.start("tcp", port: 80, in: a.namespace)
        try sc.servers.start("tcp", port: 80, in: b.namespace)
        #expect(try probe("tcp", from: a.namespace, to: "203.0.113.1", port: 80) == "ok peer=203.0.113.41")
        #expect(try probe("tcp", from: b.namespace, to: "203.0.113.1", port: 80) == "ok peer=203.0.113.42")
        // Same subnet, other customer: nothing crosses, on-link or routed through a's chain
        // (a host route via its gateway), and b's links stay flat during a's burst.
        // (b's LAN side: its WAN end shares the segment's broadcasts with everyone.)
        func bLinks() throws -> Int {
            try ["vl-\(sc.customer(2))"].map { dev -> Int in
                let s = try #require(try ip(["-s", "link", "show", "dev", dev]).first?["stats64"] as? [String: Any])
                return ((s["rx"] as? [String: Any])?["packets"] as? Int ?? 0) + ((s["tx"] as? [String: Any])?["packets"] as? Int ?? 0)
            }.reduce(0, +)
        }
        let quiet = try bLinks()
        #expect(!ping(from: a.namespace, to: "192.168.1.20", count: 1))
        try RouteSocket(namespace: a.namespace).addRoute(RouteInfo(destination: IPPrefix("192.168.1.20/32")!, gateway: IPAddress("192.168.1.1")))
        #expect(try probe("tcp", from: a.namespace, to: "192.168.1.20", port: 80, timeout: 0.5) == "timeout")
        _ = try? sh("/usr/sbin/ip", ["netns", "exec", a.namespace, "ping", "-q", "-c", "100", "-i", "0.002", "-W", "1", "192.168.1.20"])
        let carried = try bLinks() - quiet
        // A leak carries the burst (100 pings); the idle LAN's own IPv6 neighbour discovery is a few.
        #expect(carried <= 20, "b's links carried \(carried) packets during a's burst")
        #expect(try probe("tcp", from: sc.internet, to: "203.0.113.41", port: 8080) == "ok peer=203.0.113.1")
    }

    /// Interface indexes in a namespace, by name: unchanged indexes mean untouched links.
    static func indexes(_ ns: String?) throws -> [String: Int] {
        let links = try ip(["link", "show"], namespace: ns)
        return Dictionary(links.map { ($0["ifname"] as! String, $0["ifindex"] as! Int) }, uniquingKeysWith: { a, _ in a })
    }

    static func tableHandle(_ ns: String) throws -> Int? {
        let out = try sh("/usr/sbin/ip", ["netns", "exec", ns, "nft", "-j", "list", "tables"])
        let items = (try JSONSerialization.jsonObject(with: Data(out.utf8)) as? [String: Any])?["nftables"] as? [[String: Any]]
        return items?.compactMap { $0["table"] as? [String: Any] }.first { $0["name"] as? String == "vcpe" }?["handle"] as? Int
    }

    @Test func reapplyChangesNothingAndARuleChangeTouchesOnlyItsService() throws {
        let sc = try Scenario()
        defer { sc.cleanup() }
        let (lan, attach, file) = try Self.officeWithHost(sc)
        try sc.vcpe(["apply", file])
        #expect(try sc.vcpe(["apply", file]).contains("no changes"))
        #expect(try sc.pendingActions(file) == 0)

        let fwNS = "vcpe-\(sc.customer(0)).fw", rtNS = "vcpe-\(sc.customer(0)).rt"
        let before = (try Self.indexes(fwNS), try Self.indexes(rtNS), try Self.tableHandle(fwNS), try Self.tableHandle(rtNS))
        let changed = try sc.descriptor(Self.office(sc, 0, attach: attach, webPorts: "[80, 8443]"))
        #expect(try sc.pendingActions(changed) == 1)
        try sc.plugInternet()
        try sc.servers.start("echo", port: 443, in: sc.internet)
        // A connection on 443, opened before the change that drops 443 from the rule, keeps
        // flowing: the table is swapped in one transaction and conntrack keeps its state.
        var applied = ""
        let held = try holdConnection(from: lan, to: "203.0.113.1", port: 443) { applied = try sc.vcpe(["apply", changed]) }
        #expect(applied.contains("applied 1 action"))
        #expect(held == "kept")
        #expect(try probe("tcp", from: lan, to: "203.0.113.1", port: 443, timeout: 0.5) == "timeout")  // new ones are not let in
        #expect(try Self.indexes(fwNS) == before.0)
        #expect(try Self.indexes(rtNS) == before.1)
        let routerTable = try #require(before.3, "the router had a table")
        #expect(try Self.tableHandle(rtNS) == routerTable)  // the router's table was not touched
        #expect(try Self.tableHandle(fwNS) != nil)
        let rules = try sh("/usr/sbin/ip", ["netns", "exec", fwNS, "nft", "list", "table", "inet", "vcpe"])
        #expect(rules.contains("tcp dport { 80, 8443 }"))
        try sc.servers.start("tcp", port: 8443, in: sc.internet)
        #expect(try probe("tcp", from: lan, to: "203.0.113.1", port: 8443) == "ok peer=203.0.113.10")
    }

    @Test func driftIsShownByPlanAndRepairedByApply() throws {
        let sc = try Scenario()
        defer { sc.cleanup() }
        let (lan, _, file) = try Self.officeWithHost(sc)
        try sc.vcpe(["apply", file])
        try sc.plugInternet()
        try sc.servers.start("tcp", port: 80, in: sc.internet)
        let c = sc.customer(0)
        let (fw, rt) = ("vcpe-\(c).fw", "vcpe-\(c).rt")
        // Each damage, and what the kernel itself (ip, nft) must show again after the repair.
        let damage: [(break: [String], check: [String], expect: String)] = [
            (["ip", "-n", fw, "link", "del", "internet-out"], ["ip", "-n", fw, "-br", "link", "show", "internet-out"], "internet-out"),
            (["ip", "netns", "exec", fw, "nft", "flush", "table", "inet", "vcpe"], ["ip", "netns", "exec", fw, "nft", "list", "table", "inet", "vcpe"], "tcp dport { 80, 443 }"),
            (["ip", "netns", "exec", rt, "nft", "delete", "table", "ip", "vcpe"], ["ip", "netns", "exec", rt, "nft", "list", "table", "ip", "vcpe"], "masquerade"),
            (["ip", "netns", "del", rt], ["ip", "-n", rt, "-br", "addr", "show", "wan"], "203.0.113.10/24"),
            (["ip", "link", "del", "vb-\(c)"], ["ip", "-br", "link", "show", "master", "vb-\(c)"], "vl-\(c)"),
        ]
        for d in damage {
            try sh("/usr/sbin/" + d.break[0], Array(d.break.dropFirst()))
            #expect(try sc.pendingActions(file) > 0, "\(d.break) not seen")
            let broken = (try? sh("/usr/sbin/" + d.check[0], Array(d.check.dropFirst()))) ?? ""
            #expect(!broken.contains(d.expect), "\(d.break) did not break what \(d.check) shows")
            try sc.vcpe(["apply", file])
            #expect(try sc.pendingActions(file) == 0, "\(d.break) not repaired")
            #expect(try sh("/usr/sbin/" + d.check[0], Array(d.check.dropFirst())).contains(d.expect), "\(d.break): \(d.check) after the repair")
            #expect(try probe("tcp", from: lan, to: "203.0.113.1", port: 80) == "ok peer=203.0.113.10", "\(d.break)")
        }
    }

    @Test func anApplyKilledHalfWayIsRepairedByTheNext() throws {
        let sc = try Scenario()
        defer { sc.cleanup() }
        let (lan, _, file) = try Self.officeWithHost(sc)
        let c = sc.customer(0)
        var halfMade = 0
        for trial in 0..<6 {
            try sc.vcpe(["delete", c])
            let pid = try spawn(vcpeBinary.path, ["apply", file, "--state-dir", sc.stateDir])
            // Killed once it has begun to change the host (its first namespace is there), a
            // little later each time.
            var begun = false
            for _ in 0..<4000 where !begun {
                begun = (try NetworkNamespace.list()).contains { $0.hasPrefix("vcpe-\(c).") }
                if !begun { usleep(500) }
            }
            usleep(UInt32(trial) * 3_000)
            kill(pid, SIGKILL)
            let status = waitFor(pid)
            #expect(begun, "trial \(trial): the apply never began")
            // Half-made, as the plan against the kernel shows it (unless it finished first).
            if status == 128 + SIGKILL, try sc.pendingActions(file) > 0 { halfMade += 1 }
            try sc.vcpe(["apply", file])
            #expect(try sc.pendingActions(file) == 0, "trial \(trial): not repaired")
            // The repair as ip and nft show it.
            #expect(try sh("/usr/sbin/ip", ["-n", "vcpe-\(c).rt", "-br", "addr", "show", "wan"]).contains("203.0.113.10/24"))
            #expect(try sh("/usr/sbin/ip", ["netns", "exec", "vcpe-\(c).fw", "nft", "list", "table", "inet", "vcpe"]).contains("tcp dport { 80, 443 }"))
            #expect(try sh("/usr/sbin/ip", ["-br", "link", "show", "master", "vb-\(c)"]).contains("vl-\(c)"))
        }
        #expect(halfMade >= 3, "only \(halfMade) of 6 kills caught the apply half-way")
        try sc.plugInternet()
        try sc.servers.start("tcp", port: 80, in: sc.internet)
        #expect(try probe("tcp", from: lan, to: "203.0.113.1", port: 80) == "ok peer=203.0.113.10")
    }

    @Test func aFailedApplyRollsTheCustomerBack() throws {
        let sc = try Scenario()
        defer { sc.cleanup() }
        let (_, attach) = try sc.lanHost(0, address: "192.168.10.10/24", gateway: "192.168.10.1")
        let c = sc.customer(0)
        // The kernel refuses: the interface to attach does not exist.
        let broken = try sc.descriptor(Self.office(sc, 0, attach: "\(sc.fx.tag)nx"))
        do {
            try sc.vcpe(["apply", broken])
            Issue.record("apply with a missing interface succeeded")
        } catch let e as CommandFailed {
            #expect(e.status == 1)
            #expect(e.stderr.contains("\(sc.fx.tag)nx") && e.stderr.contains("rolled back"), "\(e.stderr)")
        }
        #expect(try NetworkNamespace.list().filter { $0.contains(c) }.isEmpty)
        #expect(try RouteSocket().links().filter { $0.name.contains(c) }.isEmpty)

        // A failing change to a working customer leaves it as it was.
        let good = try sc.descriptor(Self.office(sc, 0, attach: attach))
        try sc.vcpe(["apply", good])
        func rules() throws -> String { try nftTableRules("vcpe-\(c).fw", family: "inet") }
        let table = try rules()
        #expect(table.contains("tcp dport { 80, 443 }"))
        let bad = try sc.descriptor(Self.office(sc, 0, attach: "\(sc.fx.tag)nx", webPorts: "[8443]"))
        #expect(throws: CommandFailed.self) { try sc.vcpe(["apply", bad]) }
        #expect(try sc.pendingActions(good) == 0)
        let after = try rules()
        #expect(after == table, "before:\n\(table)\nafter:\n\(after)")
    }

    @Test func concurrentAppliesAreSerialisedAndDeleteTwiceIsFine() throws {
        let sc = try Scenario()
        defer { sc.cleanup() }
        let a = try sc.lanHost(1, address: "192.168.1.10/24", gateway: "192.168.1.1")
        let b = try sc.lanHost(2, address: "192.168.2.10/24", gateway: "192.168.2.1")
        let fa = try sc.descriptor(Self.office(sc, 1, attach: a.attach, lan: "192.168.1", wan: "203.0.113.41"))
        let fb = try sc.descriptor(Self.office(sc, 2, attach: b.attach, lan: "192.168.2", wan: "203.0.113.42"))
        let pids = try [fa, fb, fa, fb].map { try spawn(vcpeBinary.path, ["apply", $0, "--state-dir", sc.stateDir]) }
        #expect(pids.map { waitFor($0) } == [0, 0, 0, 0])
        #expect(try sc.pendingActions(fa) == 0 && sc.pendingActions(fb) == 0)
        // The bridges delete will retire (the LANs', and the segment's with its last customer).
        let retiring = bridgeIndexes([sc.customer(1), sc.customer(2)]) + [try #require(try RouteSocket().link(named: sc.segment)).index].map(Int.init)
        #expect(retiring.count == 3)
        for c in [sc.customer(1), sc.customer(2)] {
            #expect(try sc.vcpe(["delete", c]).contains("deleted"))
            #expect(try sc.vcpe(["delete", c]).contains("nothing to delete"))
        }
        #expect(try NetworkNamespace.list().filter { $0.hasPrefix("vcpe-\(sc.fx.tag)") }.isEmpty)
        #expect(try RouteSocket().links().filter { ["vb-", "vl-", "vw-"].contains(String($0.name.prefix(3))) && $0.name.contains(sc.fx.tag) }.isEmpty)
        // The segment vcpe made goes with its last customer once nothing else is plugged in.
        #expect(try RouteSocket().link(named: sc.segment) == nil)
        // The attached interfaces are free at once; the retired bridges go in the background.
        #expect(try ip(["link", "show", "dev", a.attach]).first?["master"] == nil)
        #expect(retiredLinksLeft(retiring).isEmpty)
    }

    @Test func retiredBridgesLeftByAnInterruptedGCAreRemovedByTheNextApply() throws {
        let sc = try Scenario()
        defer { sc.cleanup() }
        // What a delete leaves when its gc dies: a bridge renamed and recorded as retired.
        let orphan = KernelNames.retiredLink(serial: .random(in: 0...UInt64.max))
        try RouteSocket().addBridge(orphan)
        defer { try? RouteSocket().removeLink(orphan) }  // its name does not carry the test's tag
        try FileManager.default.createDirectory(atPath: sc.stateDir, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        try JSONSerialization.data(withJSONObject: [orphan]).write(to: URL(fileURLWithPath: sc.stateDir + "/retired.json"))
        let a = try sc.lanHost(1, address: "192.168.1.10/24", gateway: "192.168.1.1")
        let index = try #require(try RouteSocket().link(named: orphan)).index
        try sc.vcpe(["apply", try sc.descriptor(Self.office(sc, 1, attach: a.attach, lan: "192.168.1"))])
        #expect(retiredLinksLeft([Int(index)]).isEmpty)
        #expect(try ip(["link", "show"]).allSatisfy { $0["ifname"] as? String != orphan })
    }
}
