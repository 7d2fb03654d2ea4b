package import Foundation
import PortsentryShared

/// A stored sensor.
package struct SensorRecord: Codable, Equatable, Sendable {
    package var name: String
    package var publicKey: Data
    package var enrolledAt: Int64
    package var revoked: Bool
    /// Highest batch sequence accepted: anything at or below it is a replay (or a retry).
    package var lastSequence: Int64
    package var lastSeen: Int64
    package var version: String
    /// Newest heartbeat time stamp (ms) and its status object (JSON text).
    package var lastHeartbeat: Int64 = 0
    package var status: String = ""
    /// The block-list revision the sensor last reported as applied, the digest of what its
    /// kernel held, and when (ms).
    package var appliedRevision: Int64 = 0
    package var appliedDigest: String = ""
    package var appliedAt: Int64 = 0

    package init(name: String, publicKey: Data, enrolledAt: Int64, revoked: Bool, lastSequence: Int64, lastSeen: Int64, version: String, lastHeartbeat: Int64 = 0, status: String = "", appliedRevision: Int64 = 0, appliedDigest: String = "", appliedAt: Int64 = 0) {
        self.name = name
        self.publicKey = publicKey
        self.enrolledAt = enrolledAt
        self.revoked = revoked
        self.lastSequence = lastSequence
        self.lastSeen = lastSeen
        self.version = version
        self.lastHeartbeat = lastHeartbeat
        self.status = status
        self.appliedRevision = appliedRevision
        self.appliedDigest = appliedDigest
        self.appliedAt = appliedAt
    }
}
