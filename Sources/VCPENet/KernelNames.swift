/// Every kernel name vcpe derives from a descriptor, in one place.
///
/// Host-side names carry the customer (unique per host); names inside a service's own
/// namespace only need to be unique there, so they carry the path. '.' separates customer
/// and service in namespace names because neither may contain one.
public enum KernelNames {
    /// IFNAMSIZ is 16 with the terminating NUL.
    public static let maxInterfaceName = 15
    static let hostPrefixLength = 3  // "vb-", "vl-", "vw-", "wg-"
    public static let maxCustomerName = maxInterfaceName - hostPrefixLength
    public static let maxServiceName = 15
    public static let maxPathName = maxInterfaceName - "-out".utf8.count
    public static let maxRuleName = 32
    public static let reservedServiceNames: Set<String> = ["lan", "wan", "classifier"]

    /// Every vcpe namespace starts with this; nothing else on the host is ever touched.
    public static let namespacePrefix = "vcpe-"
    /// Transit links take /31s from here; it must not meet customer addresses.
    public static let defaultTransitPool = IPPrefix(IPAddress("169.254.0.0")!, 16)

    public static func namespace(customer: String, service: String) -> String {
        "\(namespacePrefix)\(customer).\(service)"
    }

    public static func classifierNamespace(customer: String) -> String {
        namespace(customer: customer, service: "classifier")
    }

    /// The customer (and service) a namespace name belongs to, if it is vcpe's.
    public static func parseNamespace(_ name: String) -> (customer: String, service: String)? {
        guard name.hasPrefix(namespacePrefix) else { return nil }
        let parts = name.dropFirst(namespacePrefix.count).split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 2, !parts[0].isEmpty, !parts[1].isEmpty else { return nil }
        return (String(parts[0]), String(parts[1]))
    }

    // Host side.
    public static func lanBridge(customer: String) -> String { "vb-\(customer)" }
    public static func lanVethHost(customer: String) -> String { "vl-\(customer)" }
    public static func wanVethHost(customer: String) -> String { "vw-\(customer)" }
    /// The customer's veth ends on the host: its LAN's and its WAN's.
    public static func hostVeths(customer: String) -> [String] { [lanVethHost(customer: customer), wanVethHost(customer: customer)] }
    public static func wireguardInterface(customer: String) -> String { "wg-\(customer)" }
    /// A bridge delete has emptied and renamed, waiting to be removed in the background.
    public static let retiredLinkPrefix = "vx-"
    public static func retiredLink(serial: UInt64) -> String { retiredLinkPrefix + zeroPaddedHex(serial & 0xFFFF_FFFF_FFFF, width: 12) }

    // Inside a namespace.
    public static let lanInterface = "lan"
    public static let wanInterface = "wan"
    public static func pathIn(_ path: String) -> String { "\(path)-in" }
    public static func pathOut(_ path: String) -> String { "\(path)-out" }

    /// The Ethernet address of an interface vcpe makes: locally administered, unicast, and
    /// a function of its namespace and name alone (both carry the customer), so the same
    /// after a repair, a reboot or on another host, and LAN hosts' ARP caches stay right.
    public static func stableMAC(namespace: String?, interface: String) -> [UInt8] {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325  // FNV-1a
        for b in "\(namespace ?? "host")/\(interface)".utf8 { h = (h ^ UInt64(b)) &* 0x100_0000_01b3 }
        var mac = (0..<6).map { UInt8(truncatingIfNeeded: h >> (8 * UInt64($0))) }
        mac[0] = (mac[0] & 0xFC) | 0x02
        return mac
    }

    /// The descriptor's names (customers, services, paths, rules): `[a-z][a-z0-9-]*`, not
    /// ending with '-', at most `maxLength` bytes.
    public static func isValidName(_ text: String, maxLength: Int) -> Bool {
        let u = text.utf8
        return u.count <= maxLength && u.first.map { (97...122).contains($0) } == true
            && u.allSatisfy { (97...122).contains($0) || (48...57).contains($0) || $0 == 45 } && u.last != 45
    }

    /// Prefixes of the interface names vcpe makes for customers: the LAN bridge, the LAN and
    /// WAN veth host ends, a retired bridge, the WireGuard device. A descriptor naming one
    /// (in `lan.attach` or `wan.segment`) would take another customer's objects.
    public static let ownInterfacePrefixes = ["vb-", "vl-", "vw-", "vx-", "wg-", namespacePrefix]

    /// Why a host interface name is not the descriptor's to use, or nil when it may be used.
    /// `lo` would put the host's loopback on a bridge; vcpe's own names belong to customers.
    public static func reservedHostInterface(_ name: String) -> String? {
        if name == "lo" { return "\"lo\" is the host's loopback interface" }
        if let p = ownInterfacePrefixes.first(where: { name.utf8.starts(with: $0.utf8) }) {
            return "names starting with \"\(p)\" are vcpe's own per-customer interfaces (\(ownInterfacePrefixes.map { "\($0)*" }.joined(separator: ", ")))"
        }
        return nil
    }

    /// What Linux's dev_valid_name accepts.
    public static func isValidInterfaceName(_ s: String) -> Bool {
        let u = s.utf8
        return !u.isEmpty && u.count <= maxInterfaceName && s != "." && s != ".."
            && !u.contains { $0 == UInt8(ascii: "/") || $0 == UInt8(ascii: ":") || $0 <= 0x20 || $0 == 0x7F }
    }
}
