// Netlink layer benchmark: build and tear down N namespaces, each with a veth pair to a
// bridge, two addresses and a default route, through VCPENetlink and through a script of
// `ip` commands, alternating in one run. Everything lives in namespaces this program makes.
import Foundation
import VCPEBenchSupport
import VCPEDescriptor
import VCPENet
import VCPENetlink
import VCPESystem

let count = Int(ProcessInfo.processInfo.environment["BENCH_NAMESPACES"] ?? "") ?? 100
let rounds = Int(ProcessInfo.processInfo.environment["BENCH_ROUNDS"] ?? "") ?? 3
let tag = "vb\(String(getpid() % 46656, radix: 36))"
let hub = "vcpebench-\(tag)-hub"


func names(_ round: Int, _ variant: String) -> [String] {
    (0..<count).map { "vcpebench-\(tag)-\(variant)\(round)-\($0)" }
}

/// Hub-side interface name, unique per round and variant (15 bytes at most).
func hubPort(_ round: Int, _ variant: String, _ i: Int) -> String { "\(variant)\(round)p\(i)" }

func address(_ i: Int) -> (IPPrefix, IPPrefix, IPAddress) {
    (IPPrefix(IPAddress(v4: 0x0A40_0000 + UInt32(i) * 4 + 1), 16), IPPrefix(IPAddress("fd00::\(String(i + 1, radix: 16))")!, 64),
     IPAddress("10.64.255.254")!)
}

func waitUntilHubHasPorts(_ hubSock: RouteSocket, atMost n: Int) throws -> Double {
    let t0 = now()
    while try hubSock.links().count > n + 2 { usleep(2000) }  // lo + bridge
    return now() - t0
}

func buildWithNetlink(_ round: Int, hubSock: RouteSocket) throws -> (create: Double, delete: Double, gone: Double) {
    let ns = names(round, "n")
    let t0 = now()
    for (i, n) in ns.enumerated() {
        try NetworkNamespace.create(n)
        let port = hubPort(round, "n", i)
        try hubSock.addVeth(VethEnd(port), VethEnd("eth0", in: n))
        try hubSock.enslave(port, to: "br0")
        try hubSock.setLink(port, up: true)
        let s = try RouteSocket(namespace: n)
        let (v4, v6, gw) = address(i)
        try s.addAddress(v4, on: "eth0")
        try s.addAddress(v6, on: "eth0")
        try s.setLink("eth0", up: true)
        try s.addRoute(RouteInfo(destination: IPPrefix("0.0.0.0/0")!, gateway: gw, device: "eth0"))
    }
    let t1 = now()
    for n in ns { try NetworkNamespace.remove(n) }
    let t2 = now()
    let gone = try waitUntilHubHasPorts(hubSock, atMost: 0)
    return (t1 - t0, t2 - t1, gone)
}

func script(_ round: Int, create: Bool) -> String {
    var lines = ["set -e"]
    for (i, n) in names(round, "s").enumerated() {
        if create {
            let (v4, v6, gw) = address(i)
            let port = hubPort(round, "s", i)
            lines += ["ip netns add \(n)",
                      "ip -n \(hub) link add \(port) type veth peer name eth0 netns \(n)",
                      "ip -n \(hub) link set \(port) master br0 up",
                      "ip -n \(n) addr add \(v4) dev eth0",
                      "ip -n \(n) addr add \(v6) dev eth0",
                      "ip -n \(n) link set eth0 up",
                      "ip -n \(n) route add default via \(gw) dev eth0"]
        } else {
            lines.append("ip netns del \(n)")
        }
    }
    return lines.joined(separator: "\n") + "\n"
}

func runScript(_ text: String) throws -> Double {
    try timeProcess(["/bin/bash"], input: text, suffix: ".sh")
}

func buildWithScript(_ round: Int, hubSock: RouteSocket) throws -> (create: Double, delete: Double, gone: Double) {
    let c = try runScript(script(round, create: true))
    let d = try runScript(script(round, create: false))
    return (c, d, try waitUntilHubHasPorts(hubSock, atMost: 0))
}


// Setup outside timing; teardown always.
try NetworkNamespace.create(hub)
let hubSock = try RouteSocket(namespace: hub)
try hubSock.addBridge("br0")
try hubSock.setLink("br0", up: true)
func cleanup() {
    for r in 0..<rounds { for n in names(r, "n") + names(r, "s") { try? NetworkNamespace.remove(n) } }
    try? NetworkNamespace.remove(hub)
}

var nl: [(create: Double, delete: Double, gone: Double)] = []
var sc: [(create: Double, delete: Double, gone: Double)] = []
var failure: Error?
do {
    for r in 0..<rounds {
        // Alternate so that drift on a noisy machine hits both alike.
        nl.append(try buildWithNetlink(r, hubSock: hubSock))
        sc.append(try buildWithScript(r, hubSock: hubSock))
    }
} catch {
    failure = error
}
cleanup()
if let failure { FileHandle.standardError.write("bench failed: \(failure)\n".data(using: .utf8)!); exit(1) }

let result: [String: Any] = [
    "benchmark": "netlink-setup", "namespaces": count, "rounds": rounds,
    "netlink": ["create_s": nl.map(\.create), "delete_s": nl.map(\.delete), "gone_s": nl.map(\.gone)],
    "ip_script": ["create_s": sc.map(\.create), "delete_s": sc.map(\.delete), "gone_s": sc.map(\.gone)],
    "median": [
        "netlink_create_s": median(nl.map(\.create)), "script_create_s": median(sc.map(\.create)),
        "create_speedup": median(zip(sc, nl).map { $0.create / $1.create }),
        "netlink_delete_s": median(nl.map(\.delete)), "script_delete_s": median(sc.map(\.delete)),
        "netlink_delete_until_gone_s": median(nl.map { $0.delete + $0.gone }),
    ],
]
let json = try JSONSerialization.data(withJSONObject: result, options: [.prettyPrinted, .sortedKeys])
print(String(decoding: json, as: UTF8.self))
