import Foundation
import VCPEDescriptor

/// Reading a descriptor from disk; the only I/O the descriptor path needs.
enum DescriptorFile {
    /// The file's verdict, with I/O failures as diagnostics so they print like any other error.
    static func validate(path: String) -> ValidationResult {
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDir) else {
            return .unreadable("the file does not exist")
        }
        if isDir.boolValue { return .unreadable("is a directory; expected a JSON descriptor file") }
        guard let handle = FileHandle(forReadingAtPath: path) else {
            return .unreadable("the file cannot be read (permission?)")
        }
        defer { try? handle.close() }
        // One byte past the limit is enough to refuse an oversized file without loading it.
        guard let data = try? handle.read(upToCount: ChainDecoder.maxFileSize + 1) else {
            return .unreadable("the file cannot be read")
        }
        return ChainDecoder.validate([UInt8](data))
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
