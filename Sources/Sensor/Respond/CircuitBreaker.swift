/// Limits how many new blocks may start within a window. A flood of spoofed sources would
/// otherwise make the host firewall itself off from the whole Internet. Past the limit the
/// breaker opens: detection and logging go on, blocking stops until the rate falls.
struct CircuitBreaker: Sendable {
    let limit: Int
    let window: Int64
    /// Start times of the most recent blocks, oldest first (at most `limit`).
    private var recent: [Int64] = []
    private(set) var isOpen = false
    private(set) var refused: UInt64 = 0

    init(limit: Int, window: Int64) {
        self.limit = max(limit, 1)
        self.window = window
        recent.reserveCapacity(self.limit)
    }

    enum Transition: Equatable { case none, opened, closed }

    /// Asks to start one block at `now`; returns whether it may, and whether the breaker
    /// changed state (worth one log line and one alert).
    mutating func request(now: Int64) -> (allowed: Bool, transition: Transition) {
        let transition = prune(now: now)
        if recent.count >= limit {
            refused += 1
            if !isOpen {
                isOpen = true
                return (false, .opened)
            }
            return (false, .none)
        }
        recent.append(now)
        return (true, transition)
    }

    /// Forgets blocks older than the window; closes the breaker when room is back.
    @discardableResult
    mutating func prune(now: Int64) -> Transition {
        while let first = recent.first, now - first >= window { recent.removeFirst() }
        if isOpen, recent.count < limit {
            isOpen = false
            return .closed
        }
        return .none
    }
}
