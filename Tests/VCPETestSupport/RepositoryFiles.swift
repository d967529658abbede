import Foundation
import VCPEDescriptor

/// The repository's example chains and fixtures, for tests in any target.
public func repoFile(_ path: String) -> URL { repositoryRoot.appendingPathComponent(path) }

public func files(in dir: String) -> [URL] {
    let url = repoFile(dir)
    return ((try? FileManager.default.contentsOfDirectory(at: url, includingPropertiesForKeys: nil)) ?? [])
        .filter { $0.pathExtension == "json" }.sorted { $0.path < $1.path }
}

public var exampleFiles: [URL] { files(in: "chains") }
public var invalidFixtures: [URL] { files(in: "chains/invalid") }

public func validate(_ url: URL) -> ValidationResult { ChainDecoder.validate([UInt8](try! Data(contentsOf: url))) }
