import Crypto
import Foundation

/// A Curve25519 private key as WireGuard uses it. Its text form never appears in logs or
/// output: only the public key is shown.
public struct WireGuardKey: Sendable, Hashable {
    public let raw: [UInt8]

    public static func generate() -> WireGuardKey {
        WireGuardKey(unchecked: Array(Curve25519.KeyAgreement.PrivateKey().rawRepresentation))
    }

    private init(unchecked raw: [UInt8]) { self.raw = raw }

    public init?(raw: [UInt8]) {
        guard raw.count == 32 else { return nil }
        self.raw = raw
    }

    /// The base64 form `wg genkey` writes (44 characters).
    public init?(base64: String) {
        guard let d = Data(base64Encoded: base64.trimmingCharacters(in: .whitespacesAndNewlines)), d.count == 32 else { return nil }
        raw = Array(d)
    }

    public var base64: String { Data(raw).base64EncodedString() }

    public var publicKey: [UInt8] {
        // 32 bytes always make a valid X25519 key (the scalar is clamped).
        Array(try! Curve25519.KeyAgreement.PrivateKey(rawRepresentation: raw).publicKey.rawRepresentation)
    }
}

extension Array where Element == UInt8 {
    /// Base64, the form WireGuard shows keys in.
    public var base64: String { Data(self).base64EncodedString() }
}
