import Foundation
import VCPEDescriptor

/// Times ChainDecoder.validate on each file given, in a release build: best of 5 runs.
/// The adversarial descriptors come from the tests:
///   VCPE_ADVERSARIAL_DIR=/tmp/adv swift test --filter anyDescriptorUpToTheFileLimit
///   cd fuzz && swift build -c release --scratch-path .build-timing --product DescriptorTiming
///   .build-timing/release/DescriptorTiming /tmp/adv/*.json
var worst = 0.0
for path in CommandLine.arguments.dropFirst() {
    guard let data = FileManager.default.contents(atPath: path) else { print("\(path): cannot read"); exit(2) }
    let bytes = [UInt8](data)
    var best = Double.infinity
    var diagnostics = 0
    for _ in 0..<5 {
        let start = ContinuousClock.now
        let r = ChainDecoder.validate(bytes)
        let d = ContinuousClock.now - start
        best = min(best, Double(d.components.seconds) + Double(d.components.attoseconds) / 1e18)
        diagnostics = r.diagnostics.count
    }
    worst = max(worst, best)
    print("\((path as NSString).lastPathComponent): \(bytes.count) bytes, \(String(format: "%.4f", best)) s, \(diagnostics) diagnostics")
}
print("worst: \(String(format: "%.4f", worst)) s")
exit(worst < 1 ? 0 : 1)
