import PortsentryShared

/// One accepted detection as stored.
package struct EventRecord: Codable, Equatable, Sendable {
    /// `sensor:sequence:index`: a retried batch maps to the same ids, so it stores nothing twice.
    package var id: String
    package var sensor: String
    package var timeNs: Int64
    package var source: String
    package var destination: String
    package var proto: String
    package var port: Int
    package var type: String
    package var evidence: String
    package var blocked: Bool?
    package var receivedAt: Int64

    package init(id: String, sensor: String, timeNs: Int64, source: String, destination: String, proto: String, port: Int, type: String, evidence: String, blocked: Bool?, receivedAt: Int64) {
        self.id = id
        self.sensor = sensor
        self.timeNs = timeNs
        self.source = source
        self.destination = destination
        self.proto = proto
        self.port = port
        self.type = type
        self.evidence = evidence
        self.blocked = blocked
        self.receivedAt = receivedAt
    }
}
