import Logging
import PortsentryShared

/// Writes every admitted event to the configured outputs: the console or syslog (2.x line
/// or JSON), HISTORY_FILE (2.x or 1.2 format) and JSON_LOG_FILE. The output limiter
/// decides what is admitted; what it holds back is summarised every `summaryInterval`.
final class EventReporter {
    enum ConsoleFormat: String, Sendable { case text, json }

    /// How often suppressed output is summarised.
    static let summaryInterval: Int64 = 10 * nanosPerSecond

    private let logger: Logger
    private let consoleFormat: ConsoleFormat
    private let files: HistoryWriter
    private(set) var limiter: OutputLimiter
    private var lastSummary: Int64? = nil

    init(config: SensorConfig, consoleFormat: ConsoleFormat, logger: Logger = Diagnostics.logger) {
        self.logger = logger
        self.consoleFormat = consoleFormat
        files = HistoryWriter(config: config)
        limiter = OutputLimiter(rate: config.logRate, burst: config.logBurst, perSource: config.logPerSource)
    }

    func prepare() throws(TextFile.Failure) {
        try files.prepare()
    }

    /// Writes the event if the limiter admits it; returns whether it did.
    @discardableResult
    func report(_ d: DetectedEvent, now: Int64) -> Bool {
        guard limiter.admit(d, now: now) else { return false }
        let e = d.event
        switch consoleFormat {
        case .text: logger.notice("\(EventFormatter.portsentry2(e))")
        case .json: logger.notice("\(EventFormatter.json(e))")
        }
        files.write(e)
        return true
    }

    /// Called from the loop's timer: emits the suppression summary when one is due.
    func tick(now: Int64) {
        guard let last = lastSummary else {
            lastSummary = now
            return
        }
        guard now - last >= Self.summaryInterval else { return }
        lastSummary = now
        if let line = limiter.summary(seconds: Int((now - last) / nanosPerSecond)) { logger.notice("\(line)") }
    }

    /// Flushes the final summary (at exit or end of a replay).
    func finish() {
        if let line = limiter.summary(seconds: 0) { logger.notice("\(line)") }
    }
}
