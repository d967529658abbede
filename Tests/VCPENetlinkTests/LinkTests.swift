import Foundation
import Testing
import VCPEDescriptor
import VCPENet
import VCPENetlink
import VCPESystem
import VCPETestSupport

@Suite struct LinkTests {
    @Test func vethWithEachEndInItsOwnNamespaceInOneRequest() throws {
        let fx = KernelFixture()
        defer { fx.cleanup() }
        let a = try fx.namespace("a"), b = try fx.namespace("b"), c = try fx.namespace("c")
        // Asked from namespace a, both ends land elsewhere.
        let nl = try RouteSocket(namespace: a)
        try nl.addVeth(VethEnd("left", in: b), VethEnd("right", in: c), mtu: 1400)
        let left = try #require(try ip(["link", "show", "left"], namespace: b).first)
        let right = try #require(try ip(["link", "show", "right"], namespace: c).first)
        #expect(left["mtu"] as? Int == 1400)
        #expect(right["mtu"] as? Int == 1400)
        #expect(left["link_index"] as? Int == right["ifindex"] as? Int)
        #expect(try ip(["link", "show"], namespace: a).count == 1)

        let nb = try RouteSocket(namespace: b)
        let info = try #require(try nb.link(named: "left"))
        #expect(info.kind == "veth")
        #expect(info.peerIndex == right["ifindex"] as? Int32)
        #expect(info.peerNetnsID != nil)
        #expect(!info.isUp)
        #expect(info.macString == left["address"] as? String)
    }

    @Test func upDownMTUMACAndRenameReadBackThroughIp() throws {
        let fx = KernelFixture()
        defer { fx.cleanup() }
        let a = try fx.namespace("a")
        let nl = try RouteSocket(namespace: a)
        try nl.addVeth(VethEnd("x0"), VethEnd("y0"))
        let mac: [UInt8] = [0x02, 0x00, 0x5e, 0x10, 0x20, 0x30]
        try nl.setLink("x0", up: true, mtu: 9000, mac: mac)
        try nl.setLink("y0", up: true)
        var j = try #require(try ip(["link", "show", "x0"], namespace: a).first)
        #expect((j["flags"] as? [String])?.contains("UP") == true)
        #expect(j["mtu"] as? Int == 9000)
        #expect(j["address"] as? String == "02:00:5e:10:20:30")
        #expect(j["operstate"] as? String == "UP")
        let info = try #require(try nl.link(named: "x0"))
        #expect(info.isUp && info.mtu == 9000 && info.mac == mac && info.operState == "up")

        try nl.setLink("x0", up: false)
        try nl.setLink("x0", newName: "x1")
        #expect(try nl.link(named: "x0") == nil)
        j = try #require(try ip(["link", "show", "x1"], namespace: a).first)
        #expect((j["flags"] as? [String])?.contains("UP") == false)
        try nl.removeLink("x1")
        try nl.removeLink("x1")  // already gone: fine
        #expect(try ip(["link", "show"], namespace: a).count == 1)  // the pair went together
    }

    @Test func bridgesEnslaveAndRelease() throws {
        let fx = KernelFixture()
        defer { fx.cleanup() }
        let a = try fx.namespace("a"), b = try fx.namespace("b")
        let nl = try RouteSocket(namespace: a)
        #expect(try nl.ensureBridge("br0") == .created)
        #expect(try nl.ensureBridge("br0") == .unchanged)
        try nl.addVeth(VethEnd("p0"), VethEnd("q0", in: b))
        try nl.enslave("p0", to: "br0")
        let p = try #require(try ip(["link", "show", "p0"], namespace: a).first)
        #expect(p["master"] as? String == "br0")
        let br = try #require(try ip(["-d", "link", "show", "br0"], namespace: a).first)
        #expect((br["linkinfo"] as? [String: Any])?["info_kind"] as? String == "bridge")
        #expect(try nl.link(named: "p0")?.masterIndex == br["ifindex"] as? Int32)
        try nl.release("p0")
        try nl.release("p0")
        #expect(try ip(["link", "show", "p0"], namespace: a).first?["master"] == nil)
        // A name that exists as something else is a mismatch, not a silent success.
        #expect(throws: MismatchError.self) { try nl.ensureBridge("p0") }
        #expect(throws: MismatchError.self) { try nl.ensureVeth(VethEnd("br0"), VethEnd("zz")) }
        #expect(try nl.ensureVeth(VethEnd("p0"), VethEnd("q0", in: b)) == .unchanged)
    }

    @Test func countersCountRealPackets() throws {
        let fx = KernelFixture()
        defer { fx.cleanup() }
        let a = try fx.namespace("a"), b = try fx.namespace("b")
        let na = try RouteSocket(namespace: a), nb = try RouteSocket(namespace: b)
        try na.addVeth(VethEnd("e0"), VethEnd("e1", in: b))
        try na.addAddress(IPPrefix("10.200.0.1/30")!, on: "e0")
        try nb.addAddress(IPPrefix("10.200.0.2/30")!, on: "e1")
        try na.setLink("e0", up: true)
        try nb.setLink("e1", up: true)
        let before = try #require(try na.link(named: "e0")).stats
        try sh("/usr/sbin/ip", ["netns", "exec", a, "ping", "-c", "5", "-i", "0.01", "-W", "1", "10.200.0.2"])
        let after = try #require(try na.link(named: "e0")).stats
        #expect(after.txPackets >= before.txPackets + 5)
        #expect(after.rxPackets >= before.rxPackets + 5)
        let j = try #require(try ip(["-s", "link", "show", "e0"], namespace: a).first)
        let tx = (j["stats64"] as? [String: Any])?["tx"] as? [String: Any]
        #expect(UInt64(tx?["packets"] as? Int ?? -1) == after.txPackets)
    }

    @Test func failuresCarryOperationObjectErrnoAndKernelText() throws {
        let fx = KernelFixture()
        defer { fx.cleanup() }
        let a = try fx.namespace("a")
        let nl = try RouteSocket(namespace: a)
        do {
            try nl.addVeth(VethEnd("this-name-is-too-long"), VethEnd("ok"))
            Issue.record("overlong name accepted")
        } catch {
            #expect(error.errno == .invalidArgument || error.errno == .outOfRange, "\(error)")
            #expect(error.description.contains("this-name-is-too-long"))
        }
        do {
            try nl.addVeth(VethEnd("v0"), VethEnd("v1", in: "vcpetest-\(fx.tag)-missing"))
            Issue.record("veth into a missing namespace")
        } catch {
            #expect(error.errno == .noSuchFileOrDirectory, "\(error)")
            #expect(error.description.contains("missing"))
        }
        do {
            try nl.addAddress(IPPrefix("10.0.0.1/24")!, on: "nope0")
            Issue.record("address on a missing link")
        } catch {
            #expect(error.description.contains("nope0"), "\(error)")
        }
        try nl.addVeth(VethEnd("d0"), VethEnd("d1"))
        do {
            try nl.addVeth(VethEnd("d0"), VethEnd("d2"))
            Issue.record("duplicate accepted")
        } catch {
            #expect(error.errno == .fileExists, "\(error)")
        }
        // The kernel explains this one itself (extended ack).
        try nl.setLink("d0", up: true)
        do {
            try nl.addRoute(RouteInfo(destination: IPPrefix("10.9.0.0/16")!, gateway: IPAddress("10.99.99.99")!, device: "d0"))
            Issue.record("unreachable gateway accepted")
        } catch {
            #expect(error.kernelMessage?.isEmpty == false, "\(error)")
            #expect(error.description.contains("10.9.0.0/16"))
        }
    }
}
