/// The fleet-wide circuit breaker: at most `limit` automatic decisions in any minute. A
/// flood of forged sweeps from ever-new addresses would otherwise have the controller block
/// half the internet on every sensor; past the limit findings are refused and counted until
/// the rate falls again. Opening is reported once per episode. Operators are never limited.
package struct FleetBreaker: Sendable {
    /// The window the limit applies to.
    package static let windowSeconds: Int64 = 60

    package let limit: Int
    private var recent: [Int64] = []
    package private(set) var isOpen = false
    package private(set) var refused: UInt64 = 0
    package private(set) var openings: UInt64 = 0

    package init(limit: Int) { self.limit = limit }

    package enum Verdict: Equatable { case allow, refuse, opened }

    /// Asks for one more decision at `now` (epoch seconds); `.opened` is the first refusal of an episode.
    package mutating func ask(now: Int64) -> Verdict {
        guard limit > 0 else { return .allow }
        recent.removeAll { $0 <= now - Self.windowSeconds }
        if recent.count < limit {
            recent.append(now)
            isOpen = false
            return .allow
        }
        refused += 1
        if isOpen { return .refuse }
        isOpen = true
        openings += 1
        return .opened
    }

    /// Closes when the window has room again (for status between findings).
    package mutating func refresh(now: Int64) {
        recent.removeAll { $0 <= now - Self.windowSeconds }
        if recent.count < limit { isOpen = false }
    }
}
