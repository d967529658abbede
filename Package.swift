// swift-tools-version: 6.1
import PackageDescription

// Layers, lowest first. A module imports only modules listed before it; only the
// kernel-facing modules (System, Netlink, Nftables) touch C libraries.
let package = Package(
    name: "vcpe",
    platforms: [.macOS(.v13)],
    products: [
        .executable(name: "vcpe", targets: ["vcpe"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-system", from: "1.8.1"),
        .package(url: "https://github.com/apple/swift-crypto", "3.12.3"..<"5.0.0"),
        .package(url: "https://github.com/HdrHistogram/hdrhistogram-swift", from: "0.2.0"),
        // The agent's HTTP endpoint (NIO's HTTP/1 server) and its own counters (Prometheus' registry).
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
    ],
    targets: [
        // Shared value types: addresses, prefixes, port ranges, packet matches, vcpe's kernel names. Pure.
        .target(name: "VCPENet"),
        // The chain descriptor: JSON with positions, model, validation, topology. Pure.
        .target(name: "VCPEDescriptor", dependencies: ["VCPENet"]),

        // Syscalls the Glibc module hides (setns, unshare, gettid need _GNU_SOURCE).
        .target(name: "CSystemShim"),
        .target(
            name: "VCPESystem",
            dependencies: ["CSystemShim", .product(name: "SystemPackage", package: "swift-system")]
        ),

        // Service processes as OCI containers: bundles, seccomp, limits, the runtime (runc) as a program.
        .target(name: "VCPEContainer", dependencies: ["VCPESystem", .product(name: "SystemPackage", package: "swift-system"),
                                                   .product(name: "Crypto", package: "swift-crypto")]),

        .systemLibrary(name: "CNetlink", pkgConfig: "libnl-route-3.0",
                       providers: [.apt(["libnl-3-dev", "libnl-route-3-dev", "libnl-genl-3-dev"])]),
        .target(name: "VCPENetlink", dependencies: ["VCPENet", "VCPESystem", "CNetlink"]),

        .systemLibrary(name: "CNftnl", pkgConfig: "libnftnl", providers: [.apt(["libnftnl-dev", "libmnl-dev"])]),
        .target(name: "VCPENftables", dependencies: ["VCPENet", "VCPESystem", "CNftnl"]),
        // WireGuard devices: keys (X25519), the UAPI protocol, the wireguard-go daemon.
        .target(name: "VCPEWireGuard", dependencies: ["VCPENet", "VCPESystem", "VCPEContainer", "VCPENetlink", "CNetlink", .product(name: "Crypto", package: "swift-crypto"),
                                                   .product(name: "SystemPackage", package: "swift-system")]),
        // Vector kernels of the classifier: SSE4.2/AVX2 (picked at run time), NEON, scalar.
        .target(name: "CClassifier"),
        .target(name: "VCPEClassifier", dependencies: ["VCPENet", "CClassifier"]),
        // The forwarder's per-packet side: rings, batches, header parsing, the flow cache, steering tables.
        .target(name: "CDatapath"),
        // libbpf loads the flow cache (Sources/BPF, compiled by the BPFObject plugin) and attaches it.
        .systemLibrary(name: "CLibbpf", pkgConfig: "libbpf", providers: [.apt(["libbpf-dev"])]),
        .plugin(name: "BPFObject", capability: .buildTool()),
        .target(name: "VCPEDatapath", dependencies: ["VCPENet", "VCPESystem", "VCPEClassifier", "CDatapath", "CLibbpf",
                                                  .product(name: "SystemPackage", package: "swift-system")],
                plugins: ["BPFObject"]),
        // The forwarder's control side: its files, the supervisor, the broker, the control socket, the client.
        .target(name: "VCPEForwarder", dependencies: ["VCPENet", "VCPESystem", "VCPEContainer", "VCPEDatapath",
                                                   .product(name: "SystemPackage", package: "swift-system")]),
        // Policy: what a resolved chain needs on the host, as kernel objects. The only module
        // between the descriptor and the kernel bindings that knows both.
        .target(name: "VCPEPolicy", dependencies: ["VCPENet", "VCPEDescriptor", "VCPESystem", "VCPENetlink", "VCPENftables",
                                                "VCPEWireGuard", "VCPEClassifier", "VCPEDatapath", "VCPEForwarder", "VCPEContainer"]),

        .target(
            name: "VCPEController",
            dependencies: [
                "VCPENet", "VCPEDescriptor", "VCPEPolicy", "VCPESystem", "VCPENetlink", "VCPENftables",
                "VCPEWireGuard", "VCPEClassifier", "VCPEDatapath", "VCPEForwarder", "VCPEContainer",
                .product(name: "Logging", package: "swift-log"), .product(name: "SystemPackage", package: "swift-system"),
            ]
        ),
        // The host service: reconciles in a loop, runs the forwarder's supervisor, serves /metrics.
        .target(
            name: "VCPEAgent",
            dependencies: [
                "VCPENet", "VCPEDescriptor", "VCPEPolicy", "VCPEController", "VCPESystem", "VCPENetlink", "VCPENftables",
                "VCPEWireGuard", "VCPEForwarder", "VCPEDatapath",
                .product(name: "Logging", package: "swift-log"), .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "NIOCore", package: "swift-nio"), .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"), .product(name: "SystemPackage", package: "swift-system"),
            ]
        ),
        // BuildInfo.swift for `vcpe --version`: VERSION and the git commit, regenerated before every build.
        .plugin(name: "BuildInfo", capability: .buildTool()),
        .executableTarget(
            name: "vcpe",
            dependencies: [
                "VCPEController", "VCPEAgent", "VCPENet", "VCPEDescriptor", "VCPEPolicy", "VCPESystem", "VCPEClassifier", "VCPEDatapath",
                "VCPEForwarder", "VCPEContainer", "VCPEWireGuard",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ],
            plugins: ["BuildInfo"]
        ),

        // Benchmarks (bench/): release-built, run by bench/run.
        .target(name: "VCPEBenchSupport", path: "bench/support"),
        .executableTarget(name: "vcpe-bench-netlink", dependencies: ["VCPENet", "VCPENetlink", "VCPESystem", "VCPEDescriptor", "VCPEBenchSupport"],
                          path: "bench/netlink"),
        // Request/response latency between namespaces, recorded with HdrHistogram.
        .executableTarget(name: "vcpe-bench-rr", dependencies: [.product(name: "Histogram", package: "hdrhistogram-swift")], path: "bench/rr"),
        .executableTarget(name: "vcpe-bench-nftables", dependencies: ["VCPENet", "VCPENftables", "VCPESystem", "VCPEDescriptor", "VCPEBenchSupport"],
                          path: "bench/nftables"),

        // Tests mirror modules: one target per module, plus the end-to-end and CLI suites.
        // Fixtures for kernel tests: unique names, teardown, ip/nft as oracles.
        .target(name: "VCPETestSupport", dependencies: ["VCPENet", "VCPENetlink", "VCPESystem", "VCPEDescriptor", "VCPEClassifier"], path: "Tests/VCPETestSupport"),
        .testTarget(name: "VCPEDescriptorTests", dependencies: ["VCPENet", "VCPEDescriptor", "VCPETestSupport"]),
        .testTarget(name: "VCPESystemTests", dependencies: ["VCPESystem", "VCPENetlink", "VCPETestSupport"]),
        .testTarget(name: "VCPENetlinkTests", dependencies: ["VCPENet", "VCPENetlink", "VCPESystem", "VCPETestSupport"]),
        .testTarget(name: "VCPENftablesTests", dependencies: ["VCPENet", "VCPENftables", "VCPENetlink", "VCPESystem", "VCPETestSupport"]),
        .testTarget(name: "VCPEWireGuardTests", dependencies: ["VCPENet", "VCPEWireGuard", "VCPEContainer", "VCPENetlink", "VCPETestSupport"]),
        .testTarget(name: "VCPEClassifierTests", dependencies: ["VCPENet", "VCPEClassifier", "VCPETestSupport"]),
        .testTarget(name: "VCPEDatapathTests", dependencies: ["VCPENet", "VCPEDatapath", "VCPEClassifier", "CDatapath"]),
        .testTarget(name: "VCPEForwarderTests", dependencies: ["VCPEForwarder", "VCPEDatapath", "VCPENet", "VCPEClassifier"]),
        .testTarget(name: "VCPEPolicyTests", dependencies: ["VCPENet", "VCPEDescriptor", "VCPEPolicy", "VCPEClassifier", "VCPENftables", "VCPENetlink", "VCPESystem", "VCPETestSupport"]),
        .testTarget(name: "VCPEControllerTests", dependencies: ["VCPENet", "VCPEDescriptor", "VCPEPolicy", "VCPEController", "VCPENetlink",
                                                            "VCPENftables", "VCPEWireGuard", "VCPEForwarder", "VCPEDatapath", "VCPEContainer",
                                                            "VCPETestSupport", .product(name: "Logging", package: "swift-log")]),
        .testTarget(name: "VCPEAgentTests", dependencies: ["VCPEAgent", "VCPETestSupport"]),
        .testTarget(name: "VCPECLITests", dependencies: ["VCPETestSupport"]),
        .testTarget(name: "VCPEEndToEndTests", dependencies: ["VCPENet", "VCPETestSupport", "VCPENetlink", "VCPENftables", "VCPESystem", "VCPEDescriptor"]),
    ],
    swiftLanguageModes: [.v6]
)
