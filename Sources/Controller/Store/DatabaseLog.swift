import Logging
import Synchronization

/// The PostgreSQL client's log, made useful to an operator: it retries a failed connection
/// forever and says so at info level. Here every connection failure is raised to a warning,
/// with its error, and the last one is kept for the start-up deadline's message.
final class DatabaseLog: Sendable {
    private let last = Mutex<String?>(nil)
    private let base: Logger

    init(base: Logger) { self.base = base }

    /// The most recent connection error the client reported, if any.
    var lastError: String? { last.withLock { $0 } }

    var logger: Logger {
        Logger(label: base.label) { _ in Handler(inner: self.base, log: self) }
    }

    fileprivate func note(_ error: String) { last.withLock { $0 = error } }

    private struct Handler: LogHandler {
        var inner: Logger
        let log: DatabaseLog
        var metadata: Logger.Metadata = [:]
        var logLevel: Logger.Level {
            get { inner.logLevel }
            set { inner.logLevel = newValue }
        }

        subscript(metadataKey key: String) -> Logger.Metadata.Value? {
            get { metadata[key] }
            set { metadata[key] = newValue }
        }

        func log(event: LogEvent) {
            var level = event.level
            var merged = metadata
            if let extra = event.metadata { merged.merge(extra) { $1 } }
            if let error = merged["psql_error"] {
                log.note(error.description)
                if level < .warning { level = .warning }
            }
            inner.log(level: level, event.message, metadata: merged, source: event.source, file: event.file,
                      function: event.function, line: event.line)
        }
    }
}
