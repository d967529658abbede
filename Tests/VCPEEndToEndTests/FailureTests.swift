import Foundation
import Testing
import VCPENetlink
import VCPESystem
import VCPETestSupport

/// Failures on paths that matter: one of several files failing, a failing change to a
/// running VPN or steered customer, a user who is not root. Each leaves what ran running.
@Suite(.serialized) struct FailureTests {
    @Test func applyOfTwoFilesWhereTheSecondFailsKeepsTheFirst() throws {
        let sc = try Scenario()
        defer { sc.cleanup() }
        let (lan, _, good) = try ApplyTests.officeWithHost(sc)
        let bad = try sc.descriptor(ApplyTests.office(sc, 1, attach: "\(sc.fx.tag)nx", lan: "192.168.11", wan: "203.0.113.11"))
        let r = try run(vcpeBinary, ["apply", good, bad, "--state-dir", sc.stateDir])
        #expect(r.status == 1)
        #expect(r.stderr.contains("customer \(sc.customer(1))") && r.stderr.contains("rolled back"), "\(r.stderr)")
        #expect(r.stdout.contains("customer \(sc.customer(0)): applied"), "\(r.stdout)")
        // The first is in service, the second left nothing.
        #expect(try sc.pendingActions(good) == 0)
        try sc.plugInternet()
        #expect(ping(from: lan, to: "203.0.113.1"))
        #expect(!(try sh("/usr/sbin/ip", ["netns", "list"])).contains("vcpe-\(sc.customer(1))."))
        #expect(try RouteSocket().link(named: "vb-\(sc.customer(1))") == nil)
    }

