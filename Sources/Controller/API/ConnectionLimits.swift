import Foundation
import Logging
#if canImport(Glibc)
import Glibc
#endif

/// What one client can hold of the listener. An idle or slow connection costs a file
/// descriptor; without these bounds about a thousand of them took the controller offline.
enum ConnectionLimits {
    /// A connection that completes no request part for this long is closed. No part reaches the
    /// HTTP layer before the TLS handshake and the whole header block are in, so this is also
    /// the handshake and header-read deadline: a slowloris client trickling bytes is cut here.
    /// Long polls are not idle: the timer runs only between a response and the next request.
    static let idleSeconds: Int64 = 15
    /// Connections at once: each sensor holds two (reports and its long poll), so this is
    /// several thousand sensors per replica. Past it new connections wait in the accept backlog.
    static let maxConnections = 16_384
    /// Descriptors kept free of connections: the database, log files, the store's WAL.
    static let reservedDescriptors = 256

    /// Raises the soft descriptor limit to the hard one and returns how many connections fit
    /// under it (at most `maxConnections`).
    static func connectionBudget(logger: Logger) -> Int {
        var limit = rlimit()
        guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0 else { return 1024 - reservedDescriptors }
        if limit.rlim_cur < limit.rlim_max {
            var raised = limit
            raised.rlim_cur = limit.rlim_max
            if setrlimit(Int32(RLIMIT_NOFILE.rawValue), &raised) == 0 { limit = raised }
        }
        let budget = min(maxConnections, max(64, Int(clamping: limit.rlim_cur) - reservedDescriptors))
        if budget < maxConnections {
            logger.warning("File-descriptor limit \(limit.rlim_cur): at most \(budget) connections at once (raise LimitNOFILE for more)")
        }
        return budget
    }
}
