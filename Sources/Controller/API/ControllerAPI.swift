import Foundation
import Hummingbird
import Logging
import PortsentryShared
import ControllerCore

/// The HTTP surface: health, metrics, enrollment and signed event ingest.
struct ControllerAPI: Sendable {
    let store: any ControllerStore
    let metrics: IngestMetrics
    let signingKey: Ed25519.PublicKey
    let fleet: FleetServices
    let logger: Logger
    /// Wall clock in milliseconds (injected so tests can move time).
    let clock: @Sendable () -> Int64

    /// Enrollment requests are tiny.
    static let maxEnrollBytes = 4096

    func router() -> Router<ControllerContext> {
        let router = Router(context: ControllerContext.self)
        router.get("/health") { _, _ in Self.json(["status": "ok"]) }
        router.get("/metrics") { _, _ in
            var text = await fleet.metricsText(nowMillis: clock())
            // One registry in the service; a second one (a test's) is exported too, not lost.
            if metrics.registry !== fleet.metrics.registry { text += metrics.registry.emitToString() }
            return Response(status: .ok, headers: [.contentType: "text/plain; version=0.0.4"], body: .init(byteBuffer: ByteBuffer(string: text)))
        }
        router.post(RouterPath(stringLiteral: ReportProtocol.enrollPath)) { request, _ in
            try await enroll(request)
        }
        router.post(RouterPath(stringLiteral: ReportProtocol.eventsPath)) { request, _ in
            try await ingest(request)
        }
        router.group().add(middleware: SensorAuth(api: self, kind: .heartbeat, limit: ReportProtocol.maxHeartbeatBytes,
                                                   domain: SignedEnvelope.heartbeatDomain))
            .post(RouterPath(stringLiteral: ReportProtocol.heartbeatPath)) { request, context in
                try await heartbeat(request, from: context.authenticatedSensor(), body: context.signedBody)
            }
        router.group().add(middleware: SensorAuth(api: self, kind: .poll, limit: Self.maxPollBytes, domain: BlockListProtocol.pollDomain))
            .post(RouterPath(stringLiteral: BlockListProtocol.path)) { request, context in
                try await poll(request, from: context.authenticatedSensor(), body: context.signedBody)
            }
        addOperatorRoutes(to: router)
        return router
    }

    func enroll(_ request: Request) async throws -> Response {
        guard let bytes = try? await request.body.collect(upTo: Self.maxEnrollBytes),
              let enrollment = try? WireJSON.decode(EnrollRequest.self, from: bytes.readableBytesView),
              let keyBytes = Hex.decode(enrollment.publicKey), (try? Ed25519.PublicKey(raw: keyBytes)) != nil else {
            return Self.error("expected {\"token\", \"public_key\"}", status: .badRequest)
        }
        let version = enrollment.version.map { String($0.prefix(64)) } ?? ""
        let hash = Data(SHA256.digest(Array(enrollment.token.utf8)))
        let sensor: SensorRecord
        switch try await store.enroll(tokenHash: hash, publicKey: Data(keyBytes), now: clock() / 1000, version: version) {
        case .enrolled(let s): sensor = s
        case .refused:
            logger.warning("Enrollment refused: unknown, used or expired token")
            metrics.add("enroll_refused")
            return Self.error("unknown, used or expired enrollment token", status: .unauthorized)
        case .nameTaken(let name):
            logger.warning("Enrollment refused: sensor \(name) exists and its token was not made with --replace")
            metrics.add("enroll_refused")
            return Self.error("sensor \(name) already exists; its key is replaced only with a token from `sensors add --replace`",
                              status: .conflict)
        }
        logger.notice("Sensor \(sensor.name) enrolled")
        return Self.json(EnrollReply(sensor: sensor.name, signingKey: Hex.encode(signingKey.raw), tlsPin: fleet.tlsPin))
    }

    func ingest(_ request: Request) async throws -> Response {
        let body: ByteBuffer
        do { body = try await request.body.collect(upTo: ReportProtocol.maxBodyBytes) } catch {
            return refuse(.init(status: 413, reason: "body larger than \(ReportProtocol.maxBodyBytes) bytes", counter: "oversized"))
        }
        let header = Self.headerLookup(request)
        let sensor = try await header(ReportProtocol.sensorHeader).asyncMap { try await store.sensor($0) } ?? nil
        let now = clock()
        switch BatchVerifier.check(headers: header, body: Array(body.readableBytesView), sensor: sensor, nowMillis: now) {
        case .reject(let status, let reason, let counter):
            // A sequence already used: say which the controller holds, so the sensor renumbers.
            return refuse(.init(status: status, reason: reason, counter: counter,
                                lastSequence: status == 409 ? sensor?.lastSequence : nil))
        case .duplicate:
            metrics.add("duplicate")
            return Self.json(ControllerReply(stored: 0, duplicate: true))
        case .accept(let sequence, let events):
            guard try await store.accept(sensor: sensor!.name, sequence: sequence, events: events, now: now / 1000) else {
                metrics.add("duplicate")
                return Self.json(ControllerReply(stored: 0, duplicate: true))
            }
            metrics.add("accepted")
            metrics.add("events", events.count)
            await fleet.correlation.observe(events, nowMillis: now)
            return Self.json(ControllerReply(stored: events.count))
        }
    }

