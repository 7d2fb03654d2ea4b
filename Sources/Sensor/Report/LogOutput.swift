import CLinux
import Logging
#if canImport(Glibc)
import Glibc
#endif

/// swift-log backend with Portsentry's output conventions: stdout lines carry no timestamp
/// or level (systemd's journal adds both), errors go to stderr, debug lines start with
/// `debug: `; syslog uses ident `portsentry`, LOG_PID, facility daemon, and maps
/// notice → NOTICE, error → ERR, info (verbose) → INFO, debug → DEBUG.
struct LogOutput: LogHandler {
    struct Destinations: Sendable, Equatable {
        var stdout = true
        var syslog = false
        /// Every line to stderr (replay: stdout carries only the events).
        var stderr = false
    }

    var destinations: Destinations
    var logLevel: Logger.Level
    var metadata: Logger.Metadata = [:]

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        let text = event.level == .debug ? "debug: \(event.message)" : "\(event.message)"
        if destinations.stdout {
            Console.write(text, toStderr: event.level >= .warning && event.level != .notice)
        } else if destinations.stderr {
            Console.write(text, toStderr: true)
        }
        if destinations.syslog {
            let priority: Int32
            switch event.level {
            case .trace, .debug: priority = LOG_DEBUG
            case .info: priority = LOG_INFO
            case .notice: priority = LOG_NOTICE
            case .warning: priority = LOG_WARNING
            case .error: priority = LOG_ERR
            case .critical: priority = LOG_CRIT
            }
            clinux_syslog(priority, text)
        }
    }

    /// Installs the backend once per process (swift-log allows one bootstrap).
    static func bootstrap(_ destinations: Destinations, level: Logger.Level) {
        if destinations.syslog { openlog("portsentry", LOG_PID, LOG_DAEMON) }
        LoggingSystem.bootstrap { _ in LogOutput(destinations: destinations, logLevel: level) }
    }
}

/// Whole-line writes to stdout/stderr with write(2): a line is never interleaved with
/// another thread's, and nothing sits in a stdio buffer when the process is killed.
enum Console {
    static func write(_ line: String, toStderr: Bool = false) {
        var data = Array(line.utf8)
        data.append(0x0A)
        let fd: Int32 = toStderr ? 2 : 1
        data.withUnsafeBytes { raw in
            var offset = 0
            while offset < raw.count {
                let n = Glibc.write(fd, raw.baseAddress! + offset, raw.count - offset)
                if n <= 0 {
                    if n < 0, errno == EINTR { continue }
                    return
                }
                offset += n
            }
        }
    }
}

/// The process-wide diagnostics logger.
enum Diagnostics {
    static let logger = Logger(label: "portsentry")

    static func warn(_ message: String) { logger.warning("\(message)") }
}
