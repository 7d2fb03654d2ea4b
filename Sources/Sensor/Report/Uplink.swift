import Foundation
import Logging
import PortsentryShared

/// Reports events to the controller: batches (at most `maxEvents`, at most `maxAge` old)
/// are signed and written to an on-disk spool first, then delivered oldest first by a thread
/// of its own. When the controller is unreachable the sensor goes on detecting and
/// blocking; batches wait in the spool and are retried with exponential backoff and jitter.
/// The spool is bounded: when full, the oldest batches go and the loss is logged and counted.
final class Uplink: @unchecked Sendable {
    /// Events per batch at most (well under the controller's limit).
    static let maxEvents = 500
    /// A batch is sealed after this long even if small: the controller's cross-host decisions
    /// wait on it (the fleet's time-to-enforce target is well under a second).
    static let maxAgeNanos: Int64 = 50 * 1_000_000
    /// Retry delays double from the first to the last.
    static let backoffFirst = 0.5
    static let backoffMax = 30.0
    /// A status heartbeat goes out this often (and once at start).
    static let heartbeatInterval = 30.0

    private let enrollment: Enrollment
    private let key: Ed25519.PrivateKey
    private let spoolDir: String
    private let sequencePath: String
    private let maxSpoolBytes: Int
    private let logger: Logger
    // Capture thread only.
    private var pending: [ScanEvent] = []
    private var oldest: Int64 = 0
    private var sequence: UInt64
    // Shared with the delivery thread, under `condition`.
    private let condition = NSCondition()
    private var stopping = false
    private(set) var delivered = 0
    private(set) var droppedEvents = 0
    private(set) var refusedBatches = 0
    private var heartbeatBody: [UInt8]? = nil
    private var heartbeatUrgent = false
    private var heartbeatSent: Date? = nil
    private var lastHeartbeatMillis: Int64 = 0

    init(enrollment: Enrollment, key: Ed25519.PrivateKey, stateDir: String, maxSpoolBytes: Int,
         logger: Logger = Diagnostics.logger) throws {
        self.enrollment = enrollment
        self.key = key
        self.spoolDir = stateDir + "/spool"
        self.sequencePath = stateDir + "/uplink.sequence"
        self.maxSpoolBytes = maxSpoolBytes
        self.logger = logger
        try FileManager.default.createDirectory(atPath: spoolDir, withIntermediateDirectories: true,
                                                attributes: [.posixPermissions: 0o700])
        // Never reuse a sequence: the larger of the last one sealed and any still spooled.
        let saved = (try? TextFile.read(sequencePath, limit: 64)).flatMap { UInt64($0.trimmingWhitespace()) } ?? 0
        let spooled = Self.spooled(spoolDir).last.flatMap { UInt64($0.prefix(20)) } ?? 0
        sequence = max(saved, spooled)
        Thread.detachNewThread { [self] in deliveryLoop() }
    }

    // MARK: capture thread

    func add(_ event: ScanEvent, now: Int64) {
        if pending.isEmpty { oldest = now }
        pending.append(event)
        if pending.count >= Self.maxEvents { seal() }
    }

    /// The latest status, sent as the next heartbeat; `urgent` sends it now rather than at the
    /// next interval (an admin session that must be protected fleet-wide at once).
    func heartbeat(_ status: CanonicalJSON, urgent: Bool = false) {
        condition.lock()
        heartbeatBody = status.bytes
        if urgent { heartbeatUrgent = true }
        condition.broadcast()
        condition.unlock()
    }

    /// Events waiting to be sealed (the daemon then polls with a short timeout).
    var hasPending: Bool { !pending.isEmpty }

    func tick(now: Int64) {
        if !pending.isEmpty, now - oldest >= Self.maxAgeNanos { seal() }
    }

    func stop() {
        seal()
        condition.lock()
        stopping = true
        condition.broadcast()
        condition.unlock()
    }

    /// Signs the pending events as the next batch and spools it.
    private func seal() {
        guard !pending.isEmpty else { return }
        let body = ReportProtocol.body(events: pending)
        let count = pending.count
        pending.removeAll(keepingCapacity: true)
        sequence += 1
        do {
            let env = try SignedEnvelope.sign(body: body, sensorID: enrollment.sensor, sequence: sequence,
                                              timestampMillis: Clock.wall() / 1_000_000, key: key)
            guard body.count + 300 <= maxSpoolBytes else {
                throw FirewallError("one batch (\(body.count) bytes) is larger than SPOOL_MAX_MB")
            }
            makeRoom(for: body.count + 300)
            let header = "{\"events\":\(count),\"signature\":\"\(Hex.encode(env.signature))\",\"digest\":\"\(Hex.encode(env.bodyDigest))\",\"timestamp\":\(env.timestampMillis)}\n"
            // The batch first, then the sequence: a crash between the two leaves a spooled
            // batch whose number the next start reads from the spool, never a lost batch.
            try AtomicFile.write(Data(header.utf8) + Data(body), to: spoolDir + "/" + Self.name(sequence))
            try AtomicFile.write(Data("\(sequence)".utf8), to: sequencePath)
        } catch {
            logger.error("Cannot spool a batch of \(count) events for the controller: \(error)")
            droppedEvents += count
            return
        }
        condition.lock()
        condition.broadcast()
        condition.unlock()
    }

    /// Drops the oldest spooled batches until `bytes` more fit under the bound.
    private func makeRoom(for bytes: Int) {
        var files = Self.spooled(spoolDir)
        var total = files.reduce(0) { $0 + Self.size(spoolDir + "/" + $1) }
        while total + bytes > maxSpoolBytes, let first = files.first {
            let path = spoolDir + "/" + first
            let size = Self.size(path)
            let events = Self.read(path)?.events ?? 0
            unlink(path)
            files.removeFirst()
            total -= size
            condition.lock()
            droppedEvents += events
            condition.unlock()
            logger.error("Spool full (\(maxSpoolBytes >> 20) MiB): dropped the oldest batch (\(events) events, \(droppedEvents) dropped in all)")
        }
    }

