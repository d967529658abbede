// swift-tools-version: 6.1
import PackageDescription

// A libFuzzer target for the descriptor reader. Separate from the main package so that
// `-sanitize=fuzzer` builds only the pure VCPENet and VCPEDescriptor modules (symlinks to
// the main package's sources: the main package has no library product to depend on).
// Build and run: ./run (see the script).
let package = Package(
    name: "vcpe-fuzz",
    targets: [
        .target(name: "VCPENet"),
        .target(name: "VCPEDescriptor", dependencies: ["VCPENet"]),
        .executableTarget(name: "DescriptorFuzz", dependencies: ["VCPEDescriptor"]),
        // Not a fuzzer: times validation of given files in a release build (see its source).
        .executableTarget(name: "DescriptorTiming", dependencies: ["VCPEDescriptor"]),
    ]
)
