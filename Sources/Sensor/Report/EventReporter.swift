import Logging
import PortsentryShared
import SensorCore

/// Writes every admitted event to the configured outputs: the console or syslog (2.x line
/// or JSON), HISTORY_FILE (2.x or 1.2 format) and JSON_LOG_FILE. The output limiter
/// decides what is admitted; what it holds back is summarised every `summaryInterval`.
final class EventReporter {
    enum ConsoleFormat: String, Sendable { case text, json }

    /// Where an event's own line goes.
    enum LineOutput: Sendable {
        /// Live: the 2.x `Scan from:` line (or JSON) through the logger, to stdout and/or syslog.
        case logged(ConsoleFormat)
        /// Replay: HISTORY_FILE lines, with the packet's time (or JSON), on stdout.
        case printed(ConsoleFormat)
        /// Replay `--quiet`: files and counters only.
        case none
    }

    /// How often suppressed output is summarised.
    static let summaryInterval: Int64 = 10 * nanosPerSecond

    private let logger: Logger
    private let console: LineOutput
    private let files: HistoryWriter
    private(set) var limiter: OutputLimiter
    private var lastSummary: Int64? = nil
    /// Named in the verbose "found in ignore file" line.
    private let ignoreFile: String?
    /// Started in a 1.2 mode (-tcp, -stcp, ...): 1.2's own attackalert lines are written too.
    private let legacy12: Bool

    init(config: SensorConfig, console: LineOutput, legacy12: Bool = false, logger: Logger = Diagnostics.logger) {
        self.logger = logger
        self.console = console
        self.legacy12 = legacy12
        ignoreFile = config.ignoreFile
        files = HistoryWriter(config: config)
        limiter = OutputLimiter(rate: config.logRate, burst: config.logBurst, perSource: config.logPerSource)
    }

    func prepare() throws(TextFile.Failure) {
        try files.prepare()
    }

    /// Writes the event if the limiter admits it; returns whether it did.
    @discardableResult
    func report(_ d: DetectedEvent, now: Int64) -> Bool {
        guard admit(d, now: now) else { return false }
        write(d.event)
        return true
    }

    /// Whether the event's lines may be written (the output limiter's decision). Asked
    /// before the response, so that the response's own per-event lines are limited too.
    func admit(_ d: DetectedEvent, now: Int64) -> Bool {
        limiter.admit(d, now: now)
    }

    /// The lines Portsentry writes about an event before acting on it: the debug line for
    /// a packet from the host to itself, the verbose ignore-file line, and in 1.2 modes
    /// 1.2's attackalert line (only for hosts it acts on, as 1.2 logs nothing else).
    func announce(_ e: ScanEvent) {
        let ip = e.source.description
        switch e.ignoreReason {
        case .sameSourceAndDestination?:
            logger.debug("Source address \(ip) same as destination address \(e.destination), skipping")
        case .ignoreFile?:
            logger.info("Host: \(ip) found in ignore file \(ignoreFile ?? "(none)"), aborting actions")
        default:
            break
        }
        if legacy12, e.isActionable {
            for line in EventFormatter.portsentry12Alerts(e) { logger.notice("\(line)") }
        }
    }

    /// The event's own line (console or syslog) and its file records.
    func write(_ e: ScanEvent) {
        switch console {
        case .logged(.text): logger.notice("\(EventFormatter.portsentry2(e))")
        case .logged(.json): logger.notice("\(EventFormatter.json(e))")
        case .printed(.text): Console.write(EventFormatter.portsentry2History(e))
        case .printed(.json): Console.write(EventFormatter.json(e))
        case .none: break
        }
        files.write(e)
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
