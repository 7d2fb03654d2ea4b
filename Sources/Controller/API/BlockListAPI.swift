import Foundation
import Hummingbird
import PortsentryShared
import ControllerCore

/// `POST /v1/blocklist`: a sensor's signed long poll. The body says which revision the sensor
/// holds, when it applied it, and the digest of what its kernel holds. The answer is an
/// update at once when the sensor is behind, a snapshot when its kernel has drifted from the
/// list, otherwise the next change, or 304 after the wait.
extension ControllerAPI {
    /// A poll body is a few numbers and a digest.
    static let maxPollBytes = 4096

    func poll(_ request: Request, from sensor: SensorRecord, body: [UInt8]) async throws -> Response {
        guard let asked = try? WireJSON.decode(PollRequest.self, from: body), asked.revision >= 0, asked.digest.utf8.count <= 64 else {
            return refuse(.init(status: 400, reason: "block-list poll from \(sensor.name): expected {\"revision\", \"digest\"}",
                                counter: "malformed"), for: .poll)
        }
        let held = asked.revision, digest = asked.digest
        let pollMillis = Self.headerLookup(request)(ReportProtocol.timestampHeader).flatMap { Int64($0) } ?? 0
        guard fleet.polls.advance(sensor: sensor.name, to: pollMillis) else {
            return refuse(.init(status: 409, reason: "block-list poll from \(sensor.name) is not newer than its last one (replayed)",
                                counter: "replayed"), for: .poll)
        }
        let appliedAt = asked.appliedMillis ?? 0
        let wait = Double(min(max(asked.wait ?? Int64(BlockListProtocol.maxWaitSeconds), 0), Int64(BlockListProtocol.maxWaitSeconds)))
        try await noteApplied(sensor: sensor.name, revision: held, digest: digest, appliedAt: appliedAt)

        var now = clock()
        let current = await fleet.hub.current
        fleet.metrics.setLag(sensor: sensor.name, revisions: max(0, current - held))
        let expected = try await fleet.lists.digest(revision: current, nowMillis: now)
        if held >= current, digest == expected {
            await fleet.hub.wait(after: current, seconds: wait)
            let next = await fleet.hub.current
            // Shutting down: the sensor backs off and comes back to the next controller.
            if await fleet.hub.closed { return Self.error("shutting down", status: .serviceUnavailable) }
            now = clock()
            guard next > current else { return try send(nil, sensor: sensor.name, poll: pollMillis, revision: current, now: now) }
            return try await send(fleet.lists.update(from: held, to: next, nowMillis: now), sensor: sensor.name, poll: pollMillis,
                                  revision: next, now: now)
        }
        if held == current {
            fleet.metrics.add("resync")
            logger.warning("Sensor \(sensor.name) holds revision \(held) but its kernel differs from the list (digest \(digest.prefix(12))… ≠ \(expected.prefix(12))…): sending a snapshot")
            return try await send((fleet.lists.snapshot(revision: current, nowMillis: now), true), sensor: sensor.name, poll: pollMillis,
                                  revision: current, now: now)
        }
        return try await send(fleet.lists.update(from: held, to: current, nowMillis: now), sensor: sensor.name, poll: pollMillis,
                              revision: current, now: now)
    }

    /// The signed answer: a receipt for this poll, then the update if there is one.
    private func send(_ update: (bytes: [UInt8], snapshot: Bool)?, sensor: String, poll: Int64, revision: Int64, now: Int64) throws -> Response {
        let bytes = try fleet.lists.answer(sensor: sensor, pollMillis: poll, revision: revision, rest: update?.bytes ?? [], nowMillis: now)
        return Response(status: .ok, headers: [.contentType: "application/octet-stream"], body: .init(byteBuffer: ByteBuffer(bytes: bytes)))
    }

    /// Records what a sensor reports it applied, and how long that took from the decision.
    private func noteApplied(sensor: String, revision: Int64, digest: String, appliedAt: Int64) async throws {
        let previous = fleet.applied.get(sensor)
        guard previous.map({ $0.revision != revision || $0.digest != digest }) ?? true else { return }
        fleet.applied.set(sensor, (revision, digest))
        try await store.recordApplied(sensor: sensor, revision: revision, digest: digest, atMs: appliedAt)
        if let previous, revision > previous.revision, appliedAt > 0, let created = try await store.revisionTime(revision),
           appliedAt >= created {
            fleet.metrics.observeEnforcement(seconds: Double(appliedAt - created) / 1000)
        }
    }
}
