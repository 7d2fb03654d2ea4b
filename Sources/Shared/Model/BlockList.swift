
/// One entry of the fleet-wide block list: who (an address or a prefix) and until when.
public struct BlockEntry: Codable, Hashable, Sendable {
    enum CodingKeys: String, CodingKey { case prefix, expires }

    public var prefix: IPPrefix
    /// Epoch seconds; 0 means until removed.
    public var expires: Int64

    public init(prefix: IPPrefix, expires: Int64) {
        (self.prefix, self.expires) = (prefix, expires)
    }

    public func isLive(at now: Int64) -> Bool { expires == 0 || expires > now }
}

/// What the controller sends a sensor: a delta from the revision the sensor holds (`base`),
/// or a full snapshot (`base == 0`). Signed by the controller's key over the exact body
/// bytes; the sensor verifies against the key it pinned at enrollment before anything
/// touches its firewall.
public struct BlockListUpdate: Codable, Equatable, Sendable {
    public var revision: Int64
    /// The revision this delta applies to; 0 for a snapshot (replace everything).
    public var base: Int64
    public var issuedMillis: Int64
    public var add: [BlockEntry]
    public var remove: [IPPrefix]

    public var isSnapshot: Bool { base == 0 }

    public init(revision: Int64, base: Int64, issuedMillis: Int64, add: [BlockEntry], remove: [IPPrefix]) {
        (self.revision, self.base, self.issuedMillis, self.add, self.remove) = (revision, base, issuedMillis, add, remove)
    }

    enum CodingKeys: String, CodingKey {
        case revision, base, add, remove
        case issuedMillis = "issued_ms"
    }

    public enum ParseError: Error, Equatable, CustomStringConvertible {
        case malformed(String)
        public var description: String {
            switch self { case .malformed(let why): return "malformed block-list update: \(why)" }
        }
    }

    /// The update in `bytes`, its revisions checked (every number is an exact Int64, every
    /// prefix valid, no expiry negative: anything else is refused whole).
    public init(json bytes: [UInt8]) throws(ParseError) {
        do { self = try WireJSON.decode(BlockListUpdate.self, from: bytes) } catch { throw .malformed(error.description) }
        guard revision > 0, base >= 0, base < revision else { throw .malformed("revision \(revision) from base \(base)") }
        if let bad = add.first(where: { $0.expires < 0 }) { throw .malformed("entry \(bad.prefix) expires at \(bad.expires)") }
    }
}

/// How block lists travel. A sensor long-polls `path` with a small signed request saying
/// which revision it holds, when it applied it, and a digest of what its kernel holds; the
/// controller answers at once when the sensor is behind or has drifted, otherwise when the
/// list changes, or after `maxWaitSeconds` with 304. A 200 body is one header line
/// (`{"digest","signature","revision","timestamp"}`) followed by the exact update bytes.
public enum BlockListProtocol {
    public static let path = "/v1/blocklist"
    /// Signature domains: an update signature can never pass for anything else.
    public static let updateDomain = "portsentry-blocklist-v1"
    public static let pollDomain = "portsentry-poll-v1"
    /// The signer name in an update's envelope.
    public static let signer = "controller"
    /// Longest a poll is held open without news.
    public static let maxWaitSeconds = 25
    /// Largest update either side handles (a 100k-entry snapshot is about 5 MB).
    public static let maxUpdateBytes = 64 << 20
    /// Entries this close to expiry are left out of digests: sensor and controller compute
    /// them a moment apart, and an entry expiring in between is not drift.
    public static let digestMarginSeconds: Int64 = 30

    /// Order-independent digest of a list's live entries.
    public static func digest(_ entries: some Sequence<BlockEntry>, now: Int64) -> String {
        let lines = entries.filter { $0.expires == 0 || $0.expires > now + digestMarginSeconds }
            .map { $0.prefix.description }.sorted()
        return Hex.encode(SHA256.digest(Array(lines.joined(separator: "\n").utf8)))
    }

    /// The 200 body: signed header line, then the update bytes.
    public static func frame(_ update: BlockListUpdate, key: Ed25519.PrivateKey) throws(Ed25519.Failure) -> [UInt8] {
        let body = WireJSON.encode(update)
        let env = try SignedEnvelope.sign(body: body, sensorID: signer, sequence: UInt64(update.revision),
                                          timestampMillis: update.issuedMillis, key: key, domain: updateDomain)
        let header = FrameHeader(revision: update.revision, timestamp: update.issuedMillis, digest: Hex.encode(env.bodyDigest),
                                 signature: Hex.encode(env.signature))
        return WireJSON.encode(header) + [0x0A] + body
    }

    public enum Refusal: Error, Equatable, CustomStringConvertible {
        case malformed(String)
        case signature(SignedEnvelope.Rejection)
        public var description: String {
            switch self {
            case .malformed(let why): return "malformed block-list message: \(why)"
            case .signature(let r): return "block-list signature refused: \(r.description)"
            }
        }
    }

    /// Verifies a 200 body against the controller's pinned key and returns the update.
    /// Nothing in it is trusted before this returns.
    public static func open(_ framed: [UInt8], key: Ed25519.PublicKey) throws(Refusal) -> BlockListUpdate {
        guard framed.count <= maxUpdateBytes else { throw .malformed("larger than \(maxUpdateBytes) bytes") }
        guard let newline = framed.firstIndex(of: 0x0A),
              let header = try? WireJSON.decode(FrameHeader.self, from: framed[..<newline]), header.revision > 0,
              let digest = Hex.decode(header.digest), let signature = Hex.decode(header.signature) else {
            throw .malformed("header line")
        }
        let (revision, timestamp) = (header.revision, header.timestamp)
        let body = Array(framed[(newline + 1)...])
        let env = SignedEnvelope(sensorID: signer, sequence: UInt64(revision), timestampMillis: timestamp,
                                 bodyDigest: digest, signature: signature)
        do { try env.verify(body: body, key: key, domain: updateDomain) } catch { throw .signature(error) }
        let update: BlockListUpdate
        do { update = try BlockListUpdate(json: body) } catch { throw .malformed(error.description) }
        guard update.revision == revision, update.issuedMillis == timestamp else {
            throw .malformed("signed revision/time differ from the body's")
        }
        return update
    }
}

