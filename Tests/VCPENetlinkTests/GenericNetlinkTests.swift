import Foundation
import Testing
import VCPENetlink
import VCPETestSupport

/// The generic netlink socket against the kernel's own controller family, checked with
/// iproute2's `genl` (an independent client).
@Suite struct GenericNetlinkTests {
    static let getFamily: UInt8 = 3  // CTRL_CMD_GETFAMILY
    static let familyName: UInt16 = 2  // CTRL_ATTR_FAMILY_NAME

    @Test func aDumpListsTheFamiliesGenlSees() throws {
        let s = try #require(try GenericNetlinkSocket.open(family: "nlctrl"))
        let replies = try s.request("families", command: Self.getFamily, version: 1, dump: true, attributes: [])
        let mine = Set(replies.compactMap { NetlinkAttribute.parse($0).first(Self.familyName)?.string })
        let theirs = Set(try sh("/usr/sbin/genl", ["ctrl", "list"]).split(separator: "\n")
            .filter { $0.hasPrefix("Name: ") }.map { String($0.dropFirst(6)) })
        #expect(mine.count >= 5 && mine == theirs, "mine \(mine.sorted()), genl \(theirs.sorted())")
    }

    @Test func theKernelsRefusalKeepsItsErrno() throws {
        let s = try #require(try GenericNetlinkSocket.open(family: "nlctrl"))
        var w = NetlinkAttributeWriter()
        w.put(Self.familyName, string: "vcpe-nofamily")
        do {
            _ = try s.request("family vcpe-nofamily", command: Self.getFamily, version: 1, attributes: w.bytes)
            Issue.record("the kernel found a family that does not exist")
        } catch {
            #expect(error.errno == .noSuchFileOrDirectory, "\(error)")
            #expect("\(error)".contains("vcpe-nofamily"))
        }
        #expect(try GenericNetlinkSocket.open(family: "vcpe-nofamily") == nil)
    }

    @Test func attributesRoundTrip() {
        var w = NetlinkAttributeWriter()
        w.put(1, string: "wg-x")
        w.put(2, UInt16(51820))
        w.nest(3) { n in
            n.put(1, [1, 2, 3])
            n.put(2, UInt64(1) << 40)
        }
        #expect(w.bytes.count % 4 == 0)
        // Each attribute: 2-byte length including the 4-byte header, 2-byte type; padded to 4.
        #expect(Array(w.bytes[0..<12]) == [9, 0, 1, 0] + Array("wg-x".utf8) + [0, 0, 0, 0])
        let a = NetlinkAttribute.parse(w.bytes)
        #expect(a.map(\.type) == [1, 2, 3])
        #expect(a.first(1)?.string == "wg-x" && a.first(2)?.integer(UInt16.self) == 51820)
        #expect(a.first(3)?.nested.first(1)?.payload == [1, 2, 3] && a.first(3)?.nested.first(2)?.integer(UInt64.self) == 1 << 40)
    }
}
