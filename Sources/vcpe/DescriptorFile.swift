import Foundation
import VCPEDescriptor

/// Reading a descriptor from disk; the only I/O the descriptor path needs.
enum DescriptorFile {
    /// One file as read, once: the bytes validated are the bytes stored and applied.
    struct Loaded {
        var path: String
        var bytes: [UInt8]
        var result: ValidationResult
        var text: String { String(decoding: bytes, as: UTF8.self) }
    }

    /// Reads and validates every file, each once, then checks them against one another (a
    /// customer in two files, one WAN address on one segment twice); I/O failures are
    /// diagnostics so they print like any other error.
    static func load(_ paths: [String]) -> [Loaded] {
        let read = paths.map { p -> (String, [UInt8]?, ValidationResult?) in
            switch bytes(of: p) {
            case .success(let b): (p, b, nil)
            case .failure(let r): (p, nil, r.result)
            }
        }
        let readable = read.filter { $0.1 != nil }
        var results = ChainDecoder.validate(files: readable.map { (name: $0.0, bytes: $0.1!) }).makeIterator()
        return read.map { p, b, failed in
            Loaded(path: p, bytes: b ?? [], result: failed ?? results.next()!)
        }
    }

    struct Unreadable: Error { var result: ValidationResult }

    private static func bytes(of path: String) -> Result<[UInt8], Unreadable> {
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDir) else {
            return .failure(Unreadable(result: .unreadable("the file does not exist")))
        }
        if isDir.boolValue { return .failure(Unreadable(result: .unreadable("is a directory; expected a JSON descriptor file"))) }
        guard let handle = FileHandle(forReadingAtPath: path) else {
            return .failure(Unreadable(result: .unreadable("the file cannot be read (permission?)")))
        }
        defer { try? handle.close() }
        // One byte past the limit is enough to refuse an oversized file without loading it.
        guard let data = try? handle.read(upToCount: ChainDecoder.maxFileSize + 1) else {
            return .failure(Unreadable(result: .unreadable("the file cannot be read")))
        }
        return .success([UInt8](data))
    }
}

func printError(_ s: String) {
    FileHandle.standardError.write((s + "\n").data(using: .utf8)!)
}

func jsonString<T: Encodable>(_ value: T) -> String {
    let e = JSONEncoder()
    e.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
    e.dateEncodingStrategy = .iso8601
    return String(decoding: try! e.encode(value), as: UTF8.self)
}
