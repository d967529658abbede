import Foundation
import VCPEDescriptor
@_exported import VCPETestSupport

/// The repository root, found from this file's place.
let repoRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

func repoFile(_ path: String) -> URL { repoRoot.appendingPathComponent(path) }

func files(in dir: String) -> [URL] {
    let url = repoFile(dir)
    return ((try? FileManager.default.contentsOfDirectory(at: url, includingPropertiesForKeys: nil)) ?? [])
        .filter { $0.pathExtension == "json" }.sorted { $0.path < $1.path }
}

var exampleFiles: [URL] { files(in: "chains") }
var invalidFixtures: [URL] { files(in: "chains/invalid") }

func validate(_ url: URL) -> ValidationResult { ChainDecoder.validate([UInt8](try! Data(contentsOf: url))) }

struct RunResult {
    var status: Int32
    var stdout: String
    var stderr: String
}

func run(_ executable: URL, _ args: [String]) throws -> RunResult {
    let p = Process()
    p.executableURL = executable
    p.arguments = args
    // Files, not pipes: a child that writes a lot can never block on a full pipe.
    let tmp = FileManager.default.temporaryDirectory
    let outURL = tmp.appendingPathComponent("vcpe-test-out-\(UUID().uuidString)")
    let errURL = tmp.appendingPathComponent("vcpe-test-err-\(UUID().uuidString)")
    FileManager.default.createFile(atPath: outURL.path, contents: nil)
    FileManager.default.createFile(atPath: errURL.path, contents: nil)
    defer {
        try? FileManager.default.removeItem(at: outURL)
        try? FileManager.default.removeItem(at: errURL)
    }
    p.standardOutput = try FileHandle(forWritingTo: outURL)
    p.standardError = try FileHandle(forWritingTo: errURL)
    p.standardInput = FileHandle.nullDevice
    try p.run()
    p.waitUntilExit()
    return RunResult(status: p.terminationStatus,
                     stdout: String(decoding: try Data(contentsOf: outURL), as: UTF8.self),
                     stderr: String(decoding: try Data(contentsOf: errURL), as: UTF8.self))
}

/// A minimal valid chain as text, to build semantic cases from.
func chainText(lan: String = #"{ "subnet": "192.168.1.0/24", "gateway": "192.168.1.1" }"#,
               wan: String = #"{ "address": "203.0.113.10/24", "gateway": "203.0.113.1", "segment": "wan0" }"#,
               services: String = #"{ "fw": { "type": "firewall" }, "rt": { "type": "router" } }"#,
               paths: String = #"{ "internet": ["fw", "rt"] }"#,
               extra: String = "") -> String {
    """
    {
      "apiVersion": "vcpe/v1",
      "customer": "acme",
      "lan": \(lan),
      "wan": \(wan),
      "services": \(services),
      "paths": \(paths)\(extra.isEmpty ? "" : ",\n  " + extra)
    }
    """
}
