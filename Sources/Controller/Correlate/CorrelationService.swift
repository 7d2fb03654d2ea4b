import Logging
import PortsentryShared

/// Runs the correlator on every stored batch and hands its findings to the decision engine.
/// One actor: the correlator's state has a single owner, and a source found twice in
/// quick succession is decided once (it is quieted before the decision is written).
actor CorrelationService {
    private let correlator: FleetCorrelator
    private let engine: DecisionEngine
    private let metrics: FleetMetrics
    private let logger: Logger

    init(policy: CorrelationPolicy, engine: DecisionEngine, metrics: FleetMetrics, logger: Logger) {
        correlator = FleetCorrelator(policy: policy)
        self.engine = engine
        self.metrics = metrics
        self.logger = logger
    }

    var trackedSources: Int { correlator.trackedSources }

    /// Warm start: replays the events stored in the last window (oldest first, at the time
    /// they were received) so a restart does not forget a sweep in progress. What they
    /// conclude was acted on (or refused) before the restart: those scopes are only quieted.
    func warm(_ events: [EventRecord], nowMillis: Int64) {
        var start = events.startIndex
        while start < events.endIndex {
            let second = events[start].receivedAt / 1000
            var end = start
            while end < events.endIndex, events[end].receivedAt / 1000 == second { end += 1 }
            for f in correlator.observe(Array(events[start..<end]), now: second) {
                correlator.quiet(f.scope, until: nowMillis / 1000 + correlator.policy.window)
            }
            start = end
        }
    }

    /// Correlates a stored batch; returns the outcomes of any decisions it led to.
    @discardableResult
    func observe(_ events: [EventRecord], nowMillis: Int64) async -> [DecisionEngine.Outcome] {
        let now = nowMillis / 1000
        let findings = correlator.observe(events, now: now)
        var outcomes: [DecisionEngine.Outcome] = []
        for f in findings {
            // Quiet first: events arriving while the decision is written find nothing new.
            correlator.quiet(f.scope, until: now + correlator.policy.window)
            do {
                let outcome = try await engine.decide(scope: f.scope, origin: f.origin, reason: f.reason, events: f.events,
                                                      nowMillis: nowMillis)
                switch outcome {
                case .decided(let d, _):
                    metrics.add("decided_" + f.origin.rawValue)
                    if d.expires > 0 { correlator.quiet(f.scope, until: d.expires) }
                case .protected(let why):
                    metrics.add("refused_protected")
                    logger.warning("Not blocking \(f.scope) fleet-wide (\(f.reason)): \(why); the probes were most likely spoofed")
                case .allowlisted(let why):
                    metrics.add("refused_allowlisted")
                    logger.notice("Not blocking \(f.scope) fleet-wide (\(f.reason)): \(why)")
                case .alreadyCovered:
                    break
                }
                outcomes.append(outcome)
            } catch {
                logger.error("Cannot record a decision on \(f.scope): \(error)")
                correlator.quiet(f.scope, until: now)  // try again on the next event
            }
        }
        return outcomes
    }
}
