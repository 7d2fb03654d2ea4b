import Foundation
import PortsentryShared

/// Decides whether a reported batch is accepted, before anything is stored. Every refusal
/// has a status, a reason for the log and a counter name.
package struct BatchVerifier {
    package enum Outcome: Equatable {
        case accept(sequence: Int64, events: [EventRecord])
        /// The last accepted batch again (a retry after a lost answer): success, nothing stored.
        case duplicate
        case reject(status: Int, reason: String, counter: String)
    }

    /// `headers` are looked up case-insensitively by the caller; `sensor` is the stored
    /// record for the claimed sensor id, if any.
    package static func check(headers: (String) -> String?, body: [UInt8], sensor: SensorRecord?, nowMillis: Int64) -> Outcome {
        guard body.count <= ReportProtocol.maxBodyBytes else {
            return .reject(status: 413, reason: "body larger than \(ReportProtocol.maxBodyBytes) bytes", counter: "oversized")
        }
        guard let name = headers(ReportProtocol.sensorHeader), let sequenceText = headers(ReportProtocol.sequenceHeader),
              let sequence = UInt64(sequenceText), sequence > 0, sequence <= UInt64(Int64.max),
              let timestamp = headers(ReportProtocol.timestampHeader).flatMap({ Int64($0) }),
              let digest = headers(ReportProtocol.digestHeader).flatMap(Hex.decode),
              let signature = headers(ReportProtocol.signatureHeader).flatMap(Hex.decode) else {
            return .reject(status: 400, reason: "missing or malformed envelope headers", counter: "malformed")
        }
        guard let sensor else { return .reject(status: 401, reason: "unknown sensor \(name)", counter: "unknown_sensor") }
        guard !sensor.revoked else { return .reject(status: 403, reason: "sensor \(name) is revoked", counter: "revoked") }
        let envelope = SignedEnvelope(sensorID: name, sequence: sequence, timestampMillis: timestamp, bodyDigest: digest,
                                      signature: signature)
        guard let key = try? Ed25519.PublicKey(raw: [UInt8](sensor.publicKey)) else {
            return .reject(status: 500, reason: "stored key for \(name) is unusable", counter: "internal")
        }
        do { try envelope.verify(body: body, key: key) } catch {
            return .reject(status: 401, reason: "sensor \(name): \(error.description)", counter: "bad_signature")
        }
        guard ReportProtocol.isFresh(timestamp, now: nowMillis) else {
            return .reject(status: 401, reason: "sensor \(name): timestamp outside the \(ReportProtocol.timestampWindowMillis / 1000) s window",
                           counter: "stale")
        }
        let seq = Int64(sequence)
        if seq == sensor.lastSequence { return .duplicate }
        guard seq > sensor.lastSequence else {
            return .reject(status: 409, reason: "sensor \(name): sequence \(seq) already used (last \(sensor.lastSequence))",
                           counter: "replayed")
        }
        return events(in: body, sensor: name, sequence: seq, nowMillis: nowMillis)
    }

    /// The events of an authenticated batch body, as they will be stored, or the refusal.
    package static func events(in body: [UInt8], sensor name: String, sequence seq: Int64, nowMillis: Int64) -> Outcome {
        let batch: EventBatch
        do { batch = try WireJSON.decode(EventBatch.self, from: body) } catch {
            return .reject(status: 400, reason: "sensor \(name): body is not {\"events\":[...]} of well-formed events (\(error.description))",
                           counter: "malformed")
        }
        guard batch.events.count <= ReportProtocol.maxEventsPerBatch else {
            return .reject(status: 413, reason: "more than \(ReportProtocol.maxEventsPerBatch) events", counter: "oversized")
        }
        var events: [EventRecord] = []
        events.reserveCapacity(batch.events.count)
        for (index, item) in batch.events.enumerated() {
            guard item.protocol == "TCP" || item.protocol == "UDP", (0...65535).contains(item.port), item.type.utf8.count <= 32 else {
                return .reject(status: 400, reason: "sensor \(name): event \(index) is malformed", counter: "malformed")
            }
            events.append(EventRecord(id: "\(name):\(seq):\(index)", sensor: name, timeNs: item.timeNanos, source: item.source.description,
                                      destination: item.destination.description, proto: item.protocol, port: item.port, type: item.type,
                                      evidence: item.evidence.description, blocked: item.blocked, receivedAt: nowMillis))
        }
        return .accept(sequence: seq, events: events)
    }
}
