import Logging
import PortsentryShared
import ControllerCore

/// Runs the correlator on every stored batch and hands its findings to the decision engine.
/// One actor: the correlator's state has a single owner, and a source found twice in
/// quick succession is decided once (it is quieted before the decision is written).
///
/// A sensor's evidence is only about itself: an event whose destination is not one of the
/// addresses the sensor reported as its own is stored (it was signed and accepted) but never
/// correlated, and counted. Automatic decisions pass the fleet breaker first.
actor CorrelationService {
    private let correlator: FleetCorrelator
    private let engine: DecisionEngine
    private let metrics: FleetMetrics
    private let logger: Logger
    private var breaker: FleetBreaker
    /// Sensors already warned about foreign destinations (one line per sensor per run).
    private var warnedForeign: Set<String> = []

    init(policy: CorrelationPolicy, engine: DecisionEngine, metrics: FleetMetrics, logger: Logger) {
        correlator = FleetCorrelator(policy: policy)
        self.engine = engine
        self.metrics = metrics
        self.logger = logger
        breaker = FleetBreaker(limit: policy.decisionRate)
    }

    var trackedSources: Int { correlator.trackedSources }

    typealias BreakerStatus = FleetView.Breaker

    func breakerStatus(nowMillis: Int64) -> BreakerStatus {
        breaker.refresh(now: nowMillis / 1000)
        return BreakerStatus(open: breaker.isOpen, limitPerMinute: breaker.limit, refused: Int(clamping: breaker.refused),
                             openings: Int(clamping: breaker.openings))
    }

    /// The events a sensor may testify about: those aimed at its own addresses.
    private func ownDestinations(_ events: [EventRecord]) -> [EventRecord] {
        var cache: [String: Set<IPAddress>?] = [:]
        var foreign: [String: Int] = [:]
        let kept = events.filter { e in
            let own = cache[e.sensor] ?? {
                let o = engine.protected.ownAddresses(of: e.sensor)
                cache[e.sensor] = o
                return o
            }()
            guard let own, let destination = IPAddress(e.destination), own.contains(destination) else {
                foreign[e.sensor, default: 0] += 1
                return false
            }
            return true
        }
        for (sensor, n) in foreign.sorted(by: { $0.key < $1.key }) {
            metrics.add("foreign_destination", n)
            if warnedForeign.insert(sensor).inserted {
                let known = cache[sensor] ?? nil
                let why = known == nil ? " (it has sent no heartbeat with its addresses yet)" : ""
                logger.warning("Sensor \(sensor) reported \(n) event(s) aimed at addresses that are not its own\(why); they are stored but not correlated (counted in /metrics)")
            }
        }
        return kept
    }

    /// Warm start: replays the events stored in the last window (oldest first, at the time
    /// they were received) so a restart does not forget a sweep in progress. What they
    /// conclude was acted on (or refused) before the restart: those scopes are only quieted.
    func warm(_ events: [EventRecord], nowMillis: Int64) {
        let events = ownDestinations(events)
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
        let findings = correlator.observe(ownDestinations(events), now: now)
        var outcomes: [DecisionEngine.Outcome] = []
        for f in findings {
            // Quiet first: events arriving while the decision is written find nothing new.
            correlator.quiet(f.scope, until: now + correlator.policy.window)
            switch breaker.ask(now: now) {
            case .allow: break
            case .opened:
                logger.critical("Fleet circuit breaker open: more than \(breaker.limit) automatic decisions in a minute (most likely forged sweeps from ever-new addresses); findings are refused and counted until the rate falls. First refused: \(f.scope) (\(f.reason))")
                metrics.add("refused_breaker")
                continue
            case .refuse:
                metrics.add("refused_breaker")
                continue
            }
            do {
                let outcome = try await engine.decide(scope: f.scope, origin: f.origin, reason: f.reason, events: f.events,
                                                      proven: f.proven, nowMillis: nowMillis)
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
                case .knownPeer(let why):
                    metrics.add("refused_known_peer")
                    logger.warning("Not blocking \(f.scope) fleet-wide (\(f.reason)): \(why); the probes may be forged")
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
