import PortsentryShared
import SensorCore

/// The one path every event takes, live (capture and connect mode) and in replay, so a
/// replay exercises exactly what production runs:
/// detect → admit (the output limiter) → the lines Portsentry writes before acting →
/// respond → the event's line and file records → the controller and the alert digest.
///
/// The limiter decides first, so that the response's own per-event lines ("already
/// blocked", 1.2's "Ignoring ...") are held back with the event's line: a flood cannot
/// write through them. Single-threaded, like the detector it owns.
final class EventPipeline {
    let detector: Detector
    let responder: Responder
    /// Replaced on SIGHUP (its outputs may have changed).
    var reporter: EventReporter
    /// Live only: the controller, when enrolled, and the alert digest, when configured.
    var uplink: Uplink? = nil
    var alerts: AlertSender? = nil

    init(detector: Detector, responder: Responder, reporter: EventReporter) {
        self.detector = detector
        self.responder = responder
        self.reporter = reporter
    }

    /// A parsed packet. Returns the event it made, as responded to, if it made one.
    @inline(__always) @discardableResult
    func packet(_ p: ParsedPacket, now: Int64, wallTime: EpochNanos) -> DetectedEvent? {
        guard let d = detector.process(p, now: now, wallTime: wallTime) else { return nil }
        return handle(d, now: now, wallSeconds: wallTime / nanosPerSecond)
    }

    /// A completed handshake or datagram on a connect-mode socket.
    func connection(from source: IPAddress, to destination: IPAddress, proto: TransportProtocol, port: UInt16,
                    now: Int64, wallTime: EpochNanos) -> DetectedEvent? {
        guard let d = detector.connection(from: source, to: destination, proto: proto, port: port,
                                          now: now, wallTime: wallTime) else { return nil }
        return handle(d, now: now, wallSeconds: wallTime / nanosPerSecond)
    }

    private func handle(_ detected: DetectedEvent, now: Int64, wallSeconds: Int64) -> DetectedEvent {
        var d = detected
        let admitted = reporter.admit(d, now: now)
        if admitted { reporter.announce(d.event) }
        let deferred = responder.respond(to: &d.event, now: wallSeconds, quiet: !admitted)
        if admitted, !deferred { record(d.event, now: now) }
        if d.event.isActionable { alerts?.note(d.event, now: now) }
        return d
    }

    /// The event's line and file records, and the controller (never for ignored hosts).
    private func record(_ event: ScanEvent, now: Int64) {
        reporter.write(event)
        if event.ignored != .yes { uplink?.add(event, now: now) }
    }

    /// Events held while their KILL_* actions ran on the worker: written now, in the order
    /// the actions finished, with what they did.
    func recordFinishedActions(now: Int64) {
        for (event, report) in responder.collectCommandResults() where report { record(event, now: now) }
    }
}