    @Test func aFailingChangeToARunningVPNOrSteeredCustomerLeavesItRunning() throws {
        let sc = try Scenario(wireguard: "userspace")
        defer { sc.cleanup() }
        let s = try VPNTests.twoSites(sc)
        let (_, attach0) = try sc.lanHost(0, address: "192.168.20.10/24", gateway: "192.168.20.1")
        let steered = try sc.descriptor(SteeringTests.chain(sc, 0, attach: attach0, lan: "192.168.20", wan: "203.0.113.20"))
        try sc.vcpe(["apply", steered])
        #expect(ping(from: s.lan1, to: "192.168.32.10"))
        let daemon = VPNTests.wireguardPIDs(sc, 1), worker = SteeringTests.forwarderPIDs(sc)
        #expect(daemon.count == 1 && worker.count == 1)
        let peer2 = try #require(VPNTests.vpn(sc, 2)["publicKey"] as? String)

        // Changes that fail part-way (a LAN interface the host does not have), with a real
        // change beside it (new limits, a new classifier rule) that must be undone too.
        let badVPN = try sc.descriptor(VPNTests.site(sc, 1, attach: "\(sc.fx.tag)nx", peerKey: peer2, resources: #"{ "memory": "48MiB", "pids": 32 }"#))
        let badSteered = try sc.descriptor(SteeringTests.chain(sc, 0, attach: "\(sc.fx.tag)nx", lan: "192.168.20", wan: "203.0.113.20",
            extraRules: #"{ "name": "extra", "priority": 5, "match": { "proto": "udp", "dport": "53" }, "path": "secure" },"#))
        for file in [badVPN, badSteered] {
            let r = try run(vcpeBinary, ["apply", file, "--state-dir", sc.stateDir])
            #expect(r.status == 1 && r.stderr.contains("rolled back"), "\(r.stderr)")
        }
        // As they were: the same daemon and worker, in sync with their last good descriptors,
        // the tunnel and the steering working.
        #expect(VPNTests.wireguardPIDs(sc, 1) == daemon && SteeringTests.forwarderPIDs(sc) == worker)
        #expect(try sc.pendingActions(s.file1) == 0 && sc.pendingActions(steered) == 0)
        #expect(try ContainerTests.cgroupValue(Int(daemon[0])!, "pids", "pids.max") == "64", "the daemon's limits are the old ones")
        #expect(ping(from: s.lan1, to: "192.168.32.10"))
        #expect(try SteeringTests.steeringStatus(sc, 0).rules["extra"] == nil)
    }

    @Test func aLateNftablesCommitFailureRollsTheCustomerBack() throws {
        let sc = try Scenario()
        defer { sc.cleanup() }
        let (_, attach, file) = try ApplyTests.officeWithHost(sc)
        try sc.vcpe(["apply", file])
        let (fw, rt) = ("vcpe-\(sc.customer(0)).fw", "vcpe-\(sc.customer(0)).rt")
        func rules(_ ns: String, _ family: String) throws -> String { try nftTableRules(ns, family: family) }
        let firewall = try rules(fw, "inet")
        // Another process's table takes the router's place, owned by it (nft -i holds its
        // socket): the kernel refuses vcpe's commit there (EPERM), after the firewall's
        // table, whose commit comes first, was already replaced.
        try sh("/usr/sbin/ip", ["netns", "exec", rt, "nft", "delete", "table", "ip", "vcpe"])
        let fifo = sc.stateDir + "-owner.fifo"
        mkfifo(fifo, 0o600)
        defer { unlink(fifo) }
        let owner = try spawn("/bin/sh", ["-c", "exec /usr/sbin/ip netns exec \(rt) nft -i < \(fifo)"])
        defer { kill(owner, SIGKILL); waitFor(owner) }
        let feed = try #require(FileHandle(forWritingAtPath: fifo))
        feed.write(Data("add table ip vcpe { flags owner; }\n".utf8))
        var owned = false
        for _ in 0..<100 { owned = (try? sh("/usr/sbin/ip", ["netns", "exec", rt, "nft", "list", "tables"]))?.contains("table ip vcpe") == true; if owned { break }; usleep(20_000) }
        #expect(owned, "the other process's table is there")

        let changed = try sc.descriptor(ApplyTests.office(sc, 0, attach: attach, webPorts: "[80, 8443]"))
        let r = try run(vcpeBinary, ["apply", changed, "--state-dir", sc.stateDir])
        #expect(r.status == 1 && r.stderr.contains("rolled back") && r.stderr.contains("Operation not permitted"), "\(r.stderr)")
        // The firewall's table is the one before the failing apply, as nft lists it.
        #expect(try rules(fw, "inet") == firewall)
        #expect(!firewall.contains("8443"))

        // Its owner gone, the table goes with it, and the next apply makes the chain whole.
        feed.closeFile()
        waitFor(owner)
        try sc.vcpe(["apply", file])
        #expect(try sc.pendingActions(file) == 0)
        #expect(try rules(rt, "ip").contains("masquerade"))
    }

    @Test func everyCommandThatChangesTheHostRefusesAUserWhoIsNotRoot() throws {
        let sc = try Scenario()
        defer { sc.cleanup() }
        let file = try sc.descriptor(ApplyTests.office(sc, 0, attach: "\(sc.fx.tag)l0"))
        chmod(file, 0o644)
        func asUser(_ args: [String]) throws -> RunResult {
            try run(URL(fileURLWithPath: "/usr/bin/setpriv"), ["--reuid=1234", "--regid=1234", "--clear-groups", vcpeBinary.path] + args)
        }
        for args in [["apply", file], ["delete", sc.customer(0)], ["status"], ["gc"], ["trust"], ["forwarder", "configure", "--spin", "10"]] {
            let r = try asUser(args + ["--state-dir", sc.stateDir])
            #expect(r.status == 1 && r.stderr.contains("needs root"), "\(args): \(r.status) \(r.stderr)")
            #expect(r.stderr.split(separator: "\n").count == 1, "\(args): one line: \(r.stderr)")
        }
        // Validation needs nothing of the host: fine as anyone.
        let v = try asUser(["validate", file])
        #expect(v.status == 0, "\(v.stderr)")
        #expect(!(try sh("/usr/sbin/ip", ["netns", "list"])).contains("vcpe-\(sc.customer(0))."))
    }
}
