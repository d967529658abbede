import Foundation
import Testing
import VCPENet
import VCPETestSupport
import VCPEDescriptor

/// The JSON Schema and the decoder must agree on every example and every invalid fixture.
/// The schema side is the jsonschema package's Draft 2020-12 validator, run through Python.
@Suite struct SchemaAgreementTests {
    @Test func schemaAndDecoderGiveTheSameVerdicts() throws {
        let all = exampleFiles + invalidFixtures
        let r = try run(URL(fileURLWithPath: "/usr/bin/env"),
                        ["python3", repoFile("Tests/tools/schema_check.py").path,
                         repoFile("chains/schema/vcpe-chain.schema.json").path] + all.map(\.path))
        #expect(r.status == 0, "schema checker failed: \(r.stderr)")
        let verdicts = r.stdout.split(separator: "\n").compactMap {
            try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]
        }
        #expect(verdicts.count == all.count)
        for v in verdicts {
            let file = v["file"] as! String
            let schemaValid = v["valid"] as! Bool
            let decoderValid = validate(URL(fileURLWithPath: file)).isValid
            #expect(schemaValid == decoderValid, "\(file): schema says \(schemaValid) \(v["errors"] ?? ""), decoder says \(decoderValid)")
        }
    }
}
