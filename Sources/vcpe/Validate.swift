import ArgumentParser
import VCPEDescriptor
import VCPENet

struct Validate: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Check descriptors: exit 0 when all are valid, 1 when any is not.",
        discussion: "Every problem of a file is reported, one line each: FILE:LINE:COLUMN: error: /json/pointer: what was expected."
    )

    @Flag(name: .long, help: "Print the verdicts as JSON on stdout.")
    var json = false

    @Argument(help: "Descriptor files.")
    var files: [String]

    struct FileVerdict: Encodable {
        var file: String
        var valid: Bool
        var customer: String?
        var diagnostics: [Diagnostic]
    }

    func run() throws {
        var verdicts: [FileVerdict] = []
        for loaded in DescriptorFile.load(files) {
            let (file, r) = (loaded.path, loaded.result)
            verdicts.append(FileVerdict(file: file, valid: r.isValid, customer: r.chain?.customer, diagnostics: r.diagnostics))
            if !json {
                for d in r.diagnostics { printError(d.formatted(file: file)) }
                if r.isValid { print("\(file): valid (customer \(r.chain!.customer))") }
            }
        }
        if json { print(jsonString(verdicts)) }
        if verdicts.contains(where: { !$0.valid }) { throw ExitCode(1) }
    }
}
