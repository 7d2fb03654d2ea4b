import Foundation

/// One entry of the fleet-wide block list: who (an address or a prefix) and until when.
public struct BlockEntry: Hashable, Sendable {
    public var prefix: IPPrefix
    /// Epoch seconds; 0 means until removed.
    public var expires: Int64

    public init(prefix: IPPrefix, expires: Int64) {
        self.prefix = prefix
        self.expires = expires
    }

    public func isLive(at now: Int64) -> Bool { expires == 0 || expires > now }
}

/// What the controller sends a sensor: a delta from the revision the sensor holds (`base`),
/// or a full snapshot (`base == 0`). Signed by the controller's key over the exact body
/// bytes; the sensor verifies against the key it pinned at enrollment before anything
/// touches its firewall.
public struct BlockListUpdate: Equatable, Sendable {
    public var revision: Int64
    /// The revision this delta applies to; 0 for a snapshot (replace everything).
    public var base: Int64
    public var issuedMillis: Int64
    public var add: [BlockEntry]
    public var remove: [IPPrefix]

    public var isSnapshot: Bool { base == 0 }

    public init(revision: Int64, base: Int64, issuedMillis: Int64, add: [BlockEntry], remove: [IPPrefix]) {
        self.revision = revision
        self.base = base
        self.issuedMillis = issuedMillis
        self.add = add
        self.remove = remove
    }

    public var canonical: CanonicalJSON {
        .object([
            "revision": .int(revision), "base": .int(base), "issued_ms": .int(issuedMillis),
            "add": .array(add.map { .object(["prefix": .string($0.prefix.description), "expires": .int($0.expires)]) }),
            "remove": .array(remove.map { .string($0.description) }),
        ])
    }

    public enum ParseError: Error, Equatable, CustomStringConvertible {
        case malformed(String)
        public var description: String {
            switch self { case .malformed(let why): return "malformed block-list update: \(why)" }
        }
    }

    public init(json bytes: [UInt8]) throws(ParseError) {
        guard let object = try? JSONSerialization.jsonObject(with: Data(bytes)) as? [String: Any] else {
            throw .malformed("not a JSON object")
        }
        func int(_ key: String) throws(ParseError) -> Int64 {
            guard let v = JSONInteger.int64(object[key]) else { throw .malformed("\(key)") }
            return v
        }
        revision = try int("revision")
        base = try int("base")
        issuedMillis = try int("issued_ms")
        guard revision > 0, base >= 0, base < revision else { throw .malformed("revision \(revision) from base \(base)") }
        guard let adds = object["add"] as? [[String: Any]], let removes = object["remove"] as? [String] else {
            throw .malformed("add/remove lists")
        }
        var parsedAdds: [BlockEntry] = []
        parsedAdds.reserveCapacity(adds.count)
        for a in adds {
            guard let text = a["prefix"] as? String, let p = try? IPPrefix(parsing: text),
                  let e = JSONInteger.int64(a["expires"]), e >= 0 else {
                throw .malformed("entry \(a)")
            }
            parsedAdds.append(BlockEntry(prefix: p, expires: e))
        }
        var parsedRemoves: [IPPrefix] = []
        for r in removes {
            guard let p = try? IPPrefix(parsing: r) else { throw .malformed("removal \(r)") }
            parsedRemoves.append(p)
        }
        add = parsedAdds
        remove = parsedRemoves
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
        let body = update.canonical.bytes
        let env = try SignedEnvelope.sign(body: body, sensorID: signer, sequence: UInt64(update.revision),
                                          timestampMillis: update.issuedMillis, key: key, domain: updateDomain)
        let header = CanonicalJSON.object([
            "revision": .int(update.revision), "timestamp": .int(update.issuedMillis),
            "digest": .string(Hex.encode(env.bodyDigest)), "signature": .string(Hex.encode(env.signature)),
        ])
        return header.bytes + [0x0A] + body
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
              let header = try? JSONSerialization.jsonObject(with: Data(framed[..<newline])) as? [String: Any],
              let revision = JSONInteger.int64(header["revision"]), revision > 0,
              let timestamp = JSONInteger.int64(header["timestamp"]),
              let digest = (header["digest"] as? String).flatMap(Hex.decode),
              let signature = (header["signature"] as? String).flatMap(Hex.decode) else {
            throw .malformed("header line")
        }
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
        let line = CanonicalJSON.object([
            "poll_ms": .int(pollMillis), "revision": .int(revision), "answered_ms": .int(answeredMillis),
            "digest": .string(Hex.encode(digest)), "signature": .string(Hex.encode(signature)),
        ])
        return line.bytes + [0x0A] + rest
    }

    /// Verifies an answer to the poll `pollMillis` made by `sensor`; returns the receipt and the
    /// update it carries (nil: nothing changed). Nothing in it is trusted before this returns.
    public static func open(_ answer: [UInt8], sensor: String, pollMillis: Int64,
                            key: Ed25519.PublicKey) throws(BlockListProtocol.Refusal) -> (PollReceipt, BlockListUpdate?) {
        guard answer.count <= BlockListProtocol.maxUpdateBytes + 4096 else { throw .malformed("answer too large") }
        guard let newline = answer.firstIndex(of: 0x0A), newline <= 4096,
              let header = try? JSONSerialization.jsonObject(with: Data(answer[..<newline])) as? [String: Any],
              let poll = JSONInteger.int64(header["poll_ms"]),
              let revision = JSONInteger.int64(header["revision"]), revision >= 0,
              let answered = JSONInteger.int64(header["answered_ms"]),
              let digest = (header["digest"] as? String).flatMap(Hex.decode), digest.count == 32,
              let signature = (header["signature"] as? String).flatMap(Hex.decode), signature.count == Ed25519.signatureBytes else {
            throw .malformed("receipt line")
        }
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
