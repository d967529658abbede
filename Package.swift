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
    ],
    targets: [
        // The chain descriptor: JSON with positions, model, validation, kernel names. Pure.
        .target(name: "VCPEDescriptor"),

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
        .target(name: "VCPENetlink", dependencies: ["VCPEDescriptor", "VCPESystem", "CNetlink"]),

        .systemLibrary(name: "CNftnl", pkgConfig: "libnftnl", providers: [.apt(["libnftnl-dev", "libmnl-dev"])]),
        .target(name: "VCPENftables", dependencies: ["VCPEDescriptor", "VCPESystem", "CNftnl"]),
        // WireGuard devices: keys (X25519), the UAPI protocol, the wireguard-go daemon.
        .target(name: "VCPEWireGuard", dependencies: ["VCPEDescriptor", "VCPESystem", "VCPEContainer", "VCPENetlink", "CNetlink", .product(name: "Crypto", package: "swift-crypto"),
                                                   .product(name: "SystemPackage", package: "swift-system")]),
        // Vector kernels of the classifier: SSE4.2/AVX2 (picked at run time), NEON, scalar.
        .target(name: "CClassifier"),
        .target(name: "VCPEClassifier", dependencies: ["VCPEDescriptor", "CClassifier"]),
        // The AF_PACKET forwarder: rings, batches, the classifier in between.
        .target(name: "CDatapath"),
        // libbpf loads the flow cache (Sources/BPF, compiled by the BPFObject plugin) and attaches it.
        .systemLibrary(name: "CLibbpf", pkgConfig: "libbpf", providers: [.apt(["libbpf-dev"])]),
        .plugin(name: "BPFObject", capability: .buildTool()),
        .target(name: "VCPEDatapath", dependencies: ["VCPEDescriptor", "VCPESystem", "VCPEContainer", "VCPEClassifier", "CDatapath", "CLibbpf",
                                                  .product(name: "SystemPackage", package: "swift-system")],
                plugins: ["BPFObject"]),

        .target(
            name: "VCPEController",
            dependencies: [
                "VCPEDescriptor", "VCPESystem", "VCPENetlink", "VCPENftables",
                "VCPEWireGuard", "VCPEClassifier", "VCPEDatapath", "VCPEContainer",
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .executableTarget(
            name: "vcpe",
            dependencies: [
                "VCPEController", "VCPEDescriptor", "VCPESystem", "VCPEClassifier", "VCPEDatapath", "VCPEContainer",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),

        // Benchmarks (bench/): release-built, run by bench/run.
        .target(name: "VCPEBenchSupport", path: "bench/support"),
        .executableTarget(name: "vcpe-bench-netlink", dependencies: ["VCPENetlink", "VCPESystem", "VCPEDescriptor", "VCPEBenchSupport"],
                          path: "bench/netlink"),
        // Request/response latency between namespaces, recorded with HdrHistogram.
        .executableTarget(name: "vcpe-bench-rr", dependencies: [.product(name: "Histogram", package: "hdrhistogram-swift")], path: "bench/rr"),
        .executableTarget(name: "vcpe-bench-nftables", dependencies: ["VCPENftables", "VCPESystem", "VCPEDescriptor", "VCPEBenchSupport"],
                          path: "bench/nftables"),

        .testTarget(name: "VCPEDescriptorTests", dependencies: ["VCPEDescriptor", "VCPEController", "VCPETestSupport"]),
        // Fixtures for kernel tests: unique names, teardown, ip/nft as oracles.
        .target(name: "VCPETestSupport", dependencies: ["VCPENetlink", "VCPESystem", "VCPEDescriptor", "VCPEClassifier"], path: "Tests/VCPETestSupport"),
        .testTarget(name: "VCPEClassifierTests", dependencies: ["VCPEClassifier", "VCPEDescriptor", "VCPETestSupport"]),
        .testTarget(name: "VCPENetlinkTests", dependencies: ["VCPENetlink", "VCPESystem", "VCPETestSupport"]),
        .testTarget(name: "VCPEEndToEndTests", dependencies: ["VCPETestSupport", "VCPENetlink", "VCPENftables", "VCPESystem", "VCPEDescriptor"]),
        .testTarget(name: "VCPEDatapathTests", dependencies: ["VCPEDatapath", "VCPEClassifier", "VCPEDescriptor", "CDatapath"]),
        .testTarget(name: "VCPEWireGuardTests", dependencies: ["VCPEWireGuard", "VCPEContainer", "VCPENetlink", "VCPETestSupport"]),
        .testTarget(name: "VCPENftablesTests", dependencies: ["VCPENftables", "VCPENetlink", "VCPESystem", "VCPEDescriptor", "VCPETestSupport"]),
    ],
    swiftLanguageModes: [.v6]
)
