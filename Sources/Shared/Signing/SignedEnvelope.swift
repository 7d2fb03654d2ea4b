/// What a sensor's signature covers when it reports a batch: who (sensor id), which batch
/// (a strictly increasing sequence number: replays and gaps are visible), when (the
/// controller refuses stale timestamps) and what (the SHA-256 of the exact body bytes).
public struct SignedEnvelope: Equatable, Sendable {
    public static let domain = "portsentry-batch-v1"
    /// Heartbeats are signed under their own domain: a heartbeat signature can never pass
    /// for a batch signature or the reverse.
    public static let heartbeatDomain = "portsentry-heartbeat-v1"

    public var sensorID: String
    public var sequence: UInt64
    /// Milliseconds since the epoch, from the sensor's clock.
    public var timestampMillis: Int64
    public var bodyDigest: [UInt8]
    public var signature: [UInt8]

    public init(sensorID: String, sequence: UInt64, timestampMillis: Int64, bodyDigest: [UInt8], signature: [UInt8]) {
        self.sensorID = sensorID
        self.sequence = sequence
        self.timestampMillis = timestampMillis
        self.bodyDigest = bodyDigest
        self.signature = signature
    }

    public enum Rejection: Error, Equatable, CustomStringConvertible {
        case digestMismatch
        case badSignature
        case malformed(String)

        public var description: String {
            switch self {
            case .digestMismatch: return "the body does not match its digest"
            case .badSignature: return "the signature does not verify"
            case .malformed(let why): return "malformed envelope: \(why)"
            }
        }
    }

    /// The exact bytes that are signed. A fixed domain string first, so a signature made for
    /// anything else can never be passed off as a batch signature.
    public static func signingInput(sensorID: String, sequence: UInt64, timestampMillis: Int64, bodyDigest: [UInt8],
                                    domain: String = domain) -> [UInt8] {
        Array("\(domain)\n\(sensorID)\n\(sequence)\n\(timestampMillis)\n\(Hex.encode(bodyDigest))".utf8)
    }

    public static func sign(body: [UInt8], sensorID: String, sequence: UInt64, timestampMillis: Int64,
                            key: Ed25519.PrivateKey, domain: String = domain) throws(Ed25519.Failure) -> SignedEnvelope {
        let digest = SHA256.digest(body)
        let signature = try key.sign(signingInput(sensorID: sensorID, sequence: sequence, timestampMillis: timestampMillis,
                                                  bodyDigest: digest, domain: domain))
        return SignedEnvelope(sensorID: sensorID, sequence: sequence, timestampMillis: timestampMillis,
                              bodyDigest: digest, signature: signature)
    }

    /// Checks the body against the digest and the signature against `key`.
    public func verify(body: [UInt8], key: Ed25519.PublicKey, domain: String = domain) throws(Rejection) {
        guard !sensorID.isEmpty, !sensorID.contains("\n") else { throw .malformed("sensor id") }
        guard bodyDigest.count == 32, signature.count == Ed25519.signatureBytes else { throw .malformed("lengths") }
        guard SHA256.digest(body) == bodyDigest else { throw .digestMismatch }
        let input = Self.signingInput(sensorID: sensorID, sequence: sequence, timestampMillis: timestampMillis, bodyDigest: bodyDigest,
                                      domain: domain)
        guard key.verify(signature, of: input) else { throw .badSignature }
    }
}

public enum Hex {
    public static func encode(_ bytes: [UInt8]) -> String {
        let digits = Array("0123456789abcdef".utf8)
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count * 2)
        for b in bytes { out += [digits[Int(b >> 4)], digits[Int(b & 0xF)]] }
        return String(decoding: out, as: UTF8.self)
    }

    public static func decode(_ text: String) -> [UInt8]? {
        let chars = Array(text.utf8)
        guard chars.count % 2 == 0 else { return nil }
        func nibble(_ c: UInt8) -> UInt8? {
            switch c {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): return c - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): return c - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): return c - UInt8(ascii: "A") + 10
            default: return nil
            }
        }
        var out: [UInt8] = []
        var i = 0
        while i < chars.count {
            guard let hi = nibble(chars[i]), let lo = nibble(chars[i + 1]) else { return nil }
            out.append(hi << 4 | lo)
            i += 2
        }
        return out
    }
}