    // MARK: delivery thread

    private func deliveryLoop() {
        var delay = Self.backoffFirst
        var lastError: String? = nil
        while true {
            sendHeartbeatIfDue()
            condition.lock()
            if Self.spooled(spoolDir).isEmpty, !stopping { _ = condition.wait(until: Date().addingTimeInterval(5)) }
            let done = stopping && Self.spooled(spoolDir).isEmpty
            condition.unlock()
            if done { return }
            guard let name = Self.spooled(spoolDir).first, let batch = Self.read(spoolDir + "/" + name) else { continue }
            sendHeartbeatIfDue()
            let result = CurlTransfer.post(url: enrollment.url + ReportProtocol.eventsPath, body: batch.body, headers: [
                "\(ReportProtocol.sensorHeader): \(enrollment.sensor)",
                "\(ReportProtocol.sequenceHeader): \(batch.sequence)",
                "\(ReportProtocol.timestampHeader): \(batch.timestamp)",
                "\(ReportProtocol.digestHeader): \(batch.digest)",
                "\(ReportProtocol.signatureHeader): \(batch.signature)",
            ], caFile: enrollment.caFile, pin: enrollment.pin, timeout: 10)
            switch result {
            case .success(let reply) where reply.status == 200:
                unlink(spoolDir + "/" + name)
                condition.lock(); delivered += batch.events; condition.unlock()
                if lastError != nil { logger.notice("Controller reachable again; delivering the spool") }
                lastError = nil
                delay = Self.backoffFirst
                continue
            case .success(let reply) where (400..<500).contains(reply.status):
                // Refused for good (bad signature, revoked, replayed...): retrying cannot help.
                unlink(spoolDir + "/" + name)
                condition.lock(); refusedBatches += 1; droppedEvents += batch.events; condition.unlock()
                logger.error("Controller refused batch \(batch.sequence) (\(reply.status)): \(String(decoding: reply.body.prefix(300), as: UTF8.self))")
                continue
            case .success(let reply):
                lastError = "HTTP \(reply.status)"
            case .failure(let error):
                lastError = error.description
            }
            if let lastError, delay == Self.backoffFirst {
                logger.warning("Controller unreachable (\(lastError)); events are spooled and will be retried")
            }
            // Exponential backoff with jitter, interrupted by shutdown.
            let wait = delay * Double.random(in: 0.5...1.0)
            delay = min(delay * 2, Self.backoffMax)
            condition.lock()
            if !stopping { _ = condition.wait(until: Date().addingTimeInterval(wait)) }
            let give = stopping
            condition.unlock()
            if give { return }
        }
    }

    private func sendHeartbeatIfDue() {
        condition.lock()
        let body = heartbeatBody
        let urgent = heartbeatUrgent
        heartbeatUrgent = false
        condition.unlock()
        guard let body, urgent || heartbeatSent.map({ Date().timeIntervalSince($0) >= Self.heartbeatInterval }) ?? true else { return }
        heartbeatSent = Date()
        // Strictly increasing: the controller refuses a heartbeat not newer than the last.
        let millis = max(Clock.wall() / 1_000_000, lastHeartbeatMillis + 1)
        lastHeartbeatMillis = millis
        guard let env = try? SignedEnvelope.sign(body: body, sensorID: enrollment.sensor, sequence: 0, timestampMillis: millis,
                                                 key: key, domain: SignedEnvelope.heartbeatDomain) else { return }
        let result = CurlTransfer.post(url: enrollment.url + ReportProtocol.heartbeatPath, body: body, headers: [
            "\(ReportProtocol.sensorHeader): \(enrollment.sensor)",
            "\(ReportProtocol.timestampHeader): \(millis)",
            "\(ReportProtocol.digestHeader): \(Hex.encode(env.bodyDigest))",
            "\(ReportProtocol.signatureHeader): \(Hex.encode(env.signature))",
        ], caFile: enrollment.caFile, pin: enrollment.pin, timeout: 10)
        if case .success(let reply) = result, reply.status != 200 {
            logger.warning("Controller refused a heartbeat (\(reply.status))")
        }
    }

    // MARK: spool files

    struct Spooled {
        var sequence: UInt64
        var events: Int
        var timestamp: Int64
        var digest: String
        var signature: String
        var body: [UInt8]
    }

    static func size(_ path: String) -> Int {
        var st = stat()
        return stat(path, &st) == 0 ? Int(st.st_size) : 0
    }

    static func name(_ sequence: UInt64) -> String {
        let digits = String(sequence)
        return String(repeating: "0", count: max(0, 20 - digits.count)) + digits + ".batch"
    }

    static func spooled(_ dir: String) -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []).filter { $0.hasSuffix(".batch") }.sorted()
    }

    static func read(_ path: String) -> Spooled? {
        guard let data = FileManager.default.contents(atPath: path), let newline = data.firstIndex(of: 0x0A),
              let header = try? JSONSerialization.jsonObject(with: data[..<newline]) as? [String: Any],
              let sequence = UInt64((path as NSString).lastPathComponent.prefix(20)) else { return nil }
        return Spooled(sequence: sequence, events: header["events"] as? Int ?? 0,
                       timestamp: (header["timestamp"] as? NSNumber)?.int64Value ?? 0,
                       digest: header["digest"] as? String ?? "", signature: header["signature"] as? String ?? "",
                       body: Array(data[(newline + 1)...]))
    }
}
