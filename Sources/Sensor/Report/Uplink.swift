import Foundation
import Logging
import PortsentryShared

/// Reports events to the controller: batches (at most `maxEvents`, at most `maxAge` old)
/// are numbered and written to an on-disk spool first, then signed and delivered oldest first
/// by a thread of its own. When the controller is unreachable the sensor goes on detecting and
/// blocking; batches wait in the spool and are retried with exponential backoff and jitter.
///
/// Nothing is lost silently. Each batch is signed when it is sent, not when it is spooled. The
/// controller's replay guard is the strictly increasing sequence, and its fresh-timestamp
/// window then never turns a long outage into loss: a week's spool, bounded by SPOOL_MAX_MB
/// and not by time, is delivered with the original detection times in its events.
/// - Spool full: the oldest batches go (newest evidence is worth more), and are logged and
///   counted.
/// - A spool file that cannot be read, or that the controller refuses as malformed or
///   oversized: moved to `spool/quarantine`, logged and counted. Delivery goes on.
/// - "Unknown sensor", "revoked", "bad signature": the controller's own state can cause these
///   (a restored database, a re-enrolment). The spool is kept, the log says what to do, and
///   delivery is retried with backoff.
/// - "Sequence already used": the batches are renumbered above what the controller holds. A
///   corrupt sequence file restarts numbering at the wall clock in milliseconds, which no
///   earlier batch reached (there is at most one batch per 50 ms).
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
    /// A spool file larger than this is not a batch of ours.
    static let maxSpoolFileBytes = ReportProtocol.maxBodyBytes + 4096
    /// Sealed batches waiting for the spool writer at most (16,000 events, a few MB): a disk
    /// that stalls for longer costs whole batches, counted as dropped, never capture time.
    static let maxQueuedBatches = 32

    /// What became of the batches, since start: every event sealed ends up in one of these.
    typealias Counters = UplinkCounters

    private let enrollment: Enrollment
    /// The delivery thread's handle: batches and heartbeats share one connection.
    private let connection = CurlTransfer.Connection()
    private let key: Ed25519.PrivateKey
    let spoolDir: String
    private let quarantineDir: String
    let sequencePath: String
    let maxSpoolBytes: Int
    let logger: Logger
    /// The spool writer (capture thread only: sealing and stopping hand it work).
    lazy var writer = BoundedWorker<[ScanEvent]>(capacity: Self.maxQueuedBatches) { [unowned self] in spool($0) }
    // Capture thread only.
    var pending: [ScanEvent] = []
    private var oldest: Int64 = 0
    // Shared with the spool writer and the delivery thread, under `condition`.
    let condition = NSCondition()
    /// The writer queue was full (said once until it has room again).
    var queueFullSaid = false
    var sequence: UInt64
    var stopping = false
    var counts = Counters()
    private var heartbeatBody: [UInt8]? = nil
    private var heartbeatUrgent = false
    /// The sequence file could not be written (said once until it can again).
    var sequenceSaveFailed = false
    private var heartbeatSent: Date? = nil
    private var lastHeartbeatMillis: Int64 = 0

    init(enrollment: Enrollment, key: Ed25519.PrivateKey, stateDir: String, maxSpoolBytes: Int,
         logger: Logger = Diagnostics.logger) throws {
        self.enrollment = enrollment
        self.key = key
        self.spoolDir = stateDir + "/spool"
        self.quarantineDir = stateDir + "/spool/quarantine"
        self.sequencePath = stateDir + "/uplink.sequence"
        self.maxSpoolBytes = maxSpoolBytes
        self.logger = logger
        try FileManager.default.createDirectory(atPath: quarantineDir, withIntermediateDirectories: true,
                                                attributes: [.posixPermissions: 0o700])
        // Never reuse a sequence: the larger of the last one sealed and any still spooled.
        let spooled = Self.spooled(spoolDir).last.flatMap { UInt64($0.prefix(20)) } ?? 0
        let (start, recovered) = Self.startingSequence(saved: try? TextFile.read(sequencePath, limit: 64), spooled: spooled,
                                                       nowMillis: Clock.wall() / 1_000_000)
        sequence = start
        if recovered {
            logger.warning("\(sequencePath) is missing, empty or unreadable: batches are numbered from \(start + 1) (the clock in ms, above any earlier batch)")
        }
        Thread.detachNewThread { [self] in deliveryLoop() }
    }

    /// Where numbering resumes: the saved sequence (or a spooled one above it); when the file
    /// is missing, empty, zero or garbage, the clock in milliseconds, which no earlier batch
    /// reached.
    static func startingSequence(saved: String?, spooled: UInt64, nowMillis: Int64) -> (UInt64, recovered: Bool) {
        if let text = saved, let value = UInt64(text.trimmingWhitespace()), value > 0 { return (max(value, spooled), false) }
        return (max(spooled, UInt64(max(nowMillis, 1))), saved != nil || spooled > 0)
    }

    var counters: Counters {
        condition.lock(); defer { condition.unlock() }
        return counts
    }

    /// Batches and bytes waiting in the spool now.
    var spoolBacklog: (batches: Int, bytes: Int) {
        let files = Self.spooled(spoolDir)
        return (files.count, files.reduce(0) { $0 + Self.size(spoolDir + "/" + $1) })
    }

    // MARK: capture thread

    func add(_ event: ScanEvent, now: Int64) {
        if pending.isEmpty { oldest = now }
        pending.append(event)
        if pending.count >= Self.maxEvents { seal() }
    }

    /// The latest status, sent as the next heartbeat; `urgent` sends it now rather than at the
    /// next interval (an admin session that must be protected fleet-wide at once).
    func heartbeat(_ status: Heartbeat, urgent: Bool = false) {
        let body = WireJSON.encode(status)
        condition.lock()
        heartbeatBody = body
        if urgent { heartbeatUrgent = true }
        condition.broadcast()
        condition.unlock()
    }

    /// Events waiting to be sealed (the daemon then polls with a short timeout).
    var hasPending: Bool { !pending.isEmpty }

    func tick(now: Int64) {
        if !pending.isEmpty, now - oldest >= Self.maxAgeNanos { seal() }
    }

    /// Seals what is pending, waits until the writer has spooled every sealed batch, then
    /// stops both threads.
    func stop() {
        seal()
        writer.drainAndStop()
        condition.lock()
        stopping = true
        condition.broadcast()
        condition.unlock()
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
            guard let name = Self.spooled(spoolDir).first else { continue }
            guard let batch = Self.read(spoolDir + "/" + name) else {
                quarantine(name, events: 0, why: "unreadable (empty, truncated or not a batch)")
                continue
            }
            sendHeartbeatIfDue()
            switch deliver(batch, name: name, lastError: lastError) {
            case .delivered:
                if lastError != nil { logger.notice("Controller reachable again; delivering the spool") }
                lastError = nil
                delay = Self.backoffFirst
                continue
            case .handled:
                continue
            case .failed(let why, let atLeast):
                lastError = why
                delay = max(delay, atLeast)
            }
            if let lastError, delay == Self.backoffFirst {
                logger.warning("Controller unreachable (\(lastError)); events are spooled and will be retried")
            }
            if !backOff(&delay) { return }
        }
    }

    private enum DeliveryStep {
        /// Stored by the controller: deleted here.
        case delivered
        /// Quarantined or renumbered: go on at once.
        case handled
        /// Kept; retry after at least `atLeast` seconds of backoff.
        case failed(String, atLeast: Double)
    }

    /// Sends one spooled batch and settles its fate by the controller's answer.
    private func deliver(_ batch: Spooled, name: String, lastError: String?) -> DeliveryStep {
        switch send(batch) {
        case .success(let reply) where reply.status == 200:
            unlink(spoolDir + "/" + name)
            condition.lock()
            counts.deliveredBatches += 1
            counts.deliveredEvents += batch.events
            condition.unlock()
            return .delivered
        case .success(let reply) where reply.status == 400 || reply.status == 413:
            // The batch itself is at fault: set it aside, go on with the rest.
            quarantine(name, events: batch.events, why: "refused by the controller (\(reply.status)): \(Self.text(reply.body))")
            return .handled
        case .success(let reply) where reply.status == 409:
            renumber(after: Self.lastSequence(reply.body))
            return .handled
        case .success(let reply) where (400..<500).contains(reply.status):
            // Unknown sensor, revoked, bad signature: the controller's state can cause these.
            // Keep everything and say what to do.
            condition.lock(); counts.refusals += 1; condition.unlock()
            let why = "controller refused batch \(batch.sequence) (\(reply.status)): \(Self.text(reply.body))"
            if lastError != why {
                logger.error("\(why). The spool is kept (\(Self.spooled(spoolDir).count) batches) and retried; if this sensor was removed or the controller's database replaced, enroll it again: portsentry enroll URL TOKEN --ca-file FILE")
            }
            return .failed(why, atLeast: 5)
        case .success(let reply):
            return .failed("HTTP \(reply.status)", atLeast: 0)
        case .failure(let error):
            return .failed(error.description, atLeast: 0)
        }
    }

    /// Exponential backoff with jitter, interrupted by shutdown; false when stopping.
    private func backOff(_ delay: inout Double) -> Bool {
        let wait = delay * Double.random(in: 0.5...1.0)
        delay = min(delay * 2, Self.backoffMax)
        condition.lock()
        if !stopping { _ = condition.wait(until: Date().addingTimeInterval(wait)) }
        let give = stopping
        condition.unlock()
        return !give
    }

    /// Signs a spooled batch now and posts it.
    private func send(_ batch: Spooled) -> Result<CurlTransfer.Reply, CurlTransfer.TransferError> {
        let millis = Clock.wall() / 1_000_000
        guard let env = try? SignedEnvelope.sign(body: batch.body, sensorID: enrollment.sensor, sequence: batch.sequence,
                                                 timestampMillis: millis, key: key) else {
            return .failure(CurlTransfer.TransferError(description: "cannot sign batch \(batch.sequence)"))
        }
        return post(ReportProtocol.eventsPath, body: batch.body, headers: [
            "\(ReportProtocol.sensorHeader): \(enrollment.sensor)",
            "\(ReportProtocol.sequenceHeader): \(batch.sequence)",
            "\(ReportProtocol.timestampHeader): \(millis)",
            "\(ReportProtocol.digestHeader): \(Hex.encode(env.bodyDigest))",
            "\(ReportProtocol.signatureHeader): \(Hex.encode(env.signature))",
        ])
    }

    /// A POST to the controller over the delivery thread's kept connection, counted.
    private func post(_ path: String, body: [UInt8], headers: [String]) -> Result<CurlTransfer.Reply, CurlTransfer.TransferError> {
        let result = CurlTransfer.post(url: enrollment.url + path, body: body, headers: headers, caFile: enrollment.caFile,
                                       pin: enrollment.pin, timeout: 10, reusing: connection)
        if case .success(let reply) = result {
            condition.lock()
            counts.answered += 1
            counts.connectionsOpened += reply.newConnections
            condition.unlock()
        }
        return result
    }

    /// Moves a spool file aside (never deleted: an operator can look at it), logs and counts it.
    private func quarantine(_ name: String, events: Int, why: String) {
        let from = spoolDir + "/" + name, to = quarantineDir + "/" + name
        if rename(from, to) != 0 { unlink(from) }
        condition.lock()
        counts.quarantinedBatches += 1
        counts.quarantinedEvents += events
        condition.unlock()
        logger.error("Spooled batch \(name) quarantined in \(quarantineDir): \(why); delivery goes on")
    }

    /// The controller already holds a sequence at or above ours: every spooled batch gets a
    /// new number above both, in order, and numbering goes on from there.
    private func renumber(after controllerLast: UInt64?) {
        condition.lock()
        defer { condition.unlock() }
        let files = Self.spooled(spoolDir)
        var next = max(sequence, controllerLast ?? sequence, UInt64(max(Clock.wall() / 1_000_000, 1)))
        for name in files {
            next += 1
            if rename(spoolDir + "/" + name, spoolDir + "/" + Self.name(next)) == 0 { counts.renumbered += 1 }
        }
        sequence = next
        try? AtomicFile.write(Data("\(sequence)".utf8), to: sequencePath)
        logger.warning("The controller already holds this sensor's sequence \(controllerLast.map(String.init) ?? "?"): renumbered \(files.count) spooled batch(es) from \(next - UInt64(files.count) + 1)")
    }

    static func lastSequence(_ body: [UInt8]) -> UInt64? {
        (try? WireJSON.decode(ControllerReply.self, from: body))?.lastSequence.flatMap { UInt64(exactly: $0) }
    }

    static func text(_ body: [UInt8]) -> String { String(decoding: body.prefix(300), as: UTF8.self) }

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
        let result = post(ReportProtocol.heartbeatPath, body: body, headers: [
            "\(ReportProtocol.sensorHeader): \(enrollment.sensor)",
            "\(ReportProtocol.timestampHeader): \(millis)",
            "\(ReportProtocol.digestHeader): \(Hex.encode(env.bodyDigest))",
            "\(ReportProtocol.signatureHeader): \(Hex.encode(env.signature))",
        ])
        if case .success(let reply) = result, reply.status != 200 {
            logger.warning("Controller refused a heartbeat (\(reply.status))")
        }
    }
}
