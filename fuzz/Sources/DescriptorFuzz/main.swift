import VCPEDescriptor

/// libFuzzer's entry: any bytes go to the validator, which must not crash, must give every
/// invalid input an error, and must give every diagnostic one line and a place in the file.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let bytes = size == 0 ? [] : Array(UnsafeBufferPointer(start: data, count: size))
    let r = ChainDecoder.validate(bytes)
    if r.chain == nil, r.errors.isEmpty { fatalError("invalid without an error") }
    var lines = 1
    for b in bytes where b == UInt8(ascii: "\n") { lines += 1 }
    for d in r.diagnostics {
        let text = d.description
        if text.contains("\n") || text.contains("\r") { fatalError("diagnostic on two lines: \(text)") }
        if d.location.line < 1 || d.location.line > lines || d.location.column < 1 { fatalError("diagnostic without a place: \(text)") }
        if d.pointer.description.utf8.first != UInt8(ascii: "/") || d.message.isEmpty { fatalError("diagnostic without a pointer or message: \(text)") }
    }
    if r.diagnostics.count > Limits.diagnosticsPerFile + 1 { fatalError("more than the diagnostics cap: \(r.diagnostics.count)") }
    return 0
}

/// SwiftPM links an executable target's entry point as `DescriptorFuzz_main` and aliases
/// `main` to it, so libFuzzer's own `main` is not used: hand over to its driver here.
@_silgen_name("LLVMFuzzerRunDriver")
func runDriver(_ argc: UnsafeMutablePointer<CInt>, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>,
               _ callback: @convention(c) (UnsafePointer<UInt8>?, Int) -> CInt) -> CInt

@_cdecl("DescriptorFuzz_main")
public func descriptorFuzzMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    var c = argc
    var v = argv
    return runDriver(&c, &v, { data, size in fuzz(data, size) })
}