    func heartbeat(_ request: Request, from sensor: SensorRecord, body bytes: [UInt8]) async throws -> Response {
        let name = sensor.name
        let timestamp = Self.headerLookup(request)(ReportProtocol.timestampHeader).flatMap { Int64($0) } ?? 0
        let status = String(decoding: bytes, as: UTF8.self)
        let version = (try? WireJSON.decode(Heartbeat.self, from: bytes))?.version ?? ""
        guard try await store.heartbeat(sensor: name, timestampMillis: timestamp, version: String(version.prefix(64)),
                                        status: status, now: clock() / 1000) else {
            return refuse(.init(status: 409, reason: "heartbeat from \(name) is not newer than the last one", counter: "replayed"),
                          for: .heartbeat)
        }
        await fleet.heartbeat(sensor: name, status: status, nowMillis: clock(), logger: logger)
        metrics.add("heartbeats")
        return Self.json(ControllerReply(ok: true))
    }

    /// A refused request's answer, already counted and logged.
    struct Refused: Error {
        let response: Response
    }

    /// Reads a signed request's body (at most `limit` bytes) and authenticates it: the
    /// sensor that signed it and the exact bytes, or the refusal's answer.
    func signedBody(_ request: Request, _ kind: SignedRequest, upTo limit: Int, domain: String) async throws
        -> Result<(SensorRecord, [UInt8]), Refused> {
        let what = kind.name.lowercased()  // "heartbeat", "block-list poll"
        guard let collected = try? await request.body.collect(upTo: limit) else {
            return .failure(Refused(response: refuse(.init(status: 413, reason: "\(what) larger than \(limit) bytes", counter: "oversized"),
                                                     for: kind)))
        }
        let body = Array(collected.readableBytesView)
        switch try await authenticate(request, body: body, domain: domain, what: what) {
        case .failure(let refusal): return .failure(Refused(response: refuse(refusal, for: kind)))
        case .success(let sensor): return .success((sensor, body))
        }
    }

    /// Checks a signed request without a sequence (heartbeat, block-list poll): a known,
    /// unrevoked sensor, a signature under `domain` over the exact body, a fresh timestamp.
    func authenticate(_ request: Request, body: [UInt8], domain: String, what: String) async throws -> Result<SensorRecord, Refusal> {
        let header = Self.headerLookup(request)
        guard let name = header(ReportProtocol.sensorHeader), let timestamp = header(ReportProtocol.timestampHeader).flatMap({ Int64($0) }),
              let digest = header(ReportProtocol.digestHeader).flatMap(Hex.decode),
              let signature = header(ReportProtocol.signatureHeader).flatMap(Hex.decode) else {
            return .failure(.init(status: 400, reason: "\(what) without envelope headers", counter: "malformed"))
        }
        guard let sensor = try await store.sensor(name) else {
            return .failure(.init(status: 401, reason: "\(what) from unknown sensor \(name)", counter: "unknown_sensor"))
        }
        guard !sensor.revoked else { return .failure(.init(status: 403, reason: "sensor \(name) is revoked", counter: "revoked")) }
        let env = SignedEnvelope(sensorID: name, sequence: 0, timestampMillis: timestamp, bodyDigest: digest, signature: signature)
        guard let key = try? Ed25519.PublicKey(raw: [UInt8](sensor.publicKey)),
              (try? env.verify(body: body, key: key, domain: domain)) != nil else {
            return .failure(.init(status: 401, reason: "\(what) from \(name): bad signature", counter: "bad_signature"))
        }
        guard ReportProtocol.isFresh(timestamp, now: clock()) else {
            return .failure(.init(status: 401, reason: "\(what) from \(name): stale timestamp", counter: "stale"))
        }
        return .success(sensor)
    }

    /// Case-insensitive header lookup (HTTPFields stores canonical lower-case names).
    static func headerLookup(_ request: Request) -> (String) -> String? {
        { name in
            let lower = name.lowercased()
            return request.headers.first { $0.name.canonicalName == lower }?.value
        }
    }

    struct Refusal: Error {
        var status: Int
        var reason: String
        var counter: String
        var lastSequence: Int64? = nil
    }

    /// What a refusal answered: each has its own log wording and its own counters.
    enum SignedRequest: String, Sendable {
        case batch, heartbeat, poll

        var name: String {
            switch self {
            case .batch: return "Batch"
            case .heartbeat: return "Heartbeat"
            case .poll: return "Block-list poll"
            }
        }

        /// Counter key prefix (`refused_<reason>` for batches, as before).
        var counterPrefix: String { self == .batch ? "refused_" : "\(rawValue)_refused_" }
    }

    func refuse(_ r: Refusal, for request: SignedRequest = .batch) -> Response {
        metrics.add(request.counterPrefix + r.counter)
        logger.warning("\(request.name) refused (\(r.status)): \(r.reason)")
        return Self.json(ControllerReply(error: r.reason, lastSequence: r.lastSequence), status: HTTPResponse.Status(code: r.status))
    }

    /// A typed answer, in the one wire encoding.
    static func json(_ message: some Encodable, status: HTTPResponse.Status = .ok) -> Response {
        Response(status: status, headers: [.contentType: "application/json"],
                 body: .init(byteBuffer: ByteBuffer(bytes: WireJSON.encode(message))))
    }

    /// A refusal or failure: `{"error": why}`.
    static func error(_ why: String, status: HTTPResponse.Status) -> Response {
        json(ControllerReply(error: why), status: status)
    }
}

extension Optional {
    func asyncMap<T>(_ transform: (Wrapped) async throws -> T) async rethrows -> T? {
        switch self {
        case .some(let w): return try await transform(w)
        case .none: return nil
        }
    }
}
