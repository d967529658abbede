import Foundation
import Testing
import VCPETestSupport

/// The images cannot be built here (no Docker engine): Dockerfiles/check.py lints them with
/// hadolint and checks that what they copy is what the build makes and what it loads.
@Suite struct DockerfileTests {
    @Test func theDockerfilesLintAndCopyWhatTheBuildMakes() throws {
        let r = try run(URL(fileURLWithPath: "/usr/bin/env"),
                        ["python3", repositoryRoot.appendingPathComponent("Dockerfiles/check.py").path, vcpeBinary.path])
        #expect(r.status == 0, "\(r.stdout)\(r.stderr)")
        let summary = try JSONSerialization.jsonObject(with: Data((r.stdout.split(separator: "\n").last ?? "").utf8)) as? [String: Any]
        let files = summary?["dockerfiles"] as? [String] ?? []
        #expect(Set(files).isSuperset(of: ["vcpe.Dockerfile", "forwarder.Dockerfile", "wireguard.Dockerfile"]), "\(files)")
    }
}
