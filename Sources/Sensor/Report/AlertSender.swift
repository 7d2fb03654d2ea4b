import CCurl
import Foundation
import Logging
import PortsentryShared
import SensorCore

/// Where alerts go; from ALERT_* in the config.
struct AlertSettings: Sendable, Equatable {
    var emailTo: [String] = []
    var emailFrom: String? = nil
    var smtpURL = "smtp://localhost:25"
    var smtpUser: String? = nil
    var smtpPasswordFile: String? = nil
    /// Require STARTTLS on smtp:// (smtps:// is always TLS). Always on with `smtpUser`:
    /// credentials never go out in clear text.
    var smtpRequireTLS = false
    var caFile: String? = nil
    var webhookURL: String? = nil
    /// A digest is sent at most this often...
    var interval: Int64 = 60
    /// ...and only after gathering for this long, so one scan is one message.
    var gather: Int64 = 10

    var enabled: Bool { !emailTo.isEmpty || webhookURL != nil }
}

/// Aggregates events into digests on the capture thread and delivers them on a thread of
/// its own (SMTP and HTTP can take seconds; capture must not wait). The queue is bounded:
/// if delivery is down, the oldest undelivered digest goes and the loss is counted.
final class AlertSender: @unchecked Sendable {
    /// Digests waiting for delivery at most.
    static let maxQueued = 8
    /// Per-delivery time limit.
    static let timeoutSeconds = 20

    private let settings: AlertSettings
    private let host: String
    private let logger: Logger
    private var digest = AlertDigest()
    private var lastSent: Int64? = nil
    // Shared with the delivery thread, under `condition`.
    private let condition = NSCondition()
    private var queue: [AlertDigest] = []
    private var stopping = false
    private(set) var dropped = 0
    private(set) var delivered = 0
    private(set) var failed = 0
    private var thread: Thread? = nil

    init(settings: AlertSettings, logger: Logger = Diagnostics.logger) {
        self.settings = settings
        self.logger = logger
        var name = [CChar](repeating: 0, count: 256)
        gethostname(&name, name.count)
        host = String(decoding: name.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        curl_global_init(ccurl_global_default())
        let t = Thread { [self] in deliveryLoop() }
        t.name = "portsentry-alerts"
        thread = t
        t.start()
    }

    // MARK: capture thread

    func note(_ event: ScanEvent, now: Int64) { digest.note(event, now: now) }
    func notice(_ text: String, now: Int64) { digest.notice(text, now: now) }

    /// Hands the digest to the delivery thread when it is due.
    func tick(now: Int64) {
        guard !digest.isEmpty, let opened = digest.opened, now - opened >= settings.gather * nanosPerSecond,
              lastSent.map({ now - $0 >= settings.interval * nanosPerSecond }) ?? true else { return }
        lastSent = now
        enqueue(digest)
        digest = AlertDigest()
    }

    /// Sends what is gathered and waits (bounded) for delivery: used at shutdown and in tests.
    func flush(waitSeconds: Double) {
        if !digest.isEmpty { enqueue(digest); digest = AlertDigest() }
        let deadline = Date().addingTimeInterval(waitSeconds)
        condition.lock()
        while !queue.isEmpty, condition.wait(until: deadline) {}
        condition.unlock()
    }

    func stop() {
        condition.lock()
        stopping = true
        condition.broadcast()
        condition.unlock()
    }

    private func enqueue(_ d: AlertDigest) {
        condition.lock()
        if queue.count >= Self.maxQueued {
            queue.removeFirst()
            dropped += 1
        }
        queue.append(d)
        condition.broadcast()
        condition.unlock()
    }

    // MARK: delivery thread

    private func deliveryLoop() {
        while true {
            condition.lock()
            while queue.isEmpty, !stopping { condition.wait() }
            if queue.isEmpty, stopping { condition.unlock(); return }
            let next = queue[0]
            condition.unlock()
            deliver(next)
            condition.lock()
            queue.removeFirst()
            condition.broadcast()
            condition.unlock()
        }
    }

    private func deliver(_ d: AlertDigest) {
        if !settings.emailTo.isEmpty {
            record(CurlTransfer.sendMail(settings: settings, subject: "portsentry on \(host): \(d.subject)",
                                         body: d.text(host: host), timeout: Self.timeoutSeconds), "email")
        }
        if let url = settings.webhookURL {
            record(CurlTransfer.postJSON(url: url, body: d.json(host: host), caFile: settings.caFile,
                                         timeout: Self.timeoutSeconds), "webhook")
        }
    }

    private func record(_ error: String?, _ what: String) {
        condition.lock()
        if error == nil { delivered += 1 } else { failed += 1 }
        condition.unlock()
        if let error { logger.error("Alert by \(what) failed: \(error)") }
    }
}
