import SensorCore

/// Keeps a flood from filling the disk while a real scanner is always on record.
///
/// - Each source gets at most `perSource` lines per log window (0 = no limit).
/// - Sources that have probed two or more distinct ports (scanners) draw on their own
///   bucket, ten times the general one, so a spoofed one-packet-per-source flood that
///   empties the general bucket cannot silence them.
/// - Everything else (one-port sources, ignored hosts) shares the general bucket:
///   `rate` lines per second with bursts of `burst`.
/// Suppressed lines are counted, and `summary` reports them.
struct OutputLimiter: Sendable {
    struct Suppressed: Sendable, Equatable {
        var perSource: UInt64 = 0
        var rate: UInt64 = 0
        var total: UInt64 { perSource + rate }
    }

    let perSource: UInt32
    var general: TokenBucket
    var scanners: TokenBucket
    private(set) var sinceSummary = Suppressed()
    private(set) var total = Suppressed()
    private(set) var written: UInt64 = 0

    init(rate: Int, burst: Int, perSource: Int) {
        self.perSource = UInt32(clamping: perSource)
        general = TokenBucket(rate: Double(rate), burst: Double(burst))
        scanners = TokenBucket(rate: Double(rate) * 10, burst: Double(burst) * 10)
    }

    /// True when the event's line may be written now.
    mutating func admit(_ d: DetectedEvent, now: Int64) -> Bool {
        if perSource > 0, d.sourceEventNumber > perSource {
            sinceSummary.perSource += 1
            total.perSource += 1
            return false
        }
        let allowed = d.sourceDistinctPorts >= 2 ? scanners.take(now: now) : general.take(now: now)
        if !allowed {
            sinceSummary.rate += 1
            total.rate += 1
            return false
        }
        written += 1
        return true
    }

    /// A line describing what was held back since the last call, or nil if nothing was.
    mutating func summary(seconds: Int) -> String? {
        guard sinceSummary.total > 0 else { return nil }
        defer { sinceSummary = Suppressed() }
        return "Output limit: \(sinceSummary.total) scan events not written in the last \(seconds)s "
            + "(\(sinceSummary.perSource) over the per-source limit of \(perSource), \(sinceSummary.rate) over the rate limit); "
            + "totals since start: \(total.total) suppressed, \(written) written"
    }
}

/// The classic token bucket on a monotonic nanosecond clock.
struct TokenBucket: Sendable {
    let rate: Double
    let burst: Double
    var tokens: Double
    var last: Int64? = nil

    init(rate: Double, burst: Double) {
        self.rate = rate
        self.burst = burst
        tokens = burst
    }

    mutating func take(now: Int64) -> Bool {
        if let last, now > last {
            tokens = min(burst, tokens + Double(now - last) / 1e9 * rate)
        }
        last = max(last ?? now, now)
        guard tokens >= 1 else { return false }
        tokens -= 1
        return true
    }
}
