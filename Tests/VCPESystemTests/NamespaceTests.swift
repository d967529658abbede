import Foundation
import Testing
import VCPENetlink
import VCPESystem
import VCPETestSupport

@Suite struct NamespaceTests {
    @Test func createListRemoveAsIpNetnsSeesThem() throws {
        let fx = KernelFixture()
        defer { fx.cleanup() }
        let ns = try fx.namespace("a")
        #expect(NetworkNamespace.exists(ns))
        #expect(try NetworkNamespace.list().contains(ns))
        #expect(try sh("/usr/sbin/ip", ["netns", "list"]).contains(ns))
        // A real, separate network namespace: only its own loopback is there.
        let links = try ip(["link", "show"], namespace: ns)
        #expect(links.map { $0["ifname"] as? String } == ["lo"])

        #expect(try NetworkNamespace.ensure(ns) == false)
        #expect(throws: KernelError.self) { try NetworkNamespace.create(ns) }
        try NetworkNamespace.remove(ns)
        try NetworkNamespace.remove(ns)  // twice is fine
        #expect(!NetworkNamespace.exists(ns))
        #expect(!(try sh("/usr/sbin/ip", ["netns", "list"]).contains(ns)))
        #expect(try NetworkNamespace.ensure(ns) == true)
    }

    @Test func badNamesAreRefusedWithErrno() {
        do {
            try NetworkNamespace.create("a/b")
            Issue.record("created a/b")
        } catch {
            #expect(error.errno == .invalidArgument)
            #expect(error.description.contains("a/b"))
        }
    }

    @Test func sysctlsArePerNamespace() throws {
        let fx = KernelFixture()
        defer { fx.cleanup() }
        let ns = try fx.namespace("s")
        let hostBefore = try Sysctl.read("net.ipv4.conf.all.rp_filter", namespace: nil)
        try Sysctl.write("net.ipv4.ip_forward", "1", namespace: ns)
        try Sysctl.write("net.ipv4.conf.all.rp_filter", hostBefore == "2" ? "1" : "2", namespace: ns)
        #expect(try Sysctl.read("net.ipv4.ip_forward", namespace: ns) == "1")
        #expect(try sh("/usr/sbin/ip", ["netns", "exec", ns, "cat", "/proc/sys/net/ipv4/ip_forward"]).hasPrefix("1"))
        #expect(try Sysctl.read("net.ipv4.conf.all.rp_filter", namespace: nil) == hostBefore)
        #expect(throws: (any Error).self) { try Sysctl.write("net.ipv4.no_such_knob", "1", namespace: ns) }
    }

    /// The namespace switch happens on a throwaway thread: the caller's stays on the host.
    @Test func callersThreadNeverChangesNamespace() throws {
        let fx = KernelFixture()
        defer { fx.cleanup() }
        let ns = try fx.namespace("t")
        let before = try FileManager.default.destinationOfSymbolicLink(atPath: "/proc/thread-self/ns/net")
        let inside = try NetworkNamespace.perform(in: ns) {
            try FileManager.default.destinationOfSymbolicLink(atPath: "/proc/thread-self/ns/net")
        }
        #expect(inside != before)
        #expect(try FileManager.default.destinationOfSymbolicLink(atPath: "/proc/thread-self/ns/net") == before)
    }
}

extension NamespaceTests {
    /// A create killed between making the mount point and mounting leaves a plain file.
    @Test func aStaleMountPointFromAnInterruptedCreateIsReclaimed() throws {
        let fx = KernelFixture()
        defer { fx.cleanup() }
        let ns = try fx.namespace("s")
        try NetworkNamespace.remove(ns)
        #expect(FileManager.default.createFile(atPath: NetworkNamespace.path(ns), contents: nil))
        #expect(!NetworkNamespace.exists(ns))
        // Seen as an entry (so delete clears it), not as a namespace.
        #expect(try NetworkNamespace.entries(prefix: ns) == [ns])
        #expect(try NetworkNamespace.list(prefix: ns).isEmpty)
        #expect(try NetworkNamespace.ensure(ns) == true)
        #expect(NetworkNamespace.exists(ns))
        #expect(try ip(["link", "show"], namespace: ns).map { $0["ifname"] as? String } == ["lo"])
        try NetworkNamespace.remove(ns)
        #expect(FileManager.default.createFile(atPath: NetworkNamespace.path(ns), contents: nil))
        try NetworkNamespace.remove(ns)
        #expect(try NetworkNamespace.entries(prefix: ns).isEmpty)
    }
}