/// Every answer to a poll starts with a receipt: the controller's signature over the sensor's
/// name, the poll's own timestamp (strictly increasing per sensor, so the controller refuses
/// a replayed poll), the revision and the digest of whatever follows (an update, or nothing
/// when the list has not changed). A sensor accepts an answer only with a receipt for the
/// poll it just sent, so an attacker can neither replay an old answer nor withhold updates
/// behind stale "nothing new" replies without the sensor noticing that nothing fresh arrives.
public struct PollReceipt: Equatable, Sendable {
    public static let domain = "portsentry-blocklist-receipt-v1"

    public var pollMillis: Int64
    public var revision: Int64
    public var answeredMillis: Int64
    public var restDigest: [UInt8]
    public var signature: [UInt8]

    static func input(sensor: String, pollMillis: Int64, revision: Int64, answeredMillis: Int64, restDigest: [UInt8]) -> [UInt8] {
        Array("\(domain)\n\(sensor)\n\(pollMillis)\n\(revision)\n\(answeredMillis)\n\(Hex.encode(restDigest))".utf8)
    }

    /// The whole answer: receipt line, newline, then `rest` (a framed update or nothing).
    public static func answer(sensor: String, pollMillis: Int64, revision: Int64, answeredMillis: Int64, rest: [UInt8],
                              key: Ed25519.PrivateKey) throws(Ed25519.Failure) -> [UInt8] {
        let digest = SHA256.digest(rest)
        let signature = try key.sign(input(sensor: sensor, pollMillis: pollMillis, revision: revision,
                                           answeredMillis: answeredMillis, restDigest: digest))
        let line = ReceiptLine(pollMillis: pollMillis, revision: revision, answeredMillis: answeredMillis, digest: Hex.encode(digest),
                               signature: Hex.encode(signature))
        return WireJSON.encode(line) + [0x0A] + rest
    }

    /// Verifies an answer to the poll `pollMillis` made by `sensor`; returns the receipt and the
    /// update it carries (nil: nothing changed). Nothing in it is trusted before this returns.
    public static func open(_ answer: [UInt8], sensor: String, pollMillis: Int64,
                            key: Ed25519.PublicKey) throws(BlockListProtocol.Refusal) -> (PollReceipt, BlockListUpdate?) {
        guard answer.count <= BlockListProtocol.maxUpdateBytes + 4096 else { throw .malformed("answer too large") }
        guard let newline = answer.firstIndex(of: 0x0A), newline <= 4096,
              let line = try? WireJSON.decode(ReceiptLine.self, from: answer[..<newline]), line.revision >= 0,
              let digest = Hex.decode(line.digest), digest.count == 32,
              let signature = Hex.decode(line.signature), signature.count == Ed25519.signatureBytes else {
            throw .malformed("receipt line")
        }
        let (poll, revision, answered) = (line.pollMillis, line.revision, line.answeredMillis)
        let rest = Array(answer[(newline + 1)...])
        guard SHA256.digest(rest) == digest else { throw .signature(.digestMismatch) }
        guard key.verify(signature, of: input(sensor: sensor, pollMillis: poll, revision: revision, answeredMillis: answered,
                                              restDigest: digest)) else { throw .signature(.badSignature) }
        guard poll == pollMillis else { throw .malformed("a receipt for another poll (\(poll), sent \(pollMillis)): replayed") }
        let receipt = PollReceipt(pollMillis: poll, revision: revision, answeredMillis: answered, restDigest: digest, signature: signature)
        if rest.isEmpty { return (receipt, nil) }
        return (receipt, try BlockListProtocol.open(rest, key: key))
    }
}

/// The first line of a 200 update body: the update's signed envelope.
struct FrameHeader: Codable {
    var revision, timestamp: Int64
    /// Hex: the SHA-256 of the update's bytes, and the controller's signature.
    var digest, signature: String
}

/// The first line of every poll answer (see `PollReceipt`).
struct ReceiptLine: Codable {
    var pollMillis, revision, answeredMillis: Int64
    /// Hex: the SHA-256 of what follows the line, and the controller's signature.
    var digest, signature: String

    enum CodingKeys: String, CodingKey {
        case revision, digest, signature
        case pollMillis = "poll_ms", answeredMillis = "answered_ms"
    }
}

/// A sensor's long poll (`POST /v1/blocklist`, signed in the poll domain): the revision it
/// holds (0 asks for a snapshot), the digest of what its kernel holds, when it applied that
/// revision and how long it is willing to wait.
public struct PollRequest: Codable, Equatable, Sendable {
    public var revision: Int64
    public var digest: String
    public var appliedMillis: Int64?
    public var wait: Int64?

    enum CodingKeys: String, CodingKey {
        case revision, digest, wait
        case appliedMillis = "applied_ms"
    }

    public init(revision: Int64, digest: String, appliedMillis: Int64, wait: Int64) {
        (self.revision, self.digest, self.appliedMillis, self.wait) = (revision, digest, appliedMillis, wait)
    }
}
